"""The turn engine: decides, from claude's own signals, when a turn has ended and how (pure).

One :class:`TurnEngine` follows one turn of an interactive claude. It is fed typed events (hook
calls, transcript records as they arrive, screen observations, the pane's death) with the time they
were seen, and answers :meth:`TurnEngine.decide` with the actions to take. It does no I/O and reads
no clock: ``now`` is always passed in (``time.monotonic()`` seconds in production, a fake clock in
tests), so every decision can be replayed from a recorded trace (``tests/data/traces``).

Signals, in the order a normal turn produces them (docs/cli-behaviour.md §8):

1. ``UserPromptSubmit`` hook → ``prompt_id`` (the prompt record's ``promptId``);
2. transcript records, assembled by ``parentUuid`` below the prompt record (:class:`TurnTree`);
3. the end: ``system/turn_duration`` below the prompt, written once every Stop hook (the caller's
   too) has run. Other ends:

   * **API error**: a ``StopFailure`` hook for this prompt and, in the transcript, the synthetic
     assistant record with ``isApiErrorMessage`` (2.1.329 writes no ``turn_duration`` after it): the
     turn ends at once;
   * **fast end** (a pane used again: pool, ``api.Session``): the ``Stop`` hook's
     ``last_assistant_message`` is the turn's last record in the file (the writer is FIFO, so
     every earlier record is there too); the pane's next use waits for turn_duration;
   * **quiet end**: a Stop hook and no transcript progress for ``STOP_QUIET_S`` (a CLI that stopped
     writing turn_duration);
   * **local command** (``/clear``, ``/context`` …): its records, then ``LOCAL_SETTLE_S`` of quiet.

A run with a limit (--max-turns, --max-budget-usd, --json-schema) has a **tool gate**: claude's
``PostToolBatch`` hook, run once after all tools of a response have resolved (run, failed or denied)
and before the next request, waits for the engine's :class:`AnswerGate`; ``stop`` makes claude end
the turn there (``continue: false``), which then ends with ``turn_duration`` as any other.

A hook alone never ends a turn: under load it runs seconds before the transcript has the reply.

Failures (``Fail``): claude exited, a known blocking dialog, an unknown screen that hides the input
box for ``UNKNOWN_SCREEN_S``, a panel opened by a slash command, the deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from claude_bridge_tmux.follow.localcmd import (
    is_local_command_record,
    local_command_text,
    record_time,
    records_span,
    unknown_command,
)
from claude_bridge_tmux.follow.tree import TurnTree, find_prompt, is_prompt_record
from claude_bridge_tmux.host.hooks import GATE_EVENT
from claude_bridge_tmux.tmux import screen as screenmod

Record = dict[str, Any]

# Seconds unless named *_ms.
STOP_QUIET_S = 30.0         # no transcript progress after a Stop hook before ending on the hook alone
LOCAL_SETTLE_S = 0.6        # quiet after a local slash command's records before its turn ends
PANEL_WAIT_S = 3.0          # a slash command may hide the input prompt (a panel) this long
# a gate hook for tools whose records never show up is let through after this (a subagent's batch says
# so with agent_id and goes on at once; this bound only covers a transcript that lags or lost them)
GATE_UNKNOWN_TOOL_S = 10.0
PERMISSION_GRACE_S = 20.0   # a permission dialog may stay up while the bridge's deny hook answers it
MESSAGE_GRACE_S = 3.0       # an error message on screen (not logged in) may precede its transcript record this long
UNKNOWN_SCREEN_S = 2.0      # the input box may be hidden by an unrecognised screen this long
SCREEN_EVERY_S = 0.25       # screen observation interval while nothing progresses
ENTER_RETRY_AFTER_S = 1.0   # without UserPromptSubmit after a paste: check whether Enter was lost
ENTER_RETRIES = 3
PROMPT_MISSING_S = 10.0     # a Stop hook and still no prompt record (written at submit): the transcript is lost
TRANSCRIPT_FAILING_S = 2.0  # claude warns that transcript writes fail and the prompt never appears this long
STALE_SLACK_S = 0.05        # hook files / records this much older than the turn's start still count

EndKind = Literal["turn_duration", "api_error", "fast", "stop_quiet", "local"]
FailKind = Literal["exited", "transcript", "timeout", "panel", "dialog", "unknown_screen", "permission", "plan_mode",
                   "auto_mode", "login", "trust", "theme", "api_key", "bypass", "settings_error",
                   "mcp_approval", "not_logged_in", "preflight", "submit", "cancelled", "error"]


# ----------------------------------------------------------------------------------------- events

@dataclass(frozen=True)
class Hook:
    """A spooled hook call: ``event`` (``Stop``, ...), its stdin ``payload``, ``written_at`` (epoch s,
    the spool file's mtime) and the hook process ``pid`` (names a gate's answer file)."""

    event: str
    payload: Mapping[str, Any]
    written_at: float
    pid: int | None = None


@dataclass(frozen=True)
class Records:
    """Transcript records that arrived (parsed JSONL lines, file order)."""

    records: Sequence[Record]


@dataclass(frozen=True)
class Screen:
    """A look at the pane: its visible ``rows``; ``dead`` with claude's ``status`` once it exited."""

    rows: Sequence[str]
    dead: bool = False
    status: int | None = None


