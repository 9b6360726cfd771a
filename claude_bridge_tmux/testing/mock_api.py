"""A scripted mock of the Anthropic Messages API, for running the real Claude Code CLI offline.

Point the CLI at it with ``ANTHROPIC_BASE_URL=<MockServer.url>`` (plus any ``ANTHROPIC_API_KEY``).
The wire format follows the public Anthropic Messages API (``POST /v1/messages``, streaming via
server-sent events) as exercised by Claude Code 2.1.197 and 2.1.329:

* ``POST /v1/messages[?beta=true]`` -- a ``text/event-stream`` answer when the body says
  ``"stream": true`` (events ``message_start``, ``ping``, ``content_block_start``,
  ``content_block_delta`` with ``text_delta`` / ``input_json_delta`` / ``thinking_delta`` /
  ``signature_delta``, ``content_block_stop``, ``message_delta``, ``message_stop``, and ``error``),
  otherwise one JSON message ``{"id","type":"message","role","model","content","stop_reason",
  "stop_sequence","usage"}``.
* ``POST /v1/messages/count_tokens`` -- ``{"input_tokens": 42}``.
* any ``GET`` / ``HEAD`` -- ``200 {}`` (the CLI probes ``HEAD /`` at start).
* errors use Anthropic's shape ``{"type":"error","error":{"type":..., "message":...}}`` and a
  ``request-id`` header.

What the mock answers is driven by directives the test writes into the prompt (``MOCK:name[=value]``,
combinable, see :data:`DIRECTIVES`).  Without a directive the reply is
``MOCK-REPLY to: <prompt, newlines as spaces, max 200 chars>``.  Side queries of the CLI (the
session-title generator: ``output_config.format.type == "json_schema"`` and no tools; compaction:
last user text starting ``CRITICAL: Respond with TEXT ONLY``) ignore directives.

Usage is deterministic so a test can see where each number comes from:
``input_tokens = 10 + len(messages)``, ``cache_creation_input_tokens = 7``,
``cache_read_input_tokens = 3``, ``output_tokens = max(1, len(all output text) // 4)``
(``message_start`` reports ``output_tokens: 1`` like the real API; ``message_delta`` the final count).

Run standalone with ``python -m claude_bridge_tmux.testing.mock_api --port 0``; it prints
``MOCK_URL=http://127.0.0.1:PORT`` once listening.  Stdlib only.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "DIRECTIVES",
    "MockServer",
    "RequestInfo",
    "analyze_request",
    "build_plan",
    "example_from_schema",
    "main",
    "parse_directives",
]

#: Directives understood in the prompt (``MOCK:name[=value]``).  Documentation only.
DIRECTIVES: dict[str, str] = {
    "(none)": "one text block 'MOCK-REPLY to: <prompt, newlines as spaces, max 200 chars>'",
    "multi[=N]": "N text blocks 'Block i of N: <text>' in one message (default 3)",
    "tool[=CMD]": "text 'I will run a command.' + Bash tool_use {command: CMD, description: 'Run CMD'} "
    "(underscores -> spaces, then %XX decoded: %5F is '_'; default 'echo hi'), stop_reason tool_use; after the tool_result: "
    "'MOCK-TOOL-DONE: <result>' or 'MOCK-TOOL-ERROR: <result>'",
    "tools2": "two parallel Bash tool_use (echo one / echo two); then 'MOCK-TOOLS2-DONE: <r1> / <r2>'",
    "toolloop": "every response calls Bash 'echo loop' (for --max-turns)",
    "thinking": "a thinking block (with signature) before the other blocks",
    "err=CODE": "HTTP error CODE with Anthropic's error JSON",
    "retryafter=S": "add 'retry-after: S' to error responses",
    "errtimes=N": "with err=CODE: fail only the first N requests (per session id and prompt), then answer",
    "streamerr": "streaming only: SSE 'error' event before the first content block",
    "streamerrblock=N": "streaming only: SSE 'error' event after N complete blocks",
    "slow=S": "sleep S seconds (float) between SSE chunks",
    "hang=S": "sleep S seconds before answering",
    "long=N": "a text reply of exactly N characters ('line 00001 lorem ipsum ...' lines)",
    "maxtokens": "stop_reason max_tokens on the first response of a turn",
    "say=WORDS": "reply exactly WORDS (underscores -> spaces)",
    "echo": "reply with the exact prompt text",
    "structured[=JSON]": "with a StructuredOutput tool (-p's built-in one, or an MCP server's "
    "mcp__<server>__StructuredOutput): call it with JSON (else an object built from its input_schema); "
    "after a failed call, retry with the built object",
    "nostructured": "never call StructuredOutput",
    "stuckstructured": "with structured=JSON: call StructuredOutput with that JSON again after a failed call",
    "script=NAME": "steps of NAME from the --script file (step k = k-th response of the turn)",
}

WRAPPER_PREFIXES: tuple[str, ...] = (
    "<system-reminder>",
    "<local-command-",
    "<command-",
    "<bash-",
    "Caveat:",
    "[structured-output-enforce]",
    "Output token limit hit",
    "Your response above was cut off mid-stream",
    "This session is being continued from a previous conversation",
)
COMPACT_PREFIX = "CRITICAL: Respond with TEXT ONLY"
STRUCTURED_TOOL = "StructuredOutput"
# claude-bridge's structured-output instructions (claude_bridge_tmux.output.structured): schema line and re-prompts

THINKING_TEXT = "Let me think about this mock question step by step."
COMPACT_SUMMARY = (
    "<analysis>\nMock analysis of the conversation.\n</analysis>\n\n"
    "<summary>\nMock summary of the conversation so far (mock).\n</summary>"
)
LONG_LINE = "lorem ipsum dolor sit amet lorem ipsum dolor sit amet "

# status -> (error type, message).  Messages end in "(mock)" so CLI output is recognisable.
ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "mock error 400"),
    401: ("authentication_error", "invalid x-api-key (mock)"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource (mock)"),
    404: ("not_found_error", "Not found (mock)"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes (mock)"),
    429: ("rate_limit_error", "Number of request tokens has exceeded your rate limit (mock)"),
    500: ("api_error", "Internal server error (mock)"),
    502: ("api_error", "Bad gateway (mock)"),
    503: ("api_error", "Service unavailable (mock)"),
    504: ("api_error", "Gateway timeout (mock)"),
    529: ("overloaded_error", "Overloaded (mock)"),
}
STREAM_ERROR = ("overloaded_error", "Overloaded (mock stream error)")

_DIRECTIVE_RE = re.compile(r"MOCK:([A-Za-z][A-Za-z0-9_]*)(?:=(\S+))?")
_SECRET_HEADERS = {"x-api-key", "authorization", "proxy-authorization", "cookie"}
_DISCONNECT_ERRORS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout, TimeoutError)


def _hex(n: int) -> str:
    return uuid.uuid4().hex[:n] if n <= 32 else (uuid.uuid4().hex + uuid.uuid4().hex)[:n]


# --------------------------------------------------------------------------------------------
# request analysis


def parse_directives(text: str | None) -> dict[str, str | bool]:
    """Return the ``MOCK:name[=value]`` directives of *text* as ``{name: value or True}``.

    Trailing whitespace is ignored; a later directive with the same name wins.
    """
    out: dict[str, str | bool] = {}
    if not text:
        return out
    for m in _DIRECTIVE_RE.finditer(text.rstrip()):
        out[m.group(1)] = m.group(2) if m.group(2) is not None else True
    return out


def _is_wrapper(text: str) -> bool:
    return text.lstrip().startswith(WRAPPER_PREFIXES)


def _blocks(content: Any) -> list[dict]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [b for b in content if isinstance(b, dict)]
    return []


def _real_texts(msg: dict) -> list[str]:
    return [
        b.get("text", "")
        for b in _blocks(msg.get("content"))
        if b.get("type") == "text" and isinstance(b.get("text"), str) and not _is_wrapper(b["text"])
    ]


def _tool_result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in _blocks(content) if b.get("type") == "text")


def _session_id(body: dict) -> str:
    """Session id from ``metadata.user_id`` (a JSON string ``{"device_id","account_uuid","session_id"}``)."""
    user_id = (body.get("metadata") or {}).get("user_id")
    if isinstance(user_id, str):
        try:
            parsed = json.loads(user_id)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and parsed.get("session_id"):
            return str(parsed["session_id"])
        m = re.search(r"session_([0-9a-fA-F-]{36})", user_id)
        if m:
            return m.group(1)
    return ""


@dataclass
class RequestInfo:
    """What the mock understood of one ``/v1/messages`` body.

    ``prompt`` is the user's actual words (exact text, ``None`` if none was found);
    ``tool_results`` holds ``{"tool_use_id","name","text","is_error"}`` for each tool_result block
    of the last user message; ``step`` counts the assistant messages since the prompt message
    (0 = first response of the turn); ``side_kind`` is ``"title"`` (json_schema output, no tools),
    ``"compact"`` or ``None``.
    """

    prompt: str | None = None
    tool_results: list[dict] = field(default_factory=list)
    is_first: bool = True
    step: int = 0
    side_kind: str | None = None
    side_schema: dict | None = None
    session_id: str = ""
    tool_names: list[str] = field(default_factory=list)
    structured_schema: dict | None = None
    structured_tool: str = "StructuredOutput"   # its name as offered (an MCP server's: mcp__<server>__StructuredOutput)
    last_user_text: str | None = None

    @property
    def is_tool_result(self) -> bool:
        return bool(self.tool_results)


def analyze_request(body: dict) -> RequestInfo:
    """Find the prompt, tool results and request kind in a Messages API request *body*.

    The prompt is the last non-wrapper text block of the last user message that has one, after
    skipping non-user/assistant messages (the CLI sends role ``system`` messages mid-conversation)
    and user messages made only of wrapper blocks (``<system-reminder>`` etc.).  For a tool round
    trip the walk continues back to the user message that started the turn.
    """
    info = RequestInfo(session_id=_session_id(body))
    tools = body.get("tools") or []
    info.tool_names = [t.get("name", "") for t in tools if isinstance(t, dict)]
    for t in tools:
        name = t.get("name") if isinstance(t, dict) else None
        if isinstance(name, str) and (name == STRUCTURED_TOOL or (
                name.startswith("mcp__") and name.endswith("__" + STRUCTURED_TOOL))):
            info.structured_schema = t.get("input_schema") or {}
            info.structured_tool = name
    msgs = [m for m in (body.get("messages") or []) if isinstance(m, dict)]
    conv = [m for m in msgs if m.get("role") in ("user", "assistant")]

    def counts(m: dict) -> bool:  # a user message that is not a pure <system-reminder> trailer
        bl = _blocks(m.get("content"))
        return any(b.get("type") != "text" or not b.get("text", "").lstrip().startswith("<system-reminder>")
                   for b in bl)

    last_user = None
    for i in range(len(conv) - 1, -1, -1):
        if conv[i].get("role") == "user" and counts(conv[i]):
            last_user = i
            break
    if last_user is None:  # only reminders: take the very last user message
        for i in range(len(conv) - 1, -1, -1):
            if conv[i].get("role") == "user":
                last_user = i
                break
    if last_user is not None:
        lu = conv[last_user]
        all_texts = [b.get("text", "") for b in _blocks(lu.get("content")) if b.get("type") == "text"]
        info.last_user_text = all_texts[-1] if all_texts else None
        names = {}
        for m in conv[:last_user]:
            if m.get("role") == "assistant":
                for b in _blocks(m.get("content")):
                    if b.get("type") == "tool_use":
                        names[b.get("id")] = b.get("name")
        for b in _blocks(lu.get("content")):
            if b.get("type") == "tool_result":
                info.tool_results.append(
                    {
                        "tool_use_id": b.get("tool_use_id"),
                        "name": names.get(b.get("tool_use_id")),
                        "text": _tool_result_text(b.get("content")),
                        "is_error": bool(b.get("is_error")),
                    }
                )
        prompt_idx = None
        for i in range(last_user, -1, -1):
            if conv[i].get("role") == "user":
                texts = _real_texts(conv[i])
                if texts:
                    info.prompt = texts[-1]
                    prompt_idx = i
                    break
        if prompt_idx is not None:
            info.step = sum(1 for m in conv[prompt_idx:] if m.get("role") == "assistant")
        info.is_first = prompt_idx is not None and info.step == 0 and not info.tool_results

    fmt = (body.get("output_config") or {}).get("format") or {}
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and not tools:
        info.side_kind = "title"
        info.side_schema = fmt.get("schema") or {}
    elif (info.last_user_text or "").lstrip().startswith(COMPACT_PREFIX) or (
        info.prompt or ""
    ).lstrip().startswith(COMPACT_PREFIX):
        info.side_kind = "compact"
    return info


def example_from_schema(schema: Any, key: str | None = None, *, title: str | None = None) -> Any:
    """Build a deterministic value that satisfies a (simple) JSON schema.

    strings ``"mock"`` (or *title* for a property named ``title``), integers/numbers ``42`` (clamped
    to minimum/maximum), booleans ``true``, arrays of ``max(1, minItems)`` items, objects with all
    their properties; ``const``/``enum``/``anyOf``/``oneOf``/``allOf`` take the first choice.
    """
    if not isinstance(schema, dict):
        return "mock"
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for k in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(k), list) and schema[k]:
            return example_from_schema(schema[k][0], key, title=title)
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), typ[0] if typ else None)
    if typ is None:
        typ = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if typ == "object":
        props = schema.get("properties") or {}
        return {k: example_from_schema(v, k, title=title) for k, v in props.items()}
    if typ == "array":
        n = max(1, int(schema.get("minItems") or 0))
        return [example_from_schema(schema.get("items") or {}, None, title=title) for _ in range(n)]
    if typ in ("integer", "number"):
        v = 42
        if "minimum" in schema and v < schema["minimum"]:
            v = schema["minimum"]
        if "maximum" in schema and v > schema["maximum"]:
            v = schema["maximum"]
        return int(v) if typ == "integer" else v
    if typ == "boolean":
        return True
    if typ == "null":
        return None
    if key == "title" and title:
        return title
    s = "mock"
    if schema.get("minLength") and len(s) < schema["minLength"]:
        s = s * (schema["minLength"] // len(s) + 1)
    return s


# --------------------------------------------------------------------------------------------
# response planning


@dataclass
class Plan:
    """What to answer: content blocks + stop_reason, or an HTTP error."""

    blocks: list[dict] = field(default_factory=list)
    stop_reason: str = "end_turn"
    error: tuple[int, str, str] | None = None  # (status, type, message)
    retry_after: str | None = None
    stream_error_after: int | None = None  # SSE error after this many complete blocks
    slow: float = 0.0
    hang: float = 0.0

    def summary(self, msg_id: str | None, stream: bool = True) -> dict:
        if self.error:
            return {"error": self.error[0], "error_type": self.error[1]}
        out: dict[str, Any] = {"blocks": [b["type"] for b in self.blocks], "stop_reason": self.stop_reason,
                               "msg_id": msg_id}
        if stream and self.stream_error_after is not None:
            out["stream_error_after"] = self.stream_error_after
        return out


def _text(t: str) -> dict:
    return {"type": "text", "text": t}


def _tool(name: str, inp: dict) -> dict:
    return {"type": "tool_use", "id": "toolu_" + _hex(24), "name": name, "input": inp}


def _bash(cmd: str) -> dict:
    return _tool("Bash", {"command": cmd, "description": f"Run {cmd}"})


def _long_text(n: int) -> str:
    parts: list[str] = []
    size, i = 0, 1
    while size < n:
        line = f"line {i:05d} {LONG_LINE}\n"
        parts.append(line)
        size += len(line)
        i += 1
    return "".join(parts)[:n]


def _num(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _int(value: Any, default: int) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return default


def _words(value: Any, default: str) -> str:
    """A directive value as words: ``_`` is a space, then ``%XX`` escapes are decoded (``%5F`` is ``_``)."""
    return urllib.parse.unquote(value.replace("_", " ")) if isinstance(value, str) else default


def default_reply(prompt: str | None) -> str:
    """``MOCK-REPLY to: <prompt>`` with newlines as spaces, at most 200 prompt characters."""
    p = (prompt or "").replace("\r\n", "\n").replace("\n", " ")
    return "MOCK-REPLY to: " + p[:200]


def _script_step(step_spec: Any) -> tuple[list[dict], str | None]:
    """Turn one script step into blocks.

    A step is a string (text), or ``{"text": ..}``, ``{"tool": NAME, "input": {..}}``,
    ``{"blocks": [{"type":"text","text":..} | {"type":"tool_use","name":..,"input":..} |
    {"type":"thinking","thinking":..}], "stop_reason": ..}``.
    """
    if isinstance(step_spec, str):
        return [_text(step_spec)], None
    if not isinstance(step_spec, dict):
        return [_text(json.dumps(step_spec))], None
    blocks: list[dict] = []
    raw = step_spec.get("blocks")
    if raw is None:
        raw = []
        if "thinking" in step_spec:
            raw.append({"type": "thinking", "thinking": step_spec["thinking"]})
        if "text" in step_spec:
            raw.append({"type": "text", "text": step_spec["text"]})
        if "tool" in step_spec:
            raw.append({"type": "tool_use", "name": step_spec["tool"], "input": step_spec.get("input", {})})
    for b in raw:
        t = b.get("type")
        if t == "tool_use":
            blocks.append(_tool(b.get("name", "Bash"), dict(b.get("input") or {})))
        elif t == "thinking":
            blocks.append({"type": "thinking", "thinking": b.get("thinking", THINKING_TEXT), "signature": "sig_" + _hex(32)})
        else:
            blocks.append(_text(str(b.get("text", ""))))
    return blocks, step_spec.get("stop_reason")


def build_plan(
    info: RequestInfo,
    directives: dict[str, str | bool],
    *,
    error_gate: Callable[[int], bool] | None = None,
    scripts: dict | None = None,
) -> Plan:
    """Decide the answer for an analysed request.

    *error_gate(errtimes)* returns True when this request should fail (it counts failures); by
    default every request with ``err=CODE`` fails.  Side queries ignore *directives*.
    """
    if info.side_kind == "title":
        obj = example_from_schema(info.side_schema or {}, title="Mock session title")
        return Plan(blocks=[_text(json.dumps(obj, separators=(",", ":"), ensure_ascii=False))])
    if info.side_kind == "compact":
        return Plan(blocks=[_text(COMPACT_SUMMARY)])

    d = directives
    plan = Plan(slow=max(0.0, _num(d.get("slow"), 0.0)), hang=max(0.0, _num(d.get("hang"), 0.0)))

    if "err" in d:
        status = _int(d["err"], 500)
        times = d.get("errtimes")
        fail = True
        if error_gate is not None:
            fail = error_gate(_int(times, 0) if times is not None else -1)
        if fail:
            etype, emsg = ERRORS.get(status, ("api_error", f"mock error {status}"))
            plan.error = (status, etype, emsg)
            if d.get("retryafter") not in (None, True):
                plan.retry_after = str(d["retryafter"])
            return plan

    if info.is_first and "streamerr" in d:
        plan.stream_error_after = 0
    if info.is_first and "streamerrblock" in d:
        plan.stream_error_after = max(0, _int(d["streamerrblock"], 1))

    blocks: list[dict] = []
    if "thinking" in d:
        blocks.append({"type": "thinking", "thinking": THINKING_TEXT, "signature": "sig_" + _hex(32)})

    prompt = info.prompt
    if "echo" in d:
        base = prompt or ""
    elif "say" in d:
        base = _words(d["say"], "")
    elif "long" in d:
        base = _long_text(max(0, _int(d["long"], 1000)))
    else:
        base = default_reply(prompt)

    def texts(t: str) -> list[dict]:
        if "multi" in d:
            n = max(1, _int(d["multi"], 3) if d["multi"] is not True else 3)
            return [_text(f"Block {i} of {n}: {t}") for i in range(1, n + 1)]
        return [_text(t)]

    # a tool offered but gone (2.1.329 replays a resumed session's tool list; the MCP server that had
    # it is not there): a model reads "No such tool available ... continue without this tool" and does
    structured_gone = any(r["name"] == info.structured_tool and "No such tool available" in (r["text"] or "")
                          for r in info.tool_results)
    structured_ok = info.structured_schema is not None and "nostructured" not in d and not structured_gone
    trs = info.tool_results
    so_failed = any(r["name"] == info.structured_tool and r["is_error"] for r in trs)

    if "script" in d and scripts is not None:
        steps = scripts.get(str(d["script"])) or []
        if info.step < len(steps):
            sblocks, sstop = _script_step(steps[info.step])
            plan.blocks = blocks + sblocks
            has_tool = any(b["type"] == "tool_use" for b in sblocks)
            plan.stop_reason = sstop or ("tool_use" if has_tool else "end_turn")
            return plan
        plan.blocks = blocks + [_text("MOCK-SCRIPT-END")]
        return plan

    if "toolloop" in d:
        plan.blocks = blocks + [_bash("echo loop")]
        plan.stop_reason = "tool_use"
        return plan

    if so_failed and structured_ok and "stuckstructured" not in d:
        plan.blocks = blocks + [_tool(info.structured_tool, example_from_schema(info.structured_schema))]
        plan.stop_reason = "tool_use"
        return plan

    if trs:
        if "tools2" in d:
            final = "MOCK-TOOLS2-DONE: " + " / ".join(r["text"] for r in trs)
        else:
            final = " / ".join(
                ("MOCK-TOOL-ERROR: " if r["is_error"] else "MOCK-TOOL-DONE: ") + r["text"] for r in trs
            )
        blocks += texts(final)
    elif info.is_first and "tools2" in d:
        plan.blocks = blocks + [_text("I will run two commands."), _bash("echo one"), _bash("echo two")]
        plan.stop_reason = "tool_use"
        return plan
    elif info.is_first and "tool" in d:
        cmd = _words(d["tool"], "echo hi") if d["tool"] is not True else "echo hi"
        plan.blocks = blocks + [_text("I will run a command."), _bash(cmd)]
        plan.stop_reason = "tool_use"
        return plan
    else:
        blocks += texts(base)

    if info.is_first and "maxtokens" in d:
        plan.blocks = blocks
        plan.stop_reason = "max_tokens"
        return plan

    if structured_ok:
        given = d.get("structured")
        obj = None
        if isinstance(given, str):
            try:
                obj = json.loads(given)
            except ValueError:
                obj = None
        if obj is None:
            obj = example_from_schema(info.structured_schema)
        plan.blocks = [b for b in blocks if b["type"] == "thinking"] + [_tool(info.structured_tool, obj)]
        plan.stop_reason = "tool_use"
        return plan

    plan.blocks = blocks
    return plan


def _output_text(blocks: list[dict]) -> str:
    out = []
    for b in blocks:
        if b["type"] == "text":
            out.append(b["text"])
        elif b["type"] == "thinking":
            out.append(b["thinking"])
        elif b["type"] == "tool_use":
            out.append(json.dumps(b["input"], ensure_ascii=False))
    return "".join(out)


# --------------------------------------------------------------------------------------------
# HTTP server


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Disconnected(Exception):
    pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    mock: MockServer

    def handle_error(self, request: socket.socket | tuple[bytes, socket.socket],  # noqa: D401 - quiet on client aborts
                     client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, _DISCONNECT_ERRORS + (_Disconnected,)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MockAnthropic/1.0"
    sys_version = ""
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except _DISCONNECT_ERRORS + (_Disconnected,):
            self.close_connection = True

    # -- helpers
    def _write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except _DISCONNECT_ERRORS as e:
            self.close_connection = True
            raise _Disconnected() from e

    def _send_json(self, status: int, obj: Any, headers: dict | None = None, head: bool = False) -> None:
        data = json.dumps(obj, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self._write(data)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _base_record(self) -> dict:
        h = self.headers
        return {
            "method": self.command,
            "path": self.path,
            "user_agent": h.get("User-Agent"),
            "x_app": h.get("x-app"),
            "anthropic_beta": h.get("anthropic-beta"),
            "headers": {k.lower(): ("<redacted>" if k.lower() in _SECRET_HEADERS else v) for k, v in h.items()},
        }

    # -- verbs
    def do_HEAD(self) -> None:
        rec = self._base_record()
        rec.update(kind="probe", status=200)
        self.server.mock._record(rec)
        self._send_json(200, {}, head=True)

    def do_GET(self) -> None:
        rec = self._base_record()
        rec.update(kind="probe", status=200)
        self.server.mock._record(rec)
        self._send_json(200, {})

    def do_POST(self) -> None:
        mock = self.server.mock
        rec = self._base_record()
        raw = self._read_body()
        path = urlsplit(self.path).path.rstrip("/")
        req_id = "req_mock_" + _hex(16)
        try:
            body = json.loads(raw.decode("utf-8")) if raw else {}
            if not isinstance(body, dict):
                raise ValueError("body is not an object")
        except ValueError as e:
            rec.update(kind="invalid", status=400, error=f"bad json: {e}")
            mock._record(rec)
            self._send_json(400, _error_body("invalid_request_error", f"invalid JSON body (mock): {e}"),
                            {"request-id": req_id})
            return
        if path == "/v1/messages/count_tokens":
            rec.update(kind="count_tokens", status=200, model=body.get("model"), nmsg=len(body.get("messages") or []),
                       ntools=len(body.get("tools") or []), is_side_query=True, side_kind="count_tokens",
                       session_id=_session_id(body), request_id=req_id)
            mock._record(rec, body)
            self._send_json(200, {"input_tokens": 42}, {"request-id": req_id})
            return
        if path != "/v1/messages":
            rec.update(kind="unknown", status=404, request_id=req_id)
            mock._record(rec, body)
            self._send_json(404, _error_body("not_found_error", f"Not found: {path} (mock)"), {"request-id": req_id})
            return
        mock._handle_messages(self, rec, body, req_id)


def _error_body(etype: str, message: str) -> dict:
    return {"type": "error", "error": {"type": etype, "message": message}}


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


class MockServer:
    """The mock Anthropic Messages API server (threaded, bound to loopback only).

    ``MockServer(log_path=None, chunk=20, *, host="127.0.0.1", port=0, script=None, dump_dir=None)``

    * ``log_path`` -- append one JSON line per request (see :meth:`requests` for the keys).
    * ``chunk`` -- characters per ``text_delta`` / ``thinking_delta`` / ``input_json_delta``.
    * ``script`` -- dict or JSON file path ``{NAME: [step, ...]}`` for ``MOCK:script=NAME``.
    * ``dump_dir`` -- write every full request body as ``<seq>.json`` there.

    Use as a context manager or with :meth:`start` / :meth:`stop`; ``url`` is
    ``http://127.0.0.1:PORT``.
    """

    def __init__(
        self,
        log_path: str | os.PathLike | None = None,
        chunk: int = 20,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        script: dict | str | os.PathLike | None = None,
        dump_dir: str | os.PathLike | None = None,
    ) -> None:
        if not _is_loopback(host):
            raise ValueError(f"mock_api: refusing to bind non-loopback host {host!r}")
        self.host = host
        self._req_port = int(port)
        self.chunk = max(1, int(chunk))
        self.log_path = os.fspath(log_path) if log_path else None
        self.dump_dir = os.fspath(dump_dir) if dump_dir else None
        if isinstance(script, (str, os.PathLike)):
            with open(script, encoding="utf-8") as f:
                loaded = json.load(f)
        else:
            loaded = script
        self.scripts: dict = loaded or {}
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._requests: list[dict] = []
        self._seq = 0
        self._err_counts: dict[tuple[str, str], int] = {}
        self._stop = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> MockServer:
        """Bind and serve in a background thread; returns self."""
        if self._httpd is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET

        class _Srv(_HTTPServer):
            address_family = family

        self._stop.clear()
        httpd = _Srv((self.host, self._req_port), _Handler)
        httpd.mock = self
        self._httpd = httpd
        if self.dump_dir:
            os.makedirs(self.dump_dir, exist_ok=True)
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="mock-anthropic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (in-flight sleeps are cut short)."""
        self._stop.set()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port (after :meth:`start`)."""
        if self._httpd is None:
            raise RuntimeError("mock server not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """Base URL for ``ANTHROPIC_BASE_URL``, e.g. ``http://127.0.0.1:40123``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # -- request log
    @property
    def requests(self) -> list[dict]:
        """Copy of every request seen, oldest first.

        Keys: ``seq, ts, kind ("probe" | "messages" | "count_tokens" | "unknown" | "invalid"),
        method, path, status, user_agent, x_app, anthropic_beta`` and, for
        ``POST /v1/messages``: ``model, stream, nmsg, max_tokens, ntools, tools, thinking,
        system_head, billing, prompt, tool_result, directives, is_side_query, side_kind,
        session_id, request_id, answer`` (``{"blocks","stop_reason","msg_id"}`` or
        ``{"error": status}``); in memory only (not in the log file): ``headers`` (lower-cased
        names, credentials redacted) and ``body`` (the parsed request).
        """
        with self._lock:
            return [dict(r) for r in self._requests]

    def main_requests(self) -> list[dict]:
        """The ``/v1/messages`` requests of the conversation itself (no side queries)."""
        return [r for r in self.requests if r.get("kind") == "messages" and not r.get("is_side_query")]

    def wait_for_requests(self, n: int, timeout: float = 10.0, *, main_only: bool = False) -> list[dict]:
        """Block until at least *n* requests (main ones if *main_only*) were received.

        Returns the list; raises ``TimeoutError`` after *timeout* seconds.
        """
        deadline = time.monotonic() + timeout

        def current() -> list[dict]:
            rs = [dict(r) for r in self._requests]
            if main_only:
                rs = [r for r in rs if r.get("kind") == "messages" and not r.get("is_side_query")]
            return rs

        with self._cond:
            while True:
                rs = current()
                if len(rs) >= n:
                    return rs
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"mock_api: {len(rs)} of {n} requests after {timeout}s")
                self._cond.wait(left)

    def clear(self) -> None:
        """Forget recorded requests and errtimes counters (the log file is kept)."""
        with self._lock:
            self._requests.clear()
            self._err_counts.clear()

    def _record(self, rec: dict, body: dict | None = None) -> None:
        with self._cond:
            self._seq += 1
            headers = rec.pop("headers", None)
            rec = {"seq": self._seq, "ts": round(time.time(), 3), **rec}
            line = json.dumps(rec, ensure_ascii=False)
            if headers is not None:
                rec["headers"] = headers
            if body is not None:
                rec["body"] = body
            self._requests.append(rec)
            if self.log_path:
                with open(self.log_path, "a", encoding="utf-8") as f:
                    f.write(line + "\n")
            if self.dump_dir and body is not None:
                with open(os.path.join(self.dump_dir, f"{rec['seq']:05d}.json"), "w", encoding="utf-8") as f:
                    json.dump(body, f, ensure_ascii=False, indent=1)
            self._cond.notify_all()

    def _error_gate(self, key: tuple[str, str]) -> Callable[[int], bool]:
        def gate(times: int) -> bool:
            if times < 0:
                return True
            with self._lock:
                done = self._err_counts.get(key, 0)
                if done < times:
                    self._err_counts[key] = done + 1
                    return True
                return False

        return gate

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stop.wait(seconds)

    # -- /v1/messages
    def _handle_messages(self, h: _Handler, rec: dict, body: dict, req_id: str) -> None:
        info = analyze_request(body)
        if not info.session_id:  # both pinned CLIs also send the session id as a header
            info.session_id = h.headers.get("x-claude-code-session-id") or ""
        side = info.side_kind is not None
        directives = {} if side else parse_directives(info.prompt)
        plan = build_plan(
            info,
            directives,
            error_gate=self._error_gate((info.session_id, info.prompt or "")),
            scripts=self.scripts,
        )
        stream = bool(body.get("stream"))
        msg_id = "msg_mock_" + _hex(20)
        system = body.get("system")
        sys_blocks = _blocks(system)
        billing = next((b.get("text") for b in sys_blocks
                        if (b.get("text") or "").startswith("x-anthropic-billing-header")), None)
        sys_text = "\n".join(b.get("text", "") for b in sys_blocks
                             if b.get("type") == "text" and not (b.get("text") or "").startswith("x-anthropic-billing-header"))
        tools = body.get("tools") or []
        rec.update(
            kind="messages",
            model=body.get("model"),
            stream=body.get("stream"),
            nmsg=len(body.get("messages") or []),
            max_tokens=body.get("max_tokens"),
            ntools=len(tools),
            tools=[t.get("name") for t in tools if isinstance(t, dict)],
            thinking=body.get("thinking"),
            system_head=sys_text[:80],
            billing=billing,
            prompt=info.prompt,
            tool_result=info.is_tool_result,
            directives=directives,
            is_side_query=side,
            side_kind=info.side_kind,
            session_id=info.session_id,
            request_id=req_id,
            answer=plan.summary(None if plan.error else msg_id, stream),
            status=plan.error[0] if plan.error else 200,
        )
        self._record(rec, body)
        if plan.hang:
            self._sleep(plan.hang)
        headers = {"request-id": req_id}
        if plan.error:
            status, etype, emsg = plan.error
            if plan.retry_after:
                headers["retry-after"] = plan.retry_after
            h._send_json(status, _error_body(etype, emsg), headers)
            return
        model = body.get("model") or "claude-mock"
        usage_in = {
            "input_tokens": 10 + len(body.get("messages") or []),
            "cache_creation_input_tokens": 7,
            "cache_read_input_tokens": 3,
        }
        out_tokens = max(1, len(_output_text(plan.blocks)) // 4)
        if not stream:
            h._send_json(
                200,
                {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": plan.blocks,
                    "stop_reason": plan.stop_reason,
                    "stop_sequence": None,
                    "usage": {**usage_in, "output_tokens": out_tokens, "service_tier": "standard"},
                },
                headers,
            )
            return
        self._stream(h, plan, msg_id, model, usage_in, out_tokens, headers)

    def _stream(self, h: _Handler, plan: Plan, msg_id: str, model: str, usage_in: dict,
                out_tokens: int, headers: dict) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream; charset=utf-8")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Connection", "close")
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.close_connection = True
        write = h._write
        chunk = self.chunk

        def pause() -> None:
            if plan.slow:
                self._sleep(plan.slow)
            if self._stop.is_set():
                raise _Disconnected()

        def pieces(s: str) -> list[str]:
            return [s[i:i + chunk] for i in range(0, len(s), chunk)] or [""]

        write(_sse("message_start", {
            "type": "message_start",
            "message": {
                "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": None, "stop_sequence": None,
                "usage": {**usage_in, "output_tokens": 1, "service_tier": "standard"},
            },
        }))
        write(_sse("ping", {"type": "ping"}))
        etype, emsg = STREAM_ERROR
        for idx, b in enumerate(plan.blocks):
            if plan.stream_error_after is not None and idx >= plan.stream_error_after:
                write(_sse("error", _error_body(etype, emsg)))
                return
            pause()
            if b["type"] == "text":
                write(_sse("content_block_start", {"type": "content_block_start", "index": idx,
                                                   "content_block": {"type": "text", "text": ""}}))
                for p in pieces(b["text"]):
                    write(_sse("content_block_delta", {"type": "content_block_delta", "index": idx,
                                                       "delta": {"type": "text_delta", "text": p}}))
                    pause()
            elif b["type"] == "thinking":
                write(_sse("content_block_start", {"type": "content_block_start", "index": idx,
                                                   "content_block": {"type": "thinking", "thinking": "", "signature": ""}}))
                for p in pieces(b["thinking"]):
                    write(_sse("content_block_delta", {"type": "content_block_delta", "index": idx,
                                                       "delta": {"type": "thinking_delta", "thinking": p}}))
                    pause()
                write(_sse("content_block_delta", {"type": "content_block_delta", "index": idx,
                                                   "delta": {"type": "signature_delta", "signature": b["signature"]}}))
            elif b["type"] == "tool_use":
                write(_sse("content_block_start", {"type": "content_block_start", "index": idx,
                                                   "content_block": {"type": "tool_use", "id": b["id"],
                                                                     "name": b["name"], "input": {}}}))
                js = json.dumps(b["input"], ensure_ascii=False, separators=(",", ":"))
                for p in pieces(js):
                    write(_sse("content_block_delta", {"type": "content_block_delta", "index": idx,
                                                       "delta": {"type": "input_json_delta", "partial_json": p}}))
                    pause()
            write(_sse("content_block_stop", {"type": "content_block_stop", "index": idx}))
        if plan.stream_error_after is not None and plan.stream_error_after >= len(plan.blocks):
            write(_sse("error", _error_body(etype, emsg)))
            return
        write(_sse("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": plan.stop_reason, "stop_sequence": None},
            "usage": {**usage_in, "output_tokens": out_tokens},
        }))
        write(_sse("message_stop", {"type": "message_stop"}))


