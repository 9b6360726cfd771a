"""Local slash commands in a transcript (pure): which records they write and what they printed.

A prompt starting with ``/`` that names a local command (``/clear``, ``/compact``, ``/context`` …)
writes no prompt record and no ``system/turn_duration``: it writes ``system/informational`` /
``system/local_command`` records and ``<command-name>`` / ``<local-command-stdout>`` user records.
An unknown command writes ``system/informational`` "Unknown command: /x". Seen on 2.1.197 and
2.1.329 (docs/probe-notes.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from claude_bridge_tmux.follow.tree import content_text

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# stdout a local command shows only in the terminal (claude -p's result leaves it out)
_TERMINAL_HINT = re.compile(r"^Compacted\b.*\(ctrl\+o to see full summary\)$", re.S)
_STDOUT = re.compile(r"<local-command-(stdout|stderr)>(.*?)</local-command-\1>", re.S)


def record_time(rec: Mapping[str, Any]) -> float | None:
    """A record's ``timestamp`` (ISO 8601, ``Z``) as epoch seconds, or None."""
    ts = rec.get("timestamp")
    if not isinstance(ts, str):
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def is_local_command_record(rec: dict, since: float) -> bool:
    """A record a local slash command writes (``system/informational``, ``system/local_command``, the
    ``<command-name>`` / ``<local-command-stdout>`` user records), written after ``since`` (epoch s)
    -- so records of a pool's earlier ``/clear`` do not count."""
    t = record_time(rec)
    if t is None or t < since - 1.0:
        return False
    if rec.get("type") == "system" and rec.get("subtype") in ("informational", "local_command"):
        return True
    if rec.get("type") == "user" and not rec.get("isSidechain"):
        text = content_text(rec) or ""
        if rec.get("isMeta") and not rec.get("isCompactSummary") and text and not text.startswith("<"):
            return True   # the command's report as the model would see it (e.g. /context's markdown)
        return text.startswith(("<command-name>", "<command-message>", "<local-command-stdout>",
                                "<local-command-stderr>", "<local-command-caveat>"))
    return False


def unknown_command(records: list[dict]) -> str | None:
    """``Unknown command: /x`` (claude's own text) when the records say the command does not exist."""
    for r in records:
        c = r.get("content")
        if r.get("subtype") == "informational" and isinstance(c, str) and c.startswith("Unknown command: "):
            return c
    return None


def local_command_text(records: list[dict]) -> str:
    """What a local command printed: its report for the model (a meta user record, as ``claude -p``
    prints it), else its last ``<local-command-stdout>`` (ANSI codes removed), else the first
    informational message, else ""."""
    meta = [content_text(r) for r in records if r.get("type") == "user" and r.get("isMeta")
            and not (content_text(r) or "<").startswith("<")]
    if meta:
        return meta[-1] or ""
    out: str | None = None
    for r in records:
        c = r.get("content") if r.get("type") == "system" else content_text(r)
        if not isinstance(c, str):
            continue
        for m in _STDOUT.finditer(c):
            out = "" if _TERMINAL_HINT.match(m.group(2).strip()) else m.group(2)
    if out is None:
        info = [r.get("content") for r in records if r.get("subtype") == "informational"]
        out = info[0] if info and isinstance(info[0], str) else ""
    return _ANSI.sub("", out).strip("\n")


def records_span(records: list[dict]) -> float:
    """Seconds between the first and the last timestamp of ``records`` (0.0 without timestamps)."""
    times = [t for t in map(record_time, records) if t is not None]
    return (max(times) - min(times)) if times else 0.0