Event = Hook | Records | Screen


# ---------------------------------------------------------------------------------------- actions

@dataclass(frozen=True)
class EmitRecord:
    """Stream this turn record (tree order; each once)."""

    record: Record


@dataclass(frozen=True)
class AnnounceSession:
    """The session's model and id are known now: print ``system/init``. ``prompt``: the turn's prompt
    record when it is known by then (always, for a turn claude started itself)."""

    prompt: Record | None = None


@dataclass(frozen=True)
class PressEnter:
    """The pasted prompt is still in the input box: press Enter again."""


@dataclass(frozen=True)
class Resubmit:
    """Submit ``text`` by paste (an unknown ``/command`` sent on to the model)."""

    text: str



@dataclass(frozen=True)
class AnswerGate:
    """Answer the tool-gate hook ``pid``: ``stop`` ends the turn before the next request."""

    pid: int
    stop: bool


@dataclass
class TurnOutcome:
    """A finished turn: its records in tree order, the end record, hook payloads, timings
    (``started``/``ended``: monotonic s)."""

    records: list[Record]
    prompt_record: Record | None
    end_record: Record | None
    stop_payload: Mapping[str, Any] | None
    stop_failure: bool
    started: float
    ended: float
    api_requests: list[Record] = field(default_factory=list)   # 2.1.329+: one per API request
    local_text: str | None = None      # a local slash command's answer (records = its records)
    gate_stopped: bool = False         # the tool gate stopped the turn (--max-turns / budget)
    end: EndKind = "turn_duration"

    @property
    def wall_ms(self) -> int:
        return int((self.ended - self.started) * 1000)


@dataclass(frozen=True)
class Finish:
    """The turn is over: ``outcome``."""

    outcome: TurnOutcome


@dataclass(frozen=True)
class Fail:
    """The turn cannot complete: ``kind``, a one-line ``reason``; ``exit_status`` of a dead claude;
    ``message``/``exit_code``: what ``claude -p`` prints and returns in the same situation, when known."""

    kind: str
    reason: str
    exit_status: int | None = None
    message: str | None = None
    exit_code: int | None = None


Action = EmitRecord | AnnounceSession | PressEnter | Resubmit | AnswerGate | Finish | Fail
# gate(turn_records, tool_use_id, call) -> stop? (None: not decidable yet); ``call`` is one entry of the
# gate hook's ``tool_calls``: {tool_name, tool_input, tool_use_id, tool_response}
Gate = Callable[[list[Record], str, Mapping[str, Any]], "bool | None"]


def batch_decision(gate: Gate | None, records: list[Record], payload: Mapping[str, Any]) -> bool | None:
    """The tool gate's answer for one ``PostToolBatch`` hook call (payload of 2.1.197 / 2.1.329:
    ``{…, tool_calls: [{tool_name, tool_input, tool_use_id, tool_response}]}``): stop (True) when the
    gate says stop for any call of the batch, None while it cannot tell for one, else go on (False).
    A subagent's batch (``agent_id`` in the payload) and a run without a gate always go on."""
    if gate is None or payload.get("agent_id"):
        return False
    calls = payload.get("tool_calls")
    decisions = [gate(records, str(c.get("tool_use_id") or ""), c) for c in calls if isinstance(c, Mapping)
                 and c.get("tool_use_id")] if isinstance(calls, list) else []
    if any(decisions):
        return True
    return None if None in decisions else False


# ----------------------------------------------------------------------------------------- engine

def final_reply_written(records: Sequence[Record], stop_payload: Mapping[str, Any]) -> bool:
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
    return isinstance(text, str) and bool(text) and isinstance(expected, str) \
        and expected.rstrip().endswith(text.rstrip())


