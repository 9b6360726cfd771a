"""A pass-through in front of a stdio MCP server of the caller's ``--mcp-config``: it says when claude has its tools.

``python -I -S mcp_tap.py READY_FILE COMMAND [ARG...]`` starts ``COMMAND ARG...`` (same environment,
cwd and stderr) and copies bytes both ways unchanged: claude's stdin to the server, the server's
stdout to claude. It reads along for one thing: the server's answer (result or error) to claude's
``tools/list`` request (and to the other list requests sent with it; for a server whose
``initialize`` answer offers no tools, that answer). Then, or when the server ends or cannot be
started, it creates READY_FILE
(empty, 0600). The bridge holds the first prompt until every READY_FILE exists, for at most the
MCP connect timeout (``ClaudeSession.expect_ready``).

Why: ``claude -p`` waits for the ``--mcp-config`` servers before its first request; interactive claude
2.1.197 sends the first prompt while they are still connecting, so the model's first request lacks
their tools and a call gets "No such tool available" (docs/cli-behaviour.md §14). Later CLIs defer
MCP tools in both modes and hold a call until its server is up, so they get no tap
(``Dialect.mcp_waits_before_input``).

Termination signals are passed on to the server; the tap exits with the server's exit status.
Import-light on purpose (stdlib, ``-I -S``): it starts with every server.
"""

import json
import os
import select
import signal
import subprocess
import sys


def _touch(path: str) -> None:
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError:
        pass


#: the requests claude sends right after ``initialize``; it adds the server's tools once they are answered
LISTS = ("tools/list", "prompts/list", "resources/list", "resources/templates/list")


def _messages(line: bytes) -> list:
    try:
        message = json.loads(line)
    except ValueError:
        return []
    return [m for m in (message if isinstance(message, list) else [message]) if isinstance(m, dict)]


def list_requests(line: bytes) -> dict:
    """``{id: method}`` of ``initialize`` and the list requests (:data:`LISTS`) in one JSON-RPC line
    of claude's."""
    return {m["id"]: m["method"] for m in _messages(line)
            if m.get("method") in ("initialize", *LISTS) and isinstance(m.get("id"), (str, int))}


def answers(line: bytes) -> list:
    """The answers (results and errors: messages with an id and no method) in one JSON-RPC line of
    the server's."""
    return [m for m in _messages(line) if "method" not in m and isinstance(m.get("id"), (str, int))]


def has_tools(initialize_answer: dict) -> bool:
    """Whether a server's ``initialize`` answer offers tools (claude lists them only then)."""
    result = initialize_answer.get("result")
    caps = result.get("capabilities") if isinstance(result, dict) else None
    return isinstance(caps, dict) and "tools" in caps


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print("usage: mcp_tap.py READY_FILE COMMAND [ARG...]", file=sys.stderr)
        return 2
    ready, command = argv[1], argv[2:]
    try:
        child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    except OSError as e:
        _touch(ready)
        print(f"{command[0]}: {e.strerror}", file=sys.stderr)
        return 127 if isinstance(e, FileNotFoundError) else 126
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, _f: child.send_signal(s))
    assert child.stdin is not None and child.stdout is not None
    stdin, server_out, out = sys.stdin.buffer.fileno(), child.stdout.fileno(), sys.stdout.buffer.fileno()
    pending: dict = {}          # claude's initialize and list requests not yet answered: id -> method
    tools_listed = seen = False
    buf_in = buf_out = b""
    open_fds = [stdin, server_out]
    while server_out in open_fds:
        try:
            readable, _, _ = select.select(open_fds, [], [])
        except InterruptedError:
            continue
        if stdin in readable:
            chunk = os.read(stdin, 1 << 16)
            if not chunk:
                open_fds.remove(stdin)
                child.stdin.close()
            else:
                try:
                    child.stdin.write(chunk)
                except BrokenPipeError:
                    open_fds.remove(stdin)
                if not seen:
                    buf_in += chunk
                    *lines, buf_in = buf_in.split(b"\n")
                    for line in lines:
                        pending.update(list_requests(line))
        if server_out in readable:
            chunk = os.read(server_out, 1 << 16)
            if not chunk:
                open_fds.remove(server_out)
                break
            rest = chunk
            while rest:
                try:
                    rest = rest[os.write(out, rest):]
                except BrokenPipeError:
                    rest = b""
            if not seen:
                buf_out += chunk
                *lines, buf_out = buf_out.split(b"\n")
                for line in lines:
                    for answer in answers(line):
                        method = pending.pop(answer["id"], None)
                        if method == "tools/list" or (method == "initialize" and not has_tools(answer)):
                            tools_listed = True     # (a server without tools: nothing to wait for)
                if tools_listed and not pending:
                    # written after claude has the answer: it adds the tools as it reads them
                    seen = True
                    buf_in = buf_out = b""
                    _touch(ready)
    _touch(ready)
    return child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
