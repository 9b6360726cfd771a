"""Interactive transcript records -> exactly what `claude -p` prints (pure; no I/O, no clock).

Everything here was checked against captures of the real CLI 2.1.197 (see
``tests/data/print`` and ``tests/data/transcripts``):

* stream-json ``assistant`` lines: one per transcript assistant record (both modes write
  one content block per record and reuse the record uuid). `-p` emits each block at
  ``content_block_stop``, *before* ``message_delta``, so its ``message`` carries
  ``stop_reason: null``, ``stop_sequence: null``, the ``message_start`` usage
  (``output_tokens: 1``, five keys) and ``context_management: null``; the transcript holds
  the final values and ``stop_details: null`` instead. We rebuild the `-p` form
  (``final_usage=True`` keeps the transcript's final values). Synthetic messages
  (``model: "<synthetic>"``: API errors, interrupted output) are identical in both modes
  and are passed through unchanged.
* stream-json ``user`` lines: tool results (``toolUseResult`` -> ``tool_use_result``) and
  the structured-output nudge; nothing else in the transcript has a `-p` counterpart.
* the ``result`` object: see :func:`result_message`.
* :func:`dumps` writes JSON like ``JSON.stringify``.
"""

from __future__ import annotations

import re
import uuid as _uuidlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from json.encoder import encode_basestring as _encode_str  # C speedup, non-ASCII kept
from typing import Any

from claude_bridge_tmux.output import pricing as _pricing
from claude_bridge_tmux.output import shapes as _shapes
from claude_bridge_tmux.versions import dialect

SYNTHETIC_MODEL = "<synthetic>"
NUDGE_PREFIX = "[structured-output-enforce]"
REJECTED_TOOL_USE = "User rejected tool use"

_AUTO: Any = object()
_UNSET: Any = object()


# =========================================================================== JSON


_SURROGATE = re.compile("[\ud800-\udfff]")


def _js_str(s: str) -> str:
    out = _encode_str(s)
    if _SURROGATE.search(out):
        # Pairs split into two code points are one character to JS: join them first;
        # JSON.stringify (ES2019) writes lone surrogates as lowercase \udxxx escapes.
        joined = out.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
        out = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", joined)
    return out


