"""The tap in front of the caller's stdio MCP servers (run/mcp_tap.py) and the --mcp-config rewrite
(run/mcp_config.py): bytes pass unchanged, the ready file appears once claude has the server's tools,
nothing of the caller's config reaches claude's argv."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from claude_bridge_tmux.run import mcp_config, mcp_stdio, mcp_tap

SERVER = textwrap.dedent('''\
    import json, sys
    for line in sys.stdin:
        msg = json.loads(line)
        if "id" not in msg:
            continue
        if msg["method"] == "tools/list":
            result = {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}
        elif msg["method"] == "initialize":
            result = {"capabilities": {"tools": {}}}
        else:
            result = {"method-was": msg["method"]}
        print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}), flush=True)
    sys.exit(3)
''')


def rpc(mid, method):
    return (json.dumps({"jsonrpc": "2.0", "id": mid, "method": method}) + "\n").encode()


def test_list_requests_and_answers_are_read_from_json_rpc_lines():
    assert mcp_tap.list_requests(rpc(2, "tools/list")) == {2: "tools/list"}
    batch = json.dumps([{"id": "a", "method": "prompts/list"}, {"method": "notifications/initialized"},
                        {"id": 4, "method": "tools/call"}]).encode()
    assert mcp_tap.list_requests(batch) == {"a": "prompts/list"}
    assert mcp_tap.list_requests(rpc(1, "initialize")) == {1: "initialize"}
    assert mcp_tap.list_requests(b"not json") == {}
    assert [a["id"] for a in mcp_tap.answers(b'{"jsonrpc":"2.0","id":2,"result":{}}')] == [2]
    assert [a["id"] for a in mcp_tap.answers(b'{"jsonrpc":"2.0","id":3,"error":{"code":1}}')] == [3]
    assert mcp_tap.answers(b'{"jsonrpc":"2.0","id":5,"method":"sampling/createMessage"}') == []   # a request
    assert mcp_tap.has_tools({"id": 1, "result": {"capabilities": {"tools": {}}}})
    assert not mcp_tap.has_tools({"id": 1, "result": {"capabilities": {"prompts": {}}}})


def _tap(tmp_path, server_source: str) -> tuple[subprocess.Popen, Path]:
    """The tap in front of a Python server (``server_source``), and its ready file."""
    server = tmp_path / "server.py"
    server.write_text(server_source)
    ready = tmp_path / "ready"
    tap = subprocess.Popen([sys.executable, "-I", "-S", mcp_tap.__file__, str(ready), sys.executable, str(server)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert tap.stdin is not None and tap.stdout is not None
    return tap, ready


def _ask(tap: subprocess.Popen, mid: int, method: str) -> dict:
    """Send one request through the tap; the answer that comes back."""
    assert tap.stdin is not None and tap.stdout is not None
    tap.stdin.write(rpc(mid, method))
    tap.stdin.flush()
    return json.loads(tap.stdout.readline())


def _appears(path: Path, within_s: float = 2.0) -> bool:
    deadline = time.monotonic() + within_s
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return path.exists()


def test_the_tap_passes_bytes_through_and_says_when_the_tools_are_listed(tmp_path):
    tap, ready = _tap(tmp_path, SERVER)
    assert _ask(tap, 1, "initialize") == {"jsonrpc": "2.0", "id": 1, "result": {"capabilities": {"tools": {}}}}
    assert not ready.exists()                      # connected, but claude does not have the tools yet
    assert _ask(tap, 2, "tools/list")["result"]["tools"][0]["name"] == "echo"
    # (created right after the answer was written to claude)
    assert _appears(ready) and stat.S_IMODE(ready.stat().st_mode) == 0o600
    assert tap.stdin is not None and tap.stdout is not None
    tap.stdin.write(rpc(3, "tools/call"))
    tap.stdin.close()
    assert json.loads(tap.stdout.readline())["id"] == 3
    assert tap.wait(10) == 3                        # the server's exit status


def test_a_server_without_tools_is_ready_once_initialized(tmp_path):
    tap, ready = _tap(tmp_path, "import json, sys\n"
                                "for line in sys.stdin:\n"
                                "    m = json.loads(line)\n"
                                "    print(json.dumps({'jsonrpc': '2.0', 'id': m['id'], "
                                "'result': {'capabilities': {'prompts': {}}}}), flush=True)\n")
    assert _ask(tap, 1, "initialize")["id"] == 1
    assert _appears(ready)
    assert tap.stdin is not None
    tap.stdin.close()
    assert tap.wait(10) == 0


def test_the_tap_of_a_server_that_cannot_start_reports_it_and_is_ready(tmp_path):
    ready = tmp_path / "ready"
    p = subprocess.run([sys.executable, "-I", "-S", mcp_tap.__file__, str(ready), str(tmp_path / "no-such-server")],
                       capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    assert p.returncode == 127 and b"no-such-server" in p.stderr
    assert ready.exists()


def test_the_tap_passes_termination_on_to_the_server(tmp_path):
    server = tmp_path / "server.py"
    server.write_text("import signal, sys, time\n"
                      "signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))\n"
                      "print('up', flush=True)\ntime.sleep(30)\n")
    tap = subprocess.Popen([sys.executable, "-I", "-S", mcp_tap.__file__, str(tmp_path / "r"), sys.executable, str(server)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert tap.stdout is not None and tap.stdout.readline() == b"up\n"
    tap.terminate()
    assert tap.wait(10) == 7


def _config(servers):
    return {"mcpServers": servers}


def test_stdio_servers_of_every_mcp_config_form_are_tapped(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (tmp_path / "m.json").write_text(json.dumps(_config({
        "files": {"command": "npx", "args": ["-y", "srv"], "env": {"TOKEN": "secret-token"}},
        "web": {"type": "http", "url": "https://example.invalid/mcp"}})))
    inline = json.dumps(_config({"inline": {"type": "stdio", "command": "srv2"}}))
    args = ["--model", "m", "--mcp-config", "m.json", inline, "--mcp-config=" + inline, "--strict-mcp-config"]
    ready = mcp_config.tap_stdio_servers(args, str(tmp_path), run_dir)
    assert len(ready) == 3 and all(r.parent == run_dir for r in ready)
    assert args[:2] == ["--model", "m"] and args[-1] == "--strict-mcp-config"
    values = [args[3], args[4], args[5].split("=", 1)[1]]
    # passed by path: a server's env (a token) never reaches claude's argv
    assert "secret-token" not in " ".join(args)
    configs = []
    for v in values:
        assert os.path.isabs(v) and stat.S_IMODE(os.stat(v).st_mode) == 0o600
        configs.append(json.loads(open(v).read())["mcpServers"])
    files = configs[0]["files"]
    assert files["command"] == sys.executable and files["env"] == {"TOKEN": "secret-token"}
    assert files["args"][:3] == ["-I", "-S", mcp_tap.__file__] and files["args"][4:] == ["npx", "-y", "srv"]
    assert configs[0]["web"] == {"type": "http", "url": "https://example.invalid/mcp"}     # not a child process
    assert configs[1]["inline"]["args"][4:] == ["srv2"]
    assert len({c[n]["args"][3] for c in configs for n in c if n != "web"}) == 3           # one ready file each


@pytest.mark.parametrize("value", ["not json", "{bad", "missing.json", json.dumps({"mcpServers": []}),
                                   json.dumps(_config({"web": {"type": "sse", "url": "u"}}))])
def test_values_without_stdio_servers_are_left_for_claude(tmp_path, value):
    args = ["--mcp-config", value]
    assert mcp_config.tap_stdio_servers(args, str(tmp_path), tmp_path) == []
    assert args == ["--mcp-config", value]


def test_the_bridges_own_servers_are_not_tapped(tmp_path):
    own = json.dumps(_config({"sdk": {"type": "stdio", "command": sys.executable,
                                      "args": ["-I", "-S", mcp_stdio.__file__, "/sock", "sdk"]}}))
    args = ["--mcp-config", own]
    assert mcp_config.tap_stdio_servers(args, str(tmp_path), tmp_path) == []
    assert args == ["--mcp-config", own]
