"""structured.py: finding the JSON in an answer, ajv-worded validation errors, instructions; and the
mock model's text answer for a schema in the system prompt."""

from __future__ import annotations

import json

import pytest

from claude_bridge_tmux.output import structured
from claude_bridge_tmux.testing import mock_api

SCHEMA = {"type": "object", "properties": {"resp": {"type": "string"}, "n": {"type": "integer", "minimum": 1}},
          "required": ["resp"], "additionalProperties": False}


@pytest.mark.parametrize("text,value", [
    ('{"resp":"x"}', {"resp": "x"}),
    ('  [1, 2]\n', [1, 2]),
    ('Here you go:\n```json\n{"resp": "x"}\n```\n', {"resp": "x"}),
    ('The answer is {"resp": "x"} as requested.', {"resp": "x"}),
    ("42", 42),
])
def test_extract(text, value):
    assert structured.extract(text) == value


@pytest.mark.parametrize("text", ["", None, "no json here", "{not json"])
def test_extract_missing(text):
    assert structured.extract(text) is structured.MISSING


def test_problem_is_worded_like_claude_p():
    assert structured.problem({"resp": "x"}, SCHEMA) is None
    assert structured.problem({"resp": 5}, SCHEMA) == "Output does not match required schema: /resp: must be string"
    assert structured.problem({}, SCHEMA) == \
        "Output does not match required schema: root: must have required property 'resp'"
    msg = structured.problem({"resp": "x", "n": 0, "extra": 1}, SCHEMA)
    assert "root: must NOT have additional properties" in msg and "/n: must be >= 1" in msg


def test_schema_errors_and_attempts():
    assert structured.schema_error(SCHEMA) is None
    assert structured.schema_error({"type": "nonsense"})
    assert structured.max_attempts({}) == 5 and structured.max_attempts({"MAX_STRUCTURED_OUTPUT_RETRIES": "2"}) == 2
    assert structured.exhausted_error(5, "p", "2.1.197") == "Failed to provide valid structured output after 5 attempts"
    assert structured.exhausted_error(5, "p", "2.1.329").endswith(" \u2014 last StructuredOutput error: p")


def _request(system: str, user_texts: list[str]) -> dict:
    msgs = []
    for i, t in enumerate(user_texts):
        if i:
            msgs.append({"role": "assistant", "content": [{"type": "text", "text": "prev"}]})
        msgs.append({"role": "user", "content": [{"type": "text", "text": t}]})
    return {"system": [{"type": "text", "text": system}], "messages": msgs, "tools": [{"name": "Bash"}]}


def test_mock_answers_the_system_prompt_schema_as_text():
    system = "You are Claude Code.\n\n" + structured.instructions(SCHEMA)
    body = _request(system, ["give it MOCK:structured"])
    info = mock_api.analyze_request(body)
    assert info.text_schema == SCHEMA
    plan = mock_api.build_plan(info, mock_api.parse_directives(info.prompt))
    assert json.loads(plan.blocks[-1]["text"]) == {"resp": "mock", "n": 42}
    bad = _request(system, ['give it MOCK:structured={"resp":5}'])
    info = mock_api.analyze_request(bad)
    assert json.loads(mock_api.build_plan(info, mock_api.parse_directives(info.prompt)).blocks[-1]["text"]) == {"resp": 5}
    # after the bridge's re-prompt the directives still come from the user's prompt; the answer is valid
    again = _request(system, ['give it MOCK:structured={"resp":5}', structured.retry_prompt("x")])
    info = mock_api.analyze_request(again)
    assert info.prompt == 'give it MOCK:structured={"resp":5}'
    assert json.loads(mock_api.build_plan(info, mock_api.parse_directives(info.prompt)).blocks[-1]["text"])["resp"] == "mock"