def js_number(x: float | int) -> str:
    """``Number.prototype.toString`` (as used by JSON.stringify) for a float or int."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if x != x or x in (float("inf"), float("-inf")):
        return "null"
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    # repr gives the shortest round-tripping digits, the same digits JS picks
    t = Decimal(repr(abs(x))).as_tuple()
    digits = "".join(map(str, t.digits)).rstrip("0") or "0"
    strip = len("".join(map(str, t.digits))) - len(digits)
    k = len(digits)
    n = k + t.exponent + strip  # value = 0.digits * 10**n
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mant = digits if k == 1 else digits[0] + "." + digits[1:]
        body = mant + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return sign + body


def _enc(obj: Any, parts: list[str]) -> None:
    if obj is None:
        parts.append("null")
    elif obj is True:
        parts.append("true")
    elif obj is False:
        parts.append("false")
    elif isinstance(obj, str):
        parts.append(_js_str(obj))
    elif isinstance(obj, (int, float)):
        parts.append(js_number(obj))
    elif isinstance(obj, Mapping):
        parts.append("{")
        first = True
        for k, v in obj.items():
            if v is _UNSET:
                continue
            if not first:
                parts.append(",")
            first = False
            parts.append(_js_str(k if isinstance(k, str) else str(k)))
            parts.append(":")
            _enc(v, parts)
        parts.append("}")
    elif isinstance(obj, (list, tuple)):
        parts.append("[")
        for i, v in enumerate(obj):
            if i:
                parts.append(",")
            _enc(v, parts)
        parts.append("]")
    else:
        raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def dumps(obj: Any) -> str:
    """Compact JSON exactly like ``JSON.stringify(obj)``.

    No spaces; non-ASCII, ``/``, U+2028/U+2029 and DEL written raw; control characters
    as ``\\b \\t \\n \\f \\r`` or lowercase ``\\u00xx``; lone surrogates as ``\\udxxx``;
    numbers in JS notation (``0.00004005``, ``1e-7``, ``0`` for ``0.0``).
    """
    parts: list[str] = []
    _enc(obj, parts)
    return "".join(parts)


def dumps_line(obj: Any) -> str:
    """One stream-json / json output line (with its ``\\n``)."""
    return dumps(obj) + "\n"


# =========================================================================== init


def init_message(
    *,
    session_id: str,
    cwd: str,
    model: str,
    permission_mode: str,
    claude_code_version: str,
    tools: Sequence[str] | None = None,
    mcp_servers: Sequence[Mapping[str, Any]] | None = None,
    slash_commands: Sequence[str] | None = None,
    agents: Sequence[str] | None = None,
    skills: Sequence[str] | None = None,
    plugins: Sequence[Mapping[str, Any]] | None = None,
    api_key_source: str = "none",
    output_style: str = "default",
    memory_paths: Mapping[str, str] | None = None,
    uuid: str,
    analytics_disabled: bool = False,
    product_feedback_disabled: bool = False,
    fast_mode_state: str = "off",
    home: str | None = None,
    version: str | None = None,
    fill_from_sample: bool = False,
) -> dict:
    """The ``system/init`` line, keys in `-p`'s order for ``version`` (shapes; None: 2.1.197).

    Used when the CLI's own init line (``initprobe``) is not available. ``model`` is the
    resolved model key `-p` shows. ``memory_paths``: given as is; else computed from ``home``
    and ``cwd`` (``{"auto": "<home>/.claude/projects/<enc-cwd>/memory/"}``); with neither the
    key is left out. Inventories not given are ``[]``, or with ``fill_from_sample`` the
    version's recorded defaults (a plain installation's built-in tools, commands, agents…),
    which also fill the version's other constant fields (``capabilities``, ``view_mode`` …).
    """
    shp = _shapes.load(version)
    if memory_paths is None and home is not None:
        memory_paths = {"auto": f"{home.rstrip('/')}/.claude/projects/{encode_project_dir(cwd)}/memory/"}
    miss = _shapes.MISSING if fill_from_sample else None

    def inv(v, conv=list):
        if v is None:
            return miss if miss is not None else []
        return [conv(x) for x in v] if conv is dict else list(v)

    msg: dict[str, Any] = {
        "type": "system",
        "subtype": "init",
        "cwd": cwd,
        "session_id": session_id,
        "tools": inv(tools),
        "mcp_servers": inv(mcp_servers, dict),
        "model": model,
        "permissionMode": permission_mode,
        "slash_commands": inv(slash_commands),
        "apiKeySource": api_key_source,
        "claude_code_version": claude_code_version,
        "output_style": output_style,
        "agents": inv(agents),
        "skills": inv(skills),
        "plugins": inv(plugins, dict),
        "analytics_disabled": analytics_disabled,
        "product_feedback_disabled": product_feedback_disabled,
        "uuid": uuid,
        "original_cwd": cwd,
        "additional_directories": [],
    }
    if memory_paths is not None:
        msg["memory_paths"] = dict(memory_paths)
    msg["fast_mode_state"] = fast_mode_state
    if not fill_from_sample:
        msg = {k: v for k, v in msg.items() if v is not _shapes.MISSING}
    out = shp.order_line("system/init", msg, fill=fill_from_sample)
    return out


def encode_project_dir(cwd: str) -> str:
    """``~/.claude/projects`` folder name for short paths: every char outside
    ``[A-Za-z0-9]`` becomes ``-``. (Paths over 200 chars get a hash suffix the CLI
    computes itself; not reproduced here.)"""
    return re.sub(r"[^A-Za-z0-9]", "-", cwd)


# =========================================================================== stream messages


def is_synthetic(message: Mapping[str, Any]) -> bool:
    return message.get("model") == SYNTHETIC_MODEL


def _start_usage(usage: Mapping[str, Any] | None) -> dict:
    u = usage or {}
    return {
        "input_tokens": u.get("input_tokens", 0),
        "cache_creation_input_tokens": u.get("cache_creation_input_tokens", 0),
        "cache_read_input_tokens": u.get("cache_read_input_tokens", 0),
        "output_tokens": 1,
        "service_tier": u.get("service_tier") or "standard",
    }


_MSG_FIRST = ("id", "type", "role", "model", "content")
_MSG_DROP = set(_MSG_FIRST) | {"stop_reason", "stop_sequence", "usage", "stop_details", "context_management"}


def stream_message_body(message: Mapping[str, Any], *, final_usage: bool = False) -> dict:
    """The ``message`` of a `-p` assistant line for a transcript ``message``."""
    if is_synthetic(message):
        return dict(message)
    body: dict[str, Any] = {k: message[k] for k in _MSG_FIRST if k in message}
    if final_usage:
        body["stop_reason"] = message.get("stop_reason")
        body["stop_sequence"] = message.get("stop_sequence")
        body["usage"] = message.get("usage")
    else:
        body["stop_reason"] = None
        body["stop_sequence"] = None
        body["usage"] = _start_usage(message.get("usage"))
    for k, v in message.items():  # e.g. "container" on real API messages
        if k not in _MSG_DROP:
            body[k] = v
    body["context_management"] = None
    return body


# transcript record field -> assistant line field (printed when the version's shape has it)
_ASSISTANT_FIELDS = (
    ("timestamp", "timestamp"), ("error", "error"), ("requestId", "request_id"),
    ("isApiErrorMessage", "is_api_error_message"), ("apiErrorStatus", "api_error_status"),
    ("apiErrorType", "api_error_type"), ("thinkingDurationMs", "thinking_duration_ms"),
    ("thinkingDisplay", "thinking_display"),
)


def _camel_to_snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def tool_result_meta(record: Mapping[str, Any], denied: bool) -> list[dict]:
    """2.1.329's ``tool_result_meta`` for a tool-result user record: one entry per tool_result
    block, ``{"id"[, "non_execution_kind"], "permission_decision"}``.

    From the record: ``toolDenialKind`` -> ``non_execution_kind``, ``permissionDecision``
    (camelCase, ``reasonCode`` dropped) -> ``permission_decision`` (snake_case). A denial made by
    a PermissionRequest hook (``source: "hook"``: the bridge's stand-in for `-p`'s auto-deny) is
    reported as `-p` reports its own: ``non_execution_kind: "user-rejected"``,
    ``{"decision": "reject", "source": "config"}``.
    """
    pd = record.get("permissionDecision")
    by_hook = denied and (not isinstance(pd, Mapping) or pd.get("source") == "hook")
    out = []
    for b in (record.get("message") or {}).get("content") or ():
        if not (isinstance(b, Mapping) and b.get("type") == "tool_result"):
            continue
        e: dict[str, Any] = {"id": b.get("tool_use_id")}
        if by_hook:
            e["non_execution_kind"] = "user-rejected"
            e["permission_decision"] = {"decision": "reject", "source": "config"}
        else:
            if denied and isinstance(record.get("toolDenialKind"), str):
                e["non_execution_kind"] = record["toolDenialKind"]
            if isinstance(pd, Mapping):
                e["permission_decision"] = {_camel_to_snake(k): v for k, v in pd.items() if k != "reasonCode"}
        out.append(e)
    return out


def is_denial(record: Mapping[str, Any], denied_ids: Iterable[str] = ()) -> bool:
    """A tool-result record that reports a permission denial (hook attachment seen for its
    tool_use id, or the record's own ``permissionDecision.decision == "reject"``)."""
    pd = record.get("permissionDecision")
    if isinstance(pd, Mapping) and pd.get("decision") == "reject":
        return True
    ids = set(denied_ids)
    return any(isinstance(b, Mapping) and b.get("type") == "tool_result" and b.get("tool_use_id") in ids
               for b in (record.get("message") or {}).get("content") or ())


def _tool_result_text(block: Mapping[str, Any]) -> str:
    c = block.get("content")
    if isinstance(c, str):
        return c
    if isinstance(c, list):
        return "".join(x.get("text", "") for x in c if isinstance(x, Mapping) and x.get("type") == "text")
    return ""


def _record_version(record: Mapping[str, Any]) -> str | None:
    """The CLI version that wrote a transcript record (every record carries ``version``)."""
    v = record.get("version")
    return v if isinstance(v, str) else None


def thinking_estimate(text: str) -> int:
    """`-p`'s live thinking-token estimate for a thinking text (4 characters per token, rounded up)."""
    return -(-len(text) // 4)


def stream_messages(record: Mapping[str, Any], *, session_id: str, final_usage: bool = False,
                    version: str | None = None, tool_uses: Mapping[str, Mapping[str, Any]] | None = None,
                    denied_ids: Iterable[str] = (), new_uuid: Callable[[], str] | None = None) -> list[dict]:
    """0..n stream-json messages for one transcript record, shaped for CLI ``version`` (default:
    the version that wrote the record).

    assistant record -> ``{"type":"assistant","message","parent_tool_use_id":null,
    "session_id","uuid"[,"timestamp"][,"error"],"request_id"[,api error fields][,thinking fields]}``
    (which optional fields a version prints comes from its shapes), preceded for a thinking
    block by one ``system/thinking_tokens`` line when the version prints those (`-p` prints one
    per streamed delta; the transcript only has the whole block: one line with the total);
    tool-result user record -> ``{"type":"user","message","parent_tool_use_id":null,"session_id",
    "uuid","timestamp","tool_use_result"[,"tool_result_meta"]}``, preceded for a denial by a
    ``system/permission_denied`` line when the version prints those (``tool_uses``: tool_use id
    -> block, for the tool's name; ``denied_ids``: ids denied by a PermissionRequest hook);
    structured-output nudge (isMeta) -> the `-p` synthetic user line; everything else
    (prompt, attachments, system records, interrupt markers, metadata, sidechain records) -> ``[]``.
    """
    shp = _shapes.load(version or _record_version(record))
    mk_uuid = new_uuid or (lambda: str(_uuidlib.uuid4()))
    rtype = record.get("type")
    if record.get("isSidechain"):
        return []
    msg = record.get("message")
    if not isinstance(msg, Mapping):
        return []
    if rtype == "assistant":
        out: list[dict] = []
        content = msg.get("content")
        if shp.has_line("system/thinking_tokens") and isinstance(content, list):
            for b in content:
                if isinstance(b, Mapping) and b.get("type") == "thinking" and isinstance(b.get("thinking"), str):
                    n = thinking_estimate(b["thinking"])
                    if n:
                        out.append(shp.order_line("system/thinking_tokens", {
                            "type": "system", "subtype": "thinking_tokens", "estimated_tokens": n,
                            "estimated_tokens_delta": n, "session_id": session_id, "uuid": mk_uuid()}))
        line: dict[str, Any] = {
            "type": "assistant",
            "message": stream_message_body(msg, final_usage=final_usage),
            "parent_tool_use_id": None,
            "session_id": session_id,
            "uuid": record.get("uuid"),
        }
        for src, dst in _ASSISTANT_FIELDS:
            if record.get(src) is not None:
                line[dst] = record[src]
        out.append(shp.order_line("assistant", line))
        return out
    if rtype == "user":
        content = msg.get("content")
        if isinstance(content, list) and any(
            isinstance(b, Mapping) and b.get("type") == "tool_result" for b in content
        ):
            out = []
            denied = is_denial(record, denied_ids)
            if denied and shp.has_line("system/permission_denied"):
                for b in content:
                    if not (isinstance(b, Mapping) and b.get("type") == "tool_result"):
                        continue
                    tid = b.get("tool_use_id")
                    text = _tool_result_text(b)
                    out.append(shp.order_line("system/permission_denied", {
                        "type": "system", "subtype": "permission_denied",
                        "tool_name": ((tool_uses or {}).get(tid) or {}).get("name"), "tool_use_id": tid,
                        "decision_reason": text, "message": text, "uuid": mk_uuid(), "session_id": session_id,
                    }, fill=True))
            line = {
                "type": "user",
                "message": msg,
                "parent_tool_use_id": None,
                "session_id": session_id,
                "uuid": record.get("uuid"),
                "timestamp": record.get("timestamp"),
            }
            if "toolUseResult" in record:
                line["tool_use_result"] = record["toolUseResult"]
            line["tool_result_meta"] = tool_result_meta(record, denied)
            out.append(shp.order_line("user", line))
            return out
        if _is_nudge(record):
            text = content if isinstance(content, str) else "".join(
                b.get("text", "") for b in content if isinstance(b, Mapping) and b.get("type") == "text"
            )
            return [
                {
                    "type": "user",
                    "message": {"role": "user", "content": [{"type": "text", "text": text}]},
                    "parent_tool_use_id": None,
                    "session_id": session_id,
                    "uuid": record.get("uuid"),
                    "timestamp": record.get("timestamp"),
                    "isSynthetic": True,
                }
            ]
    return []


# =========================================================================== partial messages
#
# --include-partial-messages: `-p` forwards the raw SSE events of every API response. The transcript
# holds one record per finished content block, so the bridge synthesises the events around each
# record: ``message_start`` (before a response's first block, after a ``system/status``
# ``requesting`` line), ``content_block_start``, ONE delta with the block's whole content
# (``text_delta`` / ``thinking_delta`` + ``signature_delta`` / ``input_json_delta``), the
# ``assistant`` line, ``content_block_stop``; ``message_delta`` (final stop_reason and usage) and
# ``message_stop`` once the response's last block is known (next record, or the turn's end).


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
        "content": [], "stop_reason": None, "stop_sequence": None, "usage": _start_usage(message.get("usage"))}}


