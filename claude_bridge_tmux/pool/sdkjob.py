"""Agent SDK sessions served from the local pool: the SDK's stdin and stdout travel over the pool
socket, and the daemon runs the session (run/sdk.py's :class:`SdkSession`) on a warm pane.

Client → daemon: ``{"op": "sdk", "argv", "env", "cwd", "first": <first user message or null>}``, then
``{"ev": "in", "l": <one stdin line>}`` per SDK line and ``{"ev": "eof"}`` at the end of stdin.
Daemon → client: the pool protocol's ``out`` / ``err`` / ``exit`` frames (pool/protocol.py). The client
has already read and answered ``initialize`` (it decides whether the session can be pooled from it).

A session is served from the pool only when a warm pane can serve it as it is: no SDK hooks, no
``can_use_tool`` callback and no in-process SDK MCP server (each needs the pane's launch settings),
and no option that needs a pane of its own (``--resume``, ``--continue``, ``--fork-session``,
``--session-id``; ``--max-turns``, ``--max-budget-usd`` and ``--json-schema``, whose tool gate and
StructuredOutput server are launch settings). Isolation is a ``-p`` job's: the pane is cleared before its next user and the job's
environment reaches its tools through the per-job env file. A session that changed the pane
(``set_permission_mode``, ``set_model``) retires it instead of giving it back.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from claude_bridge_tmux.pool import protocol


def poolable(argv: list[str], hooks: Mapping, has_sdk_mcp: bool) -> bool:
    """Whether an SDK session with these options can run on a shared warm pane (module docstring)."""
    if hooks or has_sdk_mcp:
        return False
    own = ("--resume", "--continue", "--fork-session", "--session-id", "--permission-prompt-tool", "-r", "-c",
           # a tool gate and the StructuredOutput server are launch settings of the pane
           "--json-schema", "--max-turns", "--max-budget-usd")
    return not any(a.split("=", 1)[0] in own for a in argv)


def serve_from_pool(sock, argv: list[str], *, env: dict[str, str], cwd: str, first: dict | None, lines,
                    stdout, stderr) -> int:
    """Client side: hand the session to the daemon on ``sock``; pump the SDK's remaining stdin
    ``lines`` (run/sdk.FdLines) to it and its frames to ``stdout`` (bytes) / ``stderr`` (text) until
    its exit frame; return the exit code. A daemon that goes away ends the session with one line."""
    sock.sendall(protocol.encode({"op": "sdk", "argv": argv, "env": env, "cwd": cwd, "first": first}))

    def pump() -> None:
        try:
            while True:
                raw = lines.readline()
                if not raw:
                    break
                sock.sendall(protocol.encode({"ev": "in", "l": raw.decode("utf-8", "surrogateescape")}))
            sock.sendall(protocol.encode({"ev": "eof"}))
        except OSError:
            pass
    threading.Thread(target=pump, daemon=True, name="sdk-pool-stdin").start()
    try:
        return protocol.relay_frames(protocol.LineReader(sock), stdout, stderr, what="session")
    except OSError:
        print("claude-bridge: lost the connection to the pool daemon", file=stderr, flush=True)
        return 1
    finally:
        try:
            sock.close()
        except OSError:
            pass


class SocketLines:
    """The daemon's view of a pooled SDK session's stdin: the client's ``in`` frames as lines (the
    interface :meth:`SdkSession.read_stdin` reads). ``readline`` returns ``b""`` at ``eof`` or when the
    client hangs up; ``on_hangup`` is called in that second case."""

    def __init__(self, reader: protocol.LineReader, on_hangup):
        self.reader = reader
        self.on_hangup = on_hangup

    def readline(self) -> bytes:
        try:
            frame = self.reader.read()
        except (OSError, ValueError):
            frame = None
        if frame is None:
            self.on_hangup()
            return b""
        if frame.get("ev") == "in":
            return str(frame.get("l") or "").encode("utf-8", "surrogateescape") or b"\n"
        return b""


def first_message(sdk) -> dict | None:
    """The first user message the client's SdkSession has queued (``query()`` sends it at once)."""
    try:
        obj = sdk.inbox.queue[0]
    except IndexError:
        return None
    if isinstance(obj, dict):
        return sdk.inbox.get()
    return None


__all__ = ["SocketLines", "first_message", "poolable", "serve_from_pool"]
