"""JSON.parse's error messages as claude prints them for --json-schema (captured from 2.1.197 and
2.1.329: `claude -p hi --json-schema VALUE`; both versions print the same)."""

import pytest

from claude_bridge_tmux.output.jsjson import js_parse_error


@pytest.mark.parametrize("text,message", [
    ("{not json", "Expected '}'"),
    ('{"a":', "Unexpected EOF"),
    ("[1,2", "Expected ']'"),
    ("nope", 'Unexpected identifier "nope"'),
    ('{"type": "object",}', "Property name must be a string literal"),
    ('"str"', None),
    ('{"a": [1, {"b": null}], "c": "x\\"y"}', None),
    ('{"a": "unterminated', "Unterminated string"),
    ('{"a" 1}', "Expected ':' before value in object property definition"),
    ('{"a":1} x', "Unable to parse JSON string"),
    ("@", "Unrecognized token '@'"),
])
def test_js_parse_error(text, message):
    assert js_parse_error(text) == message
