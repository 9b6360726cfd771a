"""``--json-schema`` for the interactive CLI (which ignores the flag): the StructuredOutput tool's
calls, the turn's end, the nudge, and ``-p``'s names in what is printed.

``claude -p --json-schema S`` gives the model a built-in ``StructuredOutput`` tool whose input schema
is S and ends the run when the model calls it with valid input (``structured_output`` in the result;
``result`` is that value as compact JSON; ``stop_reason`` ``tool_use``; ``num_turns`` 2). The bridge
gives interactive claude the same tool from an MCP server of its own
(:mod:`claude_bridge_tmux.run.structured_mcp`; the model sees it as
``mcp__claude-bridge__StructuredOutput``, with ``-p``'s description and the caller's schema), and:

1. answers the tool gate (:func:`gate`): stop after a valid call, or after
   the ``MAX_STRUCTURED_OUTPUT_RETRIES``-th (default 5, as ``-p``) invalid one, so claude sends no
   further request, as ``-p``;
2. a turn that ends without any call gets ``-p``'s nudge (:data:`NUDGE`) once in the same pane; a
   second answer without a call is a plain success without ``structured_output`` (``-p`` does that);
3. prints the tool under ``-p``'s name (:class:`PrintNames`): the tool_use block is
   ``StructuredOutput``, its tool_result text content and ``tool_use_result`` are strings.

Formats: CLI 2.1.197 and 2.1.329 (records and ``-p`` output recorded in tests/data/structured/).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from claude_bridge_tmux.follow.tree import tool_use_owner
from claude_bridge_tmux.versions import dialect

# -p's tool; the bridge's MCP server (run/structured_mcp.py) that offers it to interactive claude, and
# the name the model sees it under
PRINT_TOOL_NAME = "StructuredOutput"
SERVER_NAME = "claude-bridge"
MODEL_TOOL_NAME = f"mcp__{SERVER_NAME}__{PRINT_TOOL_NAME}"
# claude -p's own texts for its StructuredOutput tool (2.1.197 and 2.1.329 send the same)
DESCRIPTION = ("Use this tool to return your final response in the requested structured format. You MUST call "
               "this tool exactly once at the end of your response to provide the structured output.")
SUCCESS_TEXT = "Structured output provided successfully"
NUDGE = ("[structured-output-enforce] You MUST call the StructuredOutput tool to complete this request. "
         "Call this tool now.")
DEFAULT_MAX_ATTEMPTS = 5


def calls(records: Iterable[Mapping[str, Any]]) -> list[tuple[str, Any]]:
    """The StructuredOutput calls of a turn's main thread, in order: ``[(tool_use_id, input)]``."""
    out: list[tuple[str, Any]] = []
    for r in records:
        if r.get("type") != "assistant" or r.get("isSidechain"):
            continue
        for b in (r.get("message") or {}).get("content") or ():
            if isinstance(b, Mapping) and b.get("type") == "tool_use" and b.get("name") == MODEL_TOOL_NAME:
                out.append((str(b.get("id") or ""), b.get("input")))
    return out


def outcome(records: Iterable[Mapping[str, Any]], schema: Any) -> tuple[Any, int, str | None]:
    """What the turn's StructuredOutput calls came to: ``(value, failed, last_problem)``. ``value`` is
    the input of the first valid call (:data:`MISSING` when none), ``failed`` the number of invalid
    calls before it, ``last_problem`` the last invalid call's error (as the tool answered it)."""
    failed, last = 0, None
    for _id, value in calls(records):
        why = problem(value if value is not None else {}, schema)
        if why is None:
            return value, failed, last
        failed, last = failed + 1, why
    return MISSING, failed, last


def gate(schema: Any, limit: int) -> Callable[..., bool | None]:
    """The tool gate of a --json-schema turn: ``gate(turn_records, tool_use_id, call)`` is True
    (stop the turn) after a valid StructuredOutput call or the ``limit``-th invalid one of the turn,
    False for any other tool. Decided from the gate hook's ``call`` (``tool_name``, ``tool_input``: under
    load the hook runs before the call's record is in the transcript), else from the records (None
    while the call is not there). Keeps the turn's count of invalid calls: one gate per turn."""
    failed: set[str] = set()

    def decide(records: list[dict], tool_use_id: str, payload: Mapping[str, Any] | None = None) -> bool | None:
        if payload and isinstance(payload.get("tool_name"), str):
            if payload["tool_name"] != MODEL_TOOL_NAME:
                return False
            value = payload.get("tool_input")
        else:
            found = [v for cid, v in calls(records) if cid == tool_use_id]
            if not found:
                return False if tool_use_owner(records, tool_use_id, main_thread=False) is not None else None
            value = found[0]
        if problem(value if value is not None else {}, schema) is None:
            return True
        failed.add(tool_use_id)
        return len(failed) >= limit
    return decide


def without_last_response(records: list[dict]) -> list[dict]:
    """``records`` without the last response's assistant records (one response can span several
    records, one per content block, sharing ``message.id``)."""
    last_id = None
    for r in reversed(records):
        if r.get("type") == "assistant" and not r.get("isSidechain"):
            last_id = (r.get("message") or {}).get("id")
            break
    if last_id is None:
        return list(records)
    return [r for r in records if not (r.get("type") == "assistant" and (r.get("message") or {}).get("id") == last_id)]


