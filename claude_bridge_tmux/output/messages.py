"""The stream-json message lines of ``claude -p`` for transcript records (pure: no clock; reads only the
packaged, cached shape tables).

Produces ``system/init`` (:func:`init_message`, when the CLI's own init line is not available), one
``assistant`` line per transcript assistant record and the ``user`` lines of tool results and the
structured-output nudge (:func:`stream_messages`), the system lines some versions add around them
(``system/thinking_tokens``, ``system/permission_denied``), and the lines of emulated options
(``system/hook_started`` / ``hook_response``, ``system/informational``, the synthetic ``assistant`` line
of a local slash command). Fresh uuids come from the ``new_uuid`` arguments (default: uuid4), times
from the caller.

Format: `-p` output of CLI 2.1.197 (``tests/data/print``: stdout and the transcript that very run
wrote; ``tests/data/transcripts``: interactive runs of the same scenarios) and 2.1.329
(``tests/data/v2.1.329``: ``print.out``, ``print_transcript.jsonl``, ``interactive.jsonl``); key
order and optional fields per version from :mod:`shapes` (``claude_bridge_tmux/data/shapes-*.json``).
The hook, informational and local-command lines have no capture there: they follow the probes of
docs/probe-notes.md and docs/cli-behaviour.md §1.

* ``assistant`` lines: both modes write one content block per record and reuse the record uuid.
  `-p` emits each block at ``content_block_stop``, *before* ``message_delta``, so its ``message``
  carries ``stop_reason: null``, ``stop_sequence: null``, the ``message_start`` usage
  (``output_tokens: 1``, five keys) and ``context_management: null``; the transcript holds the final
  values and ``stop_details: null`` instead. We rebuild the `-p` form (``final_usage=True`` keeps the
  transcript's final values). Synthetic messages (``model: "<synthetic>"``: API errors, interrupted
  output) are identical in both modes and are passed through unchanged.
* ``user`` lines: tool results (``toolUseResult`` -> ``tool_use_result``) and the structured-output
  nudge; nothing else in the transcript has a `-p` counterpart.
"""

from __future__ import annotations

import re
import uuid as _uuidlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from claude_bridge_tmux.follow.transcript import encode_project_dir
from claude_bridge_tmux.output import shapes as _shapes
from claude_bridge_tmux.versions import dialect

SYNTHETIC_MODEL = "<synthetic>"
NUDGE_PREFIX = "[structured-output-enforce]"


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


# =========================================================================== assistant / user lines


def is_synthetic(message: Mapping[str, Any]) -> bool:
    return message.get("model") == SYNTHETIC_MODEL


def start_usage(usage: Mapping[str, Any] | None) -> dict:
    """The five-key ``message_start`` usage `-p` prints before a response is complete (``output_tokens: 1``)."""
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
        body["usage"] = start_usage(message.get("usage"))
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


# stream-json's tool_result_meta[].permission_decision keys (2.1.329's output schema, which drops others)
PERMISSION_DECISION_KEYS = ("decision", "source", "reason_type", "plugin_approval", "auto_mode_rule")


