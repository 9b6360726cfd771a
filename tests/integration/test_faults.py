"""Faults: each ends in an ``is_error`` result or a clear one-line error, with the right exit code,
within a stated bound, and leaves nothing behind (the ``bed`` fixture checks for processes, tmux
sockets and run directories after every test). Real claude on the mock model, every pinned CLI;
where ``claude -p`` defines the outcome, the test runs it too and compares.

Faults covered elsewhere: HTTP 500/401/529 (test_outcomes), claude killed mid-turn (test_outcomes),
a SIGKILLed caller's run reaped by the next run (test_operability), the pane killed under a pool job
and a SIGKILLed pool caller (test_pool), Redis workers and callers dying (test_pool_redis).
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from claude_bridge_tmux.follow import engine
from tests.conftest import claude_processes, seed_home, stream_lines, tmux_sockets

pytestmark = pytest.mark.integration

RESULT_KEYS = ("type", "subtype", "is_error", "api_error_status", "result", "num_turns", "stop_reason")


def _same_result(ours: subprocess.CompletedProcess, real: subprocess.CompletedProcess) -> None:
    a, b = json.loads(ours.stdout), json.loads(real.stdout)
    assert ours.returncode == real.returncode
    for k in RESULT_KEYS:
        assert a.get(k) == b.get(k), k


def _one_line_error(proc_stderr: bytes, needle: str) -> str:
    """The first stderr line is the bridge's one-line reason (pane lines may follow it)."""
    first = proc_stderr.decode().splitlines()[0]
    assert first.startswith("claude-bridge: ") and needle in first, proc_stderr.decode()[-2000:]
    assert "Traceback" not in proc_stderr.decode()
    return first


def _fails_in_one_line(bed, needle: str, bound_s: float, *args: str, env: dict | None = None) -> None:
    """``claude-bridge -p ARGS`` (default ``hello``) exits 1 with a one-line reason holding ``needle``
    within ``bound_s`` seconds, and prints nothing on stdout."""
    started = time.monotonic()
    r = bed.bridge("-p", *(args or ("hello",)), env=env, timeout=90)
    took = time.monotonic() - started
    assert r.returncode == 1, (r.stdout, r.stderr)
    _one_line_error(r.stderr, needle)
    assert took < bound_s, took
    assert r.stdout == b""


def test_rate_limit_429_with_retry_after_is_retried_like_claude_p(bed):
    """A 429 with retry-after: claude waits and retries (its own retry logic in the pane), and the
    answer is the same as -p's."""
    env = dict(bed.env, CLAUDE_CODE_MAX_RETRIES="2")
    args = ("-p", "busy MOCK:err=429 MOCK:retryafter=1 MOCK:errtimes=1", "--output-format", "json")
    ours = bed.bridge(*args, env=env, timeout=60)
    assert ours.returncode == 0, ours.stderr
    assert json.loads(ours.stdout)["result"].startswith("MOCK-REPLY to: busy")
    assert len(bed.mock.main_requests()) == 2       # the 429, then the answer
    real = subprocess.run([bed.claude_bin, *args], capture_output=True, env=env, cwd=bed.cwd,
                          stdin=subprocess.DEVNULL, timeout=60)
    _same_result(ours, real)


def test_rate_limit_429_without_retries_is_an_api_error_like_claude_p(bed):
    args = ("-p", "limited MOCK:err=429", "--output-format", "json")
    started = time.monotonic()
    ours = bed.bridge(*args, timeout=60)
    took = time.monotonic() - started
    real = bed.claude_p(*args, timeout=60)
    _same_result(ours, real)
    assert json.loads(ours.stdout)["is_error"] is True
    assert took < 15, took        # an API error ends on claude's StopFailure, not on a quiet timeout


