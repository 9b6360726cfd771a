"""agent-swarm's calls, verbatim (its argv and the fields it reads: README "agent-swarm"), on every pinned CLI with the mock model.

agent-swarm (SWARM_USE_CLAUDE_BRIDGE=true) spawns::

    claude-bridge --model <m> --verbose --output-format stream-json --dangerously-skip-permissions \\
      --allow-dangerously-skip-permissions --permission-mode bypassPermissions -p <prompt> \\
      --append-system-prompt-file <file> --mcp-config <file> --strict-mcp-config
    claude-bridge -p --model <m> --output-format json [--json-schema <json>]     (prompt on stdin)
    claude-bridge --version

with CLAUDE_CODE_SKIP_PROMPT_HISTORY=1, telemetry/OTEL variables etc. in the environment, as root in a
container (IS_SANDBOX=1).  Each test checks every field agent-swarm reads, and compares with what the
real ``claude -p`` prints for the same call in the same bed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from claude_bridge_tmux import __version__
from tests.conftest import stream_lines

pytestmark = pytest.mark.integration

MODEL = "claude-sonnet-4-5"
SYSTEM_MARKER = "You are swarm worker 7. SWARM-SYSTEM-PROMPT-MARKER"
SWARM_ENV = {
    "IS_SANDBOX": "1",
    "CLAUDE_CODE_SKIP_PROMPT_HISTORY": "1",
    "DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "ENABLE_PROMPT_CACHING_1H": "1",
    "CLAUDE_CODE_DISABLE_FILE_CHECKPOINTING": "1",
    "CLAUDE_CODE_EFFORT_LEVEL": "high",
    "MAX_THINKING_TOKENS": "4096",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
    "OTEL_SERVICE_NAME": "agent-swarm-worker",
    "OTEL_RESOURCE_ATTRIBUTES": "swarm.task_id=task-1,swarm.agent=worker-7",
}

MCP_SERVER = textwrap.dedent('''\
    """A tiny stdio MCP server: one tool, ``echo``. JSON-RPC 2.0, one message per line.
    MCP_ECHO_DELAY_S: seconds it takes to start (a slow server)."""
    import json, os, sys, time
    time.sleep(float(os.environ.get("MCP_ECHO_DELAY_S", "0")))
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        mid, method = msg.get("id"), msg.get("method")
        if mid is None:                     # notifications (initialized, cancelled, ...)
            continue
        params = msg.get("params") or {}
        if method == "initialize":
            result = {"protocolVersion": params.get("protocolVersion", "2024-11-05"),
                      "capabilities": {"tools": {}}, "serverInfo": {"name": "swarm-test", "version": "1.0.0"}}
        elif method == "tools/list":
            result = {"tools": [{"name": "echo", "description": "Echo the given text back",
                                 "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}},
                                                 "required": ["text"]}}]}
        elif method == "tools/call":
            text = str((params.get("arguments") or {}).get("text", ""))
            result = {"content": [{"type": "text", "text": "echo: " + text}]}
        elif method == "ping":
            result = {}
        else:
            print(json.dumps({"jsonrpc": "2.0", "id": mid,
                              "error": {"code": -32601, "message": "method not found"}}), flush=True)
            continue
        print(json.dumps({"jsonrpc": "2.0", "id": mid, "result": result}), flush=True)
''')

MODEL_USAGE_KEYS = {"inputTokens", "outputTokens", "cacheReadInputTokens", "cacheCreationInputTokens",
                    "webSearchRequests", "costUSD", "contextWindow"}
USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


@pytest.fixture
def swarm(bed, tmp_path):
    """The bed as an agent-swarm worker sees it: its env, a system-prompt file, an MCP config."""
    server = tmp_path / "mcp_echo.py"
    server.write_text(MCP_SERVER)
    mcp = tmp_path / "mcp-task-1.json"
    mcp.write_text(json.dumps({"mcpServers": {"swarm": {"command": sys.executable, "args": [str(server)]}}}))
    sysprompt = tmp_path / "agent-swarm-system-prompt-task-1.txt"
    sysprompt.write_text(SYSTEM_MARKER + "\n")
    bed.env.update(SWARM_ENV)
    bed.mock.scripts["swarm"] = [{"text": "Calling the swarm tool.", "tool": "mcp__swarm__echo",
                                  "input": {"text": "ping"}}, "MOCK-SWARM-DONE"]
    bed.swarm_argv = lambda prompt: [
        "--model", MODEL, "--verbose", "--output-format", "stream-json", "--dangerously-skip-permissions",
        "--allow-dangerously-skip-permissions", "--permission-mode", "bypassPermissions", "-p", prompt,
        "--append-system-prompt-file", str(sysprompt), "--mcp-config", str(mcp), "--strict-mcp-config"]
    return bed


def swarm_view(lines: list[dict]) -> dict:
    """What agent-swarm reads from a stream-json run (field notes), with run-specific ids dropped."""
    init = lines[0]
    result = lines[-1]
    model = next(iter(result["modelUsage"]))
    return {
        "first": (init["type"], init["subtype"]),
        "init_model": init["model"],
        "mcp_servers": [(s["name"], s["status"]) for s in init["mcp_servers"]],
        "assistant": [[(c["type"], c.get("name"), c.get("input"), c.get("text")) for c in m["message"]["content"]]
                      for m in lines if m["type"] == "assistant"],
        "assistant_parent": {m["parent_tool_use_id"] for m in lines if m["type"] == "assistant"},
        "tool_results": [c["content"] for m in lines if m["type"] == "user" for c in m["message"]["content"]
                         if c.get("type") == "tool_result"],
        "errors": [m for m in lines if m["type"] == "error" or m.get("message", {}).get("error")],
        "result": {k: result[k] for k in ("type", "subtype", "is_error", "num_turns", "result")},
        "cache_creation": result["usage"]["cache_creation"],
        "model_usage_keys": MODEL_USAGE_KEYS <= set(result["modelUsage"][model]),
        "model_usage_model": model,
    }


def test_stream_json_call_verbatim(swarm):
    prompt = "Work on task-1 MOCK:script=swarm"
    p = swarm.bridge(*swarm.swarm_argv(prompt), timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    assert b"claude-bridge:" not in p.stderr
    lines = stream_lines(p.stdout)
    view = swarm_view(lines)
    init, result = lines[0], lines[-1]
    session_id = init["session_id"]

    # system/init: session_id, model; the MCP server from --mcp-config is connected
    assert view["first"] == ("system", "init")
    assert view["init_model"] == MODEL
    assert ("swarm", "connected") in view["mcp_servers"]
    assert all(m["session_id"] == session_id for m in lines)
    # assistant: text + tool_use (id/name/input), usage, parent_tool_use_id
    tool_uses = [c for m in lines if m["type"] == "assistant" for c in m["message"]["content"] if c["type"] == "tool_use"]
    assert [(t["name"], t["input"]) for t in tool_uses] == [("mcp__swarm__echo", {"text": "ping"})]
    assert re.fullmatch(r"toolu_\w+", tool_uses[0]["id"])
    assert all(isinstance(m["message"]["usage"]["input_tokens"], int) for m in lines if m["type"] == "assistant")
    assert view["assistant_parent"] == {None}
    # user: the tool_result content the MCP server answered
    user = [m for m in lines if m["type"] == "user"]
    assert user[0]["message"]["content"][0]["tool_use_id"] == tool_uses[0]["id"]
    assert "echo: ping" in json.dumps(view["tool_results"])
    # result: every field agent-swarm reads
    assert view["result"] == {"type": "result", "subtype": "success", "is_error": False, "num_turns": 2,
                              "result": "MOCK-SWARM-DONE"}
    assert result["session_id"] == session_id
    assert isinstance(result["duration_ms"], int) and result["duration_ms"] > 0
    assert result["total_cost_usd"] > 0
    requests = swarm.mock.main_requests()
    assert len(requests) == 2
    usage = result["usage"]
    assert usage["cache_creation_input_tokens"] == 7 * len(requests)       # the mock's usage, once per response
    assert usage["cache_read_input_tokens"] == 3 * len(requests)
    assert all(isinstance(usage[k], int) for k in USAGE_KEYS)
    assert set(usage["cache_creation"]) == {"ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"}
    mu = result["modelUsage"][MODEL]
    assert view["model_usage_keys"], sorted(mu)
    assert (mu["inputTokens"], mu["outputTokens"], mu["cacheReadInputTokens"], mu["cacheCreationInputTokens"]) == (
        usage["input_tokens"], usage["output_tokens"], usage["cache_read_input_tokens"],
        usage["cache_creation_input_tokens"])
    assert mu["costUSD"] == pytest.approx(result["total_cost_usd"])
    assert mu["webSearchRequests"] == 0 and mu["contextWindow"] > 0
    # the model got the requested model, the appended system prompt and (from the first request on) the MCP tool
    for req in requests:
        assert req["body"]["model"] == MODEL
        assert SYSTEM_MARKER in json.dumps(req["body"]["system"])
    # the transcript was written although CLAUDE_CODE_SKIP_PROMPT_HISTORY=1 is set for the bridge
    assert [t.stem for t in swarm.transcripts()] == [session_id]

    # the same call through the real `claude -p`, same bed: agent-swarm sees the same things
    swarm.mock.clear()
    real = swarm.claude_p(*swarm.swarm_argv(prompt), timeout=120)
    assert real.returncode == 0, real.stderr.decode()
    real_view = swarm_view(stream_lines(real.stdout))
    assert view == real_view
    real_result = stream_lines(real.stdout)[-1]
    if not swarm.claude_bin.endswith("2.1.197/node_modules/.bin/claude"):
        # (2.1.197's -p adds its session-title request to usage when it wins a race)
        assert {k: usage[k] for k in USAGE_KEYS} == {k: real_result["usage"][k] for k in USAGE_KEYS}


def _running(marker: str) -> list[str]:
    """The command lines of the running processes that mention ``marker``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmd:
            found.append(cmd)
    return found


