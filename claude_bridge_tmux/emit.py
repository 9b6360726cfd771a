"""Write ``claude -p`` output: ``text``, ``json`` or ``stream-json`` (formats of claude-reference §2.1, §2.3).

The emitter is the only writer of stdout.  Stream lines are flushed one by one as the transcript
yields them.  A closed stdout (EPIPE) makes every later write a no-op and sets ``broken``.
"""

from __future__ import annotations

from typing import BinaryIO

from . import translate


class Emitter:
    """Writes one run's output. ``fmt`` is ``"text" | "json" | "stream-json"``; ``out`` a binary stream."""

    def __init__(self, fmt: str, out: BinaryIO, session_id: str):
        self.fmt = fmt
        self.out = out
        self.session_id = session_id
        self.broken = False
        self.init_sent = False

    def _write(self, text: str) -> None:
        if self.broken:
            return
        try:
            self.out.write(text.encode("utf-8", "surrogatepass"))
            self.out.flush()
        except (BrokenPipeError, ValueError, OSError):
            self.broken = True

    def line(self, obj: dict) -> None:
        """One stream-json line (only in stream-json mode)."""
        if self.fmt == "stream-json":
            self._write(translate.dumps(obj) + "\n")

    def init(self, message: dict) -> None:
        """The ``system/init`` line; sent once."""
        if not self.init_sent:
            self.init_sent = True
            self.line(message)

    def record(self, record: dict) -> None:
        """The stream-json lines for one transcript record of the turn (assistant / user tool_result)."""
        if self.fmt != "stream-json":
            return
        for msg in translate.stream_messages(record, session_id=self.session_id):
            self.line(msg)

    def result(self, result: dict) -> tuple[str, int]:
        """Write the final output for ``result``; return ``(stderr_text, exit_code)`` as ``claude -p``."""
        if self.fmt == "stream-json":
            self.line(result)
            return "", translate.exit_code(result)
        if self.fmt == "json":
            self._write(translate.json_output(result))
            return "", translate.exit_code(result)
        stdout, stderr, code = translate.text_output(result)
        self._write(stdout)
        return stderr, code