def test_stream_cut_mid_reply(bed):
    """The stream breaks after the first block. 2.1.197 ends the turn with the error, in -p and in the
    pane alike: the bridge's output is -p's. 2.1.329's -p sends a nudge ("Your response above was cut
    off mid-stream ...") and answers again; its interactive mode does not (seen on the pane), so the
    bridge gives the interactive CLI's own outcome: the partial reply, claude's error line, an is_error
    result and exit 1 (docs/cli-behaviour.md §11, an allowed difference)."""
    args = ("-p", "cut MOCK:streamerrblock=1", "--output-format", "stream-json", "--verbose")
    started = time.monotonic()
    ours = bed.bridge(*args, timeout=60)
    took = time.monotonic() - started
    real = bed.claude_p(*args, timeout=60)
    assert took < 20, took
    kinds = lambda out: [(m["type"], m.get("subtype")) for m in stream_lines(out)]  # noqa: E731
    a, b = stream_lines(ours.stdout)[-1], stream_lines(real.stdout)[-1]
    nudged = any(m["type"] == "user" and "cut off mid-stream" in json.dumps(m) for m in stream_lines(real.stdout))
    if not nudged:
        assert ours.returncode == real.returncode == 1, ours.stderr
        assert kinds(ours.stdout) == kinds(real.stdout)
        for k in RESULT_KEYS:
            assert a.get(k) == b.get(k), k
        return
    assert (ours.returncode, real.returncode) == (1, 0)
    assert kinds(ours.stdout) == [("system", "init"), ("assistant", None), ("assistant", None), ("result", "success")]
    assert a["is_error"] is True and "mid-response" in a["result"]
    assert stream_lines(ours.stdout)[1]["message"]["content"] == stream_lines(real.stdout)[1]["message"]["content"]


def test_reply_slower_than_the_timeout(bed):
    """The model does not answer within CLAUDE_BRIDGE_TIMEOUT: one line, exit 1, right after it."""
    _fails_in_one_line(bed, "timed out", 4 + 6, "slow MOCK:hang=60", env=dict(bed.env, CLAUDE_BRIDGE_TIMEOUT="4"))


def _spawn_until_the_model_is_asked(bed, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "claude_bridge_tmux", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=bed.env, cwd=bed.cwd)
    end = time.monotonic() + 30
    while not bed.mock.main_requests() and time.monotonic() < end and proc.poll() is None:
        time.sleep(0.1)
    assert bed.mock.main_requests(), "the turn never reached the model"
    return proc


@pytest.mark.parametrize("how", ["kill-server", "kill-session"])
def test_tmux_server_or_pane_gone_mid_turn(bed, how):
    """Someone kills the bridge's tmux server (or closes its session) while the model is slow: the
    bridge says so in one line and exits 1 within a few seconds; claude is gone with it."""
    proc = _spawn_until_the_model_is_asked(bed, "-p", "slow MOCK:hang=30")
    try:
        socks = tmux_sockets(bed.runtime)
        assert len(socks) == 1, socks
        subprocess.run(["tmux", "-S", str(socks[0]), how] + (["-a"] if how == "kill-session" else []),
                       capture_output=True)
        if how == "kill-session":     # (-a spares the current one: close them all)
            subprocess.run(["tmux", "-S", str(socks[0]), "kill-session"], capture_output=True)
        gone = time.monotonic()
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert time.monotonic() - gone < 6
    assert proc.returncode == 1, err
    _one_line_error(err, "claude")
    assert out == b""
    assert claude_processes(bed.home) == []


@contextlib.contextmanager
def _tmpfs(path: Path, size: str = "1m"):
    """A small tmpfs on ``path`` (needs mount privileges: the test is skipped without them)."""
    path.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (no privileges)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fill(path: Path) -> None:
    subprocess.run(["dd", "if=/dev/zero", f"of={path / 'fill'}", "bs=4k"], capture_output=True)


def test_home_not_writable(bed):
    """HOME on a read-only file system (root ignores file modes, so a read-only mount stands in): the
    bridge cannot let interactive claude keep a transcript, so it refuses in one line, at once, and
    leaves the user's file as it was."""
    with _tmpfs(bed.home):
        seed_home(bed.home, bed.cwd)
        before = (bed.home / ".claude.json").read_bytes()
        subprocess.run(["mount", "-o", "remount,ro", str(bed.home)], check=True)
        _fails_in_one_line(bed, "Read-only file system", 5)
        assert (bed.home / ".claude.json").read_bytes() == before