def tool_result_meta(record: Mapping[str, Any], denied: bool) -> list[dict]:
    """2.1.329's ``tool_result_meta`` for a tool-result user record: one entry per tool_result
    block, ``{"id"[, "non_execution_kind"], "permission_decision"}``.

    From the record: ``toolDenialKind`` -> ``non_execution_kind``, ``permissionDecision``
    (camelCase) -> ``permission_decision`` (snake_case, only :data:`PERMISSION_DECISION_KEYS`). A denial made by
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
                snake = {_camel_to_snake(k): v for k, v in pd.items()}
                # the output schema's keys, in its order (2.1.329): ruleSource, reasonCode … are dropped
                e["permission_decision"] = {k: snake[k] for k in PERMISSION_DECISION_KEYS if k in snake}
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


def is_nudge(record: Mapping[str, Any]) -> bool:
    """The structured-output nudge: a user record whose text starts with :data:`NUDGE_PREFIX`."""
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


def _tool_result_text(block: Mapping[str, Any]) -> str:
    c = block.get("content")
    if isinstance(c, str):
        return c
    if isinstance(c, list):
        return "".join(x.get("text", "") for x in c if isinstance(x, Mapping) and x.get("type") == "text")
    return ""


def record_version(record: Mapping[str, Any]) -> str | None:
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
    shp = _shapes.load(version or record_version(record))
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
                    use = tool_uses.get(tid) if tool_uses and isinstance(tid, str) else None
                    out.append(shp.order_line("system/permission_denied", {
                        "type": "system", "subtype": "permission_denied",
                        "tool_name": (use or {}).get("name"), "tool_use_id": tid,
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
        if is_nudge(record):
            text = content if isinstance(content, str) else "".join(
                b.get("text", "") for b in content or () if isinstance(b, Mapping) and b.get("type") == "text"
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



# =========================================================================== system lines of emulated options


_HOOK_OUTCOMES = {"hook_success": "success", "hook_non_blocking_error": "error", "hook_blocking_error": "error",
                  "hook_error_during_execution": "error", "hook_cancelled": "cancelled"}
# how the interactive transcript rewrites a failed hook's stderr (2.1.197, 2.1.329): exit 1, 3, ...:
# this prefix and the stderr trimmed (or NO_STDERR); exit 2 (2.1.329): "[<command>]: " and the raw stderr
_NON_BLOCKING = "Failed with non-blocking status code: "
_NO_STDERR = "No stderr output"


def is_bridge_hook(command: object) -> bool:
    """Whether a hook command is one of the bridge's own (host/hooks.py: they spool to ``<run>/hooks/<Event>.$$``)."""
    return isinstance(command, str) and ".$$" in command and "/hooks/" in command


def hook_result(attachment: Mapping[str, Any]) -> tuple[str, str, int, str] | None:
    """``(stdout, stderr, exit_code, outcome)`` as ``claude -p``'s ``system/hook_response`` gives them, for a
    hook-result attachment of the interactive transcript; None for other attachments.

    The transcript keeps a successful hook's stdout and stderr as they were, but rewrites a failed one's
    stderr (see ``_NON_BLOCKING``): it is taken back to the raw text, with the trailing newline that the
    trimming removed put back (an exact ``-p`` value for output ending in one newline, the usual case).
    A timed-out hook (``hook_cancelled``) is ``("", "", 1, "cancelled")`` as in ``-p`` (2.1.197, 2.1.329).
    """
    kind = attachment.get("type")
    if kind not in _HOOK_OUTCOMES:
        return None
    outcome = _HOOK_OUTCOMES[str(kind)]
    if kind == "hook_cancelled":
        return "", "", 1, outcome
    stdout, stderr = str(attachment.get("stdout") or ""), str(attachment.get("stderr") or "")
    if outcome == "error":
        labelled = f"[{attachment.get('command')}]: "
        if stderr.startswith(_NON_BLOCKING):
            rest = stderr[len(_NON_BLOCKING):]
            stderr = "" if rest == _NO_STDERR else rest + "\n"
        elif stderr.startswith(labelled):
            stderr = stderr[len(labelled):]
    code = attachment.get("exitCode")
    if not isinstance(code, int) or isinstance(code, bool):
        code = 0 if outcome == "success" else 1
    return stdout, stderr, code, outcome


def _hook_pair(name: object, event: object, result: tuple[str, str, int, str], *, session_id: str,
               mk: Callable[[], str]) -> tuple[dict, dict]:
    stdout, stderr, code, outcome = result
    hook_id = mk()
    started = {"type": "system", "subtype": "hook_started", "hook_id": hook_id, "hook_name": name,
               "hook_event": event, "uuid": mk(), "session_id": session_id}
    response = {"type": "system", "subtype": "hook_response", "hook_id": hook_id, "hook_name": name,
                "hook_event": event, "output": stdout + stderr, "stdout": stdout, "stderr": stderr,
                "exit_code": code, "outcome": outcome, "uuid": mk(), "session_id": session_id}
    return started, response


