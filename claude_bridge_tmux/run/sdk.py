"""The Agent SDK path: ``claude-bridge`` started by the Claude Agent SDK (``cli_path="claude-bridge"``).

The SDK starts its CLI without ``-p``, with ``--output-format stream-json --verbose --input-format
stream-json`` and its options, and speaks a control protocol on stdin/stdout (docs/sdk-protocol.md,
recorded from SDK 0.2.189 with CLIs 2.1.197 and 2.1.329):

- SDK → bridge, one JSON object per line: ``control_request`` (``initialize`` first, then
  ``interrupt``, ``set_model``, ``set_permission_mode``, …), ``user`` messages (one turn each, queued
  while a turn runs), ``control_response`` (answers to the bridge's own requests, see
  :mod:`claude_bridge_tmux.run.relay`), ``control_cancel_request``.
- bridge → SDK: the stream-json lines ``claude -p --input-format stream-json`` prints (``system/init``
  … ``result`` per turn), ``control_response`` frames echoing each request id, and ``control_request``
  frames for ``can_use_tool`` and ``hook_callback``.

The pane starts at once (its boot overlaps the SDK's initialize); stdin is read by a thread so that
control requests are answered mid-turn. End of stdin: the queued turns finish, then the bridge exits
with the last turn's code, as the CLI does.
"""

from __future__ import annotations

import json
import os
import queue
import re
import select
import threading
import time
import uuid as uuidlib
from collections.abc import Callable
from typing import Any, BinaryIO, TextIO

from claude_bridge_tmux.errors import BridgeError
from claude_bridge_tmux.follow.session import ClaudeSession, TurnError
from claude_bridge_tmux.follow.transcript import transcript_path
from claude_bridge_tmux.host.preseed import config_dir
from claude_bridge_tmux.invocation.plan import UsageError
from claude_bridge_tmux.output import jsjson
from claude_bridge_tmux.output.emit import EmitOptions, Emitter
from claude_bridge_tmux.output.messages import line_timestamp
from claude_bridge_tmux.pool import sdkjob
from claude_bridge_tmux.run.lifecycle import dedicated_session, new_session
from claude_bridge_tmux.run.prepare import needs_own_pane, new_init_probe, prepare
from claude_bridge_tmux.run.relay import Relay
from claude_bridge_tmux.run.turn import emit_turn, message_text, report_error, stream_input_error
from claude_bridge_tmux.versions import dialect

INTERRUPT_SETTLE_S = 1.5      # after Escape: how long the interrupted turn's last records are awaited
FIRST_MESSAGE_WAIT_S = 0.25   # after initialize: how long a first user message is awaited before the pane starts
# the SDK's permission modes (2.1.329's --permission-mode calls "default" "manual"; the footer shows both)
PERMISSION_MODES = ("default", "acceptEdits", "plan", "auto", "bypassPermissions")
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\[\]/@-]{0,127}\Z")


def _without_option(args: list[str], name: str) -> list[str]:
    """``args`` without ``NAME VALUE`` / ``NAME=VALUE``."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == name:
            skip = True
        elif not a.startswith(name + "="):
            out.append(a)
    return out


class FdLines:
    """Lines from a file descriptor with no hidden buffer, so that ``wait_readable`` (select) is exact."""

    def __init__(self, fd: int):
        self.fd = fd
        self.buf = b""
        self.eof = False

    def wait_readable(self, timeout: float) -> bool:
        """True when a line may be read without blocking for long (data or EOF pending)."""
        if b"\n" in self.buf or self.eof:
            return True
        try:
            ready, _, _ = select.select([self.fd], [], [], timeout)
        except (OSError, ValueError):
            return True
        return bool(ready)

    def readline(self) -> bytes:
        """The next line with its newline; the unfinished tail at EOF; ``b""`` at EOF."""
        while b"\n" not in self.buf and not self.eof:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except InterruptedError:
                continue
            if not chunk:
                self.eof = True
            self.buf += chunk
        if b"\n" in self.buf:
            line, _, self.buf = self.buf.partition(b"\n")
            return line + b"\n"
        line, self.buf = self.buf, b""
        return line


class LineWriter:
    """stdout shared by the turn loop and the control thread: each ``write`` (one whole line) is atomic."""

    def __init__(self, out: BinaryIO):
        self.out = out
        self.lock = threading.Lock()

    def write(self, data: bytes) -> int:
        with self.lock:
            n = self.out.write(data)
            self.out.flush()
            return n if isinstance(n, int) else len(data)

    def flush(self) -> None:
        pass

    def frame(self, obj: dict) -> None:
        """Write one control frame; a closed stdout (the SDK went away) is ignored."""
        try:
            self.write((jsjson.dumps(obj) + "\n").encode("utf-8", "surrogatepass"))
        except (BrokenPipeError, ValueError, OSError):
            pass


def success(request_id: str, response: dict | None = None) -> dict:
    """A ``control_response`` success frame (the shape both pinned CLIs send)."""
    body: dict[str, Any] = {"subtype": "success", "request_id": request_id}
    if response is not None:
        body["response"] = response
    return {"type": "control_response", "response": body}


def error(request_id: str, text: str) -> dict:
    """A ``control_response`` error frame: the SDK raises ``Exception(text)`` from the call."""
    return {"type": "control_response", "response": {"subtype": "error", "request_id": request_id, "error": text}}


def initialize_response(version: str, permission_mode: str) -> dict:
    """What the bridge reports for ``initialize`` (the SDK keeps it for ``get_server_info()``; it reads
    only ``hook_on_failure_supported``). Lists the CLI's identity, never account or credential data."""
    return {"commands": [], "agents": [], "output_style": "default", "available_output_styles": ["default"],
            "models": [], "pid": os.getpid(), "claude_code_version": version,
            "current_permission_mode": permission_mode, "hook_on_failure_supported": False}


