"""Every outcome ends when claude's own signals say so, prints what `claude -p` prints, and leaves no
process behind the moment claude-bridge exits (real CLI, mock model, every pinned version)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import assert_no_leftovers, claude_processes, other_pids, stream_lines

pytestmark = pytest.mark.integration


def _no_process_now(bed):
    """claude and everything it started are gone already when the bridge has exited (no grace)."""
    assert claude_processes(bed.home) == []


@pytest.mark.parametrize("code", ["500", "401"])
def test_api_error_like_claude_p(bed, code):
    args = ("-p", f"fail MOCK:err={code}", "--output-format", "json")
    ours = bed.bridge(*args, timeout=60)
    _no_process_now(bed)
    real = bed.claude_p(*args, timeout=60)
    a, b = json.loads(ours.stdout), json.loads(real.stdout)
    assert (ours.returncode, ours.stderr) == (real.returncode, real.stderr) == (1, b"")
    for k in ("type", "subtype", "is_error", "api_error_status", "result", "num_turns", "stop_reason"):
        assert a.get(k) == b.get(k), k
    assert list(a) == list(b)


def test_api_error_in_stream_json(bed):
    args = ("-p", "fail MOCK:err=529", "--output-format", "stream-json", "--verbose")
    ours, real = bed.bridge(*args, timeout=60), bed.claude_p(*args, timeout=60)
    assert ours.returncode == real.returncode == 1
    kinds = lambda out: [(m["type"], m.get("subtype")) for m in stream_lines(out)]  # noqa: E731
    assert kinds(ours.stdout) == kinds(real.stdout)
    assert stream_lines(ours.stdout)[-1]["result"] == stream_lines(real.stdout)[-1]["result"]


@pytest.mark.parametrize("mode,prompt", [("plan", "plain in plan"), ("plan", "try MOCK:tool=python3_-c_1"),
                                         ("auto", "plain in auto"), ("acceptEdits", "plain in acceptEdits")])
def test_permission_modes_like_claude_p(bed, mode, prompt):
    """2.1.329 shows a blocking billing notice in plan/auto mode through a gateway (the mock); -p
    prints it on stderr and goes on. The bridge does the same and leaves no acknowledgement behind."""
    before = json.loads((bed.home / ".claude.json").read_text()) if (bed.home / ".claude.json").exists() else {}
    args = ("-p", prompt, "--permission-mode", mode)
    ours = bed.bridge(*args, timeout=90)
    _no_process_now(bed)
    real = bed.claude_p(*args, timeout=90)
    assert (ours.returncode, ours.stdout) == (real.returncode, real.stdout)
    strip_port = lambda b: b.decode().replace(bed.mock.url.split("//", 1)[1], "HOST")  # noqa: E731
    assert strip_port(ours.stderr) == strip_port(real.stderr)
    after = json.loads((bed.home / ".claude.json").read_text())
    assert after.get("autoModeClassifierBillingNoticeAcknowledgedAt") == \
        before.get("autoModeClassifierBillingNoticeAcknowledgedAt")


def test_plan_mode_stream_json_notice_line(bed):
    args = ("-p", "plain in plan", "--permission-mode", "plan", "--output-format", "stream-json", "--verbose")
    ours, real = bed.bridge(*args, timeout=90), bed.claude_p(*args, timeout=90)
    kinds = lambda out: [(m["type"], m.get("subtype")) for m in stream_lines(out)]  # noqa: E731
    assert kinds(ours.stdout) == kinds(real.stdout)
    info = lambda out: [m for m in stream_lines(out) if m.get("subtype") == "informational"]  # noqa: E731
    assert [list(m) for m in info(ours.stdout)] == [list(m) for m in info(real.stdout)]


def test_claude_killed_mid_turn(bed):
    """claude dies while the model is slow: a one-line error and exit 1 at once, not at the timeout."""
    proc = subprocess.Popen([sys.executable, "-m", "claude_bridge_tmux", "-p", "slow MOCK:hang=30"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=bed.env, cwd=bed.cwd)
    try:
        end = time.monotonic() + 30
        while not bed.mock.main_requests() and time.monotonic() < end:
            time.sleep(0.1)
        assert bed.mock.main_requests(), "the turn never reached the model"
        for pid in claude_processes(bed.home):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"--session-id" not in f.read():
                        continue
            except OSError:
                continue                   # a short-lived child of claude
            subprocess.run(["kill", "-9", str(pid)])
        killed = time.monotonic()
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert time.monotonic() - killed < 5
    assert proc.returncode != 0
    assert b"claude-bridge: claude exited before the turn finished" in err
    _no_process_now(bed)


def test_sigterm_during_a_tool_leaves_no_process(bed):
    """The bridge is stopped while a tool runs (`tail -f`; 2.1.329 refuses a plain `sleep`): exit 143, and
    claude and the tool's process are gone."""
    proc = subprocess.Popen([sys.executable, "-m", "claude_bridge_tmux", "-p", "wait MOCK:tool=tail_-f_/dev/null",
                             "--permission-mode", "bypassPermissions"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(bed.env, IS_SANDBOX="1"), cwd=bed.cwd)
    try:
        end = time.monotonic() + 30
        sleeping = []
        while time.monotonic() < end and not sleeping:
            time.sleep(0.2)
            for pid in claude_processes(bed.home):
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if f.read().startswith(b"tail\0"):
                            sleeping.append(pid)
                except OSError:
                    pass
        assert sleeping, "the tool never started"
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 143
    _no_process_now(bed)
    assert_no_leftovers(bed, wait=0)


def _cmdlines_holding(marker: bytes) -> list[str]:
    """Every process whose command line holds ``marker`` (what any local user sees with ``ps``)."""
    hits = []
    for entry in other_pids():
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if marker in cmd:
            hits.append(cmd.replace(b"\0", b" ").decode(errors="replace"))
    return hits


@pytest.mark.parametrize("how", ["stdin", "argv+stdin"])
def test_piped_prompt_never_in_any_argv(bed, how):
    """A prompt piped on stdin is in no process's argv while the run goes on (claude's turn is slow so
    that every process is seen), and the model still receives exactly what `claude -p` would send."""
    marker = "s3cr3t-" + os.urandom(6).hex()
    args = ["-p", "--output-format", "json"] + (["read this:"] if how == "argv+stdin" else [])
    proc = subprocess.Popen([sys.executable, "-m", "claude_bridge_tmux", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=bed.env, cwd=bed.cwd)
    assert proc.stdin is not None
    proc.stdin.write(f"{marker} MOCK:hang=2\n".encode())
    proc.stdin.close()
    proc.stdin = None
    seen: list[str] = []
    try:
        end = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < end:
            seen += _cmdlines_holding(marker.encode())
            time.sleep(0.05)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert seen == []
    assert proc.returncode == 0, err.decode()
    res = json.loads(out)
    expected = ("read this:\n" if how == "argv+stdin" else "") + f"{marker} MOCK:hang=2\n"
    assert res["is_error"] is False and res["result"].startswith("MOCK-REPLY to: ")
    ours_prompt = bed.mock.main_requests()[-1]["prompt"]
    real = bed.claude_p(*args, input=f"{marker} MOCK:hang=2\n")
    assert real.returncode == 0
    assert bed.mock.main_requests()[-1]["prompt"] == ours_prompt
    assert ours_prompt.rstrip("\n") == expected.rstrip("\n")