class PrintNames:
    """Maps the MCP tool back to ``-p``'s built-in one in a transcript record, before it is printed or
    summed up: the tool_use block's name, and for its result the text content and ``toolUseResult``
    as the plain strings ``-p`` writes (an MCP result is a list of content blocks), with ``-p``'s
    permission decision (``accept`` by ``config``: a built-in tool).

    A failed call's result is ``-p``'s validation error (``schema`` decides it, as the MCP server
    did): the call that used up the attempts is interrupted by the bridge while its hook runs, and
    2.1.197 then records a rejection instead of the server's answer. Other records pass unchanged."""

    def __init__(self, schema: Any = None) -> None:
        self.schema = schema
        self.inputs: dict[str, Any] = {}

    def __call__(self, record: dict) -> dict:
        msg = record.get("message")
        if not isinstance(msg, dict) or not isinstance(msg.get("content"), list):
            return record
        content: list = msg["content"]
        if record.get("type") == "assistant":
            if not any(isinstance(b, dict) and b.get("name") == MODEL_TOOL_NAME for b in content):
                return record
            blocks = []
            for b in content:
                if isinstance(b, dict) and b.get("type") == "tool_use" and b.get("name") == MODEL_TOOL_NAME:
                    self.inputs[str(b.get("id"))] = b.get("input")
                    b = dict(b, name=PRINT_TOOL_NAME)
                blocks.append(b)
            return dict(record, message=dict(msg, content=blocks))
        if record.get("type") != "user":
            return record
        mine = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"
                and b.get("tool_use_id") in self.inputs]
        if not mine:
            return record
        blocks, text, failed = [], None, False
        for b in content:
            if b in mine:
                why = None
                if self.schema is not None:
                    value = self.inputs[b["tool_use_id"]]
                    why = problem(value if value is not None else {}, self.schema)
                failed = why is not None or bool(b.get("is_error"))
                text = why if why is not None else _text_of(b.get("content"))
                b = {"type": "tool_result", "content": text, "is_error": True, "tool_use_id": b["tool_use_id"]} \
                    if failed else dict(b, content=text)
            blocks.append(b)
        out = dict(record, message=dict(msg, content=blocks))
        if text is not None:
            out["toolUseResult"] = f"Error: {text}" if failed else text
        if "permissionDecision" in record or failed:
            out["permissionDecision"] = {"decision": "accept", "source": "config"}   # -p's built-in tool
        out.pop("toolDenialKind", None)
        return out


def _text_of(content: Any) -> Any:
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")
    return content


MISSING = object()   # no valid StructuredOutput call


def _ajv_message(e) -> str:
    """jsonschema's error in the words of ajv (which ``claude -p`` uses), for the common keywords."""
    v, kw = e.validator_value, e.validator
    words = {
        "type": lambda: "must be " + (",".join(v) if isinstance(v, list) else str(v)),
        "required": lambda: "must have required property '" + (e.message.split("'")[1] if "'" in e.message else "?") + "'",
        "additionalProperties": lambda: "must NOT have additional properties",
        "enum": lambda: "must be equal to one of the allowed values",
        "const": lambda: "must be equal to constant",
        "minimum": lambda: f"must be >= {v}", "maximum": lambda: f"must be <= {v}",
        "exclusiveMinimum": lambda: f"must be > {v}", "exclusiveMaximum": lambda: f"must be < {v}",
        "minLength": lambda: f"must NOT have fewer than {v} characters",
        "maxLength": lambda: f"must NOT have more than {v} characters",
        "minItems": lambda: f"must NOT have fewer than {v} items",
        "maxItems": lambda: f"must NOT have more than {v} items",
        "pattern": lambda: f'must match pattern "{v}"', "format": lambda: f'must match format "{v}"',
    }
    return words[kw]() if kw in words else e.message


def problem(value: Any, schema: Any) -> str | None:
    """Why ``value`` does not conform to ``schema`` (one line, every error, worded like ``claude -p``'s
    ``Output does not match required schema: /name: must be string``), or None when it does."""
    import jsonschema

    cls = jsonschema.validators.validator_for(schema)
    errors = sorted(cls(schema).iter_errors(value), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    parts = []
    for e in errors[:10]:
        where = "/" + "/".join(str(p) for p in e.absolute_path) if e.absolute_path else "root"
        parts.append(f"{where}: {_ajv_message(e)}")
    return "Output does not match required schema: " + ", ".join(parts)


def schema_error(schema: Any) -> str | None:
    """Why ``schema`` is not a valid JSON Schema (jsonschema's words), or None."""
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as e:
        where = "/".join(str(p) for p in e.absolute_path)
        return f"data{'/' + where if where else ''} {e.message}"
    return None


def max_attempts(env: Mapping[str, str]) -> int:
    """``MAX_STRUCTURED_OUTPUT_RETRIES`` from the run's environment (default 5, at least 1), as ``-p``."""
    try:
        n = int(env.get("MAX_STRUCTURED_OUTPUT_RETRIES") or DEFAULT_MAX_ATTEMPTS)
    except ValueError:
        n = DEFAULT_MAX_ATTEMPTS
    return max(1, n)


def exhausted_error(attempts: int, last_problem: str | None, version: str | None) -> str:
    """``errors[0]`` of ``error_max_structured_output_retries`` (2.1.329 adds the last error)."""
    text = f"Failed to provide valid structured output after {attempts} attempts"
    if last_problem and dialect(version).structured_retries_last_error:
        text += f" \u2014 last StructuredOutput error: {last_problem}"
    return text
