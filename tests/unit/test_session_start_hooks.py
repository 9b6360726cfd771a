"""SessionStart hook lines as ``claude -p`` prints them (``system/hook_started`` + ``hook_response``
before ``system/init``, without --include-hook-events), rebuilt from the interactive transcript's
records (tests/data/session_start: the same call through ``-p`` and through the bridge, 2.1.197 and
2.1.329)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from claude_bridge_tmux.follow import engine as eng
from claude_bridge_tmux.follow.engine import Records
from claude_bridge_tmux.follow.localcmd import record_time
from claude_bridge_tmux.follow.tree import TurnTree
from claude_bridge_tmux.output import messages
from claude_bridge_tmux.output.emit import EmitOptions, Emitter, session_source
from claude_bridge_tmux.run.prepare import has_session_start_hooks

DATA = Path(__file__).resolve().parent.parent / "data" / "session_start"
SETTINGS = json.loads((DATA / "settings.json").read_text())
VERSIONS = ("2.1.197", "2.1.329")


def interactive(version: str) -> list[dict]:
    return [json.loads(x) for x in (DATA / f"v{version}" / "interactive.jsonl").read_text().splitlines()]


def printed(version: str) -> list[dict]:
    return [json.loads(x) for x in (DATA / f"v{version}" / "print.out").read_text().splitlines()]


def response_values(lines: list[dict]) -> list[tuple]:
    return sorted((m["hook_name"], m["stdout"], m["stderr"], m["output"], m["exit_code"], m["outcome"])
                  for m in lines if m.get("subtype") == "hook_response")


def bridge_lines(version: str, records: list[dict] | None = None) -> list[dict]:
    """What the emitter prints for the recorded session: init announced first (as the engine does on
    the SessionStart hook), then the turn's records as the engine emits them, then the result."""
    recs = interactive(version) if records is None else records
    tree = TurnTree().add_all(recs)
    prompt = next(r for r in recs if r.get("type") == "user")
    tree.set_prompt(prompt["uuid"])
    out = io.BytesIO()
    em = Emitter("stream-json", out, "sid", version=version,
                 options=EmitOptions(session_start=tuple(SETTINGS["hooks"]["SessionStart"])))
    em.init({"type": "system", "subtype": "init", "session_id": "sid"})
    for rec in eng.session_start_records(tree) + tree.ordered():
        em.record(rec)
    em.result({"type": "result", "subtype": "success", "is_error": False})
    return [json.loads(x) for x in out.getvalue().splitlines()]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_lines_come_before_init_starts_first_as_claude_p(version):
    ours, theirs = bridge_lines(version), printed(version)
    kinds = lambda ls: [m.get("subtype") for m in ls if m["type"] == "system"][:15]  # noqa: E731
    assert kinds(ours) == kinds(theirs) == ["hook_started"] * 7 + ["hook_response"] * 7 + ["init"]
    for a, b in zip(ours[:14], theirs[:14]):
        assert list(a) == list(b)                     # keys and their order
    starts = [m["hook_id"] for m in ours if m.get("subtype") == "hook_started"]
    assert sorted(starts) == sorted(m["hook_id"] for m in ours if m.get("subtype") == "hook_response")
    assert len(set(starts)) == 7
    assert all(m["session_id"] == "sid" and m["hook_event"] == "SessionStart" for m in ours[:14])


@pytest.mark.parametrize("version", VERSIONS)
def test_each_hooks_values_are_claude_ps(version):
    ours, theirs = response_values(bridge_lines(version)), response_values(printed(version))
    if version == "2.1.197":
        # 2.1.197 writes no record for a SessionStart hook that exits 2: taken for a silent success
        exit2 = ("SessionStart:startup", "", "blocked\n", "blocked\n", 2, "error")
        silent = ("SessionStart:startup", "", "", "", 0, "success")
        assert exit2 in theirs and exit2 not in ours
        theirs = sorted([silent if t == exit2 else t for t in theirs])
    assert ours == theirs


