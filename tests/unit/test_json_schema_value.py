"""--json-schema values Python's JSON parser rejects with a plain ValueError (not a JSONDecodeError).

Python refuses integers of more than 4300 digits (``sys.get_int_max_str_digits``) with a ValueError that
has no ``.msg``; reading that attribute crashed the bridge with an AttributeError before it could print
anything. JavaScript's JSON.parse reads such a number as Infinity, so the JSON text itself is valid:
the bridge now refuses it with a one-line usage error naming Python's reason (exit 1) instead.
"""

import pytest

from claude_bridge_tmux.errors import UsageError
from claude_bridge_tmux.invocation.plan import parse_json_schema


@pytest.mark.parametrize("version", ["2.1.197", "2.1.329"])
def test_too_many_digits_is_a_usage_error_not_a_crash(version):
    with pytest.raises(UsageError) as info:
        parse_json_schema('{"type": "object", "maxProperties": ' + "1" * 5000 + "}", version)
    message = str(info.value)
    assert message.startswith("Error: --json-schema is not valid JSON: JSON Parse error: ")
    assert "4300 digits" in message and "\n" not in message
    assert info.value.exit_code == 1


def test_javascript_parse_errors_keep_claudes_words():
    with pytest.raises(UsageError, match=r"^Error: --json-schema is not valid JSON: JSON Parse error: Expected '}'$"):
        parse_json_schema("{not json", "2.1.329")


def test_a_long_but_allowed_number_parses():
    assert parse_json_schema('{"maxLength": ' + "9" * 4300 + "}", "2.1.197") == {"maxLength": int("9" * 4300)}
