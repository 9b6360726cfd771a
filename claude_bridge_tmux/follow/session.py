"""A claude process in a pane, its hooks and its transcript: start it, run turns on it, close it.

``ClaudeSession`` is the unit the cold path (one session per call), pool panes (one session serving
many turns) and ``api.Session`` use. It owns the I/O: the pane, the hook spool, the transcript
follower, the optional trace file (``CLAUDE_BRIDGE_TRACE``). Which signal ends a turn is decided by
the pure :mod:`claude_bridge_tmux.follow.engine`; ``run_turn`` feeds it and carries out its actions.
A fast-ended turn (pool, ``api.Session``) is finished in the background by claude: the pane's next
use waits for its ``system/turn_duration`` first (``settle``).

Time values are ``time.monotonic()`` seconds unless named ``*_ms``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from claude_bridge_tmux.config import BridgeConfig
from claude_bridge_tmux.errors import BridgeError
from claude_bridge_tmux.follow import engine as enginemod
from claude_bridge_tmux.follow.engine import (
    AnnounceSession,
    AnswerGate,
    EmitRecord,
    Fail,
    Finish,
    Hook,
    PressEnter,
    Records,
    Resubmit,
    Screen,
    TurnEngine,
    TurnOptions,
    TurnOutcome,
)
from claude_bridge_tmux.follow.transcript import DirectoryWatch, TranscriptReader, transcript_path
from claude_bridge_tmux.follow.tree import TurnTree, parse_line
from claude_bridge_tmux.follow.trust import TrustAnswer
from claude_bridge_tmux.host import hooks as hookmod
from claude_bridge_tmux.host.paths import new_run_dir
from claude_bridge_tmux.host.preseed import config_dir, global_config_path, remove_orphaned_temp_files
from claude_bridge_tmux.host.proc import descendants, reap_tree
from claude_bridge_tmux.ops import registry
from claude_bridge_tmux.tmux import screen as screenmod
from claude_bridge_tmux.tmux.input_box import InputBox, SubmitError
from claude_bridge_tmux.tmux.pane import ClaudePane, LaunchSpec, PaneError, TmuxServer

SETTLE_TIMEOUT = 30.0     # s the next use of a pane waits for the turn_duration of a fast-ended turn
CLOSE_SETTLE = 5.0        # s close() waits for it (then the pane is killed anyway)
IDLE_CHECK = enginemod.SCREEN_EVERY_S   # s between pane checks while nothing happens
EXIT_WAIT = 3.0           # s claude and its children get to exit after the pane is closed (then SIGKILL)
READY_TIMEOUT = 60.0      # s to wait for the input prompt before a paste
READY_FILES_S = 15.0      # s from the start to wait for ``ready_files`` (then the prompt goes anyway)
RELAY_PERMISSION_GRACE_S = 600.0  # s a permission dialog may wait for the Agent SDK's can_use_tool answer


def _transcript_sizes(project_dir: Path) -> dict[Path, int]:
    sizes: dict[Path, int] = {}
    try:
        for p in project_dir.glob("*.jsonl"):
            try:
                sizes[p] = p.stat().st_size
            except OSError:
                pass
    except OSError:
        pass
    return sizes


class TurnError(BridgeError):
    """A turn could not complete: ``reason`` (one line), ``screen`` (pane's last lines), ``kind``;
    ``exit_status`` of a claude that exited; ``cli_message`` / ``cli_exit_code``: what ``claude -p``
    prints and returns in the same situation, when it has its own answer (then the bridge prints that)."""

    def __init__(self, reason: str, screen: list[str] | None = None, kind: str = "error",
                 exit_status: int | None = None, *, cli_message: str | None = None,
                 cli_exit_code: int | None = None):
        super().__init__(reason, cli_exit_code if cli_exit_code is not None else 1)
        self.reason = reason
        self.screen = screen or []
        self.kind = kind
        self.exit_status = exit_status
        self.cli_message = cli_message
        self.cli_exit_code = cli_exit_code


@dataclass
class SessionInfo:
    """What the SessionStart hook told us: ``session_id``, ``transcript_path``, ``model``, ``source``."""

    session_id: str | None = None
    transcript_path: str | None = None
    model: str | None = None
    source: str | None = None


class ClaudeSession:
    """One interactive claude in its own pane.

    ``start()`` launches it; ``run_turn()`` submits a prompt and follows the turn;
    ``close()`` kills the pane and removes every file of the run (idempotent).
    """

    def __init__(self, *, claude_bin: str, claude_args: list[str], env: dict[str, str], cwd: str,
                 session_id: str, settings: dict, deny_permission_requests: bool,
                 server: TmuxServer | None = None, log: Callable[[str], None] | None = None,
                 session_args: list[str] | None = None, gate_tools: bool = False,
                 extra_hooks: dict | None = None):
        self.claude_bin = claude_bin
        self.claude_args = list(claude_args)
        self.env = env
        self.cwd = cwd
        self.session_id = session_id
        # how claude picks its session: a fixed id, or --resume/--continue [--fork-session --session-id]
        self.session_args = list(session_args) if session_args else ["--session-id", session_id]
        self.gate_tools = gate_tools
        self.extra_hooks = extra_hooks or {}
        self.relays_permissions = bool(self.extra_hooks.get("PermissionRequest"))
        self._known_sizes: dict[Path, int] = {}
        self._followed: list[Path] = []
        self._known_side_dirs: dict[Path, bool] = {}
        self._project_dir_existed = True
        self.caller_settings = settings
        self.deny_permission_requests = deny_permission_requests
        self.log = log or (lambda msg: None)
        self.run_dir = new_run_dir("pane", env if env.get("CLAUDE_BRIDGE_RUNTIME_DIR") else None)
        self.spool = hookmod.HookSpool(self.run_dir / "hooks")
        self.own_server = server is None           # a private tmux server of this session (cold run)
        self.registry_record: dict | None = None    # its entry for `claude-bridge ps` (ops/registry.py)
        try:
            self.server = server or TmuxServer(self.run_dir)
        except BaseException:              # (a full disk): no run dir without a session to remove it
            shutil.rmtree(self.run_dir, ignore_errors=True)
            raise
        self.pane: ClaudePane | None = None
        # with --continue the session id is only known from the SessionStart hook
        self.info = SessionInfo(session_id=None if "--continue" in self.session_args
                                and "--session-id" not in self.session_args else session_id)
        self._wake = threading.Event()
        self._watches: list[DirectoryWatch] = []
        self._watched_dirs: set[Path] = set()
        self._reader: TranscriptReader | None = None
        self.last_submit_at: float | None = None   # monotonic: prompt handed to claude (last turn)
        self.last_end_at: float | None = None      # monotonic: end of the last turn detected
        self._unsettled: TurnTree | None = None     # a fast-ended turn whose turn_duration is not read yet
        self._carried: list[dict] = []              # read during a turn, for what comes after it (next read)
        self.queue_operations: list[dict] = []      # every queue-operation record read (follow/agents.py)
        self.turn_prompt: dict | None = None        # the prompt record of the turn being followed, once known
        self._settle_lock = threading.Lock()
        self.closed = False
        self.trust_leased = False                  # this run holds temporary trust for its cwd (preseed lease)
        self._trust = TrustAnswer()
        self._cleared = False                      # a SessionStart of source "clear" was seen
        self._input_lock = threading.Lock()        # typing a prompt vs. Shift+Tab from the SDK
        # files that must exist before the first prompt is typed (an MCP server's tools are listed),
        # each with the time from the start it is waited for at most (expect_ready)
        self.ready_files: dict[Path, float] = {}
        trace = BridgeConfig.from_env(env).trace
        self._trace_file = None
        if trace:
            with contextlib.suppress(OSError):
                self._trace_file = open(os.open(trace, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")

    # -- lifecycle ---------------------------------------------------------------------------
    def _wakeup(self) -> None:
        self._wake.set()

    def start(self, launch_prompt: str | None = None) -> None:
        """Launch claude; with ``launch_prompt`` the prompt is claude's standard input (no typing, never
        in argv; docs/cli-behaviour.md §10).

        Raises PaneError when tmux fails.
        """
        settings = hookmod.merged_settings(self.caller_settings, self.spool.dir,
                                           deny_permission_requests=self.deny_permission_requests,
                                           gate_tools=self.gate_tools, extra_hooks=self.extra_hooks)
        settings_path = hookmod.write_settings(self.run_dir / "settings.json", settings)
        argv = [self.claude_bin, *self.claude_args, *self.session_args,
                "--settings", str(settings_path)]
        self._watches.append(DirectoryWatch(self.spool.dir, self._wakeup))
        if self.gate_tools:
            self._watches.append(DirectoryWatch(hookmod.gate_dir(self.spool.dir), self._wakeup))
        expected = transcript_path(config_dir(self.env), self.cwd, self.session_id)
        # Transcripts that exist now (a resumed or continued session's file) are read from their
        # current end: a turn is only ever built from records written after this start.
        self._known_sizes = _transcript_sizes(expected.parent)
        self._project_dir_existed = expected.parent.exists()
        self._follow(expected)
        self.started = time.monotonic()
        if self.closed:
            raise PaneError("the session was closed before claude started")
        stdin = launch_prompt.encode("utf-8", "surrogatepass") if launch_prompt is not None else None
        pane = self.server.new_pane(LaunchSpec(argv=argv, env=self.env, cwd=self.cwd, stdin=stdin))
        self.pane = pane
        if self.closed:  # closed while tmux was starting the pane
            pane.kill()
            raise PaneError("the session was closed before claude started")
        self._trace("start", argv_len=len(argv), launch_prompt=launch_prompt is not None)
        registry.register(self, state="busy" if launch_prompt is not None else "starting")
        self.log(f"pane {self.pane.pane_id} started: claude {' '.join(self.claude_args)}")

    def _follow(self, path: Path) -> None:
        if self._reader is not None and self._reader.path == path:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError:
            pass
        self._reader = TranscriptReader(path)
        self._reader.offset = self._known_sizes.get(path, 0)
        if path not in self._followed:
            self._followed.append(path)
            # a session's side files (subagent transcripts, large tool results) live in <id>/
            self._known_side_dirs[path] = path.with_suffix("").exists()
        if path.parent not in self._watched_dirs:
            with contextlib.suppress(OSError):
                self._watches.append(DirectoryWatch(path.parent, self._wakeup))
                self._watched_dirs.add(path.parent)
        self.log(f"following transcript {path}")

    def close(self, wait_exit: float = EXIT_WAIT) -> None:
        """Kill the pane (and the private server when owned) and delete the run directory. Never raises.

        Returns only once claude and every process it started (tools, MCP servers, hooks) are gone:
        they get ``wait_exit`` s to exit on the pane's SIGHUP (claude rewrites ``~/.claude.json`` on
        its way out, which a caller about to revoke temporary trust must wait for), then SIGKILL.
        A fast-ended last turn (``run_turn(fast_end=True)``) is first given up to ``CLOSE_SETTLE`` s
        to finish (its Stop hooks, the caller's included, run to their end).
        """
        if self.closed:
            return
        if self._unsettled is not None and self.pane is not None:
            with contextlib.suppress(TurnError, PaneError):
                self.settle(CLOSE_SETTLE)
        self.closed = True
        if self._trace_file is not None:
            with contextlib.suppress(OSError):
                self._trace_file.close()
            self._trace_file = None
        for w in self._watches:
            w.close()
        self._watches.clear()
        pid = self.pane.pid() if self.pane is not None else None
        tree = [pid, *descendants(pid)] if pid else []
        if self.pane is not None:
            self.pane.kill()
        if self.own_server:
            self.server.kill()
        shutil.rmtree(self.run_dir, ignore_errors=True)
        if tree:
            killed = reap_tree(tree, wait_exit)
            if killed:
                self.log(f"killed {len(killed)} process(es) left after the pane closed: {killed}")
            # a claude killed (or crashed) while writing ~/.claude.json leaves its temp file there
            for path in remove_orphaned_temp_files(global_config_path(self.env), tree):
                self.log(f"removed {path.name}, left by a claude of this session")

    def discard_transcripts(self) -> list[Path]:
        """--no-session-persistence: undo what this session wrote under ``projects/`` (call after
        ``close``, once claude has exited: it writes on its way out). Transcripts this session created
        are deleted with their side directory; a resumed session's file is cut back to its size before
        the run; the project directory goes when this session created it and it is empty. Only files of
        the session ids this session used are touched. Returns the paths removed or cut back."""
        done: list[Path] = []
        for path in self._followed:
            try:
                if path in self._known_sizes:
                    if path.stat().st_size > self._known_sizes[path]:
                        os.truncate(path, self._known_sizes[path])
                        done.append(path)
                elif path.exists():
                    path.unlink()
                    done.append(path)
            except OSError:
                pass
            side = path.with_suffix("")
            if not self._known_side_dirs.get(path, True) and side.is_dir():
                shutil.rmtree(side, ignore_errors=True)
                done.append(side)
        if not self._project_dir_existed:
            for d in {p.parent for p in self._followed}:
                with contextlib.suppress(OSError):
                    d.rmdir()       # only when empty
        return done

    # -- events --------------------------------------------------------------------------------
    def _drain_hooks(self) -> list[hookmod.HookEvent]:
        events = []
        for ev in self.spool.drain():
            p = ev.payload
            self.log(f"hook {ev.event}")
            if ev.event == "SessionStart":
                if p.get("source") in ("startup", "resume") and self._cleared:
                    # the launch's own SessionStart, its hook done after a /clear's (hooks run
                    # concurrently; under load the first one may finish last): the session is the clear's
                    self.log("hook SessionStart of the launch after a /clear's: ignored")
                    continue
                self._cleared = self._cleared or p.get("source") == "clear"
                self.info.model = p.get("model") or self.info.model
                self.info.source = p.get("source")
                # With our own --session-id (also a fork's) the id and file are known; 2.1.197 reports
                # the *resumed* session in a fork's SessionStart although it writes the new file.
                # /clear (and --continue / --resume without fork) change them: follow the hook.
                if p.get("source") == "clear" or "--session-id" not in self.session_args:
                    self.info.session_id = p.get("session_id") or self.info.session_id
                    if p.get("transcript_path"):
                        self.info.transcript_path = p["transcript_path"]
                        self._follow(Path(p["transcript_path"]))
            events.append(ev)
        return events

    def read_new_records(self) -> list[dict]:
        """Transcript records written since the last read (outside a turn: e.g. after an interrupt)."""
        return self._read_records()

    def subagent_records(self, agent_id: str) -> list[dict]:
        """The records of background agent ``agent_id`` of this session so far (its own transcript,
        ``<session>/subagents/agent-<id>.jsonl`` beside the session's file); [] when there is none."""
        if self._reader is None or not agent_id or "/" in agent_id:
            return []
        path = self._reader.path.with_suffix("") / "subagents" / f"agent-{agent_id}.jsonl"
        try:
            data = path.read_bytes()
        except OSError:
            return []
        return [r for r in (parse_line(line) for line in data.split(b"\n") if line.strip()) if r is not None]

    def _read_records(self) -> list[dict]:
        carried, self._carried = self._carried, []
        if self._reader is None:
            return carried
        new = self._reader.read_new()
        self.queue_operations.extend(r for r in new if r.get("type") == "queue-operation")
        return carried + new if carried else new

    def screen(self) -> list[str]:
        return self.pane.screen() if self.pane else []

    def _answer_trust(self, lines: list[str], dialog) -> bool:
        """The trust dialog for a cwd this run holds temporary trust for (``trust_leased``): another
        claude rewrote ~/.claude.json from a stale copy and dropped the bridge's entry before this one
        read it. Confirming it gives the same trust the lease gave, and the lease's release takes it
        back. The keys are decided by follow/trust.py. True while it is being answered; False when it
        is not that dialog or the answers are exhausted."""
        if dialog is None or dialog.kind != "trust" or not self.trust_leased or self.pane is None:
            return False
        decision = self._trust.decide(lines, time.monotonic())
        if decision is None:
            return False
        if decision != "wait":
            self.log(f"trust dialog for a leased cwd (the entry was lost to a stale write): {decision}")
            self.pane.send_keys(decision)
        return True

    def _check_pane(self) -> None:
        assert self.pane is not None
        dead, status = self.pane.status()
        if dead:
            raise TurnError("claude exited before the turn finished", self.pane.screen(history=True), "exited", status)
        lines = self.pane.screen()
        dialog = screenmod.find_dialog(lines)
        if self._answer_trust(lines, dialog):
            return
        if dialog is not None and dialog.kind == "permission" and self.deny_permission_requests:
            # The dialog is drawn while the PermissionRequest hook (which denies, like -p) is still
            # running; under load that takes a while. Only a dialog that stays up is an error.
            now = time.monotonic()
            first = getattr(self, "_permission_seen_at", None)
            if first is None:
                self._permission_seen_at: float | None = now
            if now - (first or now) < enginemod.PERMISSION_GRACE_S:
                return
        elif dialog is None:
            self._permission_seen_at = None
        if dialog is not None:
            raise TurnError(dialog.reason, lines, dialog.kind)

    def wait_ready(self, deadline: float) -> None:
        """Block until the input prompt is shown (needed before typing/pasting). Raises TurnError."""
        assert self.pane is not None
        while True:
            lines = self.pane.screen()
            if screenmod.is_ready(lines) and self._ready_files_seen():
                return
            dead, status = self.pane.status()
            if dead:   # an exit during start-up is an error exit even when tmux gives no status
                raise TurnError("claude exited during start-up", self.pane.screen(history=True), "exited",
                                status if status is not None else 1)
            dialog = screenmod.find_dialog(lines)
            if dialog is not None and not self._answer_trust(lines, dialog):
                raise TurnError(dialog.reason, lines, dialog.kind)
            if time.monotonic() > deadline:
                raise TurnError("claude did not become ready in time", lines, "timeout")
            time.sleep(0.05)

    def wait_started(self, deadline: float) -> None:
        """Block until the SessionStart hook has arrived and the input prompt is shown. Raises TurnError."""
        while self.info.source is None:
            self._wake.wait(0.05)
            self._wake.clear()
            self._drain_hooks()
            if self.info.source is not None:
                break
            if time.monotonic() > deadline:
                raise TurnError("claude did not start in time", self.screen(), "timeout")
            self._check_pane()
        self.wait_ready(deadline)

    def settle(self, timeout: float = SETTLE_TIMEOUT) -> bool:
        """Wait (up to ``timeout`` s) until the last fast-ended turn's ``turn_duration`` is in the
        transcript, i.e. claude has run its Stop hooks and finished the turn; True when it has (or
        no turn was pending). Cheap when nothing is pending. Safe from several threads (a pool's
        /clear and a retirement): one reads, the others wait for it. Raises TurnError when claude died."""
        if self._unsettled is None:
            return True
        if not self._settle_lock.acquire(timeout=max(0.0, timeout)):
            return False
        try:
            tree = self._unsettled
            if tree is None:
                return True
            end = time.monotonic() + timeout
            while True:
                for rec in self._read_records():
                    tree.add(rec)
                if tree.complete():
                    self._unsettled = None
                    return True
                if time.monotonic() > end:
                    self.log("the previous turn's turn_duration did not come; going on")
                    self._unsettled = None
                    return False
                self._wake.wait(IDLE_CHECK)
                self._wake.clear()
                self._check_pane()
        finally:
            self._settle_lock.release()

    def clear(self, deadline: float) -> None:
        """Start a fresh conversation in this pane with ``/clear``; wait for SessionStart(source="clear")
        with its new session id and transcript, then for the input prompt. Raises TurnError."""
        assert self.pane is not None
        self.settle(max(0.0, min(SETTLE_TIMEOUT, deadline - time.monotonic())))
        self.wait_ready(deadline)
        old = self.info.session_id
        self.pane.send_keys("/clear", literal=True)
        InputBox(self.pane).wait_screen(lambda rows: any(r.startswith("❯") and "/clear" in r for r in rows), 2.0)
        self.pane.send_keys("Enter")
        while True:
            self._wake.wait(0.05)
            self._wake.clear()
            events = self._drain_hooks()
            if any(e.event == "SessionStart" and e.payload.get("source") == "clear" for e in events) \
                    and self.info.session_id != old:
                break
            if time.monotonic() > deadline:
                raise TurnError("/clear did not start a new conversation in time", self.screen(), "timeout")
            self._check_pane()
        self.wait_ready(deadline)

    def interrupt(self) -> None:
        """Press Escape in the pane (interrupts a running turn). Never raises."""
        with contextlib.suppress(Exception):
            if self.pane is not None:
                self.pane.send_keys("Escape")

    def expect_ready(self, path: Path, within_s: float = READY_FILES_S) -> None:
        """Hold the first prompt until ``path`` exists (created when an MCP server's tools are listed),
        for at most ``within_s`` seconds from the session's start; then the prompt goes anyway."""
        self.ready_files[path] = within_s

    def _ready_files_seen(self) -> bool:
        elapsed = time.monotonic() - self.started
        self.ready_files = {p: s for p, s in self.ready_files.items() if elapsed <= s and not p.exists()}
        return not self.ready_files

    def paste_prompt(self, prompt: str, deadline: float) -> None:
        """Submit ``prompt`` by bracketed paste once the input prompt is shown (see ``InputBox.submit``).
        Raises TurnError (kind ``submit`` when a ``!`` prompt could not be placed as text)."""
        assert self.pane is not None
        self.wait_ready(min(deadline, time.monotonic() + READY_TIMEOUT))
        with self._input_lock:
            try:
                InputBox(self.pane, log=self.log).submit(prompt)
            except SubmitError as e:
                raise TurnError(str(e), self.screen(), "submit") from e

    def set_permission_mode(self, mode: str, timeout: float = 5.0) -> bool:
        """Cycle the pane's permission mode with Shift+Tab until the footer shows ``mode``
        (docs/sdk-protocol.md); False when the cycle never reaches it (e.g. bypassPermissions in a
        session not launched with it allowed). Never while a prompt is being typed. Raises nothing."""
        end = time.monotonic() + timeout
        with self._input_lock:
            if self.pane is None:
                return False
            seen: list[str | None] = []
            while time.monotonic() < end:
                shown = screenmod.footer_mode(self.pane.screen())
                if shown == mode:
                    return True
                if shown is not None and seen.count(shown) >= 2:
                    return False          # a full cycle went by twice without the mode
                seen.append(shown)
                with contextlib.suppress(Exception):
                    self.pane.send_keys("BTab")
                step_end = time.monotonic() + 1.0
                while time.monotonic() < step_end and screenmod.footer_mode(self.pane.screen()) == shown:
                    time.sleep(0.03)
        return False

    # -- turn ------------------------------------------------------------------------------------
    def run_turn(self, prompt: str, *, submitted: bool, deadline: float,
                 on_record: Callable[[dict], None] | None = None,
                 on_session: Callable[[SessionInfo], None] | None = None,
                 cancel: threading.Event | None = None,
                 gate: enginemod.Gate | None = None,
                 unknown_command_to_model: bool = False, fast_end: bool = False,
                 prompt_origin: str | None = None) -> TurnOutcome:
        """Follow one turn to its end; submit ``prompt`` by paste unless ``submitted`` (given at launch).

        The decisions are :class:`~claude_bridge_tmux.follow.engine.TurnEngine`'s; this loop only
        gathers its events (hooks, transcript records, screens) and carries out its actions.
        ``on_record(record)`` is called once per turn record in tree order as records become
        available (for streaming); ``on_session(info)`` once, when the session's model and id are known.
        ``gate(turn_records, tool_use_id, call)`` answers the tool gate of a session started with
        ``gate_tools``; ``fast_end``, ``unknown_command_to_model`` and ``prompt_origin`` (a turn claude
        starts itself: nothing is submitted, pass ``submitted=True``): see ``TurnOptions``.
        Raises TurnError (one-line reason, the pane's last lines, ``kind``).
        """
        assert self.pane is not None
        self.settle()
        registry.set_state(self, "busy")
        wall_start = time.time()
        started = time.monotonic()
        self.last_submit_at = started
        if not submitted:
            self.paste_prompt(prompt, deadline)
            self.log("prompt pasted and submitted")
        opts = TurnOptions(pasted=not submitted, fast_end=fast_end,
                           unknown_command_to_model=unknown_command_to_model,
                           # a PermissionRequest hook answers: the bridge's deny, or the SDK relay
                           deny_permission_requests=self.deny_permission_requests or self.relays_permissions,
                           permission_grace_s=RELAY_PERMISSION_GRACE_S if self.relays_permissions
                           else enginemod.PERMISSION_GRACE_S,
                           session_known=self.info.model is not None and self.info.source is not None,
                           deadline=deadline, gate=gate, prompt_origin=prompt_origin)
        engine = TurnEngine(prompt, started=started, wall_start=wall_start, options=opts)
        self._trace("turn", prompt=prompt, wall_start=wall_start, pasted=opts.pasted, fast_end=fast_end,
                    unknown_command_to_model=unknown_command_to_model,
                    deny_permission_requests=opts.deny_permission_requests, session_known=opts.session_known,
                    gated=gate is not None, timeout=deadline - started)
        while True:
            now = time.monotonic()
            for ev in self._drain_hooks():
                hook = Hook(ev.event, ev.payload, ev.mtime, ev.pid)
                self._trace("hook", event=ev.event, payload=ev.payload, written_at=ev.mtime, pid=ev.pid)
                engine.feed(hook, now)
            records = self._read_records()
            if records:
                self._trace("records", records=records)
                engine.feed(Records(records), now)
            if engine.wants_screen(now):
                dead, status = self.pane.status()
                rows = self.pane.screen(history=dead)
                self._trace("screen", rows=rows, dead=dead, status=status)
                # a trust dialog being answered is not shown to the engine (its "No, exit" row would
                # read as an unknown dialog); one that stays up past the answers is
                if dead or not self._answer_trust(rows, screenmod.find_dialog(rows)):
                    engine.feed(Screen(rows, dead, status), now)
            for act in engine.decide(now):
                if isinstance(act, EmitRecord):
                    if on_record is not None:
                        on_record(act.record)
                elif isinstance(act, AnnounceSession):
                    self.turn_prompt = act.prompt
                    if on_session is not None:
                        on_session(self.info)
                elif isinstance(act, AnswerGate):
                    hookmod.answer_gate(self.spool.dir, act.pid, act.stop)
                    self._trace("gate", pid=act.pid, stop=act.stop)
                    self.log(f"tool gate {act.pid}: {'stop' if act.stop else 'continue'}")
                elif isinstance(act, PressEnter):
                    self.log("prompt still in the input box: Enter again")
                    self.pane.send_keys("Enter")
                    self._trace("enter")
                elif isinstance(act, Resubmit):
                    self._trace("resubmit", text=act.text)
                    self.log("unknown slash command: re-submitted for the model")
                    self.paste_prompt(act.text, deadline)
                elif isinstance(act, Finish):
                    self._trace("finish", end=act.outcome.end)
                    self._carried = engine.later_records()
                    self.log(f"turn complete ({act.outcome.end})")
                    self.last_end_at = time.monotonic()
                    registry.set_state(self, "idle")
                    if act.outcome.end == "fast":
                        self._unsettled = engine.tree
                    return act.outcome
                elif isinstance(act, Fail):
                    self._trace("fail", fail_kind=act.kind, reason=act.reason)
                    screen = self.pane.screen(history=True) if act.kind == "exited" else self.screen()
                    raise TurnError(act.reason, screen, act.kind, act.exit_status,
                                    cli_message=act.message, cli_exit_code=act.exit_code)
            if cancel is not None and cancel.is_set():
                raise TurnError("the caller went away; the turn was cancelled", self.screen(), "cancelled")
            self._wake.wait(max(0.0, engine.next_wake(now) - time.monotonic()))
            self._wake.clear()

    def _trace(self, kind: str, **fields) -> None:
        """Append one event to the trace file (``CLAUDE_BRIDGE_TRACE``): the engine's inputs with their
        monotonic time, replayable by ``tests/unit/test_engine_traces.py``."""
        if self._trace_file is None:
            return
        line = {"t": round(time.monotonic(), 4), "kind": kind, **fields}
        with contextlib.suppress(OSError, TypeError):
            self._trace_file.write(orjson.dumps(line, default=str) + b"\n")
            self._trace_file.flush()
