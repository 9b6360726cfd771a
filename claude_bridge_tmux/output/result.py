"""The ``result`` object of ``claude -p`` for a turn's transcript records (pure: no clock; reads only the
packaged, cached shape and price tables).

Produces :func:`result_message` (the last line of stream-json, the object of json, the source of the
text output) and its parts: ``usage`` (:func:`sum_usage`), ``modelUsage`` / ``total_cost_usd``
(:func:`model_usage`, :func:`total_cost`, prices from :mod:`pricing`), timings (:func:`turn_timings`),
``permission_denials``, ``num_turns`` (:func:`count_turns`), the result text (:func:`result_text`),
and the ``errors`` texts of the error subtypes (:func:`budget_error`, :func:`max_turns_error`).
A resumed session's starting cost (2.1.329's ``cost-state`` records) is :func:`restored_cost`.

Format: the result objects printed by `-p` 2.1.197 (``tests/data/print/*/stdout``, with the transcript
that very run wrote) and 2.1.329 (``tests/data/v2.1.329/*/print.out``); key order, nesting and the
fields a transcript cannot supply come from each version's recorded samples (:mod:`shapes`).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from claude_bridge_tmux import versions as _versions
from claude_bridge_tmux.follow.localcmd import record_time
from claude_bridge_tmux.output import pricing as _pricing
from claude_bridge_tmux.output import shapes as _shapes
from claude_bridge_tmux.output.jsjson import js_number
from claude_bridge_tmux.output.messages import is_nudge, is_synthetic, record_version

REJECTED_TOOL_USE = "User rejected tool use"

_AUTO: Any = object()
_UNSET: Any = object()


def _is_tool_result(record: Mapping[str, Any]) -> bool:
    msg = record.get("message")
    content = msg.get("content") if isinstance(msg, Mapping) else None
    return isinstance(content, list) and any(
        isinstance(b, Mapping) and b.get("type") == "tool_result" for b in content
    )


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
    cur: Any = d
    for p in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(p)
    return cur


def model_usage(
    messages: Iterable[Mapping[str, Any]],
    *,
    model_key: str | None = None,
    previous: Mapping[str, Any] | None = None,
    prices: _pricing.PriceTable | None = None,
    key_rule: str = "requested",
    provider: str | None = None,
) -> tuple[dict, float | int]:
    """(``modelUsage``, ``total_cost_usd``) for the responses, costed one by one in order.

    Key: with ``key_rule="requested"`` (2.1.197) ``model_key`` when given (what `-p` shows, e.g.
    ``claude-opus-4-8[1m]``: the *requested* model incl. the ``[1m]`` suffix, which the
    transcript does not hold), else the response's ``message.model``; with ``"response"``
    (2.1.329) the response's model id without ``[1m]``. Synthetic messages are skipped.
    ``previous``: the result object of an earlier turn of the same `-p` process (stream-json
    input), or the :class:`RestoredCost` a resumed session starts from — ``modelUsage``/
    ``total_cost_usd`` are cumulative per process; its entries keep their key order and a key they
    lack is added at the end, as the CLI's objects do.
    Entries carry every field any version prints (``thinkingTokens``, the 5m/1h cache split,
    ``canonicalModel``, ``provider`` when given, ``costBasis`` …); the version's shape keeps its own.
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
        usage = m.get("usage")
        u: Mapping[str, Any] = usage if isinstance(usage, Mapping) else {}
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
        if provider is not None:
            e["provider"] = provider
        e["costBasis"] = prices.cost_basis(key)
        total += cost
    return mu, total


