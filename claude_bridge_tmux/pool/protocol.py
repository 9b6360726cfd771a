"""Pool wire protocol: JSON lines over a Unix stream socket in the private runtime directory.

Client → daemon, one line: ``{"op": "run", "argv": [...], "env": {...}, "cwd": str, "stdin": str|null}``
or ``{"op": "status"}``, ``{"op": "drain"}``, ``{"op": "stop"}``, ``{"op": "ping"}``.
Daemon → client, lines: ``{"ev": "out", "b": <base64 bytes for stdout>}``, ``{"ev": "err", "t": <text
for stderr>}``, then exactly one ``{"ev": "exit", "code": int}`` (or ``{"ev": "reply", ...}`` for the
control ops).  The client closing its end cancels its job.

Only the same user may connect: the daemon checks ``SO_PEERCRED``; the socket lives in a 0700 dir.
Import-light (the client imports this on every pooled call).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct

SOCKET_NAME = "pool.sock"
PID_NAME = "pool.pid"


def socket_path(runtime_dir) -> str:
    """Path of the pool socket inside the runtime directory."""
    return os.path.join(str(runtime_dir), SOCKET_NAME)


def encode(obj: dict) -> bytes:
    """One frame: compact JSON + newline."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass") + b"\n"


class LineReader:
    """Reads newline-framed JSON objects from a socket; ``read()`` returns None at EOF."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def read(self) -> dict | None:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line.decode("utf-8", "surrogatepass"))


def peer_uid(sock: socket.socket) -> int | None:
    """UID of the process at the other end of a Unix socket (Linux SO_PEERCRED), or None."""
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


def connect(path: str, timeout: float | None = 1.0) -> socket.socket | None:
    """Connect to the pool socket; None when no pool answers there."""
    if not os.path.exists(path):
        return None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
    except OSError:
        s.close()
        return None
    s.settimeout(None)
    return s


def relay_frames(reader: LineReader, stdout, stderr, what: str = "call") -> int:
    """Client side: copy the daemon's ``out`` frames to ``stdout`` (binary) and ``err`` frames to
    ``stderr`` (text) until the ``exit`` frame; return its code. A daemon that goes away first, or a
    closed stdout, gives 1 (the former with one line naming ``what`` was cut short). Raises OSError
    when the socket fails."""
    while True:
        frame = reader.read()
        if frame is None:
            print(f"claude-bridge: the pool daemon went away before the {what} finished", file=stderr, flush=True)
            return 1
        ev = frame.get("ev")
        if ev == "out":
            try:
                stdout.write(base64.b64decode(frame["b"]))
                stdout.flush()
            except (BrokenPipeError, ValueError):
                return 1
        elif ev == "err":
            print(frame.get("t", ""), file=stderr, flush=True)
        elif ev == "exit":
            return int(frame.get("code", 1))


class FrameChannel:
    """Where a job's frames go (the local socket or a Redis stream): ``send(frame)`` raises
    BrokenPipeError once the caller is gone; ``err(text)`` sends an ``err`` frame and never raises."""

    def send(self, frame: dict) -> None:  # pragma: no cover - implemented by each channel
        raise NotImplementedError

    def err(self, text: str) -> None:
        try:
            self.send({"ev": "err", "t": text})
        except BrokenPipeError:
            pass
