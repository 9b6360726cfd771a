"""The client side of a pooled ``claude-bridge -p`` call (import-light: no tmux, no watchdog).

Routing (env ``CLAUDE_BRIDGE_POOL``):
  unset / ``auto``   use the pool when one is running, else run cold;
  ``0`` / ``off``    never use the pool;
  ``1`` / ``require`` the pool must serve the call (no pool → one-line error, exit 1);
  ``start``          start a daemon (``pool start`` defaults, ``--exit-idle 600``) when none runs, then
                     use it; that daemon stops itself after 10 minutes without a job.
The client reads stdin itself (claude's 3-second rule), sends one request, copies the daemon's
frames to stdout/stderr, and exits with the code the daemon reports.  SIGINT / SIGTERM / SIGHUP
close the connection (which cancels the job in the daemon) and exit 128 + signal.
"""

from __future__ import annotations

import base64
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


def run(argv: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None) -> int | None:
    """Serve one call through the pool; return its exit code, or None when the cold path should run."""
    env = dict(os.environ if env is None else env)
    mode = pool_mode(env)
    if mode == "off" or streams_input(argv):
        return NO_POOL
    path = socket_path(env)
    sock = protocol.connect(path)
    if sock is None and mode == "start" and start_daemon(env, ["--exit-idle", str(ON_DEMAND_EXIT_IDLE)]):
        sock = protocol.connect(path)
    if sock is None:
        if mode in ("require", "start"):
            print(f"claude-bridge: no pool daemon is running ({path}); start one with `claude-bridge pool start`",
                  file=sys.stderr, flush=True)
            return 1
        return NO_POOL

    def on_signal(signum, _frame):
        raise _Hangup(signum)

    saved = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    out = sys.stdout.buffer
    try:
        try:
            stdin_text = read_prompt_stdin(None, warn=lambda m: print(m, file=sys.stderr, flush=True))
        except StdinError as e:
            print(str(e), file=sys.stderr, flush=True)
            return 1
        sock.sendall(protocol.encode({"op": "run", "argv": argv, "env": env,
                                      "cwd": os.path.abspath(cwd or os.getcwd()), "stdin": stdin_text}))
        reader = protocol.LineReader(sock)
        while True:
            frame = reader.read()
            if frame is None:
                print("claude-bridge: the pool daemon went away before the call finished", file=sys.stderr,
                      flush=True)
                return 1
            ev = frame.get("ev")
            if ev == "out":
                try:
                    out.write(base64.b64decode(frame["b"]))
                    out.flush()
                except BrokenPipeError:
                    return 1
            elif ev == "err":
                print(frame.get("t", ""), file=sys.stderr, flush=True)
            elif ev == "exit":
                return int(frame.get("code", 1))
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
        for s, h in saved.items():
            signal.signal(s, h)


def wait_gone(env: dict[str, str], timeout: float = 30.0, pid: int | None = None) -> bool:
    """Wait until no daemon answers on the socket and, given its ``pid``, that process has exited
    (it stops answering before it has retired its panes)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if request(env, {"op": "ping"}, timeout=1.0) is None:
            return pid is None or wait_process_gone(pid, max(0.0, end - time.monotonic()))
        time.sleep(0.1)
    return False
