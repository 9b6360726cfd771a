"""The tmux layer without claude: a private server, one pane running a shell command through the
trampoline, its liveness (/proc first, tmux after death), its exit status, and teardown; and the
pidfd-based process waits of host/proc."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from claude_bridge_tmux.errors import PaneError
from claude_bridge_tmux.host import proc
from claude_bridge_tmux.tmux.pane import LaunchSpec, TmuxServer

TMUX = shutil.which("tmux")
needs_tmux = pytest.mark.skipif(TMUX is None, reason="tmux missing")


def _spec(script: str, tmp_path) -> LaunchSpec:
    return LaunchSpec(argv=["/bin/sh", "-c", script], env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                                            "MARK": "spec-env"}, cwd=str(tmp_path))


def _until(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "condition not reached in time"
        time.sleep(0.02)


@pytest.fixture
def server(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    srv = TmuxServer(run_dir)
    yield srv
    srv.kill()


def _exits_with(server, tmp_path, k: int) -> tuple[bool, int | None]:
    """One pane whose command exits 3 once Enter is pressed; what status() reports once tmux has it dead."""
    out = tmp_path / f"out{k}"
    pane = server.new_pane(_spec(f'echo "$MARK $$" > {out}; read x; exit 3', tmp_path))
    assert pane.pane_id.startswith("%") and pane.process is not None and server.pid is not None
    _until(lambda: len(out.read_text().split()) == 2 if out.exists() else False)   # (written after it exists)
    mark, pid = out.read_text().split()
    assert mark == "spec-env"                     # the spec's environment, not the server's
    assert int(pid) == pane.pid() == pane.process  # the trampoline exec'd the command: same pid
    assert pane.status() == (False, None)
    pane.send_keys("Enter")                        # `read` returns: the command exits 3
    _until(lambda: proc.process_gone(pane.process))
    # tmux learns of the death a moment after /proc does (its SIGCHLD): status() waits for it a little,
    # and under load a caller looks again
    _until(lambda: pane.status()[0])
    return pane.status()


@needs_tmux
def test_a_pane_reports_its_process_and_its_exit_status(server, tmp_path):
    # tmux 3.3a can mark a pane dead (its pty closed) without ever recording the exit status, when the
    # pty closes before its SIGCHLD handler ran (seen under load in about 1 of 3 exits; tmux/tmux#4841):
    # status() then says (True, None). Never another status, and on some of five exits the real one.
    seen = [_exits_with(server, tmp_path, k) for k in range(5)]
    assert set(seen) <= {(True, 3), (True, None)} and (True, 3) in seen, seen
    assert not list(server.run_dir.glob("launch-*"))   # spec (and stdin) files are gone once read


@needs_tmux
def test_kill_ends_the_server_and_the_panes_process(server, tmp_path):
    pane = server.new_pane(_spec("sleep 300", tmp_path))
    server_pid, pane_pid = server.pid, pane.process
    assert server_pid is not None and pane_pid is not None
    server.kill()
    assert proc.wait_until_all_gone([server_pid, pane_pid], 5.0)
    assert not server.socket_path.exists()
    assert pane.status() == (True, None)         # server gone: dead, no status
    with pytest.raises(PaneError, match="stopped"):
        server.new_pane(_spec("true", tmp_path))
    server.kill()                                # idempotent


@needs_tmux
def test_the_first_prompt_is_the_panes_stdin(server, tmp_path):
    out = tmp_path / "got"
    spec = _spec(f"cat > {out}", tmp_path)
    spec.stdin = b"line one\n\tline two  \n"
    pane = server.new_pane(spec)
    _until(lambda: proc.process_gone(pane.process))
    assert out.read_bytes() == b"line one\n\tline two  \n"


def test_wait_until_all_gone_wakes_when_the_last_process_exits():
    short = subprocess.Popen(["sleep", "0.2"])     # (not a Python: its start-up alone can take 0.6 s under load)
    long = subprocess.Popen(["sleep", "30"])
    try:
        t0 = time.monotonic()
        assert not proc.wait_until_all_gone([short.pid, long.pid], 1.0)
        assert 0.95 < time.monotonic() - t0 < 3.0
        assert proc.process_gone(short.pid)      # a zombie (not reaped yet) counts as gone
        long.terminate()
        t0 = time.monotonic()
        assert proc.wait_until_all_gone([short.pid, long.pid], 5.0)
        assert time.monotonic() - t0 < 1.0
    finally:
        long.kill()
        short.wait()
        long.wait()


def test_reap_tree_kills_what_does_not_exit():
    stubborn = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                                 "signal.SIG_IGN); time.sleep(30)"])
    try:
        assert proc.reap_tree([stubborn.pid], 0.1) == [stubborn.pid]
        assert proc.process_gone(stubborn.pid)
        assert proc.reap_tree([stubborn.pid], 0.1) == []
    finally:
        stubborn.kill()
        stubborn.wait()
