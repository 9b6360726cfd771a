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
from datetime import datetime
from decimal import Decimal
from json.encoder import encode_basestring as _encode_str  # C speedup, non-ASCII kept
from typing import Any, Iterable, Mapping, Sequence

from . import pricing as _pricing

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
        out = _SURROGATE.sub(lambda m: "\\u%04x" % ord(m.group()), joined)
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
    tools: Sequence[str] = (),
    mcp_servers: Sequence[Mapping[str, Any]] = (),
    slash_commands: Sequence[str] = (),
    agents: Sequence[str] = (),
    skills: Sequence[str] = (),
    plugins: Sequence[Mapping[str, Any]] = (),
    api_key_source: str = "none",
    output_style: str = "default",
    memory_paths: Mapping[str, str] | None = None,
    uuid: str,
    analytics_disabled: bool = False,
    product_feedback_disabled: bool = False,
    fast_mode_state: str = "off",
    home: str | None = None,
) -> dict:
    """The ``system/init`` line, keys in `-p`'s order (print/sj1).

    ``model`` is the resolved model key `-p` shows (``claude-opus-4-8[1m]`` for the
    default). ``memory_paths``: given as is; else computed from ``home`` and ``cwd``
    (``{"auto": "<home>/.claude/projects/<enc-cwd>/memory/"}``); with neither the key is
    left out (`-p` always has it).
    """
    if memory_paths is None and home is not None:
        memory_paths = {"auto": f"{home.rstrip('/')}/.claude/projects/{encode_project_dir(cwd)}/memory/"}
    msg: dict[str, Any] = {
        "type": "system",
        "subtype": "init",
        "cwd": cwd,
        "session_id": session_id,
        "tools": list(tools),
        "mcp_servers": [dict(s) for s in mcp_servers],
        "model": model,
        "permissionMode": permission_mode,
        "slash_commands": list(slash_commands),
        "apiKeySource": api_key_source,
        "claude_code_version": claude_code_version,
        "output_style": output_style,
        "agents": list(agents),
        "skills": list(skills),
        "plugins": [dict(p) for p in plugins],
        "analytics_disabled": analytics_disabled,
        "product_feedback_disabled": product_feedback_disabled,
        "uuid": uuid,
    }
    if memory_paths is not None:
        msg["memory_paths"] = dict(memory_paths)
    msg["fast_mode_state"] = fast_mode_state
    return msg


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


def stream_messages(record: Mapping[str, Any], *, session_id: str, final_usage: bool = False) -> list[dict]:
    """0..1 stream-json messages for one transcript record.

    assistant record -> ``{"type":"assistant","message","parent_tool_use_id":null,
    "session_id","uuid"[,"error"],"request_id"}``; tool-result user record ->
    ``{"type":"user","message","parent_tool_use_id":null,"session_id","uuid","timestamp",
    "tool_use_result"}``; structured-output nudge (isMeta) -> the `-p` synthetic user line;
    everything else (prompt, attachments, system records, interrupt markers, metadata,
    sidechain records) -> ``[]``.
    """
    rtype = record.get("type")
    if record.get("isSidechain"):
        return []
    msg = record.get("message")
    if not isinstance(msg, Mapping):
        return []
    if rtype == "assistant":
        out: dict[str, Any] = {
            "type": "assistant",
            "message": stream_message_body(msg, final_usage=final_usage),
            "parent_tool_use_id": None,
            "session_id": session_id,
            "uuid": record.get("uuid"),
        }
        if record.get("error") is not None:
            out["error"] = record["error"]
        if record.get("requestId") is not None:
            out["request_id"] = record["requestId"]
        return [out]
    if rtype == "user":
        content = msg.get("content")
        if isinstance(content, list) and any(
            isinstance(b, Mapping) and b.get("type") == "tool_result" for b in content
        ):
            out = {
                "type": "user",
                "message": msg,
                "parent_tool_use_id": None,
                "session_id": session_id,
                "uuid": record.get("uuid"),
                "timestamp": record.get("timestamp"),
            }
            if "toolUseResult" in record:
                out["tool_use_result"] = record["toolUseResult"]
            return [out]
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