def block_events(block: Mapping[str, Any], index: int) -> tuple[dict, list[dict]]:
    """(``content_block_start``, [deltas]) for one finished content block."""
    t = block.get("type")
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


_HOOK_OUTCOMES = {"hook_success": "success", "hook_non_blocking_error": "error", "hook_blocking_error": "error",
                  "hook_error_during_execution": "error", "hook_cancelled": "cancelled"}


def hook_event_lines(record: Mapping[str, Any], *, session_id: str,
                     new_uuid: Callable[[], str] | None = None) -> list[dict]:
    """--include-hook-events: ``system/hook_started`` + ``system/hook_response`` for a hook-result
    attachment of the transcript (the caller's own hooks; the bridge's are left out)."""
    a = record.get("attachment") if record.get("type") == "attachment" else None
    if not isinstance(a, Mapping) or a.get("type") not in _HOOK_OUTCOMES:
        return []
    command = str(a.get("command") or "")
    if ".$$" in command and "/hooks/" in command:
        return []                       # one of the bridge's own hooks
    mk = new_uuid or (lambda: str(_uuidlib.uuid4()))
    hook_id = mk()
    name, event = a.get("hookName") or a.get("hookEvent"), a.get("hookEvent")
    stdout, stderr = a.get("stdout") or "", a.get("stderr") or ""
    return [
        {"type": "system", "subtype": "hook_started", "hook_id": hook_id, "hook_name": name, "hook_event": event,
         "uuid": mk(), "session_id": session_id},
        {"type": "system", "subtype": "hook_response", "hook_id": hook_id, "hook_name": name, "hook_event": event,
         "output": stdout + stderr, "stdout": stdout, "stderr": stderr, "exit_code": a.get("exitCode", 0),
         "outcome": _HOOK_OUTCOMES[a["type"]], "uuid": mk(), "session_id": session_id},
    ]


