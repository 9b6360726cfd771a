"""The bridge's own stdio MCP server: ``claude -p``'s ``StructuredOutput`` tool for interactive claude.

``claude -p --json-schema S`` offers the model a built-in tool ``StructuredOutput`` whose input schema
is S (docs/cli-behaviour.md §12). Interactive claude ignores ``--json-schema``, so the bridge gives it
the same tool through an MCP server that claude starts from the run's ``--mcp-config``::

    python -I -m claude_bridge_tmux.run.structured_mcp SCHEMA_JSON [READY_FILE]

claude speaks MCP on stdin/stdout (JSON-RPC 2.0, one message per line; protocol revisions
2024-11-05 .. 2025-06-18 as sent by CLIs 2.1.197 and 2.1.329). The server answers ``initialize``,
``ping``, ``tools/list`` (one tool, :data:`TOOL_NAME`, with ``-p``'s description and the caller's
schema as ``inputSchema``) and ``tools/call``: input that conforms to the schema gets ``-p``'s
``Structured output provided successfully``; input that does not gets an error result worded like
``-p``'s (``Output does not match required schema: /name: must be string``), so the model retries
within the same turn as it does under ``-p``. The model sees the tool as
``mcp__claude-bridge__StructuredOutput``; the bridge maps the name back in what it prints, and ends the
turn after a valid call with the tool gate, before claude sends another request (as ``-p``).

Started without ``-S`` (it needs ``jsonschema`` from the bridge's environment) but with ``-I``, so no
``PYTHON*`` variable of the caller changes it. The schema travels in its argv (the caller gave it on
the bridge's own command line); nothing is read but stdin, nothing written but stdout and READY_FILE
(created empty, 0600, once the tool has been listed).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from claude_bridge_tmux.output.structured import DESCRIPTION, MODEL_TOOL_NAME, SERVER_NAME, SUCCESS_TEXT, problem
from claude_bridge_tmux.output.structured import PRINT_TOOL_NAME as TOOL_NAME

PROTOCOL_VERSION = "2025-06-18"


def _reply(msg_id: Any, result: Any = None, error: dict | None = None) -> dict:
    out: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id}
    if error is not None:
        out["error"] = error
    else:
        out["result"] = result
    return out


def handle(message: dict, schema: dict) -> dict | None:
    """The JSON-RPC answer to one message (None for a notification).

    ``message``: a decoded JSON-RPC request or notification; ``schema``: the caller's JSON Schema.
    Unknown methods get error -32601, as any MCP server."""
    method = message.get("method")
    msg_id = message.get("id")
    if msg_id is None:
        return None                      # notifications (initialized, cancelled, ...) get no answer
    params = message.get("params") or {}
    if method == "initialize":
        asked = params.get("protocolVersion") if isinstance(params, dict) else None
        return _reply(msg_id, {"protocolVersion": asked if isinstance(asked, str) else PROTOCOL_VERSION,
                               "capabilities": {"tools": {}},
                               "serverInfo": {"name": SERVER_NAME, "version": "1"}})
    if method == "ping":
        return _reply(msg_id, {})
    if method == "tools/list":
        return _reply(msg_id, {"tools": [{"name": TOOL_NAME, "description": DESCRIPTION, "inputSchema": schema}]})
    if method == "tools/call":
        if params.get("name") != TOOL_NAME:
            return _reply(msg_id, error={"code": -32602, "message": f"Unknown tool: {params.get('name')}"})
        why = problem(params.get("arguments") or {}, schema)
        if why is None:
            return _reply(msg_id, {"content": [{"type": "text", "text": SUCCESS_TEXT}]})
        return _reply(msg_id, {"content": [{"type": "text", "text": why}], "isError": True})
    return _reply(msg_id, error={"code": -32601, "message": f"Method not found: {method}"})


def mcp_config(schema: dict, ready_file: str) -> str:
    """The ``--mcp-config`` value (JSON) that makes claude start this server for ``schema``.

    ``alwaysLoad``: its tool is in every request's tool list, as ``-p``'s built-in one (2.1.329 would
    otherwise defer an MCP tool behind ToolSearch). ``ready_file`` is created once claude has listed
    the tool: the bridge submits the first prompt only then, as ``-p`` connects its MCP servers
    before its first request."""
    return json.dumps({"mcpServers": {SERVER_NAME: {
        "type": "stdio", "command": sys.executable, "alwaysLoad": True,
        "args": ["-I", "-m", "claude_bridge_tmux.run.structured_mcp",
                 json.dumps(schema, separators=(",", ":")), ready_file]}}}, separators=(",", ":"))


def with_permission(settings: dict) -> dict:
    """The run's settings with the StructuredOutput tool allowed (it must never wait for approval, as
    -p's built-in tool does not); the caller's own rules are kept."""
    perms = dict(settings.get("permissions") or {})
    allow = list(perms.get("allow") or [])
    if MODEL_TOOL_NAME not in allow:
        allow.append(MODEL_TOOL_NAME)
    perms["allow"] = allow
    return dict(settings, permissions=perms)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: python -m claude_bridge_tmux.run.structured_mcp SCHEMA_JSON [READY_FILE]", file=sys.stderr)
        return 2
    ready = argv[2] if len(argv) == 3 else None
    try:
        schema = json.loads(argv[1])
    except ValueError as e:
        print(f"claude-bridge: the schema is not JSON: {e}", file=sys.stderr)
        return 2
    out = sys.stdout
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            message = json.loads(line)
        except ValueError:
            answer: dict | None = _reply(None, error={"code": -32700, "message": "Parse error"})
        else:
            answer = handle(message, schema) if isinstance(message, dict) else None
        if answer is not None:
            out.write(json.dumps(answer, ensure_ascii=False) + "\n")
            out.flush()
            if ready is not None and isinstance(message, dict) and message.get("method") == "tools/list":
                try:
                    os.close(os.open(ready, os.O_WRONLY | os.O_CREAT, 0o600))
                except OSError:
                    pass
                ready = None
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