def test_a_slow_mcp_server_has_its_tools_in_the_first_request(swarm, tmp_path):
    """`claude -p` waits for the --mcp-config servers before its first request; the bridge's first prompt
    waits too (2.1.197's interactive mode would send it at once, and the model's call would get "No such
    tool available": run/mcp_tap.py), so the model's first request offers what -p's offers and the
    call is answered by the server."""
    swarm.env["MCP_ECHO_DELAY_S"] = "0.5"
    offered = []
    for run in (swarm.claude_p, swarm.bridge):
        swarm.mock.clear()
        p = run(*swarm.swarm_argv("Work on task-1 MOCK:script=swarm"), timeout=120)
        assert p.returncode == 0, p.stderr.decode()
        view = swarm_view(stream_lines(p.stdout))
        assert "echo: ping" in json.dumps(view["tool_results"]), (run, view["tool_results"])
        first = swarm.mock.main_requests()[0]["body"]
        # (offered as a tool on 2.1.197; later CLIs defer MCP tools until the model asks for them)
        offered.append(("mcp__swarm__echo" in [t.get("name") for t in first["tools"]],
                        sorted(t.get("name") for t in first["tools"])))
    assert offered[1] == offered[0], ("-p", set(offered[0][1]) - set(offered[1][1]), "bridge", set(offered[1][1]) - set(offered[0][1]))
    if not swarm.at_least("2.1.329"):
        assert offered[0][0]
    # nothing of the run is left: no claude, no MCP server, no tap in front of it
    assert _running(str(tmp_path / "mcp_echo.py")) == []


