"""Relay from claude's hooks in the pane to the Agent SDK's callbacks (``can_use_tool``, SDK hooks).

The SDK registers hook callbacks in ``initialize`` (``{"PreToolUse": [{"matcher": "Bash",
"hookCallbackIds": ["hook_0"], "timeout": 30}], …}``) and, with ``--permission-prompt-tool stdio``,
wants every permission prompt put to its ``can_use_tool`` callback (docs/sdk-protocol.md §3).
Interactive claude has no control channel, but it has hooks, passed per run with ``--settings``:

- one command hook per SDK matcher (claude matches tool names itself), and a ``PermissionRequest``
  hook for ``can_use_tool``. Each writes its stdin JSON to ``<relay>/<Event>-<k>.<pid>.json`` and
  waits for ``<relay>/answers/<pid>``, then prints it as the hook's output (it gives up when the bridge
  process is gone, so a dead bridge never blocks claude);
- a thread here picks each request up, sends the SDK a ``control_request`` (``hook_callback`` per
  callback id, or ``can_use_tool``), waits for its ``control_response`` and writes the answer in
  claude's hook-output format (a ``PermissionRequest`` decision: allow with ``updatedInput``, or deny
  with ``message`` and ``interrupt``).

Hook commands are built from the bridge's own paths and pid only (shell-quoted); prompt content never
reaches them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import sys
import threading
import time
import uuid as uuidlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from claude_bridge_tmux.follow.transcript import DirectoryWatch
from claude_bridge_tmux.host.hooks import HookSpool, waiting_sink_command
from claude_bridge_tmux.host.paths import atomic_write, new_run_dir
from claude_bridge_tmux.run import mcp_config, mcp_stdio

POLL_S = 1.0                  # s: the relay directory is re-read at least this often (a missed watch event)
DEFAULT_WAIT_S = 600          # a hook waits this long for the SDK's answer (the SDK's own limit is 60 s)
SDK_EVENTS = ("PreToolUse", "PostToolUse", "PostToolUseFailure", "UserPromptSubmit", "Stop", "SubagentStop",
              "SubagentStart", "PreCompact", "Notification", "SessionStart", "SessionEnd", "PermissionRequest")


def sdk_server_stdio(socket_path: str) -> mcp_config.Replace:
    """The replacement of each Agent SDK server (``{"type": "sdk", "name": N}``) of an ``--mcp-config``:
    a stdio server that claude starts (``mcp_stdio.py SOCKET N``)."""
    def replace(name: str, spec: dict) -> dict | None:
        if spec.get("type") != "sdk":
            return None
        return {"type": "stdio", "command": sys.executable,
                "args": ["-I", "-S", mcp_stdio.__file__, socket_path, name]}
    return replace


def permission_decision(answer: dict) -> dict:
    """claude's PermissionRequest hook output for a ``can_use_tool`` answer (allow/deny, SDK 0.2.189)."""
    if answer.get("behavior") == "allow":
        decision: dict[str, Any] = {"behavior": "allow"}
        if isinstance(answer.get("updatedInput"), dict):
            decision["updatedInput"] = answer["updatedInput"]
        if answer.get("updatedPermissions"):
            decision["updatedPermissions"] = answer["updatedPermissions"]
    else:
        decision = {"behavior": "deny", "message": str(answer.get("message") or "Permission denied")}
        if answer.get("interrupt"):
            decision["interrupt"] = True
    return {"hookSpecificOutput": {"hookEventName": "PermissionRequest", "decision": decision}}


def merge_hook_outputs(outputs: list[dict]) -> dict:
    """One hook output from several callbacks of one matcher: later keys win, ``hookSpecificOutput`` merged."""
    merged: dict[str, Any] = {}
    for out in outputs:
        for k, v in out.items():
            if k == "hookSpecificOutput" and isinstance(v, dict):
                merged.setdefault(k, {}).update(v)
            else:
                merged[k] = v
    return merged


