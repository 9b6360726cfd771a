"""The Agent SDK path's pure parts: invocation detection, control frames, the hook relay's answers."""

from __future__ import annotations

import io
import json
import os
import subprocess
import threading
import time

import pytest

from claude_bridge_tmux.cli.main import is_sdk_invocation
from claude_bridge_tmux.host.hooks import waiting_sink_command
from claude_bridge_tmux.run.relay import merge_hook_outputs, permission_decision
from claude_bridge_tmux.run.sdk import LineWriter, error, success

# the SDK's argv (claude-agent-sdk 0.2.189, recorded in tests/data/sdk/*/query_text.jsonl)
SDK_ARGV = ["--output-format", "stream-json", "--verbose", "--system-prompt", "", "--input-format", "stream-json"]


@pytest.mark.parametrize("argv,sdk", [
    (SDK_ARGV, True),
    (["--input-format=stream-json", "--output-format=stream-json", "--verbose"], True),
    (["-p", *SDK_ARGV], False),
    (["--print", *SDK_ARGV], False),
    (["--output-format", "stream-json", "--verbose"], False),
    (["--", "--input-format", "stream-json"], False),
    ([], False),
])
def test_sdk_invocation(argv, sdk):
    assert is_sdk_invocation(argv) is sdk


def test_control_frames_are_the_clis_shapes():
    assert success("req_1_ab", {"x": 1}) == {"type": "control_response", "response": {
        "subtype": "success", "request_id": "req_1_ab", "response": {"x": 1}}}
    assert "response" not in success("r")["response"]
    assert error("r", "nope") == {"type": "control_response",
                                  "response": {"subtype": "error", "request_id": "r", "error": "nope"}}


def test_line_writer_keeps_lines_whole_across_threads():
    buf = io.BytesIO()
    w = LineWriter(buf)
    threads = [threading.Thread(target=lambda i=i: [w.frame({"t": i, "pad": "x" * 500}) for _ in range(50)])
               for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = buf.getvalue().decode().splitlines()
    assert len(lines) == 200 and all(json.loads(line)["pad"] == "x" * 500 for line in lines)


@pytest.mark.parametrize("answer,decision", [
    ({"behavior": "allow", "updatedInput": {"command": "echo x"}},
     {"behavior": "allow", "updatedInput": {"command": "echo x"}}),
    ({"behavior": "allow"}, {"behavior": "allow"}),
    ({"behavior": "deny", "message": "no"}, {"behavior": "deny", "message": "no"}),
    ({"behavior": "deny", "message": "stop", "interrupt": True},
     {"behavior": "deny", "message": "stop", "interrupt": True}),
    ({}, {"behavior": "deny", "message": "Permission denied"}),
])
def test_permission_decision(answer, decision):
    assert permission_decision(answer) == {"hookSpecificOutput": {"hookEventName": "PermissionRequest",
                                                                  "decision": decision}}


def test_merge_hook_outputs():
    assert merge_hook_outputs([]) == {}
    assert merge_hook_outputs([{"continue": True, "hookSpecificOutput": {"a": 1}},
                               {"hookSpecificOutput": {"b": 2}, "systemMessage": "m"}]) == {
        "continue": True, "hookSpecificOutput": {"a": 1, "b": 2}, "systemMessage": "m"}


def test_relay_hook_command_waits_for_the_answer_and_prints_it(tmp_path):
    (tmp_path / "answers").mkdir()
    cmd = waiting_sink_command(tmp_path, "PreToolUse-0", tmp_path / "answers", alive_pid=os.getpid())
    proc = subprocess.Popen(["sh", "-c", cmd], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(b'{"hook_event_name":"PreToolUse"}')
    proc.stdin.close()
    proc.stdin = None
    end = time.monotonic() + 5
    while not list(tmp_path.glob("PreToolUse-0.*.json")) and time.monotonic() < end:
        time.sleep(0.01)
    req = list(tmp_path.glob("PreToolUse-0.*.json"))
    assert len(req) == 1 and json.loads(req[0].read_text()) == {"hook_event_name": "PreToolUse"}
    assert proc.poll() is None                      # still waiting for the answer
    pid = req[0].name.split(".")[1]
    (tmp_path / "answers" / pid).write_text('{"decision":"ok"}')
    out, _ = proc.communicate(timeout=5)
    assert out == b'{"decision":"ok"}' and proc.returncode == 0
    assert not (tmp_path / "answers" / pid).exists()


def test_relay_hook_command_gives_up_when_the_bridge_is_gone(tmp_path):
    (tmp_path / "answers").mkdir()
    gone = subprocess.Popen(["true"])
    gone.wait()
    proc = subprocess.run(["sh", "-c", waiting_sink_command(tmp_path, "Stop-0", tmp_path / "answers", alive_pid=gone.pid)], input=b"{}",
                          capture_output=True, timeout=5)
    assert (proc.returncode, proc.stdout) == (0, b"")


def test_fd_lines_has_no_hidden_buffer():
    """After the first line is read, select() must see the second line still pending (the reason the
    SDK path does not read stdin through a buffered reader)."""
    from claude_bridge_tmux.run.sdk import FdLines

    r, w = os.pipe()
    try:
        os.write(w, b'{"a":1}\n{"b":')
        lines = FdLines(r)
        assert lines.readline() == b'{"a":1}\n'
        assert lines.wait_readable(0.05) is False          # half a line: nothing to read yet
        os.write(w, b'2}\n')
        assert lines.wait_readable(1.0) is True
        assert lines.readline() == b'{"b":2}\n'
        os.write(w, b"tail")
        os.close(w)
        w = -1
        assert lines.readline() == b"tail" and lines.readline() == b""
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_which_sdk_sessions_a_pool_pane_can_serve():
    from claude_bridge_tmux.pool.sdkjob import poolable
    base = ["--output-format", "stream-json", "--verbose", "--input-format", "stream-json"]
    assert poolable(base + ["--allowedTools", "Bash"], {}, False)
    assert not poolable(base, {"PreToolUse": [{"hooks": []}]}, False)          # SDK hooks: launch settings
    assert not poolable(base, {}, True)                                         # an in-process MCP server
    assert not poolable(base + ["--permission-prompt-tool", "stdio"], {}, False)  # can_use_tool
    for opt in (["--json-schema", '{"type":"object"}'], ["--max-turns", "2"], ["--max-budget-usd", "1"]):
        assert not poolable(base + opt, {}, False)                              # gate / StructuredOutput server
    for own in (["--resume", "x"], ["--continue"], ["--fork-session"], ["--session-id", "x"], ["--resume=x"]):
        assert not poolable(base + own, {}, False), own