def test_stream_json_tool_run_in_bypass_mode(swarm):
    """Bypass mode as agent-swarm asks for it: a Bash tool runs without any approval."""
    p = swarm.bridge(*swarm.swarm_argv("run MOCK:tool=echo_swarm_ok"), timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    lines = stream_lines(p.stdout)
    assert lines[0]["permissionMode"] == "bypassPermissions"
    results = [c for m in lines if m["type"] == "user" for c in m["message"]["content"]]
    assert results[0]["content"] == "swarm ok" and not results[0].get("is_error")
    assert lines[-1]["result"].startswith("MOCK-TOOL-DONE: swarm ok")  # 2.1.329 appends a reminder to the result


def test_json_fallback_prompt_on_stdin(swarm):
    prompt = "Summarise task-1 for the lead.\nLine two."
    p = swarm.bridge("-p", "--model", MODEL, "--output-format", "json", input=prompt)
    assert p.returncode == 0, p.stderr.decode()
    out = json.loads(p.stdout)
    assert swarm.mock.main_requests()[0]["prompt"] == prompt
    assert out["type"] == "result" and out["subtype"] == "success" and out["is_error"] is False
    assert out["result"] == "MOCK-REPLY to: " + prompt.replace("\n", " ")
    assert "structured_output" not in out
    assert out["total_cost_usd"] > 0 and out["num_turns"] == 1
    assert list(out["modelUsage"]) == [MODEL]


def test_desplega_local_auth_prefix_is_accepted(swarm):
    """Newer agent-swarm puts --desplega-local-auth first when it authenticates with an API key."""
    p = swarm.bridge("--desplega-local-auth", "-p", "--model", MODEL, "--output-format", "json", input="hi")
    assert p.returncode == 0, p.stderr.decode()
    assert json.loads(p.stdout)["result"] == "MOCK-REPLY to: hi"


SCHEMA = {"type": "object", "properties": {"resp": {"type": "string"}}, "required": ["resp"],
          "additionalProperties": False}


def test_json_schema_yields_structured_output(swarm):
    """The structured fallback: agent-swarm reads ``structured_output`` (else ``result``)."""
    argv = ["-p", "--model", MODEL, "--output-format", "json", "--json-schema", json.dumps(SCHEMA)]
    real = swarm.claude_p(*argv, input="Return resp=ok MOCK:structured")
    assert real.returncode == 0, real.stderr.decode()
    expected = json.loads(real.stdout)
    p = swarm.bridge(*argv, input="Return resp=ok MOCK:structured")
    assert p.returncode == 0, p.stderr.decode()
    out = json.loads(p.stdout)
    assert out["structured_output"] == expected["structured_output"] == {"resp": "mock"}
    assert out["result"] == expected["result"] == '{"resp":"mock"}'
    assert list(out) == list(expected) and out["subtype"] == "success" and out["is_error"] is False


def test_version(swarm):
    p = swarm.bridge("--version")
    assert p.returncode == 0 and p.stderr == b""
    version = swarm.claude_p("--version").stdout.decode().split()[0]
    assert p.stdout.decode() == f"{version} (Claude Code)\nclaude-bridge {__version__} (claude at {swarm.claude_bin})\n"
    assert p.stdout.decode().splitlines()[0] == swarm.claude_p("--version").stdout.decode().strip()


@pytest.mark.skipif(os.geteuid() != 0, reason="the bypass refusal only applies to root")
@pytest.mark.parametrize("flag", [["--dangerously-skip-permissions"], ["--allow-dangerously-skip-permissions"],
                                  ["--permission-mode", "bypassPermissions"]])
def test_bypass_as_root_without_is_sandbox_is_refused_like_claude(swarm, flag):
    env = dict(swarm.env)
    del env["IS_SANDBOX"]
    argv = ["-p", "hi", "--output-format", "stream-json", "--verbose", *flag]
    p = swarm.bridge(*argv, env=env)
    real = subprocess.run([swarm.claude_bin, *argv], env=env, cwd=swarm.cwd, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=60)
    assert (p.returncode, p.stdout, p.stderr) == (real.returncode, real.stdout, real.stderr)
    assert p.returncode == 1
    assert p.stderr.decode() == "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons\n"
    assert swarm.mock.main_requests() == []