class SdkSession:
    """One SDK connection: the control thread (stdin) and the turn loop (main thread) around one pane."""

    def __init__(self, prep, session: ClaudeSession | None, out: LineWriter, err: Callable[[str], None],
                 relay: Relay | None):
        self.prep = prep
        self.session = session
        self.out = out
        self.err = err
        self.relay = relay
        self.inbox: queue.Queue[dict | None] = queue.Queue()
        self.interrupted = threading.Event()
        self.turn_running = threading.Event()
        self.bad_line: str | None = None
        self.eof = False
        self.pane_started = threading.Event()
        # restart(old) -> a started replacement session (set_model); set by run_sdk
        self.restart: Callable[[ClaudeSession], ClaudeSession] | None = None
        self.launch_model = prep.plan.model           # --model given at launch (None: claude's default)
        self.default_model: str | None = None
        self.fast_end = False       # a pooled pane (pool/sdkjob.py): end turns on the Stop hook, as pool jobs do
        self.altered = False        # the pane's mode or model was changed: a pooled pane is retired after

    # -- control thread ------------------------------------------------------------------------
    def _route(self, raw: bytes) -> str | None:
        """Handle one stdin line; returns its kind ("initialize", "user", …), "bad" for a line that is not JSON."""
        line = raw.decode("utf-8", "replace").strip()
        if not line:
            return None
        try:
            obj = json.loads(line)
        except ValueError as e:
            self.bad_line = stream_input_error(line, self.prep.version, e)
            return "bad"
        if not isinstance(obj, dict):
            return None
        kind = obj.get("type")
        if kind == "control_request":
            self.on_control_request(obj)
            return str((obj.get("request") or {}).get("subtype"))
        if kind == "control_response":
            if self.relay is not None:
                self.relay.on_response(obj.get("response") or {})
        elif kind == "user":
            self.inbox.put(obj)
        return str(kind)

    def read_until_first(self, lines: FdLines) -> None:
        """Read up to the SDK's ``initialize`` (or a first user message, from a caller that sends none);
        then, for up to FIRST_MESSAGE_WAIT_S, the first user message: ``query()`` writes it right after
        initialize is answered, and a message known before the pane starts is handed to claude at launch."""
        kind = None
        while kind not in ("initialize", "user"):
            raw = lines.readline()
            kind = self._route(raw) if raw else "eof"
            if kind in ("eof", "bad"):
                self._end_of_input()
                return
        end = time.monotonic() + FIRST_MESSAGE_WAIT_S
        while self.inbox.empty():
            left = end - time.monotonic()
            if left <= 0 or not lines.wait_readable(left):
                return
            raw = lines.readline()
            if not raw or self._route(raw) == "bad":
                self._end_of_input()
                return

    def _end_of_input(self) -> None:
        self.eof = True
        self.inbox.put(None)

    def read_stdin(self, lines: FdLines) -> None:
        """Route every stdin line until EOF (then ``None`` goes to the turn queue)."""
        try:
            while True:
                raw = lines.readline()
                if not raw or self._route(raw) == "bad":
                    break
        except (OSError, ValueError):
            pass
        finally:
            self._end_of_input()

    def on_control_request(self, frame: dict) -> None:
        rid = str(frame.get("request_id") or "")
        req = frame.get("request") or {}
        sub = req.get("subtype")
        if sub == "initialize":
            problem = self.relay.configure(req) if self.relay is not None else None
            if problem:
                self.out.frame(error(rid, problem))
                return
            self.out.frame(success(rid, initialize_response(self.prep.version, self.prep.plan.permission_mode)))
        elif sub == "interrupt":
            if self.turn_running.is_set() and self.session is not None:
                self.interrupted.set()
                self.session.interrupt()
            self.out.frame(success(rid, {"still_queued": []}))
        elif sub == "set_model":
            # between turns, in order: the pane is restarted on the same session with the new model
            # (interactive /model would also save it as the user's default model on 2.1.329)
            self.inbox.put({"type": "_control", "subtype": "set_model", "request_id": rid, "model": req.get("model")})
        elif sub == "set_permission_mode":
            # in a thread: the pane may still be starting (the SDK sends it right after initialize)
            threading.Thread(target=self.set_permission_mode, args=(rid, str(req.get("mode") or "")),
                             daemon=True, name="sdk-permission-mode").start()
        elif sub == "mcp_status":
            self.out.frame(success(rid, {"mcpServers": []}))
        else:
            self.out.frame(error(rid, f"claude-bridge: the control request '{sub}' is not supported by "
                                      "claude-bridge yet (docs/sdk-protocol.md)"))

    def launchable_first_message(self) -> dict | None:
        """The first user message, taken from the queue, when it can be claude's launch input (text
        content; no --mcp-config, whose servers must connect before the first request, nor
        --json-schema, whose StructuredOutput server must; no CLAUDE_BRIDGE_SUBMIT=paste)."""
        try:
            obj = self.inbox.queue[0]
        except IndexError:
            return None
        plan = self.prep.plan
        if obj is None or message_text(obj.get("message")) is None or "--mcp-config" in plan.claude_args \
                or plan.json_schema is not None or plan.env.get("CLAUDE_BRIDGE_SUBMIT") == "paste":
            return None
        return self.inbox.get()

    def set_permission_mode(self, rid: str, mode: str) -> None:
        """Shift+Tab in the pane until its footer shows ``mode``; then the CLI's ``system/status`` line
        and ``{"mode": mode}``, or the CLI's error text (bypass in a session not launched with it)."""
        if mode not in PERMISSION_MODES:
            self.out.frame(error(rid, f"Invalid permission mode: {mode}"))
            return
        if not self.pane_started.wait(60) or self.session is None or self.session.pane is None:
            self.out.frame(error(rid, "claude-bridge: the session did not start"))
            return
        try:
            self.session.wait_ready(time.monotonic() + 30)
        except TurnError as e:
            self.out.frame(error(rid, f"claude-bridge: {e.reason}"))
            return
        if not self.session.set_permission_mode(mode):
            if mode == "bypassPermissions":
                self.out.frame(error(rid, "Cannot set permission mode to bypassPermissions because the session "
                                          "was not launched with --dangerously-skip-permissions"))
            else:
                self.out.frame(error(rid, f"claude-bridge: the pane did not switch to the {mode} permission mode"))
            return
        self.prep.plan.permission_mode = mode      # the next turns' system/init says so
        self.altered = True
        sid = self.session.info.session_id or self.prep.plan.session_id
        self.out.frame({"type": "system", "subtype": "status", "status": None, "permissionMode": mode,
                        "uuid": str(uuidlib.uuid4()), "session_id": sid})
        self.out.frame(success(rid, {"mode": mode}))

    # -- turn loop ---------------------------------------------------------------------------------
    def run(self, emitter: Emitter, probe, launched: dict | None = None) -> int:
        """The turn loop; ``launched``: the first user message, already handed to claude at launch."""
        assert self.session is not None
        plan = self.prep.plan
        previous: dict | None = None
        code = 0
        started = launched is not None
        while True:
            obj = launched if launched is not None else self.inbox.get()
            submitted = launched is not None
            launched = None
            if obj is None:
                break
            if obj.get("type") == "_control":
                if not started:
                    self.session.wait_started(time.monotonic() + plan.timeout)
                    started = True
                self.set_model(obj, emitter)
                continue
            text = message_text(obj.get("message"))
            if text is None:
                self.err("claude-bridge: only text content can be sent through an interactive pane "
                         "(a user message has image or other non-text blocks)")
                return 1
            deadline = time.monotonic() + plan.timeout
            if not started:
                self.session.wait_started(deadline)
                started = True
            emitter.new_turn()
            self.interrupted.clear()
            self.turn_running.set()
            try:
                code = emit_turn(self.prep, self.session, emitter, submitted=submitted, deadline=deadline,
                                 probe=probe, err=self.err, cancel=self.interrupted, prompt=text,
                                 previous=previous, fast_end=self.fast_end)
                previous = getattr(emitter, "last_result", None)
            except TurnError as e:
                if e.kind != "cancelled":
                    raise
                code = self.after_interrupt(emitter)
            finally:
                self.turn_running.clear()
        if self.bad_line is not None:
            self.err(self.bad_line)
            return 1
        return code

    def set_model(self, req: dict, emitter: Emitter) -> None:
        """``set_model`` (``null``: the default model): restart claude in a new pane on the same session
        (``--resume`` once the session has a transcript) with ``--model``; then the CLI's replayed
        ``Set model to`` line and answer. The conversation, hooks and relays carry over."""
        assert self.session is not None and self.restart is not None
        rid, model = req["request_id"], req.get("model")
        if model is not None and (not isinstance(model, str) or not _MODEL_NAME.match(model)):
            self.out.frame(error(rid, f"Invalid model: {model!r}"))
            return
        plan = self.prep.plan
        if self.default_model is None:
            # the model claude picked before any --model / set_model (a resumed session keeps its own)
            self.default_model = self.session.info.model if self.launch_model is None else None
        target = model or self.default_model or "default"
        args = _without_option(plan.claude_args, "--model")
        plan.claude_args[:] = args + ["--model", target]
        plan.model = target
        sid = self.session.info.session_id or plan.session_id
        transcript = transcript_path(config_dir(plan.env), plan.cwd, sid)
        plan.session_args = ["--resume", sid] if transcript.exists() else ["--session-id", sid]
        self.altered = True
        try:
            self.session = self.restart(self.session)
            self.session.wait_started(time.monotonic() + 60)
        except (TurnError, BridgeError) as e:
            self.out.frame(error(rid, f"claude-bridge: could not restart claude with the new model: {e}"))
            raise
        resolved = target
        self.session.info.model = resolved          # the next turns' system/init and modelUsage
        v2 = dialect(self.prep.version).set_model_v2
        text = f"Set model to `{resolved}`" if v2 else f"Set model to {resolved}"
        emitter.line({"type": "user", "message": {"role": "user",
                                                  "content": f"<local-command-stdout>{text}</local-command-stdout>"},
                      "session_id": sid, "parent_tool_use_id": None, "uuid": str(uuidlib.uuid4()),
                      "timestamp": line_timestamp(time.time()), "isReplay": True})
        self.out.frame(success(rid, {"model": resolved} if v2 else None))

    def after_interrupt(self, emitter: Emitter) -> int:
        """The turn was interrupted (Escape): print the records claude writes for it, then the
        ``error_during_execution`` result the CLI sends after an SDK interrupt; the pane stays for the
        next message."""
        assert self.session is not None
        end = time.monotonic() + INTERRUPT_SETTLE_S
        seen_marker = False
        while time.monotonic() < end and not seen_marker:
            for record in self.session.read_new_records():
                emitter.record(record)
                if "[Request interrupted by user" in json.dumps(record.get("message") or {}):
                    seen_marker = True
            if not seen_marker:
                time.sleep(0.05)
        self.session.wait_ready(time.monotonic() + 10)
        sid = self.session.info.session_id or self.prep.plan.session_id
        result: dict[str, Any] = {"type": "result", "subtype": "error_during_execution", "duration_ms": 0, "duration_api_ms": 0,
                  "is_error": True, "num_turns": 0, "stop_reason": None, "session_id": sid,
                  "total_cost_usd": 0, "usage": {"input_tokens": 0, "cache_creation_input_tokens": 0,
                                                  "cache_read_input_tokens": 0, "output_tokens": 0},
                  "modelUsage": {}, "permission_denials": [], "terminal_reason": "aborted_tools",
                  "errors": [], "uuid": str(uuidlib.uuid4())}
        emitter.line(result)
        return 1