@pytest.mark.parametrize("version", VERSIONS)
def test_engine_emits_the_session_start_records_before_the_turn(version):
    recs = interactive(version)
    wall = min(t for t in (record_time(r) for r in recs) if t is not None)
    engine = eng.TurnEngine("hi", started=0.0, wall_start=wall,
                            options=eng.TurnOptions(session_known=True))
    engine.feed(Records(recs), 0.1)
    acts = engine.decide(0.1)
    assert isinstance(acts[0], eng.AnnounceSession)
    emitted = [a.record for a in acts if isinstance(a, eng.EmitRecord)]
    n = sum(1 for r in recs if messages.is_session_start_record(r))
    assert n >= 5
    assert all(messages.is_session_start_record(r) for r in emitted[:n])
    assert not messages.is_session_start_record(emitted[n])
    assert not any(isinstance(a, eng.EmitRecord) for a in engine.decide(0.2))     # each record once


def test_a_later_prompt_of_the_session_has_none():
    recs = interactive("2.1.329")
    prompt = next(r for r in recs if r.get("type") == "user")
    child = next(r for r in recs if r.get("parentUuid") == prompt["uuid"])
    later = {"type": "user", "uuid": "later", "parentUuid": child["uuid"], "message": {"role": "user", "content": "x"}}
    tree = TurnTree().add_all([*recs, later])
    tree.set_prompt("later")
    assert eng.session_start_records(tree) == []


def test_without_records_init_waits_for_the_first_record_only():
    out = io.BytesIO()
    em = Emitter("stream-json", out, "sid", version="2.1.329")
    em.init({"type": "system", "subtype": "init"})
    assert out.getvalue() == b""
    em.record({"type": "assistant", "uuid": "a", "message": {"id": "m", "role": "assistant", "model": "x",
                                                             "content": [{"type": "text", "text": "hi"}]}})
    kinds = [json.loads(x).get("subtype") or json.loads(x)["type"] for x in out.getvalue().splitlines()]
    assert kinds == ["init", "assistant"]
    em.new_turn()                                  # the next turn (stream-json input): no hold, no lines
    em.init({"type": "system", "subtype": "init"})
    assert out.getvalue().splitlines()[-1] == b'{"type":"system","subtype":"init"}'


def test_silent_configured_hooks_are_reported_once_even_with_no_record():
    groups = ({"hooks": [{"type": "command", "command": "true"}, {"type": "command", "command": "true"}]},
              {"matcher": "resume", "hooks": [{"type": "command", "command": "echo r"}]})

    def run(**opts) -> list[dict]:
        out = io.BytesIO()
        em = Emitter(opts.pop("fmt", "stream-json"), out, "sid", version="2.1.197",
                     options=EmitOptions(session_start=groups, **opts))
        em.init({"type": "system", "subtype": "init"})
        em.result({"type": "result", "subtype": "success", "is_error": False})
        text = out.getvalue()
        return json.loads(text) if text.startswith(b"[") else [json.loads(x) for x in text.splitlines()]

    lines = run()
    assert [m.get("subtype") for m in lines] == ["hook_started", "hook_response", "init", "success"]
    assert (lines[1]["hook_name"], lines[1]["output"], lines[1]["exit_code"]) == ("SessionStart:startup", "", 0)
    assert [m["hook_name"] for m in run(session_source="resume") if m.get("subtype") == "hook_started"] == \
        ["SessionStart:resume", "SessionStart:resume"]
    # -p's json --verbose array has no hook lines (nor with --include-hook-events)
    assert [m.get("subtype") for m in run(fmt="json", collect=True, hook_events=True)] == ["init", "success"]


def test_a_resumed_sessions_repeated_hooks_take_their_earlier_records():
    """claude writes no SessionStart record on resume when the conversation holds their text already."""
    groups = ({"hooks": [{"type": "command", "command": "echo ctx"}, {"type": "command", "command": "exit 1"},
                         {"type": "command", "command": "true"}]},)
    earlier = {"echo ctx": {"type": "hook_success", "hookEvent": "SessionStart", "content": "ctx", "stdout": "ctx\n",
                            "stderr": "", "exitCode": 0, "command": "echo ctx"},
               "exit 1": {"type": "hook_non_blocking_error", "hookEvent": "SessionStart", "exitCode": 1, "stdout": "",
                          "stderr": "Failed with non-blocking status code: No stderr output", "command": "exit 1"}}

    def responses(records: list[dict]) -> list[tuple]:
        out = io.BytesIO()
        em = Emitter("stream-json", out, "sid", version="2.1.329",
                     options=EmitOptions(session_start=groups, session_source="resume",
                                         session_start_before=tuple(earlier.items())))
        for r in records:
            em.record(r)
        em.result({"type": "result", "subtype": "success", "is_error": False})
        return sorted((m["stdout"], m["exit_code"]) for m in map(json.loads, out.getvalue().splitlines())
                      if m.get("subtype") == "hook_response")

    assert responses([]) == [("", 0), ("", 1), ("ctx\n", 0)]        # nothing new: all three as before
    # new text was written: a hook without output would have been written too, so it printed nothing now
    new_text = {"type": "attachment", "uuid": "x", "attachment": dict(earlier["echo ctx"], hookName="SessionStart:resume",
                                                                      content="ctx2", stdout="ctx2\n")}
    assert responses([new_text]) == [("", 0), ("", 0), ("ctx2\n", 0)]


