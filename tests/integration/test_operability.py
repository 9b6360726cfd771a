"""doctor, ps, attach, gc, run logs, failure diagnostics, the progress line, --help -- with the real CLI."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from claude_bridge_tmux import __version__
from tests.conftest import API_KEY, assert_no_leftovers, claude_processes, tmux_sockets

pytestmark = pytest.mark.integration

TMUX = shutil.which("tmux")


def cb(bed, *args, env=None, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "claude_bridge_tmux", *args], capture_output=True, text=True,
                          env=env or bed.env, cwd=bed.cwd, timeout=timeout, stdin=subprocess.DEVNULL)


def doctor(bed, env) -> tuple[int, dict]:
    p = cb(bed, "doctor", "--json", env=env)
    return p.returncode, {c["name"]: c for c in json.loads(p.stdout)["checks"]} | {"_": json.loads(p.stdout)}


def bin_dir_with(tmp_path: Path, name: str, links: dict[str, str]) -> Path:
    d = tmp_path / name
    d.mkdir()
    for k, v in links.items():
        (d / k).symlink_to(v)
    return d


# -- doctor ---------------------------------------------------------------------------------------
def test_doctor_all_good(bed):
    p = cb(bed, "doctor")
    assert p.returncode == 0, p.stdout
    lines = p.stdout.splitlines()
    assert [line.split()[1] for line in lines[:-1]] == ["tmux", "claude", "flags", "config", "login", "root",
                                                         "runtime", "state", "panes", "pool"]
    assert lines[-1] == "ok: a run can work here"
    assert API_KEY not in p.stdout and API_KEY[-20:] not in p.stdout          # never a credential's value
    code, checks = doctor(bed, bed.env)
    assert code == 0 and checks["_"]["ok"] is True
    version = subprocess.run([bed.claude_bin, "--version"], capture_output=True, text=True).stdout.split()[0]
    assert checks["claude"]["status"] == "ok" and version in checks["claude"]["detail"]
    assert checks["flags"] == {"name": "flags", "status": "ok", "detail": f"option table for {version} is bundled",
                               "fix": None}
    assert checks["login"]["status"] == "ok" and "$ANTHROPIC_API_KEY" in checks["login"]["detail"]
    assert checks["tmux"]["status"] == "ok" and "a private server starts" in checks["tmux"]["detail"]
    assert checks["runtime"]["status"] == "ok" and checks["state"]["status"] == "ok"
    assert all(c["fix"] for n, c in checks.items() if n != "_" and c["status"] in ("warn", "fail"))
    print(f"doctor took {checks['_']['elapsed_ms']} ms")


@pytest.mark.newest_cli_only
def test_doctor_without_tmux(bed, tmp_path):
    only_claude = bin_dir_with(tmp_path, "b", {"claude": bed.claude_bin})
    env = dict(bed.env, PATH=str(only_claude))
    env.pop("CLAUDE_BRIDGE_CLAUDE_BIN")
    code, checks = doctor(bed, env)
    assert code == 1
    assert checks["tmux"]["status"] == "fail" and "install tmux" in checks["tmux"]["fix"]
    assert checks["claude"]["status"] == "ok"
    code, checks = doctor(bed, dict(env, CLAUDE_BRIDGE_TMUX=str(tmp_path / "nowhere" / "tmux")))
    assert code == 1 and checks["tmux"]["status"] == "fail"
    assert "CLAUDE_BRIDGE_TMUX" in checks["tmux"]["detail"] and "CLAUDE_BRIDGE_TMUX" in checks["tmux"]["fix"]
    # the drop-in path says the same in one line
    p = subprocess.run([sys.executable, "-m", "claude_bridge_tmux", "-p", "hi"], capture_output=True, text=True,
                       env=dict(env, CLAUDE_BRIDGE_TMUX=str(tmp_path / "nowhere" / "tmux")), cwd=bed.cwd,
                       stdin=subprocess.DEVNULL, timeout=60)
    assert p.returncode == 1 and p.stderr.startswith("claude-bridge: ")


@pytest.mark.newest_cli_only
def test_doctor_without_claude(bed, tmp_path):
    only_tmux = bin_dir_with(tmp_path, "b", {"tmux": TMUX})
    env = dict(bed.env, PATH=str(only_tmux))
    env.pop("CLAUDE_BRIDGE_CLAUDE_BIN")
    code, checks = doctor(bed, env)
    assert code == 1
    assert checks["claude"]["status"] == "fail" and "CLAUDE_BRIDGE_CLAUDE_BIN" in checks["claude"]["fix"]
    assert checks["flags"]["status"] == "skip"
    assert checks["tmux"]["status"] == "ok"
    code, checks = doctor(bed, dict(env, CLAUDE_BRIDGE_CLAUDE_BIN=str(tmp_path / "nope")))
    assert code == 1 and "CLAUDE_BRIDGE_CLAUDE_BIN=" in checks["claude"]["detail"]
    # the shim alone is not a claude
    shim_only = bin_dir_with(tmp_path, "s", {"claude": str(Path(__file__).parents[2] / "shims" / "claude"),
                                             "tmux": TMUX})
    code, checks = doctor(bed, dict(env, PATH=str(shim_only)))
    assert code == 1 and checks["claude"]["status"] == "fail"


@pytest.mark.newest_cli_only
def test_doctor_login_sources_and_leftovers(bed, tmp_path):
    env = dict(bed.env)
    del env["ANTHROPIC_API_KEY"]
    code, checks = doctor(bed, env)
    assert code == 1 and checks["login"]["status"] == "fail" and "/login" in checks["login"]["fix"]
    creds = bed.home / ".claude" / ".credentials.json"
    creds.parent.mkdir(parents=True, exist_ok=True)
    creds.write_text('{"claudeAiOauth": {"accessToken": "sk-ant-oat-SECRET-never-printed"}}')
    p = cb(bed, "doctor", env=env)
    assert p.returncode == 0, p.stdout
    assert "OAuth credentials file" in p.stdout and "SECRET" not in p.stdout
    creds.unlink()
    (bed.home / ".claude" / "settings.json").write_text('{"apiKeyHelper": "/usr/local/bin/print-key"}')
    code, checks = doctor(bed, env)
    assert code == 0 and "apiKeyHelper" in checks["login"]["detail"]
    # a run directory left by a dead process: a warning with the fix, not a failure
    dead = subprocess.Popen(["true"])
    dead.wait()
    (bed.runtime / f"pane-{dead.pid}-leftover").mkdir(parents=True)
    code, checks = doctor(bed, bed.env)
    assert code == 0 and checks["panes"]["status"] == "warn" and checks["panes"]["fix"] == "run `claude-bridge gc`"
    assert cb(bed, "gc").returncode == 0
    code, checks = doctor(bed, bed.env)
    assert checks["panes"]["status"] == "ok"


# -- ps / attach / gc -------------------------------------------------------------------------------
def wait_for_model_call(bed, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while not claude_processes(bed.home) or not bed.mock.main_requests():
        assert time.monotonic() < deadline, "claude never started"
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.1)


@pytest.mark.newest_cli_only
def test_ps_and_attach_show_a_live_run(bed):
    proc = bed.spawn_bridge("-p", "slow MOCK:slow=0.5 MOCK:long=4000", "--output-format", "stream-json", "--verbose")
    try:
        wait_for_model_call(bed, proc)
        p = cb(bed, "ps", "--json")
        [row] = json.loads(p.stdout)
        assert row["kind"] == "cold" and row["state"] == "busy" and row["owner_pid"] == proc.pid
        assert row["cwd"] == str(bed.cwd)
        assert row["pid"] in claude_processes(bed.home)
        transcript = bed.transcripts()[0]
        assert row["session_id"] == transcript.stem
        assert 0 <= row["age_s"] < 60
        text = cb(bed, "ps").stdout
        assert row["id"] in text and row["session_id"] in text and "busy" in text
        # attach: needs a terminal; without one it prints the command to run
        p = cb(bed, "attach", row["id"][:6])
        assert p.returncode == 1 and "attach-session" in p.stderr and "read-only" in p.stderr
        assert cb(bed, "attach", "no-such-pane").returncode == 1
        # in a pseudo-terminal: a read-only view of the pane; C-b d detaches
        pid, fd = pty.fork()
        if pid == 0:
            os.chdir(bed.cwd)
            os.execve(sys.executable, [sys.executable, "-m", "claude_bridge_tmux", "attach", row["session_id"]],
                      dict(bed.env, TERM="xterm"))
        seen = b""
        deadline = time.monotonic() + 20
        while b"MOCK:slow=0.5" not in seen and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    seen += os.read(fd, 65536)
                except OSError:
                    break
        assert b"MOCK:slow=0.5" in seen, seen[-500:]
        os.write(fd, b"typed keys are ignored")
        time.sleep(0.3)
        os.write(fd, b"\x02d")                                  # prefix + d: detach
        deadline = time.monotonic() + 10
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            assert time.monotonic() < deadline, "attach did not detach"
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    os.read(fd, 65536)
                except OSError:
                    pass
        os.close(fd)
        assert os.waitstatus_to_exitcode(status) == 0
        assert proc.poll() is None                               # the run goes on
        rows = json.loads(cb(bed, "ps", "--json").stdout)
        assert len(rows) == 1 and "typed keys" not in "".join(
            subprocess.run([TMUX, "-S", row["socket"], "capture-pane", "-p", "-t", row["pane"]],
                           capture_output=True, text=True).stdout)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    assert json.loads(cb(bed, "ps", "--json").stdout) == []


@pytest.mark.newest_cli_only
def test_gc_collects_a_killed_run(bed):
    proc = bed.spawn_bridge("-p", "slow MOCK:slow=0.5 MOCK:long=4000")
    wait_for_model_call(bed, proc)
    proc.kill()                                                  # SIGKILL: no cleanup at all
    proc.communicate(timeout=10)
    assert claude_processes(bed.home) and tmux_sockets(bed.runtime)
    cfg = json.loads((bed.home / ".claude.json").read_text())
    assert cfg["projects"][str(bed.cwd)]["hasTrustDialogAccepted"] is True   # the run's temporary trust
    assert json.loads(cb(bed, "ps", "--json").stdout) == []
    [orphan] = json.loads(cb(bed, "ps", "--all", "--json").stdout)
    assert orphan["state"] == "orphaned" and orphan["owner_pid"] == proc.pid
    p = cb(bed, "gc")
    assert p.returncode == 0, p.stderr
    assert "killed tmux server" in p.stdout and "removed" in p.stdout and f"revoked temporary trust of {bed.cwd}" in p.stdout
    assert_no_leftovers(bed)
    cfg = json.loads((bed.home / ".claude.json").read_text())
    assert not cfg["projects"].get(str(bed.cwd), {}).get("hasTrustDialogAccepted")
    assert cb(bed, "gc").stdout.startswith("nothing to collect")


@pytest.mark.newest_cli_only
def test_the_next_cold_run_collects_leftovers(bed):
    proc = bed.spawn_bridge("-p", "slow MOCK:slow=0.5 MOCK:long=4000")
    wait_for_model_call(bed, proc)
    proc.kill()
    proc.communicate(timeout=10)
    p = bed.bridge("-p", "after the crash")
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout == b"MOCK-REPLY to: after the crash\n"
    assert_no_leftovers(bed)
    log = cb(bed, "logs").stdout
    assert "gc: " in log and "removed 1 run dir(s), killed 1 tmux server(s)" in log


# -- diagnostics ------------------------------------------------------------------------------------
@pytest.mark.newest_cli_only
def test_run_log_of_a_success(bed):
    p = bed.bridge("-p", "logged run", "--output-format", "json")
    assert p.returncode == 0 and p.stderr == b""
    log = cb(bed, "logs").stdout
    assert "exit      0 after" in log and "hook UserPromptSubmit" in log and "gc: " in log
    assert json.loads(p.stdout)["session_id"] in log
    assert "❯ logged run" in log                                 # the pane's final screen
    [path] = cb(bed, "logs", "--list").stdout.split()
    assert Path(path).parent == bed.home.parent / "state" / "runs"
    assert oct(Path(path).stat().st_mode & 0o777) == "0o600"


@pytest.mark.newest_cli_only
def test_failure_ends_stderr_with_reason_and_pane_lines(bed):
    env = dict(bed.env, CLAUDE_BRIDGE_TIMEOUT="4")
    p = bed.bridge("-p", "never answered MOCK:hang=60", env=env)
    assert p.returncode == 1 and p.stdout == b""
    err = p.stderr.decode().splitlines()
    assert err[0] == "claude-bridge: timed out waiting for claude to finish the turn"
    assert err[1] == "claude-bridge: last lines of the pane:"
    assert len(err) > 2 and all(line.startswith("  | ") for line in err[2:])
    log = cb(bed, "logs").stdout
    assert "exit      1 after" in log and err[0] in log and "never answered" in log.split("--- final screen")[1]


@pytest.mark.newest_cli_only
def test_debug_timeline_goes_to_stderr_only(bed):
    p = bed.bridge("-p", "debug me", env=dict(bed.env, CLAUDE_BRIDGE_DEBUG="1"))
    assert p.returncode == 0
    assert p.stdout == b"MOCK-REPLY to: debug me\n"
    assert b"[claude-bridge " in p.stderr and b"hook UserPromptSubmit" in p.stderr


def run_with_tty_stderr(bed, *args) -> tuple[int, bytes, bytes]:
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "claude_bridge_tmux", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave, env=bed.env, cwd=bed.cwd)
    os.close(slave)
    tty = b""
    while True:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                data = os.read(master, 65536)
            except OSError:
                data = b""
            if not data:
                break
            tty += data
        elif proc.poll() is not None:
            break
    out = proc.stdout.read()
    proc.wait(timeout=30)
    os.close(master)
    return proc.returncode, out, tty


@pytest.mark.newest_cli_only
def test_progress_line_on_a_terminal_for_text_only(bed):
    code, out, tty = run_with_tty_stderr(bed, "-p", "progress MOCK:tool=echo_progress")
    assert code == 0
    assert out == b"MOCK-TOOL-DONE: progress\n"
    assert b"claude-bridge: starting claude" in tty and b"claude-bridge: running Bash" in tty
    assert tty.endswith(b"\r\x1b[2K")                           # erased before the answer
    code, out, tty = run_with_tty_stderr(bed, "-p", "quiet", "--output-format", "json")
    assert code == 0 and json.loads(out)["result"] == "MOCK-REPLY to: quiet" and tty == b""


def test_help_and_version_anywhere(bed):
    p = cb(bed, "--help")
    assert p.returncode == 0 and p.stdout.startswith("claude-bridge: `claude -p` through the interactive")
    assert "Usage: claude" in p.stdout and "claude-bridge doctor" in p.stdout
    p = cb(bed, "-p", "--output-format", "json", "--version")
    assert p.returncode == 0 and p.stdout.splitlines()[1].startswith(f"claude-bridge {__version__} (claude at ")
    assert bed.mock.main_requests() == []