def session_start_records(tree: TurnTree) -> list[Record]:
    """The SessionStart hook attachments the tree's prompt follows, oldest first: its ancestors up to
    the first record of another kind. Claude writes them as the hooks finish, before the session's
    first prompt: a new session's file starts with them, a resumed one has them between the old turns
    and the new prompt (unless all they say is in the conversation already); a later prompt has none."""
    out: list[Record] = []
    prompt = tree.prompt
    parent = prompt.get("parentUuid") if prompt else None
    cur = tree.get(parent) if isinstance(parent, str) else None
    while cur is not None and len(out) <= len(tree):
        a = cur.get("attachment") if cur.get("type") == "attachment" else None
        if not isinstance(a, Mapping) or a.get("hookEvent") != "SessionStart":
            break
        out.append(cur)
        parent = cur.get("parentUuid")
        cur = tree.get(parent) if isinstance(parent, str) else None
    return out[::-1]


def api_error_written(records: Sequence[Record]) -> bool:
    """True when the turn's last assistant record is the CLI's synthetic API-error message
    (``isApiErrorMessage``: written once the request failed for good, after any retries)."""
    last = next((r for r in reversed(records) if r.get("type") == "assistant"), None)
    return bool(last is not None and last.get("isApiErrorMessage"))


def same_prompt(hooked: object, submitted: str) -> bool:
    """Whether a UserPromptSubmit hook's ``prompt`` is the text this turn submitted (a hook without
    one counts; the CLI may trim surrounding whitespace)."""
    if not isinstance(hooked, str):
        return True
    return hooked == submitted or hooked.strip() == submitted.strip()


@dataclass
class TurnOptions:
    """How to follow a turn.

    ``pasted``: the prompt was pasted (Enter may be swallowed) rather than given as claude's launch
    argument; ``fast_end``: the pane is used again (see the module docstring); ``unknown_command_to_model``:
    re-submit an unknown ``/command`` with a leading space (2.1.329's ``-p`` sends it to the model);
    ``deny_permission_requests``: the bridge's PermissionRequest hook denies (default/plan mode), so a
    permission dialog on screen is answered shortly; ``session_known``: the SessionStart hook was
    already seen (a pane's second turn); ``deadline``: monotonic s; ``gate``: the tool gate
    (``gate(turn_records, tool_use_id, hook_payload) -> stop? | None``) of a run with --max-turns /
    --max-budget-usd / --json-schema; ``prompt_origin``: the turn is one claude starts itself, with no
    prompt from the bridge: its prompt record is the first of this ``origin.kind`` (2.1.329's
    ``task-notification`` turn when a background agent finishes; follow/agents.py).
    """

    pasted: bool = False
    fast_end: bool = False
    unknown_command_to_model: bool = False
    deny_permission_requests: bool = True
    permission_grace_s: float = PERMISSION_GRACE_S   # how long a permission dialog may wait for its hook
    session_known: bool = False
    deadline: float = float("inf")
    gate: Gate | None = None
    prompt_origin: str | None = None


