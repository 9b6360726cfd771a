"""Process liveness from /proc (Linux): used where a caller must know a process has really exited."""

from __future__ import annotations

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