def test_disk_full_under_home(bed):
    """HOME's disk is full: claude cannot write its transcript; the bridge sees claude's own warning and
    says so in one line instead of waiting, and never truncates ~/.claude.json."""
    with _tmpfs(bed.home, size="256k"):
        seed_home(bed.home, bed.cwd, version=bed.version)
        before = (bed.home / ".claude.json").read_bytes()
        _fill(bed.home)
        # 2.1.329 shows claude's own warning (an error at once); 2.1.197 shows nothing, so the bound is the
        # engine's PROMPT_MISSING_S after the Stop hook, plus claude's start and turn on a loaded machine
        # (16 s seen under the CI's parallel integration run)
        _fails_in_one_line(bed, "transcript", engine.PROMPT_MISSING_S + 15)
        after = (bed.home / ".claude.json").read_bytes()
        assert json.loads(after)          # whole, never a torn write
        assert json.loads(after).get("projects") == json.loads(before).get("projects")
        (bed.home / "fill").unlink()


def test_disk_full_in_the_bridges_own_state(bed):
    """The bridge's state dir (run logs, version cache) is on a full disk: that state is the bridge's
    to lose; the run still answers as usual."""
    with _tmpfs(Path(bed.env["CLAUDE_BRIDGE_STATE_DIR"]), size="64k") as state:
        _fill(state)
        r = bed.bridge("-p", "hello", "--output-format", "json", timeout=60)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["result"] == "MOCK-REPLY to: hello"


def test_disk_full_in_the_runtime_dir(bed):
    """The runtime dir (tmux socket, hook spool, prompt file) is on a full disk: one line, exit 1,
    nothing left in it."""
    with _tmpfs(bed.runtime, size="64k") as run:
        _fill(run)
        _fails_in_one_line(bed, "No space left on device", 10)
        (run / "fill").unlink()
        assert list(run.iterdir()) == []


def test_corrupt_claude_json_is_refused_and_left_untouched(bed):
    """A ~/.claude.json that is not JSON: the bridge refuses in one line and leaves the bytes as they
    were (claude itself would back it up and start over; that is the user's call)."""
    (bed.home / ".claude.json").write_text('{"hasCompletedOnboarding": true, "projects": {')
    before = (bed.home / ".claude.json").read_bytes()
    r = bed.bridge("-p", "hello", timeout=60)
    assert r.returncode == 1
    _one_line_error(r.stderr, "not valid JSON")
    assert (bed.home / ".claude.json").read_bytes() == before
    assert not (bed.home / ".claude" / "backups").exists()


def test_no_login_like_claude_p(bed):
    """No credential at all: -p's "Not logged in" result, exit 1, from the bridge too."""
    env = {k: v for k, v in bed.env.items() if k != "ANTHROPIC_API_KEY"}
    args = ("-p", "hello", "--output-format", "json")
    ours = bed.bridge(*args, env=env, timeout=60)
    real = subprocess.run([bed.claude_bin, *args], capture_output=True, env=env, cwd=bed.cwd,
                          stdin=subprocess.DEVNULL, timeout=60)
    _same_result(ours, real)
    assert json.loads(ours.stdout)["result"].startswith("Not logged in")


def test_sigkill_of_the_bridge_is_reaped_by_the_next_run(bed):
    """kill -9 of claude-bridge mid-turn leaves its pane; the next run collects it before its own."""
    proc = _spawn_until_the_model_is_asked(bed, "-p", "slow MOCK:hang=30")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    assert claude_processes(bed.home), "the orphaned claude should still run until collected"
    r = bed.bridge("-p", "next", timeout=60)
    assert r.returncode == 0, r.stderr
    end = time.monotonic() + 10
    while claude_processes(bed.home) and time.monotonic() < end:
        time.sleep(0.1)
    assert claude_processes(bed.home) == []