class TurnEngine:
    """Follows one turn: ``feed(event, now)``, then ``decide(now)`` → actions; ``wants_screen(now)``
    says when the caller should look at the pane and ``feed`` a :class:`Screen`; ``next_wake(now)``
    when to call ``decide`` again if nothing arrives. Times: ``started`` and ``now`` monotonic s,
    ``wall_start`` epoch s (compared with hook mtimes and record timestamps)."""

    def __init__(self, prompt: str, *, started: float, wall_start: float, options: TurnOptions | None = None):
        self.opts = options or TurnOptions()
        self.prompt = prompt
        self.match_text = prompt
        self.started = started
        self.wall_start = wall_start
        self.slash = prompt.startswith("/")
        self.tree = TurnTree()
        self.all_records: list[Record] = []
        self.local_records: list[Record] = []
        self.emitted: set[str] = set()
        self.prompt_id: str | None = None
        self.prompt_submitted = False
        self.stop_payload: Mapping[str, Any] | None = None
        self.stop_failure = False
        self.session_started = self.opts.session_known
        # a slash command may switch the session (/clear): announce it once the turn shows what it is
        self.defer_session = self.slash or self.opts.prompt_origin is not None
        self.announce_pending = self.opts.session_known and not self.defer_session
        self.announced = False
        # pid of a waiting gate hook -> (since, its payload)
        self.gates: dict[int, tuple[float, Mapping[str, Any]]] = {}
        self.gate_stopped = False
        self.enter_at: float | None = started if self.opts.pasted else None
        self.enter_retries = 0
        self.last_progress = started
        self.progressed = False
        self.screen: Screen | None = None
        self.screen_at = float("-inf")
        self.not_ready_since: float | None = None
        self.grace_since: float | None = None
        self.hidden_since: float | None = None
        self.done: Finish | Fail | None = None

    # ------------------------------------------------------------------------------------ feeding
    def feed(self, event: Event, now: float) -> None:
        """Take one observation seen at ``now``."""
        if isinstance(event, Hook):
            self._on_hook(event, now)
        elif isinstance(event, Records):
            self._on_records(event.records, now)
        elif isinstance(event, Screen):
            self.screen = event
            self.screen_at = now

    def _on_hook(self, ev: Hook, now: float) -> None:
        self.progressed = True
        # Hooks of an earlier turn of this pane may still be in the spool (drained late under load):
        # one written before this turn began counts only if it names this turn's prompt.
        stale = ev.written_at < self.wall_start - STALE_SLACK_S
        p = ev.payload
        if ev.event == "UserPromptSubmit" and self.prompt_id is None:
            if not stale or same_prompt(p.get("prompt"), self.match_text):
                self.prompt_id = p.get("prompt_id")
                self.enter_at = None
                self.prompt_submitted = True
        elif ev.event in ("Stop", "StopFailure"):
            pid = p.get("prompt_id")
            if stale or (pid and self.prompt_id and pid != self.prompt_id):
                return
            self.stop_payload = p
            self.stop_failure = ev.event == "StopFailure"
        elif ev.event == GATE_EVENT and ev.pid is not None:
            self.gates[ev.pid] = (now, p)
        elif ev.event == "SessionStart":
            self.session_started = True
            if not self.announced and not self.defer_session:
                self.announce_pending = True

    def _on_records(self, records: Sequence[Record], now: float) -> None:
        if not records:
            return
        self.progressed = True
        for rec in records:
            self.all_records.append(rec)
            self.tree.add(rec)
            if self.slash and is_local_command_record(rec, self.wall_start):
                self.local_records.append(rec)
        if not self.announced and not self.defer_session:
            self.announce_pending = True

    # ------------------------------------------------------------------------------------ queries
    def wants_screen(self, now: float) -> bool:
        """Whether the caller should look at the pane before the next ``decide``."""
        if now - self.screen_at < SCREEN_EVERY_S:
            return False
        if self.enter_at is not None and self.tree.prompt_uuid is None and now - self.enter_at > ENTER_RETRY_AFTER_S:
            return True
        if self.slash and not self.prompt_submitted and self.tree.prompt_uuid is None and self.session_started:
            return True
        return now - self.last_progress >= SCREEN_EVERY_S

    def next_wake(self, now: float) -> float:
        """Monotonic time by which ``decide`` should run again even if nothing arrives."""
        return min(now + SCREEN_EVERY_S, self.opts.deadline)

    # ----------------------------------------------------------------------------------- decisions
    def decide(self, now: float) -> list[Action]:
        """The actions due at ``now``; the last one is ``Finish`` or ``Fail`` when the turn is over
        (after that, ``decide`` keeps returning that same last action)."""
        if self.done is not None:
            return [self.done]
        acts: list[Action] = []
        progressed, self.progressed = self.progressed, False
        if progressed:
            self.last_progress = now
        tree = self.tree
        if tree.prompt_uuid is None:
            # by the UserPromptSubmit hook's prompt id, else by text; only among records written
            # during this turn: a forked session's file starts with copies of the old turns (same
            # text, and on 2.1.329 even re-stamped with the new prompt id)
            cands = [r for r in self.all_records if (record_time(r) or 0) >= self.wall_start - STALE_SLACK_S]
            if self.opts.prompt_origin is not None:
                # (no time filter: what this engine reads comes after the previous turn's end, and claude
                # may have written the prompt before this turn was asked for: ClaudeSession carries it)
                prec = next((r for r in self.all_records if is_prompt_record(r)
                             and (r.get("origin") or {}).get("kind") == self.opts.prompt_origin), None)
            else:
                prec = find_prompt(cands, prompt_id=self.prompt_id, text=None if self.prompt_id else self.match_text)
            if prec is not None:
                tree.set_prompt(prec["uuid"])
                self.enter_at = None
                if self.defer_session:
                    self.defer_session = False
                    self.announce_pending = True
        if self.announce_pending and not self.announced and (self.session_started or tree.prompt_uuid is not None):
            self.announced = True
            self.announce_pending = False
            acts.append(AnnounceSession(tree.prompt))
        if tree.prompt_uuid is not None and not self.emitted:
            # the SessionStart hooks' records come before the prompt (claude -p prints their lines first)
            for rec in session_start_records(tree):
                self.emitted.add(rec["uuid"])
                acts.append(EmitRecord(rec))
        ordered = tree.ordered() if tree.prompt_uuid is not None else []
        for rec in ordered:
            u = rec.get("uuid")
            if u and u not in self.emitted:
                self.emitted.add(u)
                acts.append(EmitRecord(rec))
        acts.extend(self._gate_answers(ordered, now))
        end = self._end(ordered, progressed, now)
        if end is not None:
            return self._finish(acts, end)
        if self.enter_at is not None and tree.prompt_uuid is None and now - self.enter_at > ENTER_RETRY_AFTER_S \
                and self.screen_at >= self.enter_at + ENTER_RETRY_AFTER_S:
            # An Enter sent right after a paste can be swallowed (seen on 2.1.197): when claude has
            # not taken the prompt and it still sits in the input box, press Enter again.
            self.enter_at = now
            if self.enter_retries < ENTER_RETRIES and self.screen is not None \
                    and screenmod.input_text(list(self.screen.rows)):
                self.enter_retries += 1
                acts.append(PressEnter())
        slash = self._slash(now)
        if slash is not None:
            if isinstance(slash, Resubmit):
                acts.append(slash)
                return acts
            return self._finish(acts, slash)
        failed = self._screen_failure(now)
        if failed is None and now > self.opts.deadline:
            failed = Fail("timeout", "timed out waiting for claude to finish the turn")
        if failed is not None:
            return self._finish(acts, failed)
        return acts

    def _finish(self, acts: list[Action], last: Finish | Fail) -> list[Action]:
        for pid in self.gates:      # never leave a gate hook waiting
            acts.append(AnswerGate(pid, False))
        self.gates.clear()
        self.done = last
        acts.append(last)
        return acts

    def _gate_answers(self, ordered: list[Record], now: float) -> list[Action]:
        acts: list[Action] = []
        for pid, (since, payload) in list(self.gates.items()):
            decision = batch_decision(self.opts.gate, ordered, payload)
            if decision is None and now - since > GATE_UNKNOWN_TOOL_S:
                decision = False   # never a tool of this turn's main thread: claude must not wait for ever
            if decision is not None:
                acts.append(AnswerGate(pid, decision))
                self.gate_stopped = self.gate_stopped or decision
                del self.gates[pid]
        return acts

    def later_records(self) -> list[Record]:
        """Records read during this turn that belong to what comes after it (file order): those after
        the turn's end record, or, when it ended before that record was read, from the next prompt
        record on (claude may start its next turn at once: 2.1.329's task-notification turn)."""
        recs = self.all_records
        end = self.tree.end_record()
        if end is not None:
            idx = next((i for i, r in enumerate(recs) if r is end), None)
            return recs[idx + 1:] if idx is not None else []
        own = self.tree.prompt_uuid
        idx = next((i for i, r in enumerate(recs) if is_prompt_record(r) and r.get("uuid") != own
                    and r.get("uuid") not in self.emitted and (record_time(r) or 0) >= self.wall_start), None)
        return recs[idx:] if idx is not None else []

    def _outcome(self, ordered: list[Record], now: float, end: EndKind) -> TurnOutcome:
        return TurnOutcome(records=ordered, prompt_record=self.tree.prompt, end_record=self.tree.end_record(),
                           stop_payload=self.stop_payload, stop_failure=self.stop_failure,
                           started=self.started, ended=now,
                           api_requests=[r for r in self.all_records if r.get("type") == "api-request"],
                           gate_stopped=self.gate_stopped, end=end)

    def _end(self, ordered: list[Record], progressed: bool, now: float) -> Finish | Fail | None:
        tree = self.tree
        if tree.prompt_uuid is None:
            failing = screenmod.transcript_write_failure(list(self.screen.rows)) if self.screen else None
            if failing is not None and (self.stop_payload is not None or now - self.started > TRANSCRIPT_FAILING_S):
                return Fail("transcript", f"claude cannot write its transcript ({failing}), so the bridge cannot "
                                          "follow the turn; free up space or fix the permissions under "
                                          "~/.claude (or CLAUDE_CONFIG_DIR)")
            if self.stop_payload is not None and now - self.last_progress > PROMPT_MISSING_S:
                return Fail("transcript", "claude finished the turn (its Stop hook ran) but its transcript "
                                          "never showed the prompt (is the disk under ~/.claude full?)")
            return None
        if tree.complete():
            return Finish(self._outcome(ordered, now, "turn_duration"))
        if self.stop_payload is not None and self.stop_payload.get("prompt_id") and self.prompt_id \
                and self.stop_payload["prompt_id"] != self.prompt_id:
            self.stop_payload = None      # (arrived before this turn's prompt id was known)
        if self.stop_payload is None:
            return None
        if self.stop_failure and api_error_written(ordered):
            return Finish(self._outcome(ordered, now, "api_error"))
        if self.opts.fast_end and progressed and not self.stop_failure \
                and final_reply_written(ordered, self.stop_payload):
            return Finish(self._outcome(ordered, now, "fast"))
        if now - self.last_progress > STOP_QUIET_S:     # (the Stop hook itself counted as progress)
            return Finish(self._outcome(ordered, now, "stop_quiet"))
        return None

    def _slash(self, now: float) -> Finish | Fail | Resubmit | None:
        if not (self.slash and not self.prompt_submitted and self.tree.prompt_uuid is None):
            return None
        if self.local_records and now - self.last_progress >= LOCAL_SETTLE_S:
            unknown = unknown_command(self.local_records)
            if unknown is not None and self.opts.unknown_command_to_model:
                # claude -p (2.1.329) sends an unknown /command to the model; interactive claude only
                # says "Unknown command". One leading space makes the input box take it as text (the
                # model sees " /x ..."; documented).
                self.match_text = " " + self.prompt
                self.local_records = []
                self.slash = False
                self.enter_at = now
                self.last_progress = now
                return Resubmit(self.match_text)
            text = unknown if unknown is not None else local_command_text(self.local_records)
            span = records_span(self.local_records)
            self.announced = True
            out = TurnOutcome(records=self.local_records, prompt_record=None, end_record=None, stop_payload=None,
                              stop_failure=False, started=self.started, ended=self.started + span,
                              local_text=text, end="local")
            return Finish(out)
        if not self.local_records and self.session_started and self.screen is not None and self.screen_at >= now - 1.0:
            if screenmod.is_ready(list(self.screen.rows)):
                self.not_ready_since = None
            elif self.not_ready_since is None:
                self.not_ready_since = now
            elif now - self.not_ready_since > PANEL_WAIT_S:
                name = self.prompt.split(None, 1)[0]
                return Fail("panel", f"{name} opens a panel in interactive claude; claude-bridge cannot "
                                     f"print its claude -p answer (run `claude -p {name}` directly)")
        return None

    def _screen_failure(self, now: float) -> Fail | None:
        """A dead pane or a blocking screen, judged on the latest screen, only while nothing progresses."""
        scr = self.screen
        if scr is None or self.screen_at < self.last_progress:
            return None
        if scr.dead:
            return Fail("exited", "claude exited before the turn finished", scr.status)
        rows = list(scr.rows)
        dialog = screenmod.find_dialog(rows)
        grace = 0.0
        if dialog is not None and dialog.kind == "permission" and self.opts.deny_permission_requests:
            # The dialog is drawn while the PermissionRequest hook (which denies, like -p) is still
            # running; under load that takes a while. Only a dialog that stays up is an error.
            grace = self.opts.permission_grace_s
        elif dialog is not None and dialog.kind == "not_logged_in":
            # not a dialog but the turn's error message: its transcript record (which gives -p's
            # result) is usually read a moment after the screen shows it
            grace = MESSAGE_GRACE_S
        if dialog is None:
            self.grace_since = None
        elif grace:
            if self.grace_since is None:
                self.grace_since = now
            if now - self.grace_since < grace:
                return None
        if dialog is not None:
            return Fail(dialog.kind, dialog.reason, message=dialog.cli_message, exit_code=dialog.exit_code)
        if self.slash and not self.prompt_submitted:
            return None                 # a panel: judged by _slash
        if not self.session_started or screenmod.input_text(rows) is not None:
            self.hidden_since = None
            return None
        if self.hidden_since is None:
            self.hidden_since = now
        if now - max(self.hidden_since, self.last_progress) >= UNKNOWN_SCREEN_S:
            return Fail("unknown_screen", "claude is showing a screen the bridge does not know (no input box for "
                                          f"{UNKNOWN_SCREEN_S:.0f} s while the turn made no progress)")
        return None
