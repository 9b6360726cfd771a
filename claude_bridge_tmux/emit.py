"""Write ``claude -p`` output: ``text``, ``json`` or ``stream-json`` (formats of claude-reference §2.1, §2.3).

The emitter is the only writer of stdout.  Stream lines are flushed one by one as the transcript
yields them.  A closed stdout (EPIPE) makes every later write a no-op and sets ``broken``.
"""

from __future__ import annotations

from typing import BinaryIO

from . import translate


class Emitter:
    """Writes one run's output. ``fmt`` is ``"text" | "json" | "stream-json"``; ``out`` a binary stream."""

    def __init__(self, fmt: str, out: BinaryIO, session_id: str, version: str | None = None):
        self.fmt = fmt
        self.out = out
        self.session_id = session_id
        # CLI version whose output shapes are used; None: taken from the first transcript record
        self.version = version
        self.broken = False
        self.init_sent = False
        self.last_result: dict | None = None   # the last result written (see runner.emit_turn)
        self._tool_uses: dict[str, dict] = {}
        self._denied: set[str] = set()

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
        """The stream-json lines for one transcript record of the turn (assistant / user tool_result;
        the denial and thinking-estimate system lines of versions that print them)."""
        if self.version is None and isinstance(record.get("version"), str):
            self.version = record["version"]
        if record.get("type") == "assistant":
            for b in (record.get("message") or {}).get("content") or ():
                if isinstance(b, dict) and b.get("type") == "tool_use" and isinstance(b.get("id"), str):
                    self._tool_uses[b["id"]] = b
        elif record.get("type") == "attachment":
            a = record.get("attachment") or {}
            if a.get("type") == "hook_permission_decision" and a.get("decision") == "deny" and a.get("toolUseID"):
                self._denied.add(a["toolUseID"])
        if self.fmt != "stream-json":
            return
        for msg in translate.stream_messages(record, session_id=self.session_id, version=self.version,
                                             tool_uses=self._tool_uses, denied_ids=self._denied):
            self.line(msg)

    def result(self, result: dict) -> tuple[str, int]:
        """Write the final output for ``result``; return ``(stderr_text, exit_code)`` as ``claude -p``."""
        if self.fmt == "stream-json":
            self.line(result)
            return "", translate.exit_code(result)
        if self.fmt == "json":
            self._write(translate.json_output(result))
            return "", translate.exit_code(result)
        stdout, stderr, code = translate.text_output(result, self.version)
        self._write(stdout)
        return stderr, code
