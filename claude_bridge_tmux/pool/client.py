"""The client side of a pooled ``claude-bridge -p`` call (import-light: no tmux, no watchdog).

Routing (env ``CLAUDE_BRIDGE_POOL``):
  unset / ``auto``   use the pool when one is running, else run cold;
  ``0`` / ``off``    never use the pool;
  ``1`` / ``require`` the pool must serve the call (no pool → one-line error, exit 1);
  ``start``          start a daemon (``pool start`` defaults, ``--exit-idle 600``) when none runs, then
                     use it; that daemon stops itself after 10 minutes without a job.
``CLAUDE_BRIDGE_POOL_URL=redis://…`` sends the call to a shared Redis queue served by pool workers on
any host instead (pool/redisq.py).
The client reads stdin itself (claude's 3-second rule), sends one request, copies the daemon's
frames to stdout/stderr, and exits with the code the daemon reports.  SIGINT / SIGTERM / SIGHUP
close the connection (which cancels the job in the daemon) and exit 128 + signal.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import sys
import time

from claude_bridge_tmux.config import BridgeConfig
from claude_bridge_tmux.host import paths
from claude_bridge_tmux.host.proc import wait_process_gone
from claude_bridge_tmux.invocation.stdin import StdinError, read_prompt_stdin
from claude_bridge_tmux.pool import protocol

NO_POOL = None
START_WAIT = 30.0
ON_DEMAND_EXIT_IDLE = 600.0   # s: a daemon started by CLAUDE_BRIDGE_POOL=start stops after this long without a job


def pool_mode(env: dict[str, str]) -> str:
    """``auto`` | ``off`` | ``require`` | ``start`` from CLAUDE_BRIDGE_POOL (config.BridgeConfig).
    Raises ConfigError for a value that names none of them."""
    return BridgeConfig.from_env(env).pool


def socket_path(env: dict[str, str]) -> str:
    return protocol.socket_path(paths.runtime_dir(env))


def start_daemon(env: dict[str, str], args: list[str] | None = None) -> bool:
    """Start a pool daemon in the background (``python -m claude_bridge_tmux pool start``); wait for it."""
    cmd = [sys.executable, "-m", "claude_bridge_tmux", "pool", "start", *(args or [])]
    subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=START_WAIT + 10)
    sock = protocol.connect(socket_path(env))
    if sock is None:
        return False
    sock.close()
    return True


def request(env: dict[str, str], frame: dict, timeout: float | None = 10.0) -> dict | None:
    """Send a control request (status, drain, stop, ping); return the reply, or None with no pool."""
    sock = protocol.connect(socket_path(env))
    if sock is None:
        return None
    try:
        sock.settimeout(timeout)
        sock.sendall(protocol.encode(frame))
        return protocol.LineReader(sock).read()
    except OSError:
        return None
    finally:
        sock.close()


def streams_input(argv: list[str]) -> bool:
    """--input-format stream-json: stdin is read message by message while the run goes on (cold path)."""
    head = argv[:argv.index("--")] if "--" in argv else argv
    return "--input-format=stream-json" in head or any(
        a == "--input-format" and i + 1 < len(head) and head[i + 1] == "stream-json" for i, a in enumerate(head))


class _Hangup(BaseException):
    def __init__(self, signum: int):
        self.signum = signum


@contextlib.contextmanager
def _hangups_raise():
    """SIGINT / SIGTERM / SIGHUP raise _Hangup meanwhile (the call is then cancelled)."""
    def on_signal(signum, _frame):
        raise _Hangup(signum)
    saved = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in saved.items():
            signal.signal(s, h)


def _caller_stdin() -> str | None:
    """The prompt on stdin, read the way claude reads it (raises StdinError)."""
    return read_prompt_stdin(None, warn=lambda m: print(m, file=sys.stderr, flush=True))


def run(argv: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None) -> int | None:
    """Serve one call through the pool; return its exit code, or None when the cold path should run."""
    env = dict(os.environ if env is None else env)
    mode = pool_mode(env)
    if mode == "off" or streams_input(argv):
        return NO_POOL
    url = env.get("CLAUDE_BRIDGE_POOL_URL")    # a shared Redis queue (pool/redisq.py) instead of the local daemon
    path = socket_path(env)
    sock = None if url else protocol.connect(path)
    if not url and sock is None and mode == "start" and start_daemon(env, ["--exit-idle", str(ON_DEMAND_EXIT_IDLE)]):
        sock = protocol.connect(path)
    if sock is None and not url:
        if mode in ("require", "start"):
            print(f"claude-bridge: no pool daemon is running ({path}); start one with `claude-bridge pool start`",
                  file=sys.stderr, flush=True)
            return 1
        return NO_POOL

    with _hangups_raise():
        try:
            stdin_text = _caller_stdin()
        except StdinError as e:
            print(str(e), file=sys.stderr, flush=True)
            if sock is not None:
                sock.close()
            return 1
        if url:
            return _serve_queued(argv, url=url, env=env, cwd=os.path.abspath(cwd or os.getcwd()),
                                 stdin_text=stdin_text)
        assert sock is not None
        return _serve_local(sock, argv, env, cwd, stdin_text)


def _serve_local(sock, argv: list[str], env: dict[str, str], cwd: str | None, stdin_text: str | None) -> int:
    out = sys.stdout.buffer
    try:
        sock.sendall(protocol.encode({"op": "run", "argv": argv, "env": env,
                                      "cwd": os.path.abspath(cwd or os.getcwd()), "stdin": stdin_text}))
        return protocol.relay_frames(protocol.LineReader(sock), out, sys.stderr)
    except _Hangup as h:
        return 128 + h.signum
    except OSError:
        print("claude-bridge: lost the connection to the pool daemon", file=sys.stderr, flush=True)
        return 1
    finally:
        try:
            sock.close()
        except OSError:
            pass


def _serve_queued(argv: list[str], *, url: str, env: dict[str, str], cwd: str, stdin_text: str | None) -> int:
    """One call through a shared Redis queue (``CLAUDE_BRIDGE_POOL_URL``): the job goes to whichever
    pool worker takes it; its output is printed as the worker writes it; a hangup cancels it."""
    from claude_bridge_tmux.pool import redisq
    r = job_id = None
    out = sys.stdout.buffer
    try:
        r = redisq.connect(url)
        job_id = redisq.submit(r, argv=argv, stdin=stdin_text, cwd=cwd, env=env)

        def on_frame(frame: dict) -> None:
            if frame.get("ev") == "out":
                out.write(base64.b64decode(frame["b"]))
                out.flush()
            elif frame.get("ev") == "err":
                print(frame.get("t", ""), file=sys.stderr, flush=True)
        return redisq.follow(r, job_id, on_frame)
    except _Hangup as h:
        if r is not None and job_id is not None:
            try:
                redisq.cancel(r, job_id)
            except Exception:  # noqa: BLE001 - Redis gone too: the worker's caller check cancels it
                pass
        return 128 + h.signum
    except redisq.QueueError as e:
        print(str(e), file=sys.stderr, flush=True)
        return 1
    except Exception as e:  # noqa: BLE001 - a Redis error mid-job: one line, not a traceback
        print(f"claude-bridge: lost the Redis queue: {e}", file=sys.stderr, flush=True)
        return 1


def wait_gone(env: dict[str, str], timeout: float = 30.0, pid: int | None = None) -> bool:
    """Wait until no daemon answers on the socket and, given its ``pid``, that process has exited
    (it stops answering before it has retired its panes)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if request(env, {"op": "ping"}, timeout=1.0) is None:
            return pid is None or wait_process_gone(pid, max(0.0, end - time.monotonic()))
        time.sleep(0.1)
    return False
