"""The pane registry (ps/attach) and gc: records, owner liveness, orphaned run dirs, trust leases, cost."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from claude_bridge_tmux.ops import gc, registry

TMUX = shutil.which("tmux")


def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def fake_session(run_dir: Path, *, own_server=True, session_id="0b7e4a4e-0000-4000-8000-000000000001"):
    run_dir.mkdir(parents=True, exist_ok=True)
    return SimpleNamespace(
        pane=SimpleNamespace(name="cb-abcdef0123", pane_id="%3"), run_dir=run_dir,
        server=SimpleNamespace(socket_path=run_dir / "tmux.sock"), cwd="/work/x",
        info=SimpleNamespace(session_id=session_id), session_id=session_id, own_server=own_server, closed=False)


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    rt = tmp_path / "rt"
    rt.mkdir(mode=0o700)
    monkeypatch.setenv("CLAUDE_BRIDGE_RUNTIME_DIR", str(rt))
    return rt


def test_register_update_find(runtime):
    s = fake_session(runtime / f"pane-{os.getpid()}-abc")
    registry.register(s)
    path = s.run_dir / registry.RECORD_NAME
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    rec = json.loads(path.read_text())
    assert rec["id"] == "cb-abcdef0123" and rec["kind"] == "cold" and rec["state"] == "starting"
    assert rec["owner_pid"] == os.getpid() and rec["pane_id"] == "%3" and rec["cwd"] == "/work/x"
    s.info.session_id = "11111111-2222-4333-8444-555555555555"      # /clear changed it
    registry.set_state(s, "busy")
    rec = json.loads(path.read_text())
    assert rec["state"] == "busy" and rec["session_id"] == "11111111-2222-4333-8444-555555555555"
    [e] = registry.live_entries(runtime)
    assert e.owner_alive and e["id"] == "cb-abcdef0123"
    for ident in ("cb-abcdef0123", "cb-abc", "%3", "11111111-2222-4333-8444-555555555555", "1111"):
        assert registry.find(runtime, ident) is not None, ident
    assert registry.find(runtime, "nope") is None
    pool = fake_session(runtime / f"pool-{os.getpid()}-xyz", own_server=False)
    registry.register(pool)
    assert {e["kind"] for e in registry.entries(runtime)} == {"cold", "pool"}
    assert registry.find(runtime, "cb-") is None          # ambiguous prefix


def test_record_of_dead_owner_is_not_live(runtime):
    s = fake_session(runtime / f"pane-{dead_pid()}-abc")
    registry.register(s)
    rec = json.loads((s.run_dir / registry.RECORD_NAME).read_text())
    rec["owner_pid"] = dead_pid()
    (s.run_dir / registry.RECORD_NAME).write_text(json.dumps(rec))
    assert registry.live_entries(runtime) == []
    assert [e.owner_alive for e in registry.entries(runtime)] == [False]


def test_owner_alive_rejects_a_reused_pid():
    me = os.getpid()
    assert registry.owner_alive(me, time.time())
    assert not registry.owner_alive(me, registry.process_start(me) - 3600)   # "owned" before we started
    assert not registry.owner_alive(dead_pid(), None)


@pytest.mark.skipif(TMUX is None, reason="tmux missing")
def test_gc_kills_the_server_and_removes_the_dir_of_a_dead_owner(runtime):
    orphan = runtime / f"pane-{dead_pid()}-abcd"
    orphan.mkdir(mode=0o700)
    sock = orphan / "tmux.sock"
    subprocess.run([TMUX, "-S", str(sock), "-f", os.devnull, "new-session", "-d", "-s", "x", "sleep 300"], check=True)
    pane_pid = int(subprocess.run([TMUX, "-S", str(sock), "display-message", "-p", "-t", "x", "#{pane_pid}"],
                                  capture_output=True, text=True, check=True).stdout)
    live = runtime / f"pane-{os.getppid()}-keep"          # our parent: alive, started long before
    live.mkdir()
    report = gc.collect()
    assert report.removed_dirs == [str(orphan)]
    assert report.killed_servers == [str(sock)]
    assert not orphan.exists() and live.exists()
    deadline = time.monotonic() + 5
    while registry.pid_alive(pane_pid):
        assert time.monotonic() < deadline, "the orphaned pane's process survived gc"
        time.sleep(0.05)
    assert gc.collect().empty


def test_gc_treats_a_reused_pid_as_dead(runtime):
    proc = subprocess.Popen(["sleep", "30"])
    try:
        d = runtime / f"run-{proc.pid}-old"
        d.mkdir()
        past = time.time() - 3600
        os.utime(d, (past, past))                         # made an hour before this pid's process started
        report = gc.collect()
        assert report.removed_dirs == [str(d)]
        assert proc.poll() is None                        # the unrelated process is left alone
    finally:
        proc.kill()
        proc.wait()


def test_gc_revokes_trust_leases_whose_holders_died(tmp_path, runtime):
    home = tmp_path / "home"
    home.mkdir()
    cfg = home / ".claude.json"
    cfg.write_text(json.dumps({"projects": {"/w/a": {"hasTrustDialogAccepted": True, "x": 1},
                                            "/w/b": {"hasTrustDialogAccepted": True}}}))
    lease = home / ".claude.json.claude-bridge-trust.json"
    lease.write_text(json.dumps({"/w/a": {"holders": {"r1": dead_pid()}},
                                 "/w/b": {"holders": {"r2": os.getpid()}}}))
    report = gc.collect({"HOME": str(home), "CLAUDE_BRIDGE_RUNTIME_DIR": str(runtime)})
    assert report.revoked_trust == ["/w/a"]
    projects = json.loads(cfg.read_text())["projects"]
    assert projects["/w/a"] == {"x": 1}
    assert projects["/w/b"]["hasTrustDialogAccepted"] is True
    assert list(json.loads(lease.read_text())) == ["/w/b"]


@pytest.mark.parametrize("live_dirs", [0, 30])
def test_gc_with_nothing_to_do_costs_under_5_ms(runtime, live_dirs):
    for i in range(live_dirs):
        s = fake_session(runtime / f"pane-{os.getppid()}-{i:04d}")
        registry.register(s)
    env = {"CLAUDE_BRIDGE_RUNTIME_DIR": str(runtime), "HOME": str(runtime)}
    gc.collect(env)                                       # warm imports
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        report = gc.collect(env)
        times.append((time.perf_counter() - t0) * 1000)
        assert report.empty
    assert statistics.median(times) < 5.0, times


def test_gc_removes_the_files_of_a_dead_pool_daemon_only(runtime):
    (runtime / "pool.pid").write_text(str(dead_pid()))
    (runtime / "pool.sock").write_text("")
    report = gc.collect()
    assert not (runtime / "pool.pid").exists() and not (runtime / "pool.sock").exists()
    assert len(report.removed_dirs) == 2
    (runtime / "pool.pid").write_text(str(os.getpid()))
    (runtime / "pool.sock").write_text("")
    assert gc.collect().empty and (runtime / "pool.sock").exists()