def hook_event_lines(record: Mapping[str, Any], *, session_id: str,
                     new_uuid: Callable[[], str] | None = None) -> list[dict]:
    """--include-hook-events: ``system/hook_started`` + ``system/hook_response`` for a hook-result
    attachment of the transcript (the caller's own hooks; the bridge's are left out). Values as
    :func:`hook_result`; ``output`` is stdout then stderr (``-p`` interleaves them as they arrive)."""
    a = record.get("attachment") if record.get("type") == "attachment" else None
    if not isinstance(a, Mapping) or is_bridge_hook(a.get("command")):
        return []
    result = hook_result(a)
    if result is None:
        return []
    mk = new_uuid or (lambda: str(_uuidlib.uuid4()))
    return list(_hook_pair(a.get("hookName") or a.get("hookEvent"), a.get("hookEvent"), result,
                           session_id=session_id, mk=mk))


def is_session_start_record(record: Mapping[str, Any]) -> bool:
    """A transcript attachment written for a SessionStart hook (a hook result or its additional context)."""
    a = record.get("attachment") if record.get("type") == "attachment" else None
    return isinstance(a, Mapping) and a.get("hookEvent") == "SessionStart"


def hook_matches(matcher: object, value: str) -> bool:
    """claude's hook matcher test: none, ``""`` or ``"*"`` match everything; a plain name or ``a|b`` list
    matches those values exactly; anything else is a regular expression searched in ``value`` (one that
    does not compile matches nothing)."""
    if matcher is None or matcher == "" or matcher == "*":
        return True
    if not isinstance(matcher, str):
        return False
    if re.fullmatch(r"[A-Za-z0-9_|]+", matcher):
        return value in [m.strip() for m in matcher.split("|")]
    try:
        return re.search(matcher, value) is not None
    except re.error:
        return False


def session_start_commands(settings: Mapping[str, Any], source: str) -> list[str]:
    """The command hooks of ``settings["hooks"]["SessionStart"]`` that run for a session started with
    ``source`` (``startup``, ``resume``, ``clear``, ``compact``), in settings order, each command once
    (claude runs a repeated command once); none with ``disableAllHooks``."""
    if not isinstance(settings, Mapping) or settings.get("disableAllHooks") is True:
        return []
    hooks = settings.get("hooks")
    groups = hooks.get("SessionStart") if isinstance(hooks, Mapping) else None
    out: list[str] = []
    for group in groups if isinstance(groups, list) else ():
        if not isinstance(group, Mapping) or not hook_matches(group.get("matcher"), source):
            continue
        for h in group.get("hooks") or ():
            cmd = h.get("command") if isinstance(h, Mapping) and h.get("type") == "command" else None
            if isinstance(cmd, str) and cmd not in out and not is_bridge_hook(cmd):
                out.append(cmd)
    return out


def _has_context(attachment: Mapping[str, Any]) -> bool:
    """Whether claude would drop this SessionStart record on resume when the conversation already holds
    its text (a hook_success with output or additional context; 2.1.329's de-duplication)."""
    kind = attachment.get("type")
    return kind == "hook_additional_context" or (kind == "hook_success" and attachment.get("content") not in ("", None))