def _pool_socket(env: dict[str, str]):
    """A connection to the local pool daemon when pooling is on (CLAUDE_BRIDGE_POOL not ``off``, no
    Redis queue: SDK sessions are served by a local pool only) and one answers; else None."""
    from claude_bridge_tmux.errors import BridgeError as _ConfigError
    from claude_bridge_tmux.pool import client, protocol
    try:
        if client.pool_mode(env) == "off" or env.get("CLAUDE_BRIDGE_POOL_URL"):
            return None
    except _ConfigError:
        return None
    return protocol.connect(client.socket_path(env))


def run_sdk(argv: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None,
            stdin: BinaryIO | None = None, stdout: BinaryIO | None = None, stderr: TextIO | None = None) -> int:
    """Serve one Agent SDK connection (see the module docstring); return the exit code."""
    import sys

    from claude_bridge_tmux.run.cold import Terminated, TerminationSignals, make_logger
    env = dict(os.environ if env is None else env)
    cwd = os.path.abspath(cwd or os.getcwd())
    stdin = stdin or sys.stdin.buffer
    out = LineWriter(stdout or sys.stdout.buffer)
    stderr = stderr or sys.stderr

    def err(msg: str) -> None:
        print(msg, file=stderr, flush=True)

    log = make_logger(env, err)
    with TerminationSignals():
        try:
            try:
                prep = prepare(["-p", *argv], env=env, cwd=cwd, warn=err, read_stdin=None)
            except UsageError as e:
                err(e.message)
                return e.exit_code
            plan = prep.plan
            emitter = Emitter(plan.output_format, out, plan.session_id, version=prep.version,
                              options=EmitOptions.of(prep))
            relay = Relay.for_plan(prep, out.frame, log=log)
            try:
                sdk_mcp = relay.use_sdk_mcp_servers(plan.claude_args, plan.cwd)
                replacements: list[ClaudeSession] = []
                sdk = SdkSession(prep, None, out, err, relay)
                relay.on_interrupt = sdk.interrupted.set
                # initialize comes first (the SDK writes it at once): its hook registrations are
                # needed in the pane's --settings, so they are read before the pane starts
                lines = FdLines(stdin.fileno())
                sdk.read_until_first(lines)
                # (the same own-pane rule as a -p job's: session options, a tool gate, SessionStart hooks …)
                shared = sdkjob.poolable(argv, relay.hooks(), bool(sdk_mcp)) and not needs_own_pane(plan, prep.settings)
                sock = _pool_socket(env) if shared else None
                if sock is not None:         # a warm pane of the pool serves the session
                    return sdkjob.serve_from_pool(sock, argv, env=env, cwd=cwd, first=sdkjob.first_message(sdk),
                                                  lines=lines, stdout=out.out, stderr=stderr)
                first = sdk.launchable_first_message()
                with dedicated_session(prep, log=log, hooks=relay.hooks(), modes_may_change=True) as session:
                    sdk.session = session
                    # the first prompt waits until claude has the SDK servers' tools (as -p does)
                    for name in sdk_mcp:
                        session.expect_ready(relay.mcp_ready_file(name))

                    def restart(old: ClaudeSession) -> ClaudeSession:
                        old.close()
                        fresh = new_session(prep, log=log, hooks=relay.hooks())
                        for name in sdk_mcp:
                            fresh.expect_ready(relay.mcp_ready_file(name))
                        replacements.append(fresh)
                        fresh.start()
                        return fresh
                    sdk.restart = restart
                    relay.start()
                    probe = new_init_probe(prep) if not env.get("CLAUDE_BRIDGE_NO_INIT_PROBE") else None
                    session.start(launch_prompt=message_text(first.get("message")) if first else None)
                    sdk.pane_started.set()
                    if not sdk.eof:
                        threading.Thread(target=sdk.read_stdin, args=(lines,), daemon=True,
                                         name="sdk-stdin").start()
                    try:
                        return sdk.run(emitter, probe, launched=first)
                    finally:
                        for extra in replacements:
                            extra.close()
            finally:
                relay.stop()
        except TurnError as e:
            return report_error(e, err)
        except BridgeError as e:
            err(f"claude-bridge: {e}")
            return e.exit_code
        except Terminated as t:
            return 128 + t.signum