def sum_usage(messages: Iterable[Mapping[str, Any]]) -> dict:
    """`-p`'s result ``usage``: token counts summed over responses, full shape."""
    tot = {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0}
    stu = {"web_search_requests": 0, "web_fetch_requests": 0}
    cc = {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0}
    service_tier, inference_geo, iterations, speed = "standard", "", [], "standard"
    for m in messages:
        u = m.get("usage")
        if not isinstance(u, Mapping):
            continue
        for k in tot:
            tot[k] += _num(u.get(k))
        s = u.get("server_tool_use")
        if isinstance(s, Mapping):
            for k in stu:
                stu[k] += _num(s.get(k))
        c = u.get("cache_creation")
        if isinstance(c, Mapping):
            for k in cc:
                cc[k] += _num(c.get(k))
        if is_synthetic(m):
            continue  # synthetic messages carry nulls here; -p keeps its defaults
        if isinstance(u.get("service_tier"), str):
            service_tier = u["service_tier"]
        if isinstance(u.get("inference_geo"), str):
            inference_geo = u["inference_geo"]
        if isinstance(u.get("iterations"), list):
            iterations = u["iterations"]
        if isinstance(u.get("speed"), str):
            speed = u["speed"]
    return {
        **tot,
        "server_tool_use": stu,
        "service_tier": service_tier,
        "cache_creation": cc,
        "inference_geo": inference_geo,
        "iterations": iterations,
        "speed": speed,
    }