def session_start_lines(records: Sequence[Mapping[str, Any]], *, session_id: str, configured: Sequence[str] = (),
                        source: str = "startup", earlier: Mapping[str, Mapping[str, Any]] | None = None,
                        new_uuid: Callable[[], str] | None = None) -> list[dict]:
    """The ``system/hook_started`` and ``system/hook_response`` lines ``claude -p`` prints for the
    SessionStart hooks before ``system/init`` (stream-json, with or without --include-hook-events;
    2.1.197 and 2.1.329): first one ``hook_started`` per hook, then one ``hook_response`` per hook in the
    order they finished.

    ``records``: this start's SessionStart attachments from the interactive transcript (written as each
    hook finished; the bridge's own hooks and ``hook_additional_context`` records are skipped);
    ``configured``: the caller's SessionStart commands for ``source`` (:func:`session_start_commands`).
    A configured hook with no record of this start:

    * exited 0 with no output (the interactive CLI writes nothing for it; nor, on 2.1.197, for one that
      exits 2): a success with empty output, finishing first;
    * or, in a resumed session (``earlier``: each command's latest record in the session's transcript
      before this run), repeated what the conversation already held: claude then writes none of that
      start's records (when nothing is new) or only the new ones, so the earlier record stands for it
      (when nothing of this start was written, or when that record carried such text).

    Hooks of other settings (the user's files, plugins) are known only from their records. ``hook_name``
    is ``SessionStart:<source>`` (the records' own names when present)."""
    mk = new_uuid or (lambda: str(_uuidlib.uuid4()))
    earlier = earlier or {}
    seen: list[tuple[str | None, tuple[str, str, int, str], Any]] = []
    for rec in records:
        a = rec.get("attachment") if rec.get("type") == "attachment" else None
        if not isinstance(a, Mapping) or a.get("hookEvent") != "SessionStart" or is_bridge_hook(a.get("command")):
            continue
        result = hook_result(a)
        if result is not None:
            cmd = a.get("command")
            seen.append((cmd if isinstance(cmd, str) else None, result, a.get("hookName")))
    names = [n for _, _, n in seen if isinstance(n, str)]
    name = names[0] if names else f"SessionStart:{source}"
    recorded = {c for c, _, _ in seen}
    silent = [c for c in configured if c not in recorded]
    # start order: hooks known only from their records (other settings files come first in claude's
    # order), then the caller's in settings order; finish order: the silent ones, then as recorded
    by_cmd: dict[str | None, list[tuple[dict, dict]]] = {}
    finished: list[tuple[dict, dict]] = []
    for cmd in silent:
        before = earlier.get(cmd)
        result = hook_result(before) if before is not None and (not seen or _has_context(before)) else None
        pair = _hook_pair(name, "SessionStart", result or ("", "", 0, "success"), session_id=session_id, mk=mk)
        by_cmd.setdefault(cmd, []).append(pair)
        finished.append(pair)
    for cmd, result, own_name in seen:
        pair = _hook_pair(own_name or name, "SessionStart", result, session_id=session_id, mk=mk)
        by_cmd.setdefault(cmd if cmd in configured else None, []).append(pair)
        finished.append(pair)
    started = [p for p in by_cmd.get(None, [])] + [p for c in configured for p in by_cmd.get(c, [])]
    return [s for s, _ in started] + [r for _, r in finished]


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


def local_command_message(text: str, *, session_id: str, version: str | None = None, timestamp: str | None = None,
                          new_uuid: Callable[[], str] | None = None) -> dict | None:
    """The synthetic ``assistant`` line `-p` prints in stream-json for a local slash command's answer
    (``/clear``, ``/context``, ``Unknown command: /x`` …): model ``<synthetic>``, zero usage, the text
    as its one block. 2.1.197 prints ``(no content)`` for an empty answer; 2.1.329 prints no line then
    (and its extra ``local_command_*`` / ``context_usage`` fields are not reproduced).

    ``timestamp``: when the answer came (the caller's clock, formatted by :func:`line_timestamp`);
    printed by the versions whose line has one (2.1.329), left out when None."""
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
    if new and timestamp is not None:
        line["timestamp"] = timestamp
    return line


def line_timestamp(epoch_s: float) -> str:
    """A stream-json line's ``timestamp`` for a time in epoch seconds, as JavaScript's
    ``Date.prototype.toISOString``: UTC, milliseconds, ``Z`` (``2026-11-21T12:00:00.000Z``)."""
    t = datetime.fromtimestamp(epoch_s, UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