def auto_mode_billing_notice(gateway_host: str) -> str:
    """The notice ``claude -p`` (2.1.329) prints in plan/auto mode when requests go through a gateway
    (API-key auth, not acknowledged in the last 24 h): on stderr in text/json, as a
    ``system/informational`` warning line in stream-json (:func:`informational_line`)."""
    return ("We're changing auto mode to no longer charge for classifier requests in Claude Code. However, this "
            f"session isn't eligible because your requests go through {gateway_host}, which isn't compatible with "
            "this update. Auto mode works for now, and its classifier requests are billed as before. An upcoming "
            "release removes this fallback. In sessions like this one, each checked action will then be asked "
            "about or denied. To fix it and access the new version of auto mode, ask your gateway to implement: "
            "https://code.claude.com/docs/en/auto-mode-classifier-billing\n")


def informational_line(content: str, *, session_id: str, timestamp: str, level: str = "warning",
                       new_uuid: Callable[[], str] | None = None) -> dict:
    """A ``system/informational`` stream-json line (key order as 2.1.329's ``-p``)."""
    mk = new_uuid or (lambda: str(_uuidlib.uuid4()))
    return {"type": "system", "subtype": "informational", "content": content, "isMeta": False,
            "timestamp": timestamp, "uuid": mk(), "level": level, "session_id": session_id}


