"""The turn engine on recorded real runs (tests/data/traces, scripts/record-traces) with a fake clock.

Each trace is what the live bridge fed its engine on a pinned CLI; replaying it must reach the same
end at the same time. Perturbed replays reproduce the timings seen under load (hooks long before the
transcript, hooks of an earlier turn, a lost Enter, a dead pane, dialogs) without a real CLI.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from claude_bridge_tmux.follow import engine as eng
from claude_bridge_tmux.follow.engine import Hook, PressEnter, Records, Resubmit, Screen
from claude_bridge_tmux.testing.replay import load_trace, replay_turn

TRACES = Path(__file__).resolve().parents[1] / "data" / "traces"
SCREENS = Path(__file__).resolve().parents[1] / "data" / "screens"
VERSIONS = sorted(p.name for p in TRACES.iterdir() if p.is_dir())


def _turns():
    for path in sorted(TRACES.glob("*/*.jsonl")):
        meta, turns = load_trace(path)
        for i, lines in enumerate(turns):
            yield pytest.param(path, i, lines, id=f"{path.parent.name}-{path.stem}-{i}")


def _live_end(lines):
    last = next(ln for ln in reversed(lines) if ln["kind"] in ("finish", "fail"))
    t = last["t"] - lines[0]["t"]
    return (last.get("end") if last["kind"] == "finish" else f"fail:{last['fail_kind']}"), t


def _trace(version: str, name: str, turn: int = 0):
    return load_trace(TRACES / version / f"{name}.jsonl")[1][turn]


def _screen(name: str) -> list[str]:
    return (SCREENS / name).read_bytes().decode("utf-8", "replace").splitlines()


def _ready_rows(lines) -> list[str]:
    """A screen of the trace that shows claude's empty input box."""
    from claude_bridge_tmux.tmux import screen
    for ln in lines:
        if ln["kind"] == "screen" and screen.input_text(ln["rows"]) is not None:
            return ln["rows"]
    raise AssertionError("no screen with an input box in the trace")


@pytest.mark.parametrize("path,index,lines", list(_turns()))
def test_replay_reaches_the_recorded_end_at_the_recorded_time(path, index, lines):
    end, live_t = _live_end(lines)
    got = replay_turn(lines)
    assert got.end == end
    assert got.at == pytest.approx(live_t, abs=0.3)
    if end not in ("local",):
        # the turn's records were streamed, ending with its last assistant record
        assert any(r.get("type") == "assistant" for r in got.emitted)


def test_every_pinned_version_has_every_scenario():
    names = {v: {p.stem for p in (TRACES / v).glob("*.jsonl")} for v in VERSIONS}
    assert len(VERSIONS) >= 2
    first = names[VERSIONS[0]]
    assert {"plain", "tool", "api_500", "api_401", "max_turns", "deny", "local_command", "pasted"} <= first
    assert all(n == first for n in names.values())


# ------------------------------------------------------------------------------ API errors

@pytest.mark.parametrize("version", VERSIONS)
def test_api_error_ends_at_stop_failure_and_error_record(version):
    lines = _trace(version, "api_500")
    got = replay_turn(lines)
    stop_failure_t = next(ln["t"] for ln in lines if ln.get("event") == "StopFailure") - lines[0]["t"]
    assert got.end in ("api_error", "turn_duration")
    assert got.at - stop_failure_t < 0.5                 # not the 30 s quiet fallback
    assert got.action.outcome.stop_failure
    assert got.emitted[-1].get("isApiErrorMessage") or got.emitted[-1].get("subtype") == "turn_duration"


def test_api_error_waits_for_the_error_record_when_the_hook_comes_first():
    """2.1.329 writes no turn_duration after an API error: the turn ends when the synthetic error
    record lands, even 2 s after the StopFailure hook -- never on the hook alone."""
    lines = _trace("2.1.329", "api_500")
    hook_t = next(ln["t"] for ln in lines if ln.get("event") == "StopFailure") - lines[0]["t"]

    def delay_records(events):
        return [(t + 2.0 if isinstance(e, Records) and t >= hook_t - 0.2 else t, e) for t, e in events]
    got = replay_turn(lines, transform=delay_records)
    assert got.end == "api_error"
    assert got.at >= hook_t + 1.8
    assert got.emitted[-1].get("isApiErrorMessage")


