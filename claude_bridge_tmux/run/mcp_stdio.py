"""A stdio MCP server that interactive claude starts for one of the Agent SDK's in-process servers.

``python -I -S mcp_stdio.py SOCKET NAME``: claude speaks MCP (JSON-RPC, one message per line) on this
process's stdin/stdout; every message goes over the private unix socket SOCKET to the bridge, which
puts it to the SDK as an ``mcp_message`` control request for server NAME and sends back the SDK's
``mcp_response`` (docs/sdk-protocol.md §3). Responses are written to stdout as they come; notifications
get none (as with any MCP server). Import-light on purpose: claude starts it for every SDK server.
"""

import json
import os
import select
import socket
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: mcp_stdio.py SOCKET NAME", file=sys.stderr)
        return 2
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(argv[1])
    except OSError as e:
        print(f"claude-bridge: cannot reach the bridge for MCP server {argv[2]}: {e.strerror}", file=sys.stderr)
        return 1
    sock.sendall(json.dumps({"server": argv[2]}).encode() + b"\n")
    stdin, out = sys.stdin.buffer.fileno(), sys.stdout.buffer
    buf_in, buf_sock = b"", b""
    open_fds = [stdin, sock.fileno()]
    while open_fds:
        ready, _, _ = select.select(open_fds, [], [])
        if stdin in ready:
            chunk = os.read(stdin, 1 << 16)
            if not chunk:
                open_fds.remove(stdin)
                sock.shutdown(socket.SHUT_WR)
            buf_in += chunk
            *lines, buf_in = buf_in.split(b"\n")
            for line in lines:
                if line.strip():
                    sock.sendall(line + b"\n")
        if sock.fileno() in ready:
            chunk = sock.recv(1 << 16)
            if not chunk:
                return 0
            buf_sock += chunk
            *lines, buf_sock = buf_sock.split(b"\n")
            for line in lines:
                out.write(line + b"\n")
            out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
