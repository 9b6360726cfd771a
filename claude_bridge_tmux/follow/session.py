"""A claude process in a pane, its hooks and its transcript: start it, run turns on it, close it.

``ClaudeSession`` is the unit both the cold path (one session per call) and pool mode (one session
serving many turns) use.  A turn is followed through Claude's own signals:

1. ``UserPromptSubmit`` hook → ``prompt_id`` (the prompt record's ``promptId``);
2. transcript records, assembled by ``parentUuid`` from the prompt record (``turn.TurnTree``);
3. the end: ``system/turn_duration`` below the prompt, written once every Stop / StopFailure hook
   (the caller's too) has run.  With ``fast_end`` (a pane that lives on: pool, ``api.Session``) the
   turn ends sooner, on a Stop hook whose ``last_assistant_message`` is already the turn's last
   record in the file (the CLI's writer is FIFO, so every earlier record of the turn is there too);
   the pane's next use first waits for that turn_duration (``settle``).  A hook alone never ends a
   turn: it can run well before the transcript catches up (a loaded CI box: > 1.5 s; the writer
   flushes every 100 ms).  Only after ``STOP_QUIET`` s with a Stop hook and no transcript progress
   (a CLI that stopped writing turn_duration) does the turn end on the hook.
Fallbacks, checked when nothing progresses: the pane died (claude exited), a blocking dialog is on
screen, or the deadline passed.  Each raises ``TurnError`` with a one-line reason and the pane's
last lines.

Time values are ``time.monotonic()`` seconds unless named ``*_ms``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from claude_bridge_tmux.host import hooks as hookmod
from claude_bridge_tmux.ops import registry
from claude_bridge_tmux.tmux import screen as screenmod
from claude_bridge_tmux.tmux.pane import ClaudePane, LaunchSpec, PaneError, TmuxServer
from claude_bridge_tmux.host.paths import new_run_dir
from claude_bridge_tmux.host.preseed import config_dir
from claude_bridge_tmux.host.proc import wait_process_gone
from claude_bridge_tmux.follow.transcript import DirectoryWatch, TranscriptReader, transcript_path
from claude_bridge_tmux.follow.tree import TurnTree, content_text, find_prompt

STOP_QUIET = 30.0         # s without transcript progress after a Stop hook before ending on the hook alone
SETTLE_TIMEOUT = 30.0     # s the next use of a pane waits for the turn_duration of a fast-ended turn
CLOSE_SETTLE = 5.0        # s close() waits for it (then the pane is killed anyway)
LOCAL_SETTLE = 0.6        # s of quiet after a local slash command's records before its turn ends
PANEL_WAIT = 3.0          # s a slash command may hide the input prompt (a panel) before that is an error
GATE_UNKNOWN_TOOL = 1.5   # s after which a gated tool not in the turn (a subagent's) is let through
PERMISSION_GRACE = 20.0   # s a permission dialog may stay up while the bridge's deny hook answers it
IDLE_CHECK = 0.25         # s between pane checks while nothing happens
READY_TIMEOUT = 60.0      # s to wait for the input prompt before a paste
ENTER_RETRY_AFTER = 1.0   # s without UserPromptSubmit before checking whether Enter was lost


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


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# stdout a local command shows only in the terminal (claude -p's result leaves it out)
_TERMINAL_HINT = re.compile(r"^Compacted\b.*\(ctrl\+o to see full summary\)$", re.S)
_STDOUT = re.compile(r"<local-command-(stdout|stderr)>(.*?)</local-command-\1>", re.S)


def _bang_prompt_shown(rows: list[str], prompt: str) -> bool:
    """The input box is in normal mode and shows ``prompt`` (which starts with "!"), the guard "x"
    gone: a one-line prompt shown in full, or a paste placeholder ("[Pasted text #1 +2 lines]")."""
    shown = screenmod.input_text(rows)
    if shown is None or screenmod.shell_mode(rows):
        return False
    if shown.startswith("[Pasted text"):
        return shown.endswith("]")
    if "\n" in prompt or len(prompt) > 200:
        return shown.startswith("!")          # shown wrapped or elided: only the start is certain
    return shown == prompt.strip(" \u00a0")


def _record_time(rec: dict) -> float | None:
    ts = rec.get("timestamp")
    if not isinstance(ts, str):
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _is_local_command_record(rec: dict, since: float) -> bool:
    """A record a local slash command writes (``system/informational``, ``system/local_command``, the
    ``<command-name>`` / ``<local-command-stdout>`` user records), written after ``since`` (epoch s)
    -- so records of a pool's earlier ``/clear`` do not count."""
    t = _record_time(rec)
    if t is None or t < since - 1.0:
        return False
    if rec.get("type") == "system" and rec.get("subtype") in ("informational", "local_command"):
        return True
    if rec.get("type") == "user" and not rec.get("isSidechain"):
        text = content_text(rec) or ""
        if rec.get("isMeta") and not rec.get("isCompactSummary") and text and not text.startswith("<"):
            return True   # the command's report as the model would see it (e.g. /context's markdown)
        return text.startswith(("<command-name>", "<command-message>", "<local-command-stdout>",
                                "<local-command-stderr>", "<local-command-caveat>"))
    return False