def test_a_restarted_panes_session_start_records_print_nothing():
    """SDK set_model restarts claude on the same session: -p runs no SessionStart hooks then."""
    recs = [r for r in interactive("2.1.329") if messages.is_session_start_record(r)]
    out = io.BytesIO()
    em = Emitter("stream-json", out, "sid", version="2.1.329")
    em.result({"type": "result", "subtype": "success", "is_error": False})
    em.new_turn()
    for r in recs:
        em.record(r)
    assert [json.loads(x)["type"] for x in out.getvalue().splitlines()] == ["result"]


@pytest.mark.parametrize("attachment,expected", [
    ({"type": "hook_success", "stdout": "o\n", "stderr": "e\n", "exitCode": 0}, ("o\n", "e\n", 0, "success")),
    ({"type": "hook_non_blocking_error", "stderr": "Failed with non-blocking status code: No stderr output",
      "stdout": "three\n", "exitCode": 3}, ("three\n", "", 3, "error")),
    ({"type": "hook_non_blocking_error", "stderr": "Failed with non-blocking status code: bad\nworse",
      "stdout": "", "exitCode": 1}, ("", "bad\nworse\n", 1, "error")),
    ({"type": "hook_non_blocking_error", "stderr": "[echo b >&2; exit 2]: b\n", "command": "echo b >&2; exit 2",
      "stdout": "", "exitCode": 2}, ("", "b\n", 2, "error")),
    ({"type": "hook_cancelled", "command": "sleep 3", "timedOut": True}, ("", "", 1, "cancelled")),
    ({"type": "hook_additional_context", "content": ["x"]}, None),
])
def test_hook_result_undoes_the_transcripts_rewriting(attachment, expected):
    assert messages.hook_result(attachment) == expected


@pytest.mark.parametrize("matcher,value,hit", [
    (None, "startup", True), ("", "clear", True), ("*", "resume", True), ("startup", "startup", True),
    ("startup", "resume", False), ("resume|clear", "clear", True), ("resume|clear", "startup", False),
    ("^st", "startup", True), ("(", "startup", False),
])
def test_hook_matchers(matcher, value, hit):
    assert messages.hook_matches(matcher, value) is hit


def test_session_start_commands_follow_the_settings():
    assert messages.session_start_commands(SETTINGS, "startup") == [
        "echo context-line", "true", "echo warn >&2", "echo failed >&2; exit 1", "exit 3",
        "echo blocked >&2; exit 2", "sleep 3"]
    assert "echo not-at-startup" in messages.session_start_commands(SETTINGS, "resume")
    assert messages.session_start_commands(dict(SETTINGS, disableAllHooks=True), "startup") == []
    ours = {"hooks": {"SessionStart": [{"hooks": [{"type": "command",
                                                    "command": 'f=/r/pane-1/hooks/SessionStart.$$; cat > "$f.tmp"'}]}]}}
    assert messages.session_start_commands(ours, "startup") == []


def test_calls_with_session_start_hooks_get_a_pane_of_their_own():
    assert has_session_start_hooks(SETTINGS)
    assert not has_session_start_hooks({"hooks": {"Stop": [{"hooks": []}]}})
    assert not has_session_start_hooks(dict(SETTINGS, disableAllHooks=True))


@pytest.mark.parametrize("version,fork,resume,cont,source", [
    ("2.1.329", False, None, False, "startup"), ("2.1.329", False, "s", False, "resume"),
    ("2.1.329", False, None, True, "resume"), ("2.1.329", True, "s", False, "fork"),
    ("2.1.197", True, "s", False, "resume"),
])
def test_the_source_a_run_gives_its_session_start_hooks(version, fork, resume, cont, source):
    plan = SimpleNamespace(cli_version=version, fork=fork, resume=resume, continue_session=cont)
    assert session_source(plan) == source
