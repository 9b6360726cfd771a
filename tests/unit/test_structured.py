"""--json-schema pieces on recorded data: the bridge's StructuredOutput MCP server, the tool gate,
-p's names and texts in what is printed, ajv-worded validation errors."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from claude_bridge_tmux.output import structured
from claude_bridge_tmux.run import structured_mcp
from claude_bridge_tmux.testing.replay import load_trace

SCHEMA = {"type": "object", "properties": {"resp": {"type": "string"}, "n": {"type": "integer", "minimum": 1}},
          "required": ["resp"], "additionalProperties": False}
TRACES = Path(__file__).resolve().parents[1] / "data" / "traces"
# the schema of the recorded runs (scripts/record-traces "structured", "structured_exhausted")
TRACE_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


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
    assert structured.max_attempts({"MAX_STRUCTURED_OUTPUT_RETRIES": "x"}) == 5
    assert structured.max_attempts({"MAX_STRUCTURED_OUTPUT_RETRIES": "0"}) == 1
    assert structured.exhausted_error(5, "p", "2.1.197") == "Failed to provide valid structured output after 5 attempts"
    assert structured.exhausted_error(5, "p", "2.1.329").endswith(" \u2014 last StructuredOutput error: p")


# ------------------------------------------------------------------------------------ the MCP server

def _call(msg_id, args):
    return {"jsonrpc": "2.0", "id": msg_id, "method": "tools/call",
            "params": {"name": "StructuredOutput", "arguments": args}}


def test_mcp_server_offers_claude_p_s_tool_and_validates_like_it():
    init = structured_mcp.handle({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                                  "params": {"protocolVersion": "2025-06-18"}}, SCHEMA)
    assert init["result"]["protocolVersion"] == "2025-06-18" and init["result"]["capabilities"] == {"tools": {}}
    assert structured_mcp.handle({"jsonrpc": "2.0", "method": "notifications/initialized"}, SCHEMA) is None
    tools = structured_mcp.handle({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, SCHEMA)["result"]["tools"]
    # -p's tool, as the first request of `claude -p --json-schema` carries it (2.1.197 and 2.1.329)
    assert tools == [{"name": "StructuredOutput", "description": (
        "Use this tool to return your final response in the requested structured format. You MUST call this "
        "tool exactly once at the end of your response to provide the structured output."), "inputSchema": SCHEMA}]
    ok = structured_mcp.handle(_call(2, {"resp": "x"}), SCHEMA)["result"]
    assert ok == {"content": [{"type": "text", "text": "Structured output provided successfully"}]}
    bad = structured_mcp.handle(_call(3, {"resp": 5}), SCHEMA)["result"]
    assert bad == {"content": [{"type": "text", "text": "Output does not match required schema: /resp: must be string"}],
                   "isError": True}
    assert structured_mcp.handle({"jsonrpc": "2.0", "id": 4, "method": "resources/list"}, SCHEMA)["error"]["code"] == -32601
    other = dict(_call(5, {}), params={"name": "Other", "arguments": {}})
    assert structured_mcp.handle(other, SCHEMA)["error"]["code"] == -32602


def test_mcp_server_process_answers_on_stdout_and_marks_itself_ready(tmp_path):
    cfg = json.loads(structured_mcp.mcp_config(SCHEMA, str(tmp_path / "ready")))
    server = cfg["mcpServers"]["claude-bridge"]
    assert server["alwaysLoad"] is True and server["command"] == sys.executable
    lines = [{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2024-11-05"}},
             {"jsonrpc": "2.0", "method": "notifications/initialized"},
             {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, _call(3, {"resp": "ok"})]
    p = subprocess.run([server["command"], *server["args"]], input="".join(json.dumps(m) + "\n" for m in lines) + "{oops\n",
                       capture_output=True, text=True, timeout=30, env={"PATH": os.environ.get("PATH", "")})
    assert p.returncode == 0, p.stderr
    out = [json.loads(x) for x in p.stdout.splitlines()]
    assert [m.get("id") for m in out] == [1, 2, 3, None]
    assert out[0]["result"]["protocolVersion"] == "2024-11-05"
    assert out[2]["result"]["content"][0]["text"] == "Structured output provided successfully"
    assert out[3]["error"]["code"] == -32700
    assert stat.S_IMODE((tmp_path / "ready").stat().st_mode) == 0o600


def test_the_tool_is_allowed_without_dropping_the_callers_rules():
    s = structured_mcp.with_permission({"permissions": {"allow": ["Bash(ls)"], "deny": ["Write"]}, "x": 1})
    assert s == {"permissions": {"allow": ["Bash(ls)", "mcp__claude-bridge__StructuredOutput"], "deny": ["Write"]}, "x": 1}
    assert structured_mcp.with_permission(s) == s
    assert structured.MODEL_TOOL_NAME == structured_mcp.MODEL_TOOL_NAME


# ------------------------------------------------------------------------------------ the gate

def _payload(name, tool_input, tid):
    return {"hook_event_name": "PostToolUse", "tool_name": name, "tool_input": tool_input, "tool_use_id": tid}


def test_gate_stops_on_a_valid_call_and_on_the_last_allowed_invalid_one():
    gate = structured.gate(SCHEMA, 3)
    mt = structured.MODEL_TOOL_NAME
    assert gate([], "t0", _payload("Bash", {"command": "ls"}, "t0")) is False
    assert gate([], "t1", _payload(mt, {"resp": 5}, "t1")) is False
    assert gate([], "t2", _payload(mt, {}, "t2")) is False
    assert gate([], "t3", _payload(mt, {"resp": 1}, "t3")) is True          # the third invalid call
    assert structured.gate(SCHEMA, 3)([], "t9", _payload(mt, {"resp": "x"}, "t9")) is True
    # without a payload: from the records; None while the call is not there yet
    fresh = structured.gate(SCHEMA, 5)
    assert fresh([], "t1", {}) is None
    rec = {"type": "assistant", "message": {"id": "m1", "content": [
        {"type": "tool_use", "id": "t1", "name": mt, "input": {"resp": "x"}}]}}
    assert fresh([rec], "t1", {}) is True


def _trace_records(version: str, name: str) -> list[dict]:
    _meta, turns = load_trace(TRACES / version / f"{name}.jsonl")
    seen, out = set(), []
    for ln in turns[0]:
        for r in ln.get("records") or ():
            if r.get("uuid") not in seen and r.get("type") in ("assistant", "user"):
                seen.add(r.get("uuid"))
                out.append(r)
    return out


@pytest.mark.parametrize("version", ["2.1.197", "2.1.329"])
def test_recorded_valid_call_is_printed_under_claude_p_s_name(version):
    records = _trace_records(version, "structured")
    value, failed, last = structured.outcome(records, TRACE_SCHEMA)
    assert (value, failed, last) == ({"answer": "mock"}, 0, None)
    names = structured.PrintNames(TRACE_SCHEMA)
    printed = [names(r) for r in records]
    uses = [b for r in printed if r["type"] == "assistant" for b in r["message"]["content"] if b.get("type") == "tool_use"]
    assert [b["name"] for b in uses] == ["StructuredOutput"]
    result = next(r for r in printed if r["type"] == "user" and isinstance(r["message"]["content"], list)
                  and r["message"]["content"][0].get("type") == "tool_result")
    assert result["message"]["content"][0]["content"] == "Structured output provided successfully"
    assert result["toolUseResult"] == "Structured output provided successfully"
    assert "is_error" not in result["message"]["content"][0] or result["message"]["content"][0]["is_error"] is False
    # the raw record (an MCP result: a list of text blocks) is left as it was
    raw = next(r for r in records if r.get("uuid") == result["uuid"])
    assert isinstance(raw["message"]["content"][0]["content"], list)


@pytest.mark.parametrize("version", ["2.1.197", "2.1.329"])
def test_recorded_exhausted_calls_print_claude_p_s_errors(version):
    """MAX_STRUCTURED_OUTPUT_RETRIES=2: the second invalid call was interrupted while its gate hook ran
    (2.1.197 then records a rejection instead of the server's answer); -p prints the validation error."""
    records = _trace_records(version, "structured_exhausted")
    value, failed, last = structured.outcome(records, TRACE_SCHEMA)
    assert value is structured.MISSING and failed == 2
    assert last == "Output does not match required schema: /answer: must be string"
    names = structured.PrintNames(TRACE_SCHEMA)
    printed = [names(r) for r in records]
    results = [r for r in printed if r["type"] == "user" and isinstance(r["message"]["content"], list)
               and r["message"]["content"][0].get("type") == "tool_result"]
    assert len(results) == 2
    for r in results:
        block = r["message"]["content"][0]
        assert list(block) == ["type", "content", "is_error", "tool_use_id"]      # -p's key order
        assert block["content"] == last and block["is_error"] is True
        assert r["toolUseResult"] == f"Error: {last}"
        assert r["permissionDecision"] == {"decision": "accept", "source": "config"}
    # -p gives up while the last response streams: its usage is left out of `usage`
    kept = structured.without_last_response(records)
    assert len([r for r in kept if r["type"] == "assistant"]) == len([r for r in records if r["type"] == "assistant"]) - 1
