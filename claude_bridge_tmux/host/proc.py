"""Process liveness from /proc (Linux): used where a caller must know a process has really exited.

Waits use a pidfd (Linux 5.3+) where one can be opened, so they end the moment the last process
exits instead of on the next poll; without pidfds they poll /proc every 20 ms. A process that is
not our child is "gone" once it is a zombie (its parent reaps it), which /proc shows at once.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time

POLL_S = 0.02   # s between /proc polls where no pidfd is available (or a pidfd'd process is a zombie)


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs: no such process, or a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] == b"Z"
    except (OSError, IndexError):
        return True


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):   # no pidfd support, or the process is gone already
        return None


def wait_until_all_gone(pids: list[int], timeout: float) -> bool:
    """Wait until every pid of ``pids`` is gone (``process_gone``), at most ``timeout`` s; True when they
    all went. Wakes on each exit through pidfds (a pidfd becomes readable when its process exits,
    zombie or not); the poll interval is the fallback."""
    end = time.monotonic() + timeout
    fds: dict[int, int] = {}
    try:
        poller = select.poll()
        for p in pids:
            fd = _pidfd(p)
            if fd is not None:
                fds[fd] = p
                poller.register(fd, select.POLLIN)
        while True:
            left = [p for p in pids if not process_gone(p)]
            if not left:
                return True
            now = time.monotonic()
            if now >= end:
                return False
            waiting = [fd for fd, p in fds.items() if p in left]
            if len(waiting) == len(left):
                # every live process has a pidfd: sleep until one exits (or the deadline)
                for fd, _ in poller.poll(max(0.0, end - now) * 1000):
                    poller.unregister(fd)
                    del fds[fd]
                    os.close(fd)
            else:
                time.sleep(min(POLL_S, max(0.0, end - now)))
    finally:
        for fd in fds:
            os.close(fd)


def wait_process_gone(pid: int, timeout: float) -> bool:
    """Wait until ``process_gone(pid)``, at most ``timeout`` seconds; True when it went."""
    return wait_until_all_gone([pid], timeout)


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
    wait_until_all_gone(pids, timeout)
    killed = []
    for p in pids:
        if not process_gone(p):
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGKILL)
                killed.append(p)
    if killed:
        wait_until_all_gone(killed, 1.0)
    return killed