class Relay:
    """The hook relay of one SDK connection (see the module docstring)."""

    def __init__(self, send: Callable[[dict], None], *, can_use_tool: bool, log: Callable[[str], None]):
        self.send = send
        self.on_interrupt: Callable[[], None] | None = None   # a can_use_tool deny with interrupt: true
        self.can_use_tool = can_use_tool
        self.log = log
        self.matchers: dict[str, list[dict]] = {}     # event -> SDK matchers (matcher, hookCallbackIds, timeout)
        self.dir = new_run_dir("relay")
        (self.dir / "answers").mkdir(mode=0o700)
        self._pending: dict[str, tuple[threading.Event, list[dict]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._spool = HookSpool(self.dir)
        self._wake = threading.Event()
        self._watch: DirectoryWatch | None = None
        self.mcp_socket = self.dir / "mcp.sock"
        self._mcp_listener: socket.socket | None = None

    @classmethod
    def for_plan(cls, prep, send: Callable[[dict], None], *, log: Callable[[str], None]) -> Relay:
        return cls(send, can_use_tool=prep.plan.permission_prompt_stdio, log=log)

    # -- set-up ---------------------------------------------------------------------------------
    def configure(self, initialize: dict) -> str | None:
        """Take the SDK's hook registrations from ``initialize``; a one-line problem, or None."""
        hooks = initialize.get("hooks") or {}
        if not isinstance(hooks, dict):
            return "claude-bridge: initialize: hooks must be an object"
        for event, matchers in hooks.items():
            if event not in SDK_EVENTS:
                return f"claude-bridge: SDK hooks for {event} are not supported by claude-bridge"
            self.matchers[event] = [m for m in matchers or [] if isinstance(m, dict)]
        return None

    def hooks(self) -> dict[str, list]:
        """The settings ``hooks`` that route claude's hook calls here."""
        pid = os.getpid()
        out: dict[str, list] = {}
        for event, matchers in self.matchers.items():
            for k, m in enumerate(matchers):
                entry: dict[str, Any] = {"hooks": [{"type": "command",
                                                    "command": self._command(f"{event}-{k}", pid),
                                                    "timeout": int(m.get("timeout") or DEFAULT_WAIT_S)}]}
                if m.get("matcher"):
                    entry["matcher"] = m["matcher"]
                out.setdefault(event, []).append(entry)
        if self.can_use_tool:
            out.setdefault("PermissionRequest", []).append({"matcher": "*", "hooks": [{
                "type": "command", "command": self._command("PermissionRequest-can_use_tool", pid),
                "timeout": DEFAULT_WAIT_S}]})
        return out

    def _command(self, name: str, pid: int) -> str:
        return waiting_sink_command(self.dir, name, self.dir / "answers", alive_pid=pid)

    def mcp_ready_file(self, server: str) -> Path:
        """The file created once claude has listed the tools of SDK server ``server`` (interactive claude
        connects MCP servers while it takes prompts; ``-p`` waits for them before its first request)."""
        return self.dir / f"mcp-ready-{hashlib.sha256(server.encode()).hexdigest()[:16]}"

    def use_sdk_mcp_servers(self, claude_args: list[str], cwd: str) -> list[str]:
        """Rewrite every ``--mcp-config`` value of ``claude_args`` (in place) so that the SDK's
        in-process servers are reached through this relay; returns their names."""
        names = mcp_config.rewrite_args(claude_args, cwd, sdk_server_stdio(str(self.mcp_socket)))
        if names and self._mcp_listener is None:
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(str(self.mcp_socket))     # inside the relay's 0700 directory
            listener.listen(16)
            listener.settimeout(0.2)
            self._mcp_listener = listener
        return names

    def start(self) -> None:
        self._watch = DirectoryWatch(self.dir, self._wake.set)
        self._thread = threading.Thread(target=self._loop, daemon=True, name="sdk-relay")
        self._thread.start()
        if self._mcp_listener is not None:
            threading.Thread(target=self._accept_mcp, daemon=True, name="sdk-mcp").start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._watch is not None:
            self._watch.close()
        if self._mcp_listener is not None:
            with contextlib.suppress(OSError):
                self._mcp_listener.close()
        with self._lock:
            for ev, _slot in self._pending.values():
                ev.set()
        if self._thread is not None:
            self._thread.join(2.0)
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- SDK answers ------------------------------------------------------------------------------
    def on_response(self, response: dict) -> None:
        """A ``control_response`` body from the SDK (``{"subtype","request_id","response"|"error"}``)."""
        rid = str(response.get("request_id") or "")
        with self._lock:
            waiting = self._pending.get(rid)
        if waiting is not None:
            waiting[1].append(response)
            waiting[0].set()

    def ask(self, request: dict, timeout: float) -> dict:
        """Send ``request`` as a control_request and wait for the SDK's response body (an error body
        after ``timeout`` seconds or when the relay stops)."""
        rid = str(uuidlib.uuid4())
        ev, slot = threading.Event(), []  # type: tuple[threading.Event, list[dict]]
        with self._lock:
            self._pending[rid] = (ev, slot)
        try:
            self.send({"type": "control_request", "request_id": rid, "request": request})
            ev.wait(timeout)
        finally:
            with self._lock:
                self._pending.pop(rid, None)
        return slot[0] if slot else {"subtype": "error", "error": "the SDK did not answer in time"}

    # -- SDK MCP servers -------------------------------------------------------------------------
    def _accept_mcp(self) -> None:
        assert self._mcp_listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._mcp_listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve_mcp, args=(conn,), daemon=True, name="sdk-mcp-conn").start()

    def _serve_mcp(self, conn: socket.socket) -> None:
        """One stdio relay (one SDK server): each JSON-RPC message becomes an ``mcp_message`` request;
        the SDK's ``mcp_response`` goes back for messages that have an id."""
        lock = threading.Lock()
        with conn, conn.makefile("rb") as lines:
            try:
                first = json.loads(lines.readline() or b"{}")
            except ValueError:
                return
            server = str(first.get("server") or "")

            def one(message: dict) -> None:
                body = self.ask({"subtype": "mcp_message", "server_name": server, "message": message},
                                DEFAULT_WAIT_S)
                if "id" not in message:
                    return                 # a notification: no answer in MCP
                reply = (body.get("response") or {}).get("mcp_response") if body.get("subtype") == "success" \
                    else {"jsonrpc": "2.0", "id": message.get("id"),
                          "error": {"code": -32603, "message": str(body.get("error") or "SDK error")}}
                with lock, contextlib.suppress(OSError):
                    conn.sendall(orjson.dumps(reply) + b"\n")
                if message.get("method") == "tools/list":
                    # claude has this server's tools now: the first prompt may go (ClaudeSession.ready_files)
                    with contextlib.suppress(OSError):
                        self.mcp_ready_file(server).touch(mode=0o600)

            for raw in lines:
                try:
                    message = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(message, dict):
                    threading.Thread(target=one, args=(message,), daemon=True).start()

    # -- requests from the pane ------------------------------------------------------------------
    def _loop(self) -> None:
        """Each hook call spooled by claude (woken by the directory watch) is served in a thread."""
        while not self._stop.is_set():
            for hook in self._spool.drain():
                threading.Thread(target=self._serve, args=(hook.event, hook.payload, hook.pid), daemon=True).start()
            self._wake.wait(POLL_S)
            self._wake.clear()

    def _serve(self, name: str, payload: dict, pid: int | None) -> None:
        """Answer hook call ``name`` (``<Event>-<matcher index>`` or ``PermissionRequest-can_use_tool``)."""
        event, _, index = name.partition("-")
        try:
            if index == "can_use_tool":
                answer = self._can_use_tool(payload)
            else:
                answer = self._hook_callbacks(event, int(index), payload)
        except Exception as e:  # noqa: BLE001 - a relay failure must not block claude: answer "no decision"
            self.log(f"relay {event}: {e}")
            answer = {}
        if pid is not None:
            with contextlib.suppress(OSError):
                atomic_write(self.dir / "answers" / str(pid), orjson.dumps(answer))

    def _can_use_tool(self, payload: dict) -> dict:
        req = {"subtype": "can_use_tool", "tool_name": payload.get("tool_name"),
               "input": payload.get("tool_input") or {},
               "permission_suggestions": payload.get("permission_suggestions") or [],
               "tool_use_id": payload.get("tool_use_id")}
        body = self.ask(req, DEFAULT_WAIT_S)
        if body.get("subtype") == "error":
            return permission_decision({"behavior": "deny", "message": str(body.get("error") or "denied")})
        answer = body.get("response") or {}
        if answer.get("behavior") != "allow" and answer.get("interrupt") and self.on_interrupt is not None:
            self.on_interrupt()      # claude stops the turn itself; the bridge ends it like an interrupt
        return permission_decision(answer)

    def _hook_callbacks(self, event: str, index: int, payload: dict) -> dict:
        matchers = self.matchers.get(event) or []
        if index >= len(matchers):
            return {}
        m = matchers[index]
        timeout = float(m.get("timeout") or DEFAULT_WAIT_S)
        outputs = []
        started = time.monotonic()
        for cb in m.get("hookCallbackIds") or []:
            body = self.ask({"subtype": "hook_callback", "callback_id": cb, "input": payload,
                             "tool_use_id": payload.get("tool_use_id")},
                            max(0.1, timeout - (time.monotonic() - started)))
            if body.get("subtype") == "success" and isinstance(body.get("response"), dict):
                outputs.append(body["response"])
        return merge_hook_outputs(outputs)
