"""``python -m claude_bridge_tmux`` and the ``claude-bridge`` command: :func:`entry`."""

from __future__ import annotations

import atexit
import os
import sys
import threading

from claude_bridge_tmux.cli.main import main


def exit_now(code: int) -> None:
    """End the process with ``code`` once ``main`` has returned, without the interpreter's teardown.

    By then every pane, process and file of the run is gone (run/lifecycle.py). What an ordinary exit
    would still do is done here: the ``atexit`` handlers run (logging's flush among them) and stdout /
    stderr are flushed. What is skipped is tearing down the ~300 imported modules, which took ~60 ms
    on every call (scripts/bench --breakdown, "teardown rest"). A thread the interpreter would wait for
    (a non-daemon one) means an ordinary exit instead."""
    if any(not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):   # a closed or broken pipe: nothing more can reach it
            pass
    os._exit(code)


def entry() -> None:
    """The command's entry point: :func:`claude_bridge_tmux.cli.main.main`, then :func:`exit_now`."""
    exit_now(int(main() or 0))


if __name__ == "__main__":
    entry()
