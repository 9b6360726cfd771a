"""A claude process in a pane, its hooks and its transcript: start it, run turns on it, close it.

``ClaudeSession`` is the unit both the cold path (one session per call) and pool mode (one session
serving many turns) use.  A turn is followed through Claude's own signals:

1. ``UserPromptSubmit`` hook → ``prompt_id`` (the prompt record's ``promptId``);
2. transcript records, assembled by ``parentUuid`` from the prompt record (``turn.TurnTree``);
3. the end: ``system/turn_duration`` below the prompt (written after the Stop / StopFailure hooks);
   if a Stop/StopFailure hook arrived but no turn_duration follows within ``STOP_GRACE`` seconds
   (e.g. a CLI that stops writing it), the turn ends on the hook.
Fallbacks, checked when nothing progresses: the pane died (claude exited), a blocking dialog is on
screen, or the deadline passed.  Each raises ``TurnError`` with a one-line reason and the pane's
last lines.

Time values are ``time.monotonic()`` seconds unless named ``*_ms``.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import hooks as hookmod
from . import registry
from . import screen as screenmod
from .pane import ClaudePane, LaunchSpec, PaneError, TmuxServer
from .paths import new_run_dir
from .preseed import config_dir
from .transcript import DirectoryWatch, TranscriptReader, transcript_path
from .turn import TurnTree, find_prompt

STOP_GRACE = 1.5          # s to wait for turn_duration after a Stop hook
PERMISSION_GRACE = 20.0   # s a permission dialog may stay up while the bridge's deny hook answers it
IDLE_CHECK = 0.25         # s between pane checks while nothing happens
READY_TIMEOUT = 60.0      # s to wait for the input prompt before a paste


def final_reply_written(records: list[dict], stop_payload: dict) -> bool:
    """True when the turn's last assistant record (tree order) is a finished reply (``end_turn``)
    whose text is the end of the Stop hook's ``last_assistant_message``."""
    last = next((r for r in reversed(records) if r.get("type") == "assistant"), None)
    if last is None:
        return False
    msg = last.get("message") or {}
    if msg.get("stop_reason") != "end_turn" or last.get("isApiErrorMessage"):
        return False
    blocks = msg.get("content") or []
    text = blocks[-1].get("text") if blocks and isinstance(blocks[-1], dict) and blocks[-1].get("type") == "text" else None
    expected = stop_payload.get("last_assistant_message")
    return bool(text) and isinstance(expected, str) and expected.rstrip().endswith(text.rstrip())