def test_stop_failure_without_any_record_ends_after_the_quiet_bound():
    lines = _trace("2.1.329", "api_500")
    hook_t = next(ln["t"] for ln in lines if ln.get("event") == "StopFailure") - lines[0]["t"]
    drop_late = lambda evs: [(t, e) for t, e in evs if not (  # noqa: E731
        isinstance(e, Records) and any(r.get("type") == "assistant" for r in e.records))]
    got = replay_turn(lines, transform=drop_late)
    # the prompt record is there, the error record never comes: the 30 s bound, not a hang
    assert got.end == "stop_quiet"
    assert got.at == pytest.approx(hook_t + eng.STOP_QUIET_S, abs=1.0)
    # no transcript at all (not even the prompt, written at submit): a clear failure, sooner
    no_records = lambda evs: [(t, e) for t, e in evs if not isinstance(e, Records)]  # noqa: E731
    got = replay_turn(lines, transform=no_records)
    assert got.end == "fail:transcript"
    assert got.at == pytest.approx(hook_t + eng.PROMPT_MISSING_S, abs=1.0)


def test_transcript_write_failure_on_screen_fails_at_the_stop_hook():
    """2.1.329 warns under the input box when it cannot append to its transcript (disk full): with
    the Stop hook in and no prompt record, the turn fails at once rather than after a quiet bound."""
    lines = _trace("2.1.329", "plain")
    hook_t = next(ln["t"] for ln in lines if ln.get("event") == "Stop") - lines[0]["t"]
    warn = ("  ⚠ Transcript writes are failing (disk full — ENOSPC) · recent messages may not be saved "
            "for resume")

    def lost(evs):
        out = []
        for t, e in evs:
            if isinstance(e, Records):
                continue
            if isinstance(e, Screen):
                e = Screen(rows=[*e.rows, warn], dead=e.dead, status=e.status)
            out.append((t, e))
        return out
    got = replay_turn(lines, transform=lost)
    assert got.end == "fail:transcript"
    assert "disk full" in got.action.reason
    assert got.at < hook_t + 1.0


# ----------------------------------------------------------------------- Stop hook vs transcript

@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("fast_end", [False, True])
def test_stop_hook_seconds_before_the_reply_lands(version, fast_end):
    """Under load the Stop hook runs long before the writer flushes the reply: the turn must not end
    (fast or not) before the reply is in the file, and then must hold the whole reply."""
    lines = _trace(version, "plain")
    stop_t = next(ln["t"] for ln in lines if ln.get("event") == "Stop") - lines[0]["t"]
    shift = lambda evs: [(t + 3.0 if isinstance(e, Records) and t >= stop_t - 0.3 else t, e) for t, e in evs]  # noqa: E731
    got = replay_turn(lines, transform=shift, options={"fast_end": fast_end})
    assert got.at >= stop_t + 2.7
    # (the reply and turn_duration land in one batch: a fast end has nothing to gain then)
    assert got.end == "turn_duration"
    texts = [b.get("text") for r in got.emitted if r.get("type") == "assistant"
             for b in r["message"]["content"] if b.get("type") == "text"]
    assert texts and texts[-1].startswith("MOCK-REPLY to: hello there")


@pytest.mark.parametrize("version", VERSIONS)
def test_fast_end_ends_on_the_stop_hook_once_the_reply_is_written(version):
    lines = _trace(version, "caller_stop_hook")       # a caller's Stop hook sleeps 1 s before turn_duration
    slow = replay_turn(lines)
    fast = replay_turn(lines, options={"fast_end": True})
    assert slow.end == "turn_duration" and fast.end == "fast"
    assert fast.at < slow.at - 0.5


@pytest.mark.parametrize("version", VERSIONS)
def test_hooks_of_an_earlier_turn_do_not_end_this_one(version):
    """Hooks drained late from the pane's previous turn (written before this turn began, another
    prompt id) neither start nor end this turn."""
    lines = _trace(version, "plain")
    wall_start = lines[0]["wall_start"]
    stale = [(0.0, Hook("UserPromptSubmit", {"prompt_id": "old", "prompt": "an earlier prompt"}, wall_start - 3)),
             (0.0, Hook("Stop", {"prompt_id": "old", "last_assistant_message": "old answer"}, wall_start - 2))]
    got = replay_turn(lines, transform=lambda evs: stale + evs, options={"fast_end": True})
    assert got.end in ("fast", "turn_duration")
    assert got.action.outcome.prompt_record["message"]["content"] == "hello there"
    assert got.action.outcome.stop_payload.get("prompt_id") != "old"


def test_user_prompt_submit_after_the_records_still_finds_the_prompt():
    """A slow UserPromptSubmit hook: its record-order inversion (the reply before the hook)."""
    lines = _trace("2.1.197", "plain")
    ups_t = next(ln["t"] for ln in lines if ln.get("event") == "UserPromptSubmit") - lines[0]["t"]
    late = lambda evs: [(t + 5.0 if isinstance(e, Hook) and e.event == "UserPromptSubmit" else t, e)  # noqa: E731
                        for t, e in evs]
    got = replay_turn(lines, transform=late)
    assert got.end == "turn_duration"
    assert got.at < ups_t + 5.0        # the prompt record is found by its text; no need to wait for the hook