def _unknown_command(records: list[dict]) -> str | None:
    """``Unknown command: /x`` (claude's own text) when the records say the command does not exist."""
    for r in records:
        c = r.get("content")
        if r.get("subtype") == "informational" and isinstance(c, str) and c.startswith("Unknown command: "):
            return c
    return None


def _local_command_text(records: list[dict]) -> str:
    """What a local command printed: its report for the model (a meta user record, as ``claude -p``
    prints it), else its last ``<local-command-stdout>`` (ANSI codes removed), else the first
    informational message, else ""."""
    meta = [content_text(r) for r in records if r.get("type") == "user" and r.get("isMeta")
            and not (content_text(r) or "<").startswith("<")]
    if meta:
        return meta[-1] or ""
    out: str | None = None
    for r in records:
        c = r.get("content") if r.get("type") == "system" else content_text(r)
        if not isinstance(c, str):
            continue
        for m in _STDOUT.finditer(c):
            out = "" if _TERMINAL_HINT.match(m.group(2).strip()) else m.group(2)
    if out is None:
        info = [r.get("content") for r in records if r.get("subtype") == "informational"]
        out = info[0] if info and isinstance(info[0], str) else ""
    return _ANSI.sub("", out).strip("\n")


def _same_prompt(hooked, submitted: str) -> bool:
    """Whether a UserPromptSubmit hook's ``prompt`` is the text this turn submitted (a hook without
    one counts; the CLI may trim surrounding whitespace)."""
    if not isinstance(hooked, str):
        return True
    return hooked == submitted or hooked.strip() == submitted.strip()


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
    # a local slash command answered without the model: its text (``Unknown command: /x``, the
    # command's stdout); ``records`` then holds its transcript records
    local_text: str | None = None
    # the tool gate stopped the turn before the next model request (--max-turns / --max-budget-usd)
    gate_stopped: bool = False

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