def model_usage(
    messages: Iterable[Mapping[str, Any]],
    *,
    model_key: str | None = None,
    previous: Mapping[str, Any] | None = None,
    prices: _pricing.PriceTable | None = None,
) -> tuple[dict, float | int]:
    """(``modelUsage``, ``total_cost_usd``) for the responses, costed one by one in order.

    Key: ``model_key`` when given (what `-p` shows, e.g. ``claude-opus-4-8[1m]``: `-p`
    keys by the *requested* model incl. the ``[1m]`` suffix, which the transcript does
    not hold), else the response's ``message.model``. Synthetic messages are skipped.
    ``previous``: the result object of an earlier turn of the same `-p` process
    (stream-json input) — ``modelUsage``/``total_cost_usd`` are cumulative per process.
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
        key = model_key or m.get("model") or "unknown"
        price = prices.lookup(key)
        cost = _pricing.usage_cost(price, u)
        stu = u.get("server_tool_use") if isinstance(u.get("server_tool_use"), Mapping) else {}
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
            }
        e["inputTokens"] += _num(u.get("input_tokens"))
        e["outputTokens"] += _num(u.get("output_tokens"))
        e["cacheReadInputTokens"] += _num(u.get("cache_read_input_tokens"))
        e["cacheCreationInputTokens"] += _num(u.get("cache_creation_input_tokens"))
        e["webSearchRequests"] += _num(stu.get("web_search_requests"))
        e["costUSD"] += cost
        total += cost
    return mu, total


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


def estimate_api_ms(records: Sequence[Mapping[str, Any]], prompt: Mapping[str, Any] | None = None) -> int:
    """Approximate ``duration_api_ms``: for each API response, from the timestamp of the
    record before its first block (prompt / tool result) to its last block record."""
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
        start = None
        for j in range(i - 1, -1, -1):
            start = _parse_ts(seq[j].get("timestamp"))
            if start:
                break
        end = _parse_ts(seq[lastidx[mid]].get("timestamp"))
        if start and end and end > start:
            total += (end - start).total_seconds() * 1000
    return int(round(total))


_ERROR_SUBTYPE_TERMINAL = {"error_max_turns": "max_turns"}


def result_message(
    turn_records: Sequence[Mapping[str, Any]],
    *,
    session_id: str,
    duration_ms: int,
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
    fast_mode_state: str = "off",
    previous: Mapping[str, Any] | None = None,
    local_command: bool = False,
    prompt: Mapping[str, Any] | None = None,
    prices: _pricing.PriceTable | None = None,
) -> dict:
    """The final ``result`` object, keys in `-p`'s order.

    ``turn_records``: the turn in tree order (``TurnTree.ordered()``; the prompt may be
    included or not). Derived from the records: ``is_error``/``api_error_status`` (last
    assistant record's ``isApiErrorMessage``/``apiErrorStatus``), ``result`` (last text
    block of the last assistant record), ``stop_reason`` (its ``message.stop_reason``),
    ``num_turns``, ``usage`` (once per message.id), ``modelUsage``/``total_cost_usd``
    (price table, see :mod:`pricing`), ``permission_denials``.

    Shapes:
    * ``subtype="success"``: type, subtype, is_error, api_error_status, duration_ms,
      duration_api_ms, [ttft_ms, ttft_stream_ms, time_to_request_ms — only when passed:
      `-p` measures them, the transcript cannot], num_turns, result, stop_reason,
      session_id, total_cost_usd, usage, modelUsage, permission_denials,
      [structured_output], terminal_reason, fast_mode_state, uuid.
    * ``local_command=True`` (slash command answered without the model): no
      api_error_status, no terminal_reason, num_turns 0 by default.
    * any other subtype (``error_max_turns``, ``error_max_budget_usd``,
      ``error_during_execution``, ``error_max_structured_output_retries``): type, subtype,
      duration_ms, duration_api_ms, is_error (true), num_turns, stop_reason, session_id,
      total_cost_usd, usage, modelUsage, permission_denials, [terminal_reason],
      fast_mode_state, uuid, errors.
    ``terminal_reason``: default "completed" for success, "max_turns" for
    error_max_turns, absent for the others; pass ``None`` to leave it out.
    ``duration_api_ms=None``: :func:`estimate_api_ms` (an approximation).
    """
    records = [r for r in turn_records if not (prompt is not None and r is prompt)]
    resp = responses(records)
    last = last_assistant(records)
    usage = sum_usage(resp)
    mu, total_cost = model_usage(resp, model_key=model_key, previous=previous, prices=prices)
    if duration_api_ms is None:
        duration_api_ms = estimate_api_ms(records, prompt)
    if previous:
        duration_api_ms += previous.get("duration_api_ms", 0) or 0
    if num_turns is None:
        num_turns = 0 if local_command else count_turns(records)
    stop_reason = last["message"].get("stop_reason") if last is not None else None
    denials = permission_denials(records, permission_denials_extra)
    if terminal_reason is _AUTO:
        if local_command:
            terminal_reason = None
        elif subtype == "success":
            terminal_reason = "completed"
        else:
            terminal_reason = _ERROR_SUBTYPE_TERMINAL.get(subtype)

    out: dict[str, Any] = {"type": "result", "subtype": subtype}
    if subtype == "success":
        is_error = bool(last is not None and last.get("isApiErrorMessage"))
        out["is_error"] = is_error
        if not local_command:
            status = last.get("apiErrorStatus") if (is_error and last is not None) else None
            out["api_error_status"] = status
        out["duration_ms"] = duration_ms
        out["duration_api_ms"] = duration_api_ms
        for k, v in (("ttft_ms", ttft_ms), ("ttft_stream_ms", ttft_stream_ms), ("time_to_request_ms", time_to_request_ms)):
            if v is not None:
                out[k] = v
        out["num_turns"] = num_turns
        out["result"] = result if result is not None else result_text(records)
        out["stop_reason"] = stop_reason
    else:
        out["duration_ms"] = duration_ms
        out["duration_api_ms"] = duration_api_ms
        out["is_error"] = True
        out["num_turns"] = num_turns
        out["stop_reason"] = stop_reason
    out["session_id"] = session_id
    out["total_cost_usd"] = total_cost
    out["usage"] = usage
    out["modelUsage"] = mu
    out["permission_denials"] = denials
    if structured_output is not _UNSET and subtype == "success":
        out["structured_output"] = structured_output
    if terminal_reason is not None:
        out["terminal_reason"] = terminal_reason
    out["fast_mode_state"] = fast_mode_state
    out["uuid"] = uuid
    if subtype != "success":
        out["errors"] = list(errors or [])
    return out


def max_turns_error(max_turns: int) -> str:
    """The ``errors[0]`` text of an ``error_max_turns`` result."""
    return f"Reached maximum number of turns ({max_turns})"


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


def text_output(result: Mapping[str, Any]) -> tuple[str, str, int]:
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
        return (f"Error: Failed to provide valid structured output after {arg or '?'} attempts", "", rc)
    return ("Execution error", "", rc)


def json_output(result: Mapping[str, Any]) -> str:
    """`-p --output-format json`: the result object on one line + ``\\n``."""
    return dumps(result) + "\n"
