"""--json-schema through the interactive pane, side by side with the real `claude -p` (each pinned CLI).

Interactive claude has no StructuredOutput tool: the bridge puts the schema into the system prompt,
validates the answer with jsonschema and re-prompts in the same pane (claude_bridge_tmux/structured.py).
The mock model answers the schema as text when it finds it there (MOCK:structured[=JSON]).
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import stream_lines

pytestmark = pytest.mark.integration

SCHEMA = json.dumps({"type": "object", "properties": {"resp": {"type": "string"}}, "required": ["resp"],
                     "additionalProperties": False})
SAME = ("type", "subtype", "is_error", "result", "structured_output", "terminal_reason", "permission_denials", "errors")


def both(bed, *args, env=None):
    real = bed.claude_p(*args) if env is None else _claude(bed, args, env)
    n_real = len(bed.mock.main_requests())
    bed.mock.clear()
    ours = bed.bridge(*args, env=None if env is None else dict(bed.env, **env))
    return real, n_real, ours, len(bed.mock.main_requests())


def _claude(bed, args, env):
    import subprocess
    return subprocess.run([bed.claude_bin, *args], capture_output=True, env=dict(bed.env, **env), cwd=bed.cwd,
                          stdin=subprocess.DEVNULL, timeout=90)


@pytest.mark.parametrize("prompt", ["valid MOCK:structured", 'invalid first MOCK:structured={"resp":5}',
                                    "never MOCK:nostructured"])
def test_structured_output_like_claude_p(bed, prompt):
    real, n_real, ours, n_ours = both(bed, "-p", prompt, "--json-schema", SCHEMA, "--output-format", "json")
    assert (ours.returncode, ours.stderr) == (real.returncode, real.stderr) == (0, b"")
    a, b = json.loads(ours.stdout), json.loads(real.stdout)
    assert list(a) == list(b)
    assert {k: a.get(k) for k in SAME} == {k: b.get(k) for k in SAME}
    assert n_ours == n_real          # the same number of model requests (re-prompt = -p's retry/nudge)


def test_schema_retries_exhausted_like_claude_p(bed):
    env = {"MAX_STRUCTURED_OUTPUT_RETRIES": "1"}
    for fmt in ("json", "text"):
        real, n_real, ours, n_ours = both(bed, "-p", 'bad MOCK:structured={"resp":5}', "--json-schema", SCHEMA,
                                          "--output-format", fmt, env=env)
        assert (ours.returncode, ours.stderr) == (real.returncode, real.stderr) == (1, b"")
        if fmt == "text":
            assert ours.stdout == real.stdout
        else:
            a, b = json.loads(ours.stdout), json.loads(real.stdout)
            assert list(a) == list(b) and a["errors"] == b["errors"]
            assert a["subtype"] == "error_max_structured_output_retries"
        assert n_ours == 1          # (-p sometimes sends a second request after the failed call)


def test_structured_stream_json_and_re_prompt_line(bed):
    p = bed.bridge("-p", 'invalid first MOCK:structured={"resp":5}', "--json-schema", SCHEMA,
                   "--output-format", "stream-json", "--verbose")
    assert p.returncode == 0, p.stderr.decode()
    lines = stream_lines(p.stdout)
    kinds = [(m["type"], m.get("subtype") or m.get("isSynthetic")) for m in lines]
    assert kinds == [("system", "init"), ("assistant", None), ("user", True), ("assistant", None),
                     ("result", "success")]
    assert lines[2]["message"]["content"][0]["text"].startswith("[claude-bridge:json-schema] ")
    assert "/resp: must be string" in lines[2]["message"]["content"][0]["text"]
    assert lines[-1]["structured_output"] == {"resp": "mock"}
    assert len({m["session_id"] for m in lines}) == 1
    # the schema went into the system prompt, the user's prompt is untouched
    first = bed.mock.main_requests()[0]
    assert first["prompt"] == 'invalid first MOCK:structured={"resp":5}'
    from claude_bridge_tmux.testing.mock_api import analyze_request
    assert analyze_request(first["body"]).text_schema == json.loads(SCHEMA)


def test_caller_system_prompt_is_kept(bed):
    p = bed.bridge("-p", "valid MOCK:structured", "--json-schema", SCHEMA, "--append-system-prompt", "CALLER-MARKER",
                   "--output-format", "json")
    assert p.returncode == 0 and json.loads(p.stdout)["structured_output"] == {"resp": "mock"}
    system = json.dumps(bed.mock.main_requests()[0]["body"]["system"])
    assert "CALLER-MARKER" in system and "JSON Schema: " in system


@pytest.mark.parametrize("schema", ["{bad", "[1]"])
def test_bad_schema_errors_like_claude(bed, schema):
    p = bed.bridge("-p", "x", "--json-schema", schema)
    real = bed.claude_p("-p", "x", "--json-schema", schema)
    assert (p.returncode, p.stdout) == (real.returncode, real.stdout) == (1, b"")
    if schema == "[1]":
        assert p.stderr == real.stderr == b"Error: --json-schema must be a JSON object\n"
    else:
        assert p.stderr.startswith(b"Error: --json-schema is not valid JSON: JSON Parse error: ")