def local_command_message(text: str, *, session_id: str, version: str | None = None,
                          new_uuid: Callable[[], str] | None = None) -> dict | None:
    """The synthetic ``assistant`` line `-p` prints in stream-json for a local slash command's answer
    (``/clear``, ``/context``, ``Unknown command: /x`` …): model ``<synthetic>``, zero usage, the text
    as its one block. 2.1.197 prints ``(no content)`` for an empty answer; 2.1.329 prints no line then
    (and its extra ``local_command_*`` / ``context_usage`` fields are not reproduced)."""
    mk = new_uuid or (lambda: str(_uuidlib.uuid4()))
    new = not dialect(version).local_command_empty_line
    if not text and new:
        return None
    usage: dict[str, Any] = {}
    if new:
        usage["output_tokens_details"] = None
    usage.update({"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0, "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
                  "service_tier": None, "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
                  "inference_geo": None, "iterations": None, "speed": None})
    if new:
        usage["fallback_credit"] = None
    message: dict[str, Any] = {"diagnostics": None} if new else {}
    message.update({"id": mk(), "container": None, "model": SYNTHETIC_MODEL, "role": "assistant",
                    "stop_details": None, "stop_reason": "end_turn" if new else "stop_sequence",
                    "stop_sequence": None if new else "", "type": "message", "usage": usage,
                    "content": [{"type": "text", "text": text or "(no content)"}], "context_management": None})
    line: dict[str, Any] = {"type": "assistant", "message": message, "parent_tool_use_id": None,
                            "session_id": session_id, "uuid": mk()}
    if new:
        line["timestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
            f"{datetime.now(UTC).microsecond // 1000:03d}Z"
    return line


def _is_newer(version: str | None, than: str) -> bool:
    def key(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", v)[:3])
    return bool(version) and key(version) >= key(than)


def _is_nudge(record: Mapping[str, Any]) -> bool:
    if record.get("type") != "user":
        return False
    msg = record.get("message")
    content = msg.get("content") if isinstance(msg, Mapping) else None
    if isinstance(content, str):
        return content.startswith(NUDGE_PREFIX)
    if isinstance(content, list) and content:
        b = content[0]
        return isinstance(b, Mapping) and b.get("type") == "text" and str(b.get("text", "")).startswith(NUDGE_PREFIX)
    return False


def _is_tool_result(record: Mapping[str, Any]) -> bool:
    msg = record.get("message")
    content = msg.get("content") if isinstance(msg, Mapping) else None
    return isinstance(content, list) and any(
        isinstance(b, Mapping) and b.get("type") == "tool_result" for b in content
    )


# =========================================================================== result


def _assistants(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [
        r
        for r in records
        if r.get("type") == "assistant" and not r.get("isSidechain") and isinstance(r.get("message"), Mapping)
    ]


def responses(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One ``message`` per API response (records sharing ``message.id`` repeat the same
    final usage: counted once; the last record's copy is used), in order of first
    appearance."""
    order: list[str] = []
    last: dict[str, Mapping[str, Any]] = {}
    for i, r in enumerate(_assistants(records)):
        m = r["message"]
        mid = m.get("id") or f"__noid_{i}"
        if mid not in last:
            order.append(mid)
        last[mid] = m
    return [last[mid] for mid in order]


def _num(v: Any) -> int | float:
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else 0


_LEGACY_USAGE = {
    "input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0,
    "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0}, "service_tier": "standard",
    "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0}, "inference_geo": "",
    "iterations": [], "speed": "standard",
}


def _zeroed(template: Mapping[str, Any]) -> dict:
    out: dict[str, Any] = {}
    for k, v in template.items():
        if isinstance(v, Mapping):
            out[k] = _zeroed(v)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = 0
        elif isinstance(v, list):
            out[k] = []
        else:
            out[k] = v
    return out


def _accumulate(acc: dict, usage: Mapping[str, Any]) -> None:
    for k, v in acc.items():
        u = usage.get(k)
        if isinstance(v, dict):
            if isinstance(u, Mapping):
                _accumulate(v, u)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            acc[k] = v + _num(u)
        elif u is not None:
            acc[k] = u


def sum_usage(messages: Iterable[Mapping[str, Any]], template: Mapping[str, Any] | None = None) -> dict:
    """`-p`'s result ``usage``: the shape of ``template`` (the version's recorded result usage;
    default 2.1.197's), numbers summed over the responses (nested ones too, e.g.
    ``output_tokens_details.thinking_tokens``), other values (``service_tier``, ``speed``,
    ``iterations`` …) the last response's. Synthetic messages (API errors) carry nulls there:
    they are skipped, as `-p` keeps its defaults."""
    acc = _zeroed(template if template else _LEGACY_USAGE)
    for m in messages:
        u = m.get("usage")
        if isinstance(u, Mapping) and not is_synthetic(m):
            _accumulate(acc, u)
    return acc


def _nested(d: Mapping[str, Any], *path: str) -> Any:
    for p in path:
        if not isinstance(d, Mapping):
            return None
        d = d.get(p)
    return d


def model_usage(
    messages: Iterable[Mapping[str, Any]],
    *,
    model_key: str | None = None,
    previous: Mapping[str, Any] | None = None,
    prices: _pricing.PriceTable | None = None,
    key_rule: str = "requested",
) -> tuple[dict, float | int]:
    """(``modelUsage``, ``total_cost_usd``) for the responses, costed one by one in order.

    Key: with ``key_rule="requested"`` (2.1.197) ``model_key`` when given (what `-p` shows, e.g.
    ``claude-opus-4-8[1m]``: the *requested* model incl. the ``[1m]`` suffix, which the
    transcript does not hold), else the response's ``message.model``; with ``"response"``
    (2.1.329) the response's model id without ``[1m]``. Synthetic messages are skipped.
    ``previous``: the result object of an earlier turn of the same `-p` process (stream-json
    input) — ``modelUsage``/``total_cost_usd`` are cumulative per process.
    Entries carry every field any version prints (``thinkingTokens``, the 5m/1h cache split,
    ``canonicalModel``, ``costBasis`` …); the version's shape keeps its own.
    """
    prices = prices or _pricing.load_table()
    mu: dict[str, dict] = {}
    total: float | int = 0
    if previous:
        total = previous.get("total_cost_usd", 0) or 0
        for k, v in (previous.get("modelUsage") or {}).items():
            mu[k] = dict(v)
    for m in messages:
        if is_synthetic(m):
            continue
        u = m.get("usage") if isinstance(m.get("usage"), Mapping) else {}
        if key_rule == "response":
            key = _pricing.strip_1m(str(m.get("model") or model_key or "unknown"))
        else:
            key = model_key or m.get("model") or "unknown"
            served = m.get("model")
            if model_key and isinstance(served, str) and served and not _same_model(model_key, served):
                key = served      # another model answered (--fallback-model): its own entry, as -p
        price = prices.lookup(key)
        cost = _pricing.usage_cost(price, u, prices)
        e = mu.get(key)
        if e is None:
            e = mu[key] = {
                "inputTokens": 0,
                "outputTokens": 0,
                "cacheReadInputTokens": 0,
                "cacheCreationInputTokens": 0,
                "webSearchRequests": 0,
                "costUSD": 0,
                "contextWindow": prices.context_window(key),
                "maxOutputTokens": prices.max_output_tokens(key),
                "thinkingTokens": 0,
                "cacheCreationEphemeral5mInputTokens": 0,
                "cacheCreationEphemeral1hInputTokens": 0,
            }
        e["inputTokens"] += _num(u.get("input_tokens"))
        e["outputTokens"] += _num(u.get("output_tokens"))
        e["cacheReadInputTokens"] += _num(u.get("cache_read_input_tokens"))
        e["cacheCreationInputTokens"] += _num(u.get("cache_creation_input_tokens"))
        e["webSearchRequests"] += _num(_nested(u, "server_tool_use", "web_search_requests"))
        e["costUSD"] += cost
        e["thinkingTokens"] = e.get("thinkingTokens", 0) + _num(_nested(u, "output_tokens_details", "thinking_tokens"))
        e["cacheCreationEphemeral5mInputTokens"] = e.get("cacheCreationEphemeral5mInputTokens", 0) + \
            _num(_nested(u, "cache_creation", "ephemeral_5m_input_tokens"))
        e["cacheCreationEphemeral1hInputTokens"] = e.get("cacheCreationEphemeral1hInputTokens", 0) + \
            _num(_nested(u, "cache_creation", "ephemeral_1h_input_tokens"))
        # "costBasis, canonicalModel and provider are the latest request's"
        e["canonicalModel"] = prices.canonical(key)
        e["costBasis"] = prices.cost_basis(key)
        total += cost
    return mu, total


def _same_model(requested: str, served: str) -> bool:
    """Whether a response's model is the requested one (``claude-opus-4-8[1m]`` vs ``claude-opus-4-8``,
    an alias vs its dated id)."""
    a, b = _pricing.strip_1m(requested), _pricing.strip_1m(served)
    return a == b or a.startswith(b) or b.startswith(a) or "-" not in a


def last_assistant(records: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    a = _assistants(records)
    return a[-1] if a else None


def result_text(records: Iterable[Mapping[str, Any]]) -> str:
    """Text of the last ``text`` block of the last assistant record ("" if it has none)."""
    last = last_assistant(records)
    if last is None:
        return ""
    content = last["message"].get("content")
    if isinstance(content, str):
        return content
    texts = [b.get("text", "") for b in content or () if isinstance(b, Mapping) and b.get("type") == "text"]
    return texts[-1] if texts else ""


def count_turns(records: Iterable[Mapping[str, Any]]) -> int:
    """``num_turns``: 1 + user messages fed back to the model (tool results, nudges)."""
    return 1 + sum(1 for r in records if r.get("type") == "user" and (_is_tool_result(r) or _is_nudge(r)))


def permission_denials(
    records: Sequence[Mapping[str, Any]], extra: Iterable[str | Mapping[str, Any]] = ()
) -> list[dict]:
    """``[{"tool_name","tool_use_id","tool_input"}]`` in the order the denials happened.

    Sources: ``hook_permission_decision`` attachments with ``decision: "deny"`` (a
    PermissionRequest deny hook, the interactive equivalent of `-p`'s auto-deny),
    tool results with ``toolUseResult == "User rejected tool use"`` (rejected prompt),
    then ``extra`` (tool_use ids, or ready-made dicts). One entry per tool_use id.
    """
    tool_uses: dict[str, Mapping[str, Any]] = {}
    for r in _assistants(records):
        for b in r["message"].get("content") or ():
            if isinstance(b, Mapping) and b.get("type") == "tool_use" and isinstance(b.get("id"), str):
                tool_uses[b["id"]] = b
    ids: list[str | Mapping[str, Any]] = []
    for r in records:
        if r.get("type") == "attachment":
            a = r.get("attachment")
            if isinstance(a, Mapping) and a.get("type") == "hook_permission_decision" and a.get("decision") == "deny":
                if isinstance(a.get("toolUseID"), str):
                    ids.append(a["toolUseID"])
        elif r.get("type") == "user" and r.get("toolUseResult") == REJECTED_TOOL_USE:
            for b in r["message"].get("content") or ():
                if isinstance(b, Mapping) and b.get("type") == "tool_result" and isinstance(b.get("tool_use_id"), str):
                    ids.append(b["tool_use_id"])
    ids.extend(extra)
    out: list[dict] = []
    seen: set[str] = set()
    for item in ids:
        if isinstance(item, Mapping):
            tid = item.get("tool_use_id")
            if tid in seen:
                continue
            seen.add(tid)
            out.append(dict(item))
            continue
        if item in seen:
            continue
        seen.add(item)
        tu = tool_uses.get(item, {})
        out.append({"tool_name": tu.get("name"), "tool_use_id": item, "tool_input": tu.get("input", {})})
    return out


def _parse_ts(ts: Any) -> datetime | None:
    if not isinstance(ts, str):
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None


def turn_duration_ms(records: Iterable[Mapping[str, Any]]) -> int | None:
    """``durationMs`` of the turn's ``system/turn_duration`` record (≈ `-p`'s duration_ms)."""
    for r in records:
        if r.get("type") == "system" and r.get("subtype") == "turn_duration":
            d = r.get("durationMs")
            if isinstance(d, (int, float)):
                return int(d)
    return None


def estimate_api_ms(records: Sequence[Mapping[str, Any]], prompt: Mapping[str, Any] | None = None,
                    api_requests: Sequence[Mapping[str, Any]] = ()) -> int:
    """Approximate ``duration_api_ms``: for each API response, from when its request was sent
    to its last block record. The send time is the response's ``api-request`` record
    (2.1.329 writes one per request; matched by the assistant records' ``requestRef``), else the
    timestamp of the record before its first block (prompt / tool result)."""
    sent = {r.get("id"): _parse_ts(r.get("timestamp")) for r in api_requests if r.get("type") == "api-request"}
    seq = ([prompt] if prompt else []) + list(records)
    first: dict[str, int] = {}
    lastidx: dict[str, int] = {}
    for i, r in enumerate(seq):
        if r.get("type") == "assistant" and isinstance(r.get("message"), Mapping):
            m = r["message"]
            if is_synthetic(m):
                continue
            mid = m.get("id") or f"__{i}"
            first.setdefault(mid, i)
            lastidx[mid] = i
    total = 0.0
    for mid, i in first.items():
        start = sent.get(seq[i].get("requestRef"))
        if start is None:
            for j in range(i - 1, -1, -1):
                start = _parse_ts(seq[j].get("timestamp"))
                if start:
                    break
        end = _parse_ts(seq[lastidx[mid]].get("timestamp"))
        if start and end and end > start:
            total += (end - start).total_seconds() * 1000
    return int(round(total))


def _ms_between(a: datetime | None, b: datetime | None) -> int | None:
    if a is None or b is None:
        return None
    return max(0, int(round((b - a).total_seconds() * 1000)))


def turn_timings(records: Sequence[Mapping[str, Any]], prompt: Mapping[str, Any] | None,
                 api_requests: Sequence[Mapping[str, Any]] = ()) -> dict[str, int | None]:
    """`-p`'s timing fields, estimated from record timestamps (all relative to the prompt record,
    i.e. when the CLI took the prompt):

    * ``duration_ms``: to the turn's last user/assistant record (the end of the last response or
      tool; the bridge's own Stop hook, which `-p` does not run, is left out);
    * ``duration_api_ms``: :func:`estimate_api_ms`;
    * ``ttft_ms``, ``ttft_stream_ms``, ``first_content_frame_ms``: to the first assistant record
      (written when its first content block is complete: an upper bound);
    * ``time_to_request_ms``: to the first ``api-request`` record (2.1.329), else the ttft bound.
    The ttft/request fields are None when no real response arrived (`-p` then prints none).
    """
    t0 = _parse_ts(prompt.get("timestamp")) if prompt else None
    body = [r for r in records if r.get("type") in ("assistant", "user") and not r.get("isSidechain")]
    real = [r for r in body if r.get("type") == "assistant" and isinstance(r.get("message"), Mapping)
            and not is_synthetic(r["message"])]
    end = _parse_ts(body[-1].get("timestamp")) if body else None
    first = _parse_ts(real[0].get("timestamp")) if real else None
    reqs = sorted(t for t in (_parse_ts(r.get("timestamp")) for r in api_requests if r.get("type") == "api-request")
                  if t is not None and (t0 is None or t >= t0))
    ttft = _ms_between(t0, first)
    return {
        "duration_ms": _ms_between(t0, end),
        "duration_api_ms": estimate_api_ms(records, prompt, api_requests),
        "ttft_ms": ttft,
        "ttft_stream_ms": ttft,
        "time_to_request_ms": (_ms_between(t0, reqs[0]) if reqs and first is not None else ttft),
        "first_content_frame_ms": ttft,
    }


def result_variant(subtype: str, is_error: bool, structured: bool, local_command: bool = False) -> str:
    """Which recorded result sample applies (see :mod:`shapes`)."""
    if subtype != "success":
        return subtype
    if local_command:
        return "local_command"
    if is_error:
        return "api_error"
    return "structured" if structured else "success"


def result_message(
    turn_records: Sequence[Mapping[str, Any]],
    *,
    session_id: str,
    duration_ms: int | None,
    duration_api_ms: int | None,
    uuid: str,
    model_key: str | None = None,
    permission_denials_extra: Iterable[str | Mapping[str, Any]] = (),
    subtype: str = "success",
    errors: Sequence[str] | None = None,
    num_turns: int | None = None,
    result: str | None = None,
    structured_output: Any = _UNSET,
    terminal_reason: Any = _AUTO,
    ttft_ms: int | None = None,
    ttft_stream_ms: int | None = None,
    time_to_request_ms: int | None = None,
    first_content_frame_ms: int | None = None,
    fast_mode_state: str = "off",
    previous: Mapping[str, Any] | None = None,
    local_command: bool = False,
    command_name: str | None = None,
    result_index: int | None = None,
    prompt: Mapping[str, Any] | None = None,
    prices: _pricing.PriceTable | None = None,
    version: str | None = None,
    fmt: str = "json",
    api_requests: Sequence[Mapping[str, Any]] = (),
    estimate_timings: bool = False,
) -> dict:
    """The final ``result`` object for CLI ``version`` (default: the version that wrote the
    records) and output format ``fmt``.

    ``turn_records``: the turn in tree order (``TurnTree.ordered()``; the prompt may be
    included or not). Derived from the records: ``is_error``/``api_error_status``/
    ``api_error_type`` (last assistant record's ``isApiErrorMessage``/``apiErrorStatus``/
    ``apiErrorType``), ``result`` (last text block of the last assistant record),
    ``stop_reason`` (its ``message.stop_reason``), ``num_turns``, ``usage`` (once per
    message.id), ``modelUsage``/``total_cost_usd`` (the version's price table, see
    :mod:`pricing`), ``permission_denials``, ``model_usage_since_last_result`` (this turn's
    modelUsage).

    Shape (key order, nested order, which keys exist, the values of fields a transcript cannot
    supply such as ``subagent_stats`` or the variant's ``terminal_reason``): the version's
    recorded sample for the variant — success, api_error (is_error), structured, or the error
    subtype (``error_max_turns``, ``error_max_budget_usd`` …; unrecorded subtypes use
    error_max_turns'). See :mod:`shapes`. ``local_command=True`` (a slash command answered
    without the model): no api_error_status, no terminal_reason, num_turns 0 by default, and
    ``command_name`` for versions that print it (2.1.329 ``local_command``).

    Timings: ``duration_ms``/``duration_api_ms`` as given (None: estimated, see
    :func:`turn_timings`); ``ttft_ms``, ``ttft_stream_ms``, ``time_to_request_ms``,
    ``first_content_frame_ms`` printed when given, or estimated when ``estimate_timings``
    (`-p` measures them; the transcript only bounds them).
    ``terminal_reason``: the variant sample's (completed / api_error / max_turns …); pass a
    value to override, ``None`` to leave it out.
    """
    records = [r for r in turn_records if not (prompt is not None and r is prompt)]
    if version is None:
        version = next((v for v in map(_record_version, records) if v), None)
    shp = _shapes.load(version)
    prices = prices or _pricing.load_table(version)
    resp = responses(records)
    last = last_assistant(records)
    is_error = bool(last is not None and last.get("isApiErrorMessage"))
    structured = structured_output is not _UNSET
    variant = result_variant(subtype, is_error, structured, local_command)
    usage = sum_usage(resp, shp.usage_template(fmt, variant) or shp.usage_template(fmt, "success"))
    key_rule = str(shp.rules.get("model_usage_key", "requested"))
    mu, total_cost = model_usage(resp, model_key=model_key, previous=previous, prices=prices, key_rule=key_rule)
    mu_turn, _ = model_usage(resp, model_key=model_key, prices=prices, key_rule=key_rule)
    est = turn_timings(records, prompt, api_requests) if (estimate_timings or duration_ms is None
                                                          or duration_api_ms is None) else {}
    if duration_ms is None:
        duration_ms = est.get("duration_ms") or 0
    if duration_api_ms is None:
        duration_api_ms = est.get("duration_api_ms") or 0
    if previous:
        duration_api_ms += previous.get("duration_api_ms", 0) or 0
    if estimate_timings:
        ttft_ms = ttft_ms if ttft_ms is not None else est.get("ttft_ms")
        ttft_stream_ms = ttft_stream_ms if ttft_stream_ms is not None else est.get("ttft_stream_ms")
        time_to_request_ms = time_to_request_ms if time_to_request_ms is not None else est.get("time_to_request_ms")
        first_content_frame_ms = first_content_frame_ms if first_content_frame_ms is not None \
            else est.get("first_content_frame_ms")
    if num_turns is None:
        num_turns = 0 if local_command else count_turns(records)
    stop_reason = last["message"].get("stop_reason") if last is not None else None
    M = _shapes.MISSING
    status = last.get("apiErrorStatus") if (is_error and last is not None) else None
    computed: dict[str, Any] = {
        "type": "result",
        "subtype": subtype,
        "is_error": is_error if subtype == "success" else True,
        "api_error_status": M if local_command else status,
        "api_error_type": (last.get("apiErrorType") if is_error and last is not None else M),
        "duration_ms": duration_ms,
        "duration_api_ms": duration_api_ms,
        "ttft_ms": M if ttft_ms is None else ttft_ms,
        "ttft_stream_ms": M if ttft_stream_ms is None else ttft_stream_ms,
        "time_to_request_ms": M if time_to_request_ms is None else time_to_request_ms,
        "first_content_frame_ms": M if first_content_frame_ms is None else first_content_frame_ms,
        "num_turns": num_turns,
        "result": (result if result is not None else result_text(records)) if subtype == "success" else M,
        "stop_reason": stop_reason,
        "session_id": session_id,
        "total_cost_usd": total_cost,
        "usage": usage,
        "modelUsage": mu,
        "permission_denials": permission_denials(records, permission_denials_extra),
        "structured_output": structured_output if structured and subtype == "success" else M,
        "fast_mode_state": fast_mode_state,
        "uuid": uuid,
        "errors": list(errors or []) if subtype != "success" else M,
        "model_usage_since_last_result": mu_turn,
        "local_command": command_name if (local_command and command_name) else M,
    }
    if result_index is not None:
        computed["result_index"] = result_index     # n-th result of the process (stream-json input)
    if terminal_reason is None or local_command:
        computed["terminal_reason"] = M
    elif terminal_reason is not _AUTO:
        computed["terminal_reason"] = terminal_reason
    elif not shp.recorded(fmt, variant):
        # a fallback sample's terminal_reason would be another variant's
        computed["terminal_reason"] = _DEFAULT_TERMINAL.get(variant, M)
    drop = ("api_error_status", "terminal_reason") if local_command else ()
    return shp.shape_result(fmt, variant, computed, drop=drop)


# terminal_reason for variants without a recorded sample
_DEFAULT_TERMINAL = {"success": "completed", "structured": "completed", "api_error": "completed",
                     "error_max_turns": "max_turns"}


def total_cost(records: Sequence[Mapping[str, Any]], *, version: str | None = None, model_key: str | None = None,
               previous: Mapping[str, Any] | None = None) -> float:
    """``total_cost_usd`` of the responses in ``records`` (plus ``previous``'s), as result_message
    computes it (for --max-budget-usd)."""
    if version is None:
        version = next((v for v in map(_record_version, records) if v), None)
    shp = _shapes.load(version)
    _mu, total = model_usage(responses(records), model_key=model_key, previous=previous,
                             prices=_pricing.load_table(version),
                             key_rule=str(shp.rules.get("model_usage_key", "requested")))
    return float(total)


def budget_error(max_budget_usd: float) -> str:
    """The ``errors[0]`` text of an ``error_max_budget_usd`` result."""
    return f"Reached maximum budget (${js_number(max_budget_usd)})"


def max_turns_error(max_turns: int | float) -> str:
    """The ``errors[0]`` text of an ``error_max_turns`` result (the number as JavaScript prints it)."""
    return f"Reached maximum number of turns ({js_number(max_turns)})"


# =========================================================================== output modes

_N_IN_PARENS = re.compile(r"\(([^()]*)\)\s*$")


def _paren_arg(result: Mapping[str, Any]) -> str | None:
    for e in result.get("errors") or ():
        m = _N_IN_PARENS.search(str(e))
        if m:
            return m.group(1)
    return None


def exit_code(result: Mapping[str, Any]) -> int:
    """1 for every ``is_error`` result (API errors report subtype success!), else 0."""
    return 1 if result.get("is_error") or result.get("subtype", "success") != "success" else 0


def text_output(result: Mapping[str, Any], version: str | None = None) -> tuple[str, str, int]:
    """(stdout, stderr, exit code) of `-p --output-format text`.

    success (also API errors, is_error=true): ``result + "\\n"`` on stdout.
    error_max_turns: ``Error: Reached max turns (N)`` on stdout, no newline (captured).
    Other error subtypes (not captured; wording from the CLI's print mode):
    ``Error: Exceeded USD budget (X)``, ``Execution error``,
    ``Error: Failed to provide valid structured output after N attempts``.
    """
    sub = result.get("subtype", "success")
    rc = exit_code(result)
    if sub == "success":
        return (str(result.get("result", "")) + "\n", "", rc)
    arg = _paren_arg(result)
    if sub == "error_max_turns":
        if arg is None:
            arg = str(max(int(result.get("num_turns", 1)) - 1, 1))
        return (f"Error: Reached max turns ({arg})", "", rc)
    if sub == "error_max_budget_usd":
        amount = (arg or "").lstrip("$")
        return (f"Error: Exceeded USD budget ({amount})", "", rc)
    if sub == "error_max_structured_output_retries":
        # 2.1.329 prints errors[0]; 2.1.197 a fixed text
        errs = result.get("errors") or [] if dialect(version).structured_retries_last_error else []
        return (f"Error: {errs[0] if errs else 'Failed to provide valid structured output after maximum retries'}",
                "", rc)
    return ("Execution error", "", rc)


def json_output(result: Mapping[str, Any]) -> str:
    """`-p --output-format json`: the result object on one line + ``\\n``."""
    return dumps(result) + "\n"