def _wait_process_gone(pid: int, timeout: float) -> None:
    """Wait until ``pid`` has exited (gone, or a zombie), at most ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[-1].split()[0] == b"Z":
                    return
        except OSError:
            return
        time.sleep(0.02)


class TurnError(Exception):
    """A turn could not complete: ``reason`` (one line), ``screen`` (pane's last lines), ``kind``."""

    def __init__(self, reason: str, screen: list[str] | None = None, kind: str = "error",
                 exit_status: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.screen = screen or []
        self.kind = kind
        self.exit_status = exit_status


@dataclass
class TurnOutcome:
    """A finished turn: its records in tree order, the end record, hook payloads, timings."""

    records: list[dict]
    prompt_record: dict | None
    end_record: dict | None
    stop_payload: dict | None
    stop_failure: bool
    started: float
    ended: float
    # the turn's ``api-request`` records (2.1.329+: one per API request, with its send time)
    api_requests: list = field(default_factory=list)

    @property
    def wall_ms(self) -> int:
        return int((self.ended - self.started) * 1000)


@dataclass
class SessionInfo:
    """What the SessionStart hook told us: ``session_id``, ``transcript_path``, ``model``, ``source``."""

    session_id: str | None = None
    transcript_path: str | None = None
    model: str | None = None
    source: str | None = None
    extra: dict = field(default_factory=dict)


class ClaudeSession:
    """One interactive claude in its own pane.

    ``start()`` launches it; ``run_turn()`` submits a prompt and follows the turn;
    ``close()`` kills the pane and removes every file of the run (idempotent).
    """

    def __init__(self, *, claude_bin: str, claude_args: list[str], env: dict[str, str], cwd: str,
                 session_id: str, settings: dict, deny_permission_requests: bool,
                 server: TmuxServer | None = None, log: Callable[[str], None] | None = None):
        self.claude_bin = claude_bin
        self.claude_args = list(claude_args)
        self.env = env
        self.cwd = cwd
        self.session_id = session_id
        self.caller_settings = settings
        self.deny_permission_requests = deny_permission_requests
        self.log = log or (lambda msg: None)
        self.run_dir = new_run_dir("pane")
        self.spool = hookmod.HookSpool(self.run_dir / "hooks")
        self._own_server = server is None
        self.server = server or TmuxServer(self.run_dir)
        self.pane: ClaudePane | None = None
        self.info = SessionInfo(session_id=session_id)
        self._wake = threading.Event()
        self._watches: list[DirectoryWatch] = []
        self._watched_dirs: set[Path] = set()
        self._reader: TranscriptReader | None = None
        self._tree_records: dict[str, dict] = {}
        self._pending_hooks: list[hookmod.HookEvent] = []
        self.last_submit_at: float | None = None   # monotonic: prompt handed to claude (last turn)
        self.last_end_at: float | None = None      # monotonic: end of the last turn detected
        self.closed = False

    # -- lifecycle ---------------------------------------------------------------------------
    def _wakeup(self) -> None:
        self._wake.set()

    def start(self, launch_prompt: str | None = None) -> None:
        """Launch claude; with ``launch_prompt`` the prompt is claude's positional argument (no typing).

        Raises PaneError when tmux fails.
        """
        settings = hookmod.merged_settings(self.caller_settings, self.spool.dir,
                                           deny_permission_requests=self.deny_permission_requests)
        settings_path = hookmod.write_settings(self.run_dir / "settings.json", settings)
        argv = [self.claude_bin, *self.claude_args, "--session-id", self.session_id,
                "--settings", str(settings_path)]
        if launch_prompt is not None:
            argv += ["--", launch_prompt]
        self._watches.append(DirectoryWatch(self.spool.dir, self._wakeup))
        expected = transcript_path(config_dir(self.env), self.cwd, self.session_id)
        self._follow(expected)
        self.started = time.monotonic()
        if self.closed:
            raise PaneError("the session was closed before claude started")
        pane = self.server.new_pane(LaunchSpec(argv=argv, env=self.env, cwd=self.cwd))
        self.pane = pane
        if self.closed:  # closed while tmux was starting the pane
            pane.kill()
            raise PaneError("the session was closed before claude started")
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
        if path.parent not in self._watched_dirs:
            with contextlib.suppress(OSError):
                self._watches.append(DirectoryWatch(path.parent, self._wakeup))
                self._watched_dirs.add(path.parent)
        self.log(f"following transcript {path}")

    def close(self, wait_exit: float = 0.0) -> None:
        """Kill the pane (and the private server when owned) and delete the run directory. Never raises.

        With ``wait_exit`` (seconds), also wait until the claude process has exited: claude rewrites
        ``~/.claude.json`` on its way out, so a caller about to revoke temporary trust must wait.
        """
        if self.closed:
            return
        self.closed = True
        for w in self._watches:
            w.close()
        self._watches.clear()
        pid = self.pane.pid() if (self.pane is not None and wait_exit) else None
        if self.pane is not None:
            self.pane.kill()
        if self._own_server:
            self.server.kill()
        shutil.rmtree(self.run_dir, ignore_errors=True)
        if pid:
            _wait_process_gone(pid, wait_exit)

    # -- events --------------------------------------------------------------------------------
    def _drain_hooks(self) -> list[hookmod.HookEvent]:
        events = self.spool.drain()
        for ev in events:
            p = ev.payload
            self.log(f"hook {ev.event}")
            if ev.event == "SessionStart":
                self.info.session_id = p.get("session_id") or self.info.session_id
                self.info.model = p.get("model") or self.info.model
                self.info.source = p.get("source")
                if p.get("transcript_path"):
                    self.info.transcript_path = p["transcript_path"]
                    self._follow(Path(p["transcript_path"]))
        return events

    def _read_records(self) -> list[dict]:
        if self._reader is None:
            return []
        return self._reader.read_new()

    def screen(self) -> list[str]:
        return self.pane.screen() if self.pane else []

    def _check_pane(self) -> None:
        assert self.pane is not None
        dead, status = self.pane.status()
        if dead:
            raise TurnError("claude exited before the turn finished", self.pane.screen(history=True), "exited", status)
        lines = self.pane.screen()
        dialog = screenmod.find_dialog(lines)
        if dialog is not None and dialog.kind == "permission" and self.deny_permission_requests:
            # The dialog is drawn while the PermissionRequest hook (which denies, like -p) is still
            # running; under load that takes a while. Only a dialog that stays up is an error.
            now = time.monotonic()
            first = getattr(self, "_permission_seen_at", None)
            if first is None:
                self._permission_seen_at = now
            if now - (first or now) < PERMISSION_GRACE:
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
            if screenmod.is_ready(lines):
                return
            dead, status = self.pane.status()
            if dead:
                raise TurnError("claude exited during start-up", self.pane.screen(history=True), "exited", status)
            dialog = screenmod.find_dialog(lines)
            if dialog is not None:
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

    def clear(self, deadline: float) -> None:
        """Start a fresh conversation in this pane with ``/clear``; wait for SessionStart(source="clear")
        with its new session id and transcript, then for the input prompt. Raises TurnError."""
        assert self.pane is not None
        self.wait_ready(deadline)
        old = self.info.session_id
        self.pane.send_keys("/clear", literal=True)
        self._wait_screen(lambda rows: any(r.startswith("❯") and "/clear" in r for r in rows), 2.0)
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

    def _wait_screen(self, predicate, timeout: float) -> bool:
        assert self.pane is not None
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate(screenmod.bottom(self.pane.screen(), 12)):
                return True
            time.sleep(0.01)
        return False

    def interrupt(self) -> None:
        """Press Escape in the pane (interrupts a running turn). Never raises."""
        with contextlib.suppress(Exception):
            if self.pane is not None:
                self.pane.send_keys("Escape")

    def paste_prompt(self, prompt: str, deadline: float) -> None:
        """Submit ``prompt`` by bracketed paste, then Enter once the paste has landed. Raises TurnError."""
        assert self.pane is not None
        self.wait_ready(min(deadline, time.monotonic() + READY_TIMEOUT))
        self.pane.paste(prompt)
        # The paste is shown as "[Pasted text #N ...]" or the text itself; Enter must come after it.
        self._wait_screen(lambda rows: any("[Pasted text" in r for r in rows)
                          or any(screenmod.READY_RE.match(r) and r[2:].strip() for r in rows), 5.0)
        time.sleep(0.02)
        self.pane.send_keys("Enter")

    # -- turn ------------------------------------------------------------------------------------
    def run_turn(self, prompt: str, *, submitted: bool, deadline: float,
                 on_record: Callable[[dict], None] | None = None,
                 on_session: Callable[[SessionInfo], None] | None = None,
                 cancel: threading.Event | None = None) -> TurnOutcome:
        """Follow one turn to its end; submit ``prompt`` by paste unless ``submitted`` (launch argument).

        ``on_record(record)`` is called once per turn record in tree order as records become
        available (for streaming); ``on_session(info)`` once, when the SessionStart hook (or the first
        record) has told the session's model and id.  Raises TurnError (see module docstring).
        """
        assert self.pane is not None
        registry.set_state(self, "busy")
        started = time.monotonic()
        self.last_submit_at = started
        if not submitted:
            self.paste_prompt(prompt, deadline)
            self.log("prompt pasted and submitted")
        tree = TurnTree()
        emitted: set[str] = set()
        prompt_id: str | None = None
        stop_payload: dict | None = None
        stop_failure = False
        stop_at: float | None = None
        session_announced = self.info.model is not None and self.info.source is not None
        if session_announced and on_session:
            on_session(self.info)
        last_progress = time.monotonic()
        last_check = 0.0
        all_records: list[dict] = []
        while True:
            self._wake.wait(IDLE_CHECK)
            self._wake.clear()
            progressed = False
            for ev in self._drain_hooks():
                progressed = True
                if ev.event == "UserPromptSubmit" and prompt_id is None:
                    prompt_id = ev.payload.get("prompt_id")
                elif ev.event in ("Stop", "StopFailure"):
                    stop_payload = ev.payload
                    stop_failure = ev.event == "StopFailure"
                    stop_at = time.monotonic()
                if ev.event == "SessionStart" and not session_announced and on_session:
                    session_announced = True
                    on_session(self.info)
            records = self._read_records()
            if records:
                progressed = True
                for rec in records:
                    all_records.append(rec)
                    tree.add(rec)
                if not session_announced and on_session:
                    session_announced = True
                    on_session(self.info)
            if tree.prompt_uuid is None:
                prec = find_prompt(all_records, prompt_id=prompt_id, text=None if prompt_id else prompt)
                if prec is not None:
                    tree.set_prompt(prec["uuid"])
            if tree.prompt_uuid is not None and on_record is not None:
                for rec in tree.ordered():
                    u = rec.get("uuid")
                    if u and u not in emitted:
                        emitted.add(u)
                        on_record(rec)
            now = time.monotonic()
            if tree.prompt_uuid is not None and tree.complete():
                self.log("turn complete (turn_duration)")
                break
            if (stop_payload is not None and not stop_failure and tree.prompt_uuid is not None
                    and final_reply_written(tree.ordered(), stop_payload)):
                # The CLI's writer is FIFO: once the final reply the Stop hook names is in the file,
                # every record of the turn before it is too; turn_duration would only add ~100 ms.
                self.log("turn complete (Stop hook + final reply in the transcript)")
                break
            if stop_at is not None and now - stop_at > STOP_GRACE and tree.prompt_uuid is not None:
                self.log("turn ended on the Stop hook without turn_duration")
                break
            if progressed:
                last_progress = now
            if now > deadline:
                raise TurnError("timed out waiting for claude to finish the turn", self.screen(), "timeout")
            if cancel is not None and cancel.is_set():
                raise TurnError("the caller went away; the turn was cancelled", self.screen(), "cancelled")
            if now - last_check >= IDLE_CHECK and now - last_progress >= IDLE_CHECK:
                last_check = now
                self._check_pane()
        self.last_end_at = time.monotonic()
        registry.set_state(self, "idle")
        ordered = tree.ordered()
        prompt_record = self._tree_prompt(all_records, tree.prompt_uuid)
        return TurnOutcome(records=ordered, prompt_record=prompt_record, end_record=tree.end_record(),
                           stop_payload=stop_payload, stop_failure=stop_failure,
                           started=started, ended=time.monotonic(),
                           api_requests=[r for r in all_records if r.get("type") == "api-request"])

    @staticmethod
    def _tree_prompt(records: list[dict], uuid: str | None) -> dict | None:
        for r in records:
            if r.get("uuid") == uuid:
                return r
        return None
