"""``claude-bridge gc``: remove what bridge processes that died without cleaning up left behind.

A bridge run (or pool daemon) that is SIGKILLed, or whose machine suspends mid-run, leaves its run
directory ``<runtime>/<kind>-<owner pid>-<random>`` (hook spool, settings, tmux socket, record) and
possibly a tmux server with claude still running in it.  For every such directory whose owner is gone
(the pid is dead, or alive but started after the directory was last changed, i.e. reused) gc

1. kills the tmux server listening on the directory's ``tmux.sock`` (and with it claude),
2. removes the directory (its ``session.json`` record goes with it),

removes the pid file and socket of a pool daemon that died (``pool.pid`` names a dead pid),

and, for the config file of the current environment, drops trust leases (``preseed.TrustLease``)
whose holders are all dead, revoking the temporary trust they held.

``collect()`` runs at the start of every cold run.  It costs one ``listdir`` of the runtime
directory plus a ``kill(pid, 0)`` per entry when there is nothing to do (well under 5 ms; see
tests/unit/test_gc.py); tmux is only invoked for directories that really are orphaned.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from claude_bridge_tmux.ops.registry import RUN_DIR_RE, owner_alive, owner_state


@dataclass
class GcReport:
    """What one gc pass did: removed run dirs, killed tmux servers, revoked trust leases."""

    removed_dirs: list[str] = field(default_factory=list)
    killed_servers: list[str] = field(default_factory=list)
    revoked_trust: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.removed_dirs or self.killed_servers or self.revoked_trust or self.errors)


def _tmux_bin() -> str | None:
    from claude_bridge_tmux.tmux.pane import tmux_binary
    return tmux_binary()


def kill_server(socket: Path) -> bool:
    """``tmux -S SOCKET kill-server``; True when a server answered. Never raises."""
    tmux = _tmux_bin()
    if not tmux or not socket.exists():
        return False
    try:
        res = subprocess.run([tmux, "-S", str(socket), "kill-server"], stdin=subprocess.DEVNULL,
                             capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


def orphaned_dirs(runtime: Path) -> list[Path]:
    """Run directories in ``runtime`` whose owner is gone: the pid in the name is dead, or alive but
    started after the directory last changed (a reused pid).  One ``/proc`` read per distinct pid."""
    out: list[Path] = []
    try:
        names = os.listdir(runtime)
    except OSError:
        return out
    me = os.getpid()
    states: dict[int, tuple[bool, float | None]] = {}
    for name in names:
        m = RUN_DIR_RE.match(name)
        if not m:
            continue
        pid = int(m.group(2))
        if pid == me:
            continue
        if pid not in states:
            states[pid] = owner_state(pid)
        path = runtime / name
        alive, start = states[pid]
        if alive and start is None:
            continue
        if alive:
            try:
                changed = path.stat().st_mtime
            except OSError:
                continue      # vanished meanwhile: its owner cleaned it up
            if owner_alive(pid, changed, state=states[pid]):
                continue
        out.append(path)
    return out


def _sockets(path: Path) -> list[Path]:
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(path):
            if stat.S_ISSOCK(entry.stat(follow_symlinks=False).st_mode):
                found.append(Path(entry.path))
    return found


def collect_dir(path: Path, report: GcReport) -> None:
    for sock in _sockets(path):
        if kill_server(sock):
            report.killed_servers.append(str(sock))
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        report.errors.append(f"could not remove {path}")
    else:
        report.removed_dirs.append(str(path))


def collect_leases(env: dict[str, str], report: GcReport) -> None:
    """Revoke bridge-added trust whose runs all died (their lease never got released)."""
    from claude_bridge_tmux.host.preseed import TrustLease, global_config_path, read_leases
    from claude_bridge_tmux.ops.registry import pid_alive
    config = global_config_path(env)
    if not TrustLease.lease_path(config).exists():
        return
    try:
        leases = read_leases(config)
        for cwd, entry in list(leases.items()):
            holders = (entry or {}).get("holders") or {}
            if any(pid_alive(int(p)) for p in holders.values()):
                continue
            TrustLease(config, cwd, "gc").release()
            report.revoked_trust.append(cwd)     # (a cwd, or the billing-notice claim)
    except Exception as e:  # noqa: BLE001 - gc never fails a run
        report.errors.append(f"trust leases in {config}: {e}")


POOL_FILES = ("pool.pid", "pool.sock")   # pool.protocol.PID_NAME / SOCKET_NAME


def collect_pool_files(runtime: Path, report: GcReport) -> None:
    """A pool daemon killed without cleanup leaves its pid file and socket: remove both when the pid in
    the pid file is dead (a daemon writes the pid file only after binding its socket)."""
    pid_file = runtime / POOL_FILES[0]
    try:
        text = pid_file.read_text().strip()
    except OSError:
        return
    if not text.isdigit() or owner_state(int(text))[0]:
        return
    for name in POOL_FILES:
        with contextlib.suppress(FileNotFoundError):
            (runtime / name).unlink()
            report.removed_dirs.append(str(runtime / name))


def collect(env: dict[str, str] | None = None) -> GcReport:
    """One gc pass over the runtime directory of ``env`` (and its config's trust leases). Never raises."""
    env = dict(os.environ if env is None else env)
    report = GcReport()
    try:
        from claude_bridge_tmux.host.paths import runtime_dir
        runtime = runtime_dir(env)
    except Exception as e:  # noqa: BLE001
        report.errors.append(str(e))
        return report
    for path in orphaned_dirs(runtime):
        collect_dir(path, report)
    collect_pool_files(runtime, report)
    collect_leases(env, report)
    return report
