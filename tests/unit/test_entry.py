"""The command's exit (``claude_bridge_tmux.__main__.exit_now``): the code, stdio and atexit handlers of
an ordinary exit without the interpreter's teardown, and an ordinary exit while a non-daemon thread runs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

# stdout stays block-buffered on a pipe (as for a caller reading the bridge's output)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=30,
                          env=ENV)


def test_exit_now_keeps_the_code_the_output_and_the_atexit_handlers():
    res = _run("""
        import atexit, sys
        from claude_bridge_tmux.__main__ import exit_now
        atexit.register(lambda: sys.stdout.write(" atexit ran"))
        sys.stdout.write("result line")          # buffered: a pipe
        sys.stderr.write("a warning")
        exit_now(7)
        sys.stdout.write(" not reached")
    """)
    assert res.returncode == 7
    assert res.stdout == "result line atexit ran"
    assert res.stderr == "a warning"


def test_exit_now_waits_for_a_non_daemon_thread_as_an_ordinary_exit_does(tmp_path):
    done = tmp_path / "done"
    res = _run(f"""
        import threading, time
        from claude_bridge_tmux.__main__ import exit_now
        threading.Thread(target=lambda: (time.sleep(0.3), open({str(done)!r}, "w").close())).start()
        exit_now(3)
    """)
    assert res.returncode == 3
    assert done.exists()


def test_exit_now_with_a_closed_stdout_still_exits_with_the_code():
    proc = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom claude_bridge_tmux.__main__ import exit_now\n"
                             "time.sleep(0.3)\nsys.stdout.write('x' * 100)\nexit_now(4)"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    assert proc.stdout is not None
    proc.stdout.close()                     # the caller went away: the flush meets EPIPE
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 4
    assert b"Traceback" not in err and b"BrokenPipe" not in err