# ----------------------------------------------------------------------------------- submit

@pytest.mark.parametrize("version", VERSIONS)
def test_enter_swallowed_after_a_paste_is_pressed_again(version):
    lines = _trace(version, "pasted")
    rows = _ready_rows(lines)
    box = list(rows)
    i = max(i for i, r in enumerate(box) if r.startswith("❯"))
    box[i] = "❯ pasted prompt"                           # the prompt still sits in the input box
    screens = [(1.2 + 0.25 * k, Screen(box)) for k in range(12)]

    def swallow(evs):
        # nothing happens for 4 s (the first Enter was lost), then the recorded run resumes
        return screens + [(t + 4.0, e) for t, e in evs if not isinstance(e, Screen)]
    got = replay_turn(lines, transform=swallow)
    presses = [a for a in got.actions if isinstance(a, PressEnter)]
    assert 1 <= len(presses) <= eng.ENTER_RETRIES
    assert got.end == "turn_duration"


def test_no_enter_again_for_a_launch_argument_prompt():
    lines = _trace("2.1.329", "plain")
    got = replay_turn(lines)
    assert not [a for a in got.actions if isinstance(a, PressEnter)]


@pytest.mark.parametrize("version,resubmits", [("2.1.197", 0), ("2.1.329", 1)])
def test_unknown_command(version, resubmits):
    lines = _trace(version, "unknown_command")
    got = replay_turn(lines)
    assert len([a for a in got.actions if isinstance(a, Resubmit)]) == resubmits
    if resubmits:
        assert got.end == "turn_duration"
    else:
        assert got.end == "local" and got.action.outcome.local_text.startswith("Unknown command: /nosuchcmd")


# ----------------------------------------------------------------------------------- failures

def _engine(prompt="hello", **opts):
    return eng.TurnEngine(prompt, started=0.0, wall_start=1_000.0, options=eng.TurnOptions(**opts))


def _run(engine, events, until: float):
    """Feed ``(t, event)`` and tick every SCREEN_EVERY_S up to ``until``; the terminal action and its time."""
    events = sorted(events, key=lambda e: e[0])
    now, i = 0.0, 0
    while now <= until:
        while i < len(events) and events[i][0] <= now:
            engine.feed(events[i][1], now)
            i += 1
        acts = engine.decide(now)
        if acts and isinstance(acts[-1], (eng.Finish, eng.Fail)):
            return acts[-1], now
        now = round(now + 0.05, 4)
    return None, None


STARTED = (0.1, Hook("SessionStart", {"source": "startup", "model": "m"}, 1_000.1))


def test_dead_pane_fails_with_claude_exit_status():
    act, at = _run(_engine(), [STARTED, (1.0, Screen(["bye"], dead=True, status=3))], 10)
    assert isinstance(act, eng.Fail) and act.kind == "exited" and act.exit_status == 3
    assert at < 1.5


@pytest.mark.parametrize("screen,kind", [
    ("10_onboarded_nokey_trust_dialog_first.txt", "trust"),
    ("11_apikey.txt", "api_key"),
    ("20_bypass_warning.txt", "bypass"),
    ("13_mcp_json_approval.txt", "mcp_approval"),
    ("90_auto_mode_billing_notice.txt", "auto_mode_notice"),
])
def test_known_dialog_fails_at_once(screen, kind):
    act, at = _run(_engine(), [STARTED, (0.5, Screen(_screen(screen)))], 10)
    assert isinstance(act, eng.Fail) and act.kind == kind
    assert at < 1.0


def test_permission_dialog_gets_a_grace_while_the_deny_hook_answers():
    rows = _screen("30_permission_prompt.txt")
    screens = [(0.5 + 0.25 * k, Screen(rows)) for k in range(int(30 / 0.25))]
    act, at = _run(_engine(deny_permission_requests=True), [STARTED, *screens], 40)
    assert act.kind == "permission" and at == pytest.approx(0.5 + eng.PERMISSION_GRACE_S, abs=0.5)
    act, at = _run(_engine(deny_permission_requests=False), [STARTED, *screens], 40)
    assert act.kind == "permission" and at < 1.0


def test_not_logged_in_on_screen_waits_for_its_transcript_record():
    """2.1.197 draws "Not logged in · Run /login" a moment before the error record (which gives -p's
    result) is read: the screen alone fails the turn only after MESSAGE_GRACE_S."""
    rows = ["❯ hello", "  ⎿  Not logged in · Run /login", "─" * 40, "❯ ", "─" * 40, "  ? for shortcuts"]
    screens = [(0.5 + 0.25 * k, Screen(rows)) for k in range(40)]
    act, at = _run(_engine(), [STARTED, *screens], 20)
    assert act.kind == "not_logged_in"
    assert at == pytest.approx(0.5 + eng.MESSAGE_GRACE_S, abs=0.5)


