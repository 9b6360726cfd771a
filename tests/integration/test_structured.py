"""--json-schema through the interactive pane, side by side with the real `claude -p` (each pinned CLI).

Interactive claude ignores --json-schema; the bridge gives it `-p`'s StructuredOutput tool from an MCP
server of its own (run/structured_mcp.py), ends the turn after a valid call with the tool gate, sends
`-p`'s nudge when the model never calls it, and prints the tool under `-p`'s name
(output/structured.py). Each scenario's whole stream-json output is compared with `-p`'s, line by
line and field by field, and so is what the model was sent.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.conftest import stream_lines

pytestmark = pytest.mark.integration

SCHEMA_OBJ = {"type": "object", "properties": {"resp": {"type": "string"}}, "required": ["resp"],
              "additionalProperties": False}
SCHEMA = json.dumps(SCHEMA_OBJ)
SJ = ("--output-format", "stream-json", "--verbose")
# fields that differ between any two runs (ids, times, paths of the run)
VOLATILE = {"uuid", "session_id", "timestamp", "id", "tool_use_id", "request_id", "duration_ms", "duration_api_ms",
            "ttft_ms", "ttft_stream_ms", "time_to_request_ms", "first_content_frame_ms", "cwd", "original_cwd",
            "memory_paths", "messaging_socket_path"}


def _normal(obj, version):
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in VOLATILE:
                continue
            if version == "2.1.197" and k in ("modelUsage", "total_cost_usd"):
                continue    # 2.1.197 -p also counts its session-title request (conformance: title-cost)
            out[k] = _normal(v, version)
        return out
    if isinstance(obj, list):
        return [_normal(v, version) for v in obj]
    return obj




def both(bed, *args, env=None):
    """(claude -p's run, its model requests, the bridge's run, its model requests)."""
    full = dict(bed.env, **(env or {}))
    real = subprocess.run([bed.claude_bin, *args], capture_output=True, env=full, cwd=bed.cwd,
                          stdin=subprocess.DEVNULL, timeout=120)
    real_reqs = bed.mock.main_requests()
    bed.mock.clear()
    ours = bed.bridge(*args, env=full, timeout=120)
    return real, real_reqs, ours, bed.mock.main_requests()


def _structured_tool(body: dict) -> dict:
    tools = [t for t in body.get("tools") or [] if re.fullmatch(r"(mcp__claude-bridge__)?StructuredOutput", t["name"])]
    assert len(tools) == 1, [t["name"] for t in body.get("tools") or []]
    return tools[0]


@pytest.mark.parametrize("prompt,env", [
    ("valid MOCK:structured", None),
    ('invalid first MOCK:structured={"resp":5}', None),
    ("never MOCK:nostructured", None),
    ('always invalid MOCK:structured={"resp":5} MOCK:stuckstructured', {"MAX_STRUCTURED_OUTPUT_RETRIES": "2"}),
], ids=["valid", "invalid_then_valid", "never_called", "retries_exhausted"])
def test_stream_json_is_claude_p_s(bed, prompt, env):
    version = bed.version
    real, real_reqs, ours, our_reqs = both(bed, "-p", prompt, "--json-schema", SCHEMA, *SJ, env=env)
    assert (ours.returncode, ours.stderr) == (real.returncode, real.stderr), ours.stderr.decode()
    a, b = stream_lines(ours.stdout), stream_lines(real.stdout)
    assert _normal(a, version) == _normal(b, version)
    # what the model was sent: as many requests, and the same tool (description, schema)
    assert len(our_reqs) == len(real_reqs)
    theirs, mine = _structured_tool(real_reqs[0]["body"]), _structured_tool(our_reqs[0]["body"])
    assert mine["name"] == "mcp__claude-bridge__StructuredOutput" and theirs["name"] == "StructuredOutput"
    assert (mine["description"], mine["input_schema"]) == (theirs["description"], theirs["input_schema"])
    for ra, rb in zip(our_reqs, real_reqs):
        assert [m["role"] for m in ra["body"]["messages"]] == [m["role"] for m in rb["body"]["messages"]]
    # the schema is the tool's, never in the system prompt
    assert '"resp"' not in json.dumps(our_reqs[0]["body"]["system"])


def test_json_and_text_results_are_claude_p_s(bed):
    version = bed.version
    for fmt, prompt in (("json", "valid MOCK:structured"), ("text", "valid MOCK:structured"),
                        ("text", 'bad MOCK:structured={"resp":5} MOCK:stuckstructured')):
        real, _, ours, _ = both(bed, "-p", prompt, "--json-schema", SCHEMA, "--output-format", fmt,
                                env={"MAX_STRUCTURED_OUTPUT_RETRIES": "1"})
        assert (ours.returncode, ours.stderr) == (real.returncode, real.stderr)
        if fmt == "text":
            assert ours.stdout == real.stdout
        else:
            assert _normal(json.loads(ours.stdout), version) == _normal(json.loads(real.stdout), version)


@pytest.mark.newest_cli_only   # (the bridge's plumbing: the same on every CLI)
def test_callers_system_prompt_and_tools_are_kept(bed):
    p = bed.bridge("-p", "run MOCK:tool=echo_hi", "--json-schema", SCHEMA, "--append-system-prompt", "CALLER-MARKER",
                   "--allowedTools", "Bash(echo:*)", *SJ)
    assert p.returncode == 0, p.stderr.decode()
    lines = stream_lines(p.stdout)
    assert lines[-1]["structured_output"] == {"resp": "mock"}
    names = [b.get("name") for m in lines if m["type"] == "assistant" for b in m["message"]["content"]
             if b.get("type") == "tool_use"]
    assert names == ["Bash", "StructuredOutput"]
    system = json.dumps(bed.mock.main_requests()[0]["body"]["system"])
    assert "CALLER-MARKER" in system


@pytest.mark.newest_cli_only   # (the bridge's plumbing: the same on every CLI)
def test_each_stream_input_turn_gets_its_structured_output(bed):
    msgs = "".join(json.dumps({"type": "user", "message": {"role": "user", "content": c}}) + "\n"
                   for c in ("one MOCK:structured", 'two MOCK:structured={"resp":"second"}'))
    p = bed.bridge("-p", "--input-format", "stream-json", "--json-schema", SCHEMA, *SJ, input=msgs)
    assert p.returncode == 0, p.stderr.decode()
    results = [m for m in stream_lines(p.stdout) if m["type"] == "result"]
    assert [r["structured_output"] for r in results] == [{"resp": "mock"}, {"resp": "second"}]
    assert [r["num_turns"] for r in results] == [2, 2]


@pytest.mark.parametrize("schema", ["{bad", "[1]"])
def test_bad_schema_errors_like_claude(bed, schema):
    p = bed.bridge("-p", "x", "--json-schema", schema)
    real = bed.claude_p("-p", "x", "--json-schema", schema)
    assert (p.returncode, p.stdout) == (real.returncode, real.stdout) == (1, b"")
    if schema == "[1]":
        assert p.stderr == real.stderr == b"Error: --json-schema must be a JSON object\n"
    else:
        assert p.stderr.startswith(b"Error: --json-schema is not valid JSON: JSON Parse error: ")