# --------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> int:
    """``python -m claude_bridge_tmux.testing.mock_api [--port 0] [--host 127.0.0.1] [--log F]
    [--chunk 20] [--ready-file F] [--script F] [--dump-dir D]``.

    Prints ``MOCK_URL=http://HOST:PORT`` (flushed) once listening, writes the URL to
    ``--ready-file``, serves until SIGTERM/SIGINT, returns 0.
    """
    ap = argparse.ArgumentParser(prog="python -m claude_bridge_tmux.testing.mock_api",
                                 description="Mock Anthropic Messages API for the Claude Code CLI.")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--log", default=None, help="append one JSON line per request")
    ap.add_argument("--chunk", type=int, default=20, help="characters per streamed delta")
    ap.add_argument("--ready-file", default=None, help="write the URL here once listening")
    ap.add_argument("--script", default=None, help="JSON file {NAME: [steps]} for MOCK:script=NAME")
    ap.add_argument("--dump-dir", default=None, help="write each full request body here")
    args = ap.parse_args(argv)
    try:
        server = MockServer(args.log, args.chunk, host=args.host, port=args.port,
                            script=args.script, dump_dir=args.dump_dir)
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return 2
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(server.url + "\n")
        os.replace(tmp, args.ready_file)
    print(f"MOCK_URL={server.url}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
