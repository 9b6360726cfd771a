"""Process liveness from /proc (Linux): used where a caller must know a process has really exited."""

from __future__ import annotations

import contextlib
import os
import signal
import time


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs: no such process, or a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] == b"Z"
    except (OSError, IndexError):
        return True


def wait_process_gone(pid: int, timeout: float) -> bool:
    """Wait until ``process_gone(pid)``, at most ``timeout`` seconds; True when it went."""
    end = time.monotonic() + timeout
    while not process_gone(pid):
        if time.monotonic() >= end:
            return False
        time.sleep(0.02)
    return True


def descendants(pid: int) -> list[int]:
    """PIDs of every live descendant of ``pid`` (children first-level first), from /proc; [] on error."""
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[-1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(name))
    out: list[int] = []
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(0), ()):
            if c not in out:
                out.append(c)
                todo.append(c)
    return out


def reap_tree(pids: list[int], timeout: float) -> list[int]:
    """Wait up to ``timeout`` s for ``pids`` to exit on their own, then SIGKILL the ones left.
    Returns the pids that had to be killed."""
    end = time.monotonic() + timeout
    while any(not process_gone(p) for p in pids) and time.monotonic() < end:
        time.sleep(0.02)
    killed = []
    for p in pids:
        if not process_gone(p):
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGKILL)
                killed.append(p)
    if killed:
        wait_until_all_gone(killed, 1.0)
    return killed


def wait_until_all_gone(pids: list[int], timeout: float) -> bool:
    """Wait until every pid of ``pids`` is gone, at most ``timeout`` s; True when they all went."""
    end = time.monotonic() + timeout
    while any(not process_gone(p) for p in pids):
        if time.monotonic() >= end:
            return False
        time.sleep(0.02)
    return True
