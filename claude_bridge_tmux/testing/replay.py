"""Replay recorded turn traces through the turn engine with a fake clock.

A trace (``CLAUDE_BRIDGE_TRACE``, ``scripts/record-traces``) is JSONL: an optional ``meta`` line,
then per turn a ``turn`` line (the engine's options), and the events the engine was fed with their
monotonic time ``t``: ``hook`` (event, payload, written_at, pid), ``records`` (list of records),
``screen`` (rows, dead, status); plus what the live run did: ``gate`` (pid, stop), ``enter``,
``resubmit``, and ``finish`` (end) or ``fail`` (fail_kind).

:func:`replay_turn` feeds one turn's events at their times (optionally transformed, e.g. delayed or
reordered, to reproduce timings seen under load) and calls ``decide`` at every event and at every
wake-up the engine asks for in between, as the live loop does. Its answer says which terminal
action came, when (seconds after the turn's first event), and the records the engine emitted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from claude_bridge_tmux.follow.engine import (
    GATE_EVENT,
    Action,
    EmitRecord,
    Event,
    Fail,
    Finish,
    Gate,
    Hook,
    Records,
    Screen,
    TurnEngine,
    TurnOptions,
)

TraceLine = dict[str, Any]


def load_trace(path: str | Path) -> tuple[TraceLine | None, list[list[TraceLine]]]:
    """A trace file as ``(meta, turns)``; each turn is its lines from its ``turn`` line on."""
    meta: TraceLine | None = None
    turns: list[list[TraceLine]] = []
    for raw in Path(path).read_bytes().splitlines():
        if not raw.strip():
            continue
        line = orjson.loads(raw)
        if line.get("kind") == "meta":
            meta = line
        elif line.get("kind") == "turn":
            turns.append([line])
        elif turns:
            turns[-1].append(line)
    return meta, turns


def event_of(line: TraceLine) -> Event | None:
    """The engine event a trace line records, or None for lines that are not inputs."""
    kind = line.get("kind")
    if kind == "hook":
        return Hook(line["event"], line.get("payload") or {}, float(line.get("written_at") or 0.0), line.get("pid"))
    if kind == "records":
        return Records(line.get("records") or [])
    if kind == "screen":
        return Screen(line.get("rows") or [], bool(line.get("dead")), line.get("status"))
    return None


@dataclass
class Replayed:
    """What the engine decided on a replayed turn: the terminal ``action`` (None: none came within
    the horizon), ``at`` (s after the turn's start), the records it emitted, the other actions."""

    action: Finish | Fail | None
    at: float | None
    emitted: list[dict] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)

    @property
    def end(self) -> str | None:
        if isinstance(self.action, Finish):
            return self.action.outcome.end
        if isinstance(self.action, Fail):
            return f"fail:{self.action.kind}"
        return None


def recorded_gate(lines: Iterable[TraceLine]) -> Gate | None:
    """A gate answering as the live run did (by tool_use_id, from its ``gate`` lines)."""
    pid_tools = {ln.get("pid"): [c.get("tool_use_id") for c in (ln.get("payload") or {}).get("tool_calls") or ()]
                 for ln in lines if ln.get("kind") == "hook" and ln.get("event") == GATE_EVENT}
    answers = {tool: bool(ln.get("stop")) for ln in lines if ln.get("kind") == "gate"
               for tool in pid_tools.get(ln.get("pid"), ())}
    if not answers:
        return None
    def gate(records: list[dict], tool_use_id: str, payload: Mapping[str, Any]) -> bool | None:
        return answers.get(tool_use_id, False)
    return gate


def replay_turn(lines: list[TraceLine], *, transform: Callable[[list[tuple[float, Event]]], list[tuple[float, Event]]]
                | None = None, horizon: float = 120.0, options: dict[str, Any] | None = None) -> Replayed:
    """Replay one turn (``lines`` from ``load_trace``) through a fresh engine; see the module docstring.

    ``transform(events)`` may rewrite the ``(t, event)`` list (times relative to the turn's start);
    ``options`` override the recorded ``TurnOptions`` fields; ``horizon``: s of fake time to run on."""
    head = lines[0]
    t0 = float(head["t"])
    opts = TurnOptions(pasted=bool(head.get("pasted")), fast_end=bool(head.get("fast_end")),
                       unknown_command_to_model=bool(head.get("unknown_command_to_model")),
                       deny_permission_requests=bool(head.get("deny_permission_requests", True)),
                       session_known=bool(head.get("session_known")),
                       deadline=float(head.get("timeout") or 3600.0),
                       gate=recorded_gate(lines) if head.get("gated") else None)
    for k, v in (options or {}).items():
        setattr(opts, k, v)
    engine = TurnEngine(head.get("prompt") or "", started=0.0, wall_start=float(head.get("wall_start") or 0.0),
                        options=opts)
    events = [(float(ln["t"]) - t0, ev) for ln in lines[1:] if (ev := event_of(ln)) is not None]
    if transform is not None:
        events = transform(events)
    events.sort(key=lambda e: e[0])
    out = Replayed(action=None, at=None)

    def step(now: float) -> bool:
        for act in engine.decide(now):
            if isinstance(act, (Finish, Fail)):
                out.action, out.at = act, now
                return True
            if isinstance(act, EmitRecord):
                out.emitted.append(act.record)
            else:
                out.actions.append(act)
        return False

    now = 0.0
    i = 0
    while now <= horizon:
        if step(now):
            return out
        nxt = engine.next_wake(now)
        if i < len(events) and events[i][0] <= nxt:
            now = max(now, events[i][0])
            while i < len(events) and events[i][0] <= now:
                engine.feed(events[i][1], now)
                i += 1
        else:
            now = nxt
    return out