class ClaudeSession:
    """One interactive claude in its own pane.

    ``start()`` launches it; ``run_turn()`` submits a prompt and follows the turn;
    ``close()`` kills the pane and removes every file of the run (idempotent).
    """

    def __init__(self, *, claude_bin: str, claude_args: list[str], env: dict[str, str], cwd: str,
                 session_id: str, settings: dict, deny_permission_requests: bool,
                 server: TmuxServer | None = None, log: Callable[[str], None] | None = None,
                 session_args: list[str] | None = None, gate_tools: bool = False):
        self.claude_bin = claude_bin
        self.claude_args = list(claude_args)
        self.env = env
        self.cwd = cwd
        self.session_id = session_id
        # how claude picks its session: a fixed id, or --resume/--continue [--fork-session --session-id]
        self.session_args = list(session_args) if session_args else ["--session-id", session_id]
        self.gate_tools = gate_tools
        self._known_sizes: dict[Path, int] = {}
        self._followed: list[Path] = []
        self._known_side_dirs: dict[Path, bool] = {}
        self._project_dir_existed = True
        self.caller_settings = settings
        self.deny_permission_requests = deny_permission_requests
        self.log = log or (lambda msg: None)
        self.run_dir = new_run_dir("pane", env if env.get("CLAUDE_BRIDGE_RUNTIME_DIR") else None)
        self.spool = hookmod.HookSpool(self.run_dir / "hooks")
        self._own_server = server is None
        self.server = server or TmuxServer(self.run_dir)
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
        self._settle_lock = threading.Lock()
        self.closed = False

    # -- lifecycle ---------------------------------------------------------------------------
    def _wakeup(self) -> None:
        self._wake.set()

    def start(self, launch_prompt: str | None = None) -> None:
        """Launch claude; with ``launch_prompt`` the prompt is claude's positional argument (no typing).

        Raises PaneError when tmux fails.
        """
        settings = hookmod.merged_settings(self.caller_settings, self.spool.dir,
                                           deny_permission_requests=self.deny_permission_requests,
                                           gate_tools=self.gate_tools)
        settings_path = hookmod.write_settings(self.run_dir / "settings.json", settings)
        argv = [self.claude_bin, *self.claude_args, *self.session_args,
                "--settings", str(settings_path)]
        if launch_prompt is not None:
            argv += ["--", launch_prompt]
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

    def close(self, wait_exit: float = 0.0) -> None:
        """Kill the pane (and the private server when owned) and delete the run directory. Never raises.

        With ``wait_exit`` (seconds), also wait until the claude process has exited: claude rewrites
        ``~/.claude.json`` on its way out, so a caller about to revoke temporary trust must wait.
        A fast-ended last turn (``run_turn(fast_end=True)``) is first given up to ``CLOSE_SETTLE`` s
        to finish (its Stop hooks, the caller's included, run to their end).
        """
        if self.closed:
            return
        if self._unsettled is not None and self.pane is not None:
            with contextlib.suppress(TurnError, PaneError):
                self.settle(CLOSE_SETTLE)
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
            wait_process_gone(pid, wait_exit)

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
        events = self.spool.drain()
        for ev in events:
            p = ev.payload
            self.log(f"hook {ev.event}")
            if ev.event == "SessionStart":
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
        """Submit ``prompt`` by bracketed paste, then Enter once the paste has landed. Raises TurnError.

        A prompt starting with ``!`` is sent as text, as ``claude -p`` does: pasted into an empty input
        box it would switch the box to shell mode and Enter would run it locally. Enter is only pressed
        once the screen shows the box in normal mode holding the text; otherwise the box is emptied,
        the placement tried once more, and then the prompt is refused (TurnError, kind ``submit``).
        """
        assert self.pane is not None
        self.wait_ready(min(deadline, time.monotonic() + READY_TIMEOUT))
        if prompt.startswith("!"):
            for patience in (1.0, 3.0):
                if self._place_bang_prompt(prompt, patience):
                    break
                self.log("the '!' prompt did not land as text: input box emptied, trying again")
                self._empty_input()
            else:
                raise TurnError("could not place the prompt starting with '!' in claude's input box as text "
                                "(it would have run as a shell command); nothing was submitted",
                                self.screen(), "submit")
        else:
            self.pane.paste(prompt)
            # The paste is shown as "[Pasted text #N ...]" or the text itself; Enter must come after it.
            self._wait_screen(lambda rows: any("[Pasted text" in r for r in rows) or bool(screenmod.input_text(rows)),
                              5.0)
        time.sleep(0.02)
        self.pane.send_keys("Enter")

    def _place_bang_prompt(self, prompt: str, patience: float) -> bool:
        """Type "x", move before it, paste ``prompt`` (the box is not empty: no shell mode), delete the
        "x"; True when the screen then shows the box in normal mode with the prompt (``patience``: s
        to wait for each step to show)."""
        assert self.pane is not None
        self.pane.send_keys("x", literal=True)
        if not self._wait_screen(lambda rows: screenmod.input_text(rows) == "x", patience):
            return False
        self.pane.send_keys("Left")
        time.sleep(0.02)
        self.pane.paste(prompt)
        if not self._wait_screen(lambda rows: screenmod.input_text(rows) not in (None, "", "x"), 5 * patience):
            return False
        self.pane.send_keys("DC")
        return self._wait_screen(lambda rows: _bang_prompt_shown(rows, prompt), patience)

    def _empty_input(self) -> None:
        """Empty claude's input box and leave shell mode (Ctrl-U clears the text, Backspace on an empty
        shell-mode box returns to normal mode)."""
        assert self.pane is not None
        for _ in range(5):
            rows = screenmod.bottom(self.pane.screen(), 12)
            if screenmod.input_text(rows) == "":
                return
            if screenmod.shell_mode(rows) and any(r.rstrip() == "!" for r in rows):
                self.pane.send_keys("BSpace")
            else:
                self.pane.send_keys("C-u")
            self._wait_screen(lambda r: screenmod.input_text(r) == "" or screenmod.shell_mode(r), 1.0)

    # -- turn ------------------------------------------------------------------------------------
    def run_turn(self, prompt: str, *, submitted: bool, deadline: float,
                 on_record: Callable[[dict], None] | None = None,
                 on_session: Callable[[SessionInfo], None] | None = None,
                 cancel: threading.Event | None = None,
                 gate: Callable[[list[dict], str], bool | None] | None = None,
                 unknown_command_to_model: bool = False, fast_end: bool = False) -> TurnOutcome:
        """Follow one turn to its end; submit ``prompt`` by paste unless ``submitted`` (launch argument).

        ``on_record(record)`` is called once per turn record in tree order as records become
        available (for streaming); ``on_session(info)`` once, when the SessionStart hook (or the first
        record) has told the session's model and id.

        A prompt starting with ``/`` may be a local command: it writes ``system/informational`` /
        ``system/local_command`` records, no prompt record and no turn end; the turn ends once those
        records have settled (``TurnOutcome.local_text``). An unknown command is re-submitted for the
        model with ``unknown_command_to_model`` (as 2.1.329's ``claude -p`` does); a command that opens
        a panel (``/cost``, ``/model`` …) is a TurnError.

        ``gate(turn_records, tool_use_id)`` answers the PostToolUse gate hook of a session started
        with ``gate_tools``: True stops the turn before the next model request, False lets it go on,
        None means "not decidable yet" (asked again as records arrive).

        ``fast_end``: end on the Stop hook once its final reply is in the file, before claude has
        finished the turn (its Stop hooks, turn_duration); only for a pane that is used again (the
        next ``run_turn`` / ``clear`` waits for that end first).  Raises TurnError (see module docstring).
        """
        assert self.pane is not None
        self.settle()
        registry.set_state(self, "busy")
        started = time.monotonic()
        wall_start = time.time()
        self.last_submit_at = started
        enter_at: float | None = None
        enter_retries = 0
        if not submitted:
            self.paste_prompt(prompt, deadline)
            enter_at = time.monotonic()
            self.log("prompt pasted and submitted")
        match_text = prompt
        slash = prompt.startswith("/")
        tree = TurnTree()
        emitted: set[str] = set()
        prompt_id: str | None = None
        prompt_submitted = False          # a UserPromptSubmit hook arrived: the model gets a turn
        stop_payload: dict | None = None
        stop_failure = False
        session_announced = self.info.model is not None and self.info.source is not None
        # a slash command may switch the session (/clear): announce it once the turn shows what it is
        defer_session = slash
        if session_announced and on_session and not defer_session:
            on_session(self.info)
        last_progress = time.monotonic()
        last_check = 0.0
        all_records: list[dict] = []
        local_records: list[dict] = []
        not_ready_since: float | None = None
        gates: dict[int, tuple[str, float]] = {}   # pid -> (tool_use_id, arrival)
        gate_stopped = False
        local_text: str | None = None
        while True:
            if enter_at is not None and tree.prompt_uuid is None and time.monotonic() - enter_at > ENTER_RETRY_AFTER:
                # An Enter sent right after a paste can be swallowed (seen on 2.1.197): when claude has
                # not taken the prompt and it still sits in the input box, press Enter again.
                enter_at = time.monotonic()
                if enter_retries < 3 and screenmod.input_text(self.screen()):
                    enter_retries += 1
                    self.log(f"prompt still in the input box: Enter again ({enter_retries})")
                    self.pane.send_keys("Enter")
            self._wake.wait(IDLE_CHECK)
            self._wake.clear()
            progressed = False
            for ev in self._drain_hooks():
                progressed = True
                # Hooks of an earlier turn of this pane may still be in the spool (drained late under
                # load): one written before this turn began counts only if it names this turn's prompt.
                stale = ev.mtime < wall_start - 0.05
                if ev.event == "UserPromptSubmit" and prompt_id is None:
                    if not stale or _same_prompt(ev.payload.get("prompt"), match_text):
                        prompt_id = ev.payload.get("prompt_id")
                        enter_at = None
                        prompt_submitted = True
                    else:
                        self.log("ignored a UserPromptSubmit hook of another prompt")
                elif ev.event in ("Stop", "StopFailure"):
                    pid = ev.payload.get("prompt_id")
                    if stale or (pid and prompt_id and pid != prompt_id):
                        self.log(f"ignored a {ev.event} hook of another prompt")
                        continue
                    stop_payload = ev.payload
                    stop_failure = ev.event == "StopFailure"
                elif ev.event == "PostToolUse" and ev.pid is not None:
                    gates[ev.pid] = (str(ev.payload.get("tool_use_id") or ""), time.monotonic())
                if ev.event == "SessionStart" and not session_announced and on_session and not defer_session:
                    session_announced = True
                    on_session(self.info)
            records = self._read_records()
            if records:
                progressed = True
                for rec in records:
                    all_records.append(rec)
                    tree.add(rec)
                    if slash and _is_local_command_record(rec, wall_start):
                        local_records.append(rec)
                if not session_announced and on_session and not defer_session:
                    session_announced = True
                    on_session(self.info)
            if tree.prompt_uuid is None:
                # by the UserPromptSubmit hook's prompt id, else by text; only among records written
                # during this turn: a forked session's file starts with copies of the old turns (same
                # text, and on 2.1.329 even re-stamped with the new prompt id)
                cands = [r for r in all_records if (_record_time(r) or 0) >= wall_start - 0.05]
                prec = find_prompt(cands, prompt_id=prompt_id, text=None if prompt_id else match_text)
                if prec is not None:
                    tree.set_prompt(prec["uuid"])
                    if defer_session and on_session:
                        defer_session = False
                        session_announced = True
                        on_session(self.info)
            if tree.prompt_uuid is not None and on_record is not None:
                for rec in tree.ordered():
                    u = rec.get("uuid")
                    if u and u not in emitted:
                        emitted.add(u)
                        on_record(rec)
            if gates:
                ordered = tree.ordered() if tree.prompt_uuid is not None else []
                for pid, (tool_use_id, since) in list(gates.items()):
                    decision = gate(ordered, tool_use_id) if (gate is not None and tool_use_id) else False
                    if decision is None and time.monotonic() - since > GATE_UNKNOWN_TOOL:
                        decision = False   # not a tool of this turn's main thread (a subagent's)
                    if decision is not None:
                        hookmod.answer_gate(self.spool.dir, pid, decision)
                        gate_stopped = gate_stopped or decision
                        del gates[pid]
                        self.log(f"tool gate {tool_use_id}: {'stop' if decision else 'continue'}")
            now = time.monotonic()
            if tree.prompt_uuid is not None and tree.complete():
                self.log("turn complete (turn_duration)")
                break
            if stop_payload is not None and stop_payload.get("prompt_id") and prompt_id \
                    and stop_payload["prompt_id"] != prompt_id:
                stop_payload = None      # (arrived before this turn's prompt id was known)
            if progressed:
                last_progress = now
            if stop_payload is not None and tree.prompt_uuid is not None:
                if fast_end and progressed and not stop_failure and final_reply_written(tree.ordered(), stop_payload):
                    self.log("turn complete (Stop hook + final reply in the transcript)")
                    self._unsettled = tree
                    break
                if now - last_progress > STOP_QUIET:     # (the Stop hook itself counted as progress)
                    self.log(f"turn ended on the {'StopFailure' if stop_failure else 'Stop'} hook: "
                             f"no turn_duration and no transcript progress for {STOP_QUIET:.0f} s")
                    break
            if slash and not prompt_submitted and tree.prompt_uuid is None:
                if local_records and now - last_progress >= LOCAL_SETTLE:
                    unknown = _unknown_command(local_records)
                    if unknown is not None and unknown_command_to_model:
                        # claude -p (2.1.329) sends an unknown /command to the model; interactive claude
                        # only says "Unknown command". One leading space makes the input box take it as
                        # text (the model sees " /x ..."; documented).
                        self.log("unknown slash command: re-submitted for the model")
                        match_text = " " + prompt
                        local_records = []
                        slash = False
                        self.paste_prompt(match_text, deadline)
                        continue
                    local_text = unknown if unknown is not None else _local_command_text(local_records)
                    self.log("local slash command finished")
                    break
                if not local_records and self.info.source is not None:
                    if screenmod.is_ready(self.pane.screen()):
                        not_ready_since = None
                    elif not_ready_since is None:
                        not_ready_since = now
                    elif now - not_ready_since > PANEL_WAIT:
                        name = prompt.split(None, 1)[0]
                        raise TurnError(f"{name} opens a panel in interactive claude; claude-bridge cannot "
                                        f"print its claude -p answer (run `claude -p {name}` directly)",
                                        self.screen(), "panel")
            if now > deadline:
                raise TurnError("timed out waiting for claude to finish the turn", self.screen(), "timeout")
            if cancel is not None and cancel.is_set():
                raise TurnError("the caller went away; the turn was cancelled", self.screen(), "cancelled")
            if now - last_check >= IDLE_CHECK and now - last_progress >= IDLE_CHECK:
                last_check = now
                self._check_pane()
        for pid in gates:   # never leave a gate hook waiting
            hookmod.answer_gate(self.spool.dir, pid, False)
        self.last_end_at = time.monotonic()
        registry.set_state(self, "idle")
        if local_text is not None:
            if on_session:
                on_session(self.info)
            times = [t for t in map(_record_time, local_records) if t is not None]
            span = (max(times) - min(times)) if times else 0.0
            return TurnOutcome(records=local_records, prompt_record=None, end_record=None, stop_payload=None,
                               stop_failure=False, started=started, ended=started + span,
                               local_text=local_text)
        ordered = tree.ordered()
        return TurnOutcome(records=ordered, prompt_record=tree.prompt, end_record=tree.end_record(),
                           stop_payload=stop_payload, stop_failure=stop_failure,
                           started=started, ended=time.monotonic(),
                           api_requests=[r for r in all_records if r.get("type") == "api-request"],
                           gate_stopped=gate_stopped)