def test_unknown_screen_fails_within_two_seconds():
    screens = [(0.5 + 0.25 * k, Screen(["  Something new the bridge never saw", "  Press any key"]))
               for k in range(40)]
    act, at = _run(_engine(), [STARTED, *screens], 10)
    assert act.kind == "unknown_screen"
    assert at <= 0.5 + eng.UNKNOWN_SCREEN_S + eng.SCREEN_EVERY_S


def test_unknown_screen_is_not_judged_while_the_transcript_progresses():
    busy = [(0.5 + 0.25 * k, Screen(["  Something new"])) for k in range(40)]
    progress = [(0.4 + 0.25 * k, Records([{"type": "progress", "n": k}])) for k in range(40)]
    act, _ = _run(_engine(deadline=9.0), [STARTED, *busy, *progress], 10)
    assert act.kind == "timeout"


def test_a_panel_opened_by_a_slash_command():
    screens = [(0.5 + 0.25 * k, Screen(["  Select model", "  1. Default"])) for k in range(40)]
    act, at = _run(_engine("/model", session_known=True), [*screens], 10)
    assert act.kind == "panel" and "/model opens a panel" in act.reason
    assert at == pytest.approx(0.5 + eng.PANEL_WAIT_S, abs=0.6)


def test_deadline():
    act, at = _run(_engine(deadline=2.0), [STARTED], 5)
    assert act.kind == "timeout" and at == pytest.approx(2.0, abs=0.1)


def test_gate_answers_and_never_leaves_a_hook_waiting():
    asked = []

    def gate(records, tool_use_id, payload=None):
        asked.append(tool_use_id)
        return None                      # never decidable: let through after GATE_UNKNOWN_TOOL_S
    e = _engine(gate=gate)
    e.feed(Hook("PostToolBatch", {"tool_calls": [{"tool_use_id": "t1"}]}, 1_000.5, pid=42), 0.5)
    acts = e.decide(0.6)
    assert not [a for a in acts if isinstance(a, eng.AnswerGate)]
    acts = e.decide(0.6 + eng.GATE_UNKNOWN_TOOL_S)
    assert eng.AnswerGate(42, False) in acts and asked == ["t1", "t1"]
    e2 = _engine(deadline=1.0, gate=lambda r, t, p=None: None)
    e2.feed(Hook("PostToolBatch", {"tool_calls": [{"tool_use_id": "t2"}]}, 1_000.5, pid=7), 0.5)
    acts = e2.decide(1.2)
    assert acts[-1].kind == "timeout" and eng.AnswerGate(7, False) in acts


@pytest.mark.parametrize("answers,payload,expected", [
    ({"a": True}, {"tool_calls": [{"tool_use_id": "a"}]}, True),
    ({"a": False, "b": True}, {"tool_calls": [{"tool_use_id": "a"}, {"tool_use_id": "b"}]}, True),   # any call stops
    ({"a": False, "b": None}, {"tool_calls": [{"tool_use_id": "a"}, {"tool_use_id": "b"}]}, None),  # one undecided
    ({"a": False}, {"tool_calls": [{"tool_use_id": "a"}]}, False),
    ({"a": True}, {"tool_calls": [{"tool_use_id": "a"}], "agent_id": "x1"}, False),   # a subagent's batch
    ({}, {"tool_calls": []}, False),
    ({}, {}, False),
])
def test_a_batch_stops_when_any_of_its_calls_says_stop(answers, payload, expected):
    seen = []

    def gate(records, tool_use_id, call):
        seen.append(call)
        return answers[tool_use_id]
    assert eng.batch_decision(gate, [], payload) is expected
    assert all(c in payload.get("tool_calls", []) for c in seen)     # each call is passed as it came
    assert eng.batch_decision(None, [], payload) is False


@pytest.mark.parametrize("version", ["2.1.197", "2.1.329"])
@pytest.mark.parametrize("name", ["max_turns_denied", "max_turns_failed", "structured_exhausted"])
def test_a_denied_or_failed_last_tool_is_stopped_by_the_batch_gate(version, name):
    """The turn ends on claude's own turn_duration after the gate said stop (recorded on both CLIs): the
    last records are the tool's error result and claude's 'stopped by hook' attachment."""
    lines = _trace(version, name)
    got = replay_turn(lines)
    assert got.end == "turn_duration"
    gates = [ln for ln in lines if ln.get("kind") == "gate"]
    assert gates and gates[-1]["stop"] is True
    results = [b for r in got.emitted if r.get("type") == "user"
               for b in (r.get("message") or {}).get("content") or () if isinstance(b, dict)
               and b.get("type") == "tool_result"]
    assert results and results[-1]["is_error"] is True
