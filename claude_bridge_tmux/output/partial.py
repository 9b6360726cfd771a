"""The ``--include-partial-messages`` lines of ``claude -p`` stream-json (pure; no I/O, no clock).

Produces ``stream_event`` lines (:func:`stream_event`) holding the events of one API response, and the
``system/status`` ``requesting`` line before each request (:func:`status_line`). `-p` forwards the raw
SSE events of every response; the transcript holds one record per finished content block, so the
events around each record are synthesised: ``message_start`` (before a response's first block, after
the status line), ``content_block_start``, ONE delta with the block's whole content (``text_delta`` /
``thinking_delta`` + ``signature_delta`` / ``input_json_delta``), the ``assistant`` line,
``content_block_stop``; ``message_delta`` (final stop_reason and usage) and ``message_stop`` once the
response's last block is known (next record, or the turn's end). The emitter (:mod:`emit`) orders them.

Format: `-p` 2.1.197 and 2.1.329 partial-message runs as probed in docs/probe-notes.md §10 (2.1.329
adds ``thinking_display`` / ``api_message_id``: ``Dialect.stream_event_extras``); there is no recorded
partial-message capture under tests/data, so tests/unit/test_emulated_options.py checks the sequence.
Fresh uuids come from the ``new_uuid`` arguments (default: uuid4).
"""

from __future__ import annotations

import uuid as _uuidlib
from collections.abc import Callable, Mapping
from typing import Any

from claude_bridge_tmux.output import messages
from claude_bridge_tmux.output.jsjson import dumps
from claude_bridge_tmux.versions import dialect


def stream_event(event: Mapping[str, Any], *, session_id: str, version: str | None, api_message_id: str | None,
                 thinking: bool = False, ttft_ms: int | None = None, new_uuid: Callable[[], str] | None = None) -> dict:
    """One ``stream_event`` line (2.1.329 adds ``thinking_display`` on thinking events and
    message_start, and ``api_message_id``)."""
    mk = new_uuid or (lambda: str(_uuidlib.uuid4()))
    line: dict[str, Any] = {"type": "stream_event", "event": dict(event), "session_id": session_id,
                            "parent_tool_use_id": None, "uuid": mk()}
    if ttft_ms is not None:
        line["ttft_ms"] = ttft_ms
    if dialect(version).stream_event_extras:
        if thinking:
            line["thinking_display"] = "updates"
        if api_message_id:
            line["api_message_id"] = api_message_id
    return line


def status_line(*, session_id: str, version: str | None, new_uuid: Callable[[], str] | None = None) -> dict:
    """``{"type":"system","subtype":"status","status":"requesting"}`` printed before each API request."""
    mk = new_uuid or (lambda: str(_uuidlib.uuid4()))
    if dialect(version).stream_event_extras:
        return {"type": "system", "subtype": "status", "status": "requesting", "session_id": session_id, "uuid": mk()}
    return {"type": "system", "subtype": "status", "status": "requesting", "uuid": mk(), "session_id": session_id}


def message_start_event(message: Mapping[str, Any]) -> dict:
    return {"type": "message_start", "message": {
        "id": message.get("id"), "type": "message", "role": "assistant", "model": message.get("model"),
        "content": [], "stop_reason": None, "stop_sequence": None, "usage": messages.start_usage(message.get("usage"))}}


def block_events(block: Mapping[str, Any], index: int) -> tuple[dict, list[dict]]:
    """(``content_block_start``, [deltas]) for one finished content block."""
    t = block.get("type")
    start: dict[str, Any]
    deltas: list[dict[str, Any]]
    if t == "text":
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": block.get("text", "")}]
    elif t == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": block.get("thinking", "")}]
        if block.get("signature"):
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif t in ("tool_use", "server_tool_use") or str(t).endswith("tool_use"):
        start = {"type": t, "id": block.get("id"), "name": block.get("name"), "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": dumps(block.get("input", {}))}]
    else:
        start = dict(block)
        deltas = []
    return ({"type": "content_block_start", "index": index, "content_block": start},
            [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas])


def message_end_events(message: Mapping[str, Any]) -> list[dict]:
    """``message_delta`` (final stop_reason / usage) and ``message_stop`` of a finished response."""
    u = message.get("usage") or {}
    usage = {k: u.get(k, 0) for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
                                      "output_tokens")}
    return [{"type": "message_delta", "delta": {"stop_reason": message.get("stop_reason"),
                                                "stop_sequence": message.get("stop_sequence")}, "usage": usage},
            {"type": "message_stop"}]