def _by_time(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The records in ``timestamp`` order (ISO 8601 UTC strings, as the transcript writes them); stable,
    so records without one keep their place after the one before."""
    keyed, last = [], ""
    for r in records:
        t = r.get("timestamp")
        last = t if isinstance(t, str) and t else last
        keyed.append((last, r))
    return [r for _, r in sorted(keyed, key=lambda kr: kr[0])]


def _same_model(requested: str, served: str) -> bool:
    """Whether a response's model is the requested one (``claude-opus-4-8[1m]`` vs ``claude-opus-4-8``,
    an alias vs its dated id)."""
    a, b = _pricing.strip_1m(requested), _pricing.strip_1m(served)
    return a == b or a.startswith(b) or b.startswith(a) or "-" not in a


# -- the cost a resumed session starts from ---------------------------------------------------------
# 2.1.329 appends a ``cost-state`` record to the transcript when a process ends (print mode and
# interactive alike); a later --resume / --continue / --fork-session of that session starts its
# totals from the last valid one (docs/cli-behaviour.md §3). 2.1.197 writes none and starts from 0.

#: a cost-state ``modelUsage`` entry's keys, in the order 2.1.329 restores them (its schema's order;
#: other keys are dropped, the optional ones kept only when present)
COST_STATE_ENTRY_KEYS = ("inputTokens", "outputTokens", "thinkingTokens", "cacheReadInputTokens",
                         "cacheCreationInputTokens", "cacheCreationEphemeral5mInputTokens",
                         "cacheCreationEphemeral1hInputTokens", "webSearchRequests", "costUSD")
_OPTIONAL_ENTRY_KEYS = frozenset({"thinkingTokens", "cacheCreationEphemeral5mInputTokens",
                                  "cacheCreationEphemeral1hInputTokens"})
_STATE_NUMBERS = ("totalAPIDuration", "totalAPIDurationWithoutRetries", "totalToolDuration", "totalLinesAdded",
                  "totalLinesRemoved", "totalDuration", "startTime")
_SUMMED_TOKENS = ("inputTokens", "outputTokens", "cacheReadInputTokens", "cacheCreationInputTokens")
_STATE_MAX = 1e15        # bound of every number of the record
_STATE_MAX_COST = 1e9    # bound of totalCostUSD


class RestoredCost(dict):
    """The cost state a resumed session starts from, as the previous result of the same process would
    carry it: ``{"total_cost_usd": USD, "modelUsage": {model: entry}, "duration_api_ms": ms}``.

    Passed as ``previous`` to :func:`result_message` it is counted like an earlier turn; :func:`total_cost`
    (--max-budget-usd) leaves it out, as `-p` budgets only what the run itself spends. Entries are
    ``{...the record's entry in COST_STATE_ENTRY_KEYS order, contextWindow, maxOutputTokens}``.
    """


class ResultObject(dict):
    """A result object (a plain dict to every printer) that remembers what the next turn's result needs:
    ``restored_cost_usd`` (the :class:`RestoredCost` total it includes), ``restored_models``
    (modelUsage keys whose entries came from it: they keep their restored key order in later turns)
    and ``api_ms_total``."""

    restored_cost_usd: float = 0.0
    restored_models: frozenset[str] = frozenset()
    api_ms_total: float | None = None   # the process's API time so far (a 2.1.329 local command prints 0 instead)


def _state_number(v: Any, limit: float = _STATE_MAX) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= limit


def _model_name_ok(name: Any) -> bool:
    return isinstance(name, str) and bool(name) and \
        not any(unicodedata.category(c) in ("Cc", "Cf") for c in name)


def restored_cost(record: Mapping[str, Any], session_id: str,
                  prices: _pricing.PriceTable | None = None) -> RestoredCost | None:
    """The :class:`RestoredCost` of one transcript record, or None when it is not a ``cost-state``
    record of ``session_id`` that 2.1.329 accepts: every number finite, >= 0 and at most 1e15
    (``totalCostUSD`` 1e9), the seven duration/line/time fields present, each entry with its six
    required counters, the four token counters summed over the entries at most 1e15, model names
    without control/format characters, ``hasUnknownModelCost`` a boolean when present.
    ``contextWindow``/``maxOutputTokens`` come from ``prices`` (default 2.1.329's table)."""
    if record.get("type") != "cost-state" or record.get("sessionId") != session_id:
        return None
    total = record.get("totalCostUSD")
    if not _state_number(total, _STATE_MAX_COST) or not all(_state_number(record.get(k)) for k in _STATE_NUMBERS):
        return None
    if "hasUnknownModelCost" in record and not isinstance(record["hasUnknownModelCost"], bool):
        return None
    usage = record.get("modelUsage")
    if not isinstance(usage, Mapping):
        return None
    prices = prices or _pricing.load_table("2.1.329")
    entries: dict[str, dict] = {}
    for name, e in usage.items():
        if not _model_name_ok(name) or not isinstance(e, Mapping):
            return None
        kept: dict[str, Any] = {}
        for k in COST_STATE_ENTRY_KEYS:
            if k not in e and k in _OPTIONAL_ENTRY_KEYS:
                continue
            if not _state_number(e.get(k)):
                return None
            kept[k] = e[k]
        kept["contextWindow"] = prices.context_window(name)
        kept["maxOutputTokens"] = prices.max_output_tokens(name)
        entries[name] = kept
    if any(sum(e[k] for e in entries.values()) > _STATE_MAX for k in _SUMMED_TOKENS):
        return None
    return RestoredCost(total_cost_usd=total, modelUsage=entries, duration_api_ms=record["totalAPIDuration"])


def last_restored_cost(records: Iterable[Mapping[str, Any]], session_id: str,
                       prices: _pricing.PriceTable | None = None) -> RestoredCost | None:
    """:func:`restored_cost` of the last record that gives one (records in file order): an invalid
    later record leaves the earlier state in force, as in the CLI."""
    found = None
    for r in records:
        state = restored_cost(r, session_id, prices)
        if state is not None:
            found = state
    return found


def _spent_before(previous: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """``previous`` without what was restored (the budget's baseline)."""
    if previous is None or isinstance(previous, RestoredCost):
        return None
    restored = getattr(previous, "restored_cost_usd", 0.0)
    if not restored:
        return previous
    return {"total_cost_usd": (previous.get("total_cost_usd") or 0) - restored, "modelUsage": {}}


def _api_ms_before(previous: Mapping[str, Any] | None) -> float:
    if not previous:
        return 0
    total = getattr(previous, "api_ms_total", None)
    return total if total is not None else (previous.get("duration_api_ms", 0) or 0)


def _restored_models(previous: Mapping[str, Any] | None) -> frozenset[str]:
    if isinstance(previous, RestoredCost):
        return frozenset(previous.get("modelUsage") or ())
    return getattr(previous, "restored_models", frozenset())


def _keep_order(shaped: Mapping[str, Any], computed: Mapping[str, Any], models: frozenset[str]) -> dict:
    """``modelUsage`` as shaped, but the entries of ``models`` in their computed (the CLI's) key order,
    with only the keys the version prints (no sample values filled in: a restored entry the run did
    not use has no canonicalModel/provider/costBasis)."""
    out: dict[str, Any] = {}
    for m, e in shaped.items():
        c = computed.get(m)
        if m in models and isinstance(e, Mapping) and isinstance(c, Mapping):
            out[m] = {k: e[k] for k in c if k in e}
        else:
            out[m] = e
    return out


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
    return 1 + sum(1 for r in records if r.get("type") == "user" and (_is_tool_result(r) or is_nudge(r)))


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
    seen: set[object] = set()     # tool_use ids (a passed-in denial's may lack one: None)
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
    sent = {r.get("id"): record_time(r) for r in api_requests if r.get("type") == "api-request"}
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
                start = record_time(seq[j])
                if start is not None:
                    break
        end = record_time(seq[lastidx[mid]])
        if start is not None and end is not None and end > start:
            total += (end - start) * 1000
    return int(round(total))


def ms_between(a: float | None, b: float | None) -> int | None:
    """Whole milliseconds from ``a`` to ``b`` (epoch seconds, e.g. ``record_time``; 0 if ``b`` is
    earlier), or None when either is unknown."""
    if a is None or b is None:
        return None
    return max(0, int(round((b - a) * 1000)))


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
    t0 = record_time(prompt) if prompt else None
    body = [r for r in records if r.get("type") in ("assistant", "user") and not r.get("isSidechain")]
    real = [r for r in body if r.get("type") == "assistant" and isinstance(r.get("message"), Mapping)
            and not is_synthetic(r["message"])]
    end = record_time(body[-1]) if body else None
    first = record_time(real[0]) if real else None
    reqs = sorted(t for t in (record_time(r) for r in api_requests if r.get("type") == "api-request")
                  if t is not None and (t0 is None or t >= t0))
    ttft = ms_between(t0, first)
    return {
        "duration_ms": ms_between(t0, end),
        "duration_api_ms": estimate_api_ms(records, prompt, api_requests),
        "ttft_ms": ttft,
        "ttft_stream_ms": ttft,
        "time_to_request_ms": (ms_between(t0, reqs[0]) if reqs and first is not None else ttft),
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
    duration_api_ms: float | None,
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
    usage_records: Sequence[Mapping[str, Any]] | None = None,
    agent_records: Sequence[Mapping[str, Any]] = (),
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
    ``usage_records``: the records whose responses ``usage`` sums, when not all of them
    (error_max_structured_output_retries leaves the last response out; none: the variant's zeros).
    ``agent_records``: the records of the turn's agents (Agent tool): their requests count in
    ``modelUsage`` and ``total_cost_usd`` as in ``-p``, not in ``usage``.
    ``terminal_reason``: the variant sample's (completed / api_error / max_turns …); pass a
    value to override, ``None`` to leave it out.

    ``previous``: the result of the process's previous turn (stream-json input, SDK, api.Session), or
    the :class:`RestoredCost` of a resumed session (counted only by versions that restore it,
    ``Dialect.restores_cost_state``): cost, modelUsage and duration_api_ms continue from it, except
    that a local command's duration_api_ms is 0 and ``/clear`` starts from 0 on versions that do so
    (``local_command_api_ms_zero``, ``clear_resets_cost``). Returns a :class:`ResultObject`; restored
    modelUsage entries keep the CLI's key order (restored keys, then what this run added).
    """
    records = [r for r in turn_records if not (prompt is not None and r is prompt)]
    if version is None:
        version = next((v for v in map(record_version, records) if v), None)
    shp = _shapes.load(version)
    prices = prices or _pricing.load_table(version)
    resp = responses(records)
    last = last_assistant(records)
    is_error = bool(last is not None and last.get("isApiErrorMessage"))
    structured = structured_output is not _UNSET
    variant = result_variant(subtype, is_error, structured, local_command)
    if usage_records is not None and responses(usage_records):
        usage = sum_usage(responses(usage_records), shp.usage_template(fmt, "success"))
    else:
        usage = sum_usage(resp if usage_records is None else [],
                          shp.usage_template(fmt, variant) or shp.usage_template(fmt, "success"))
    key_rule = str(shp.rules.get("model_usage_key", "requested"))
    facts = _versions.dialect(version)
    if isinstance(previous, RestoredCost) and not facts.restores_cost_state:
        previous = None
    if local_command and command_name == "clear" and facts.clear_resets_cost:
        previous = None               # /clear starts the counts again
    restored_models = _restored_models(previous)
    provider = shp.model_usage_entry(fmt).get("provider")
    provider = None if not isinstance(provider, str) or _shapes.is_placeholder(provider) else provider
    # (the requests of the turn's agents count in modelUsage and the cost, not in ``usage``)
    # in the order the responses arrived (as -p adds each request's cost when it completes: the float
    # sum depends on the order)
    billed = responses(_by_time([*records, *({k: v for k, v in r.items() if k != "isSidechain"}
                                             for r in agent_records)])) if agent_records else resp
    mu, total_cost = model_usage(billed, model_key=model_key, previous=previous, prices=prices, key_rule=key_rule,
                                 provider=provider)
    mu_turn, _ = model_usage(billed, model_key=model_key, prices=prices, key_rule=key_rule, provider=provider)
    est = turn_timings(records, prompt, api_requests) if (estimate_timings or duration_ms is None
                                                          or duration_api_ms is None) else {}
    if duration_ms is None:
        duration_ms = est.get("duration_ms") or 0
    if duration_api_ms is None:
        duration_api_ms = est.get("duration_api_ms") or 0
    api_ms_total = duration_api_ms + _api_ms_before(previous)
    duration_api_ms = 0 if local_command and facts.local_command_api_ms_zero else api_ms_total
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
    out = ResultObject(shp.shape_result(fmt, variant, computed, drop=drop))
    if usage_records is not None and responses(usage_records) and isinstance(out.get("usage"), dict):
        # the variant's sample has -p's zero usage, whose key order differs (2.1.329): a counted one
        # is in the order of any other result's usage
        order = [k for k in usage if k in out["usage"]]
        out["usage"] = {**{k: out["usage"][k] for k in order}, **out["usage"]}
    if restored_models and isinstance(out.get("modelUsage"), Mapping):
        out["modelUsage"] = _keep_order(out["modelUsage"], mu, restored_models)
    out.restored_models = restored_models
    out.api_ms_total = api_ms_total
    out.restored_cost_usd = (previous.get("total_cost_usd") or 0) if isinstance(previous, RestoredCost) \
        else getattr(previous, "restored_cost_usd", 0.0)
    return out


# terminal_reason for variants without a recorded sample
_DEFAULT_TERMINAL = {"success": "completed", "structured": "completed", "api_error": "completed",
                     "error_max_turns": "max_turns"}


def total_cost(records: Sequence[Mapping[str, Any]], *, version: str | None = None, model_key: str | None = None,
               previous: Mapping[str, Any] | None = None) -> float:
    """What the process has spent for --max-budget-usd: ``total_cost_usd`` of the responses in
    ``records`` plus ``previous``'s, as result_message computes it, but without a resumed session's
    restored cost (a :class:`RestoredCost`, or the part of a later result that came from one):
    2.1.329 `-p` compares only its own spending with the budget."""
    if version is None:
        version = next((v for v in map(record_version, records) if v), None)
    shp = _shapes.load(version)
    _mu, total = model_usage(responses(records), model_key=model_key, previous=_spent_before(previous),
                             prices=_pricing.load_table(version),
                             key_rule=str(shp.rules.get("model_usage_key", "requested")))
    return float(total)


def budget_error(max_budget_usd: float) -> str:
    """The ``errors[0]`` text of an ``error_max_budget_usd`` result."""
    return f"Reached maximum budget (${js_number(max_budget_usd)})"


def max_turns_error(max_turns: int | float) -> str:
    """The ``errors[0]`` text of an ``error_max_turns`` result (the number as JavaScript prints it)."""
    return f"Reached maximum number of turns ({js_number(max_turns)})"
