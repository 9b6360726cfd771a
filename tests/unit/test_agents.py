"""Background agents (2.1.329): what a turn launched, the notification turn, and the task lines, from
a recorded interactive session and the lines real ``claude -p`` printed for the same prompt
(tests/data/agents/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from claude_bridge_tmux.follow import agents
from claude_bridge_tmux.follow.engine import AnnounceSession, Finish, Records, TurnEngine, TurnOptions
from claude_bridge_tmux.follow.localcmd import record_time
from claude_bridge_tmux.follow.tree import TurnTree, content_text, find_prompt
from claude_bridge_tmux.output import messages
from claude_bridge_tmux.output.tasks import TaskBook

DATA = Path(__file__).resolve().parent.parent / "data" / "agents" / "2.1.329"


def load(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


MAIN, AGENT, PRINT = load("main.jsonl"), load("agent.jsonl"), load("print.jsonl")


def first_turn() -> list[dict]:
    prompt = find_prompt(MAIN, text="go MOCK:script=agent")
    assert prompt is not None
    return TurnTree(prompt["uuid"]).add_all(MAIN).ordered()


def test_the_launch_is_read_from_the_agent_call_s_tool_result():
    [launch] = agents.background_launches(first_turn())
    call = next(b for r in MAIN if r["type"] == "assistant" for b in r["message"]["content"] if b["type"] == "tool_use")
    assert (launch.tool_use_id, launch.description, launch.prompt) == (call["id"], "Sub task", "sub MOCK:tool=echo_subtool")
    assert launch.output_file.endswith(f"/tasks/{launch.agent_id}.output")
    assert agents.background_launches(AGENT) == []          # (the agent's own records launch nothing)


def test_the_notification_names_the_task_and_its_outcome():
    [launch] = agents.background_launches(first_turn())
    [op] = [r for r in MAIN if r.get("type") == "queue-operation" and r.get("operation") == "enqueue"]
    fields = agents.notification_fields(op["content"])
    assert fields["task-id"] == launch.agent_id and fields["tool-use-id"] == launch.tool_use_id
    assert (fields["status"], fields["result"], fields["tool_uses"]) == ("completed", "MOCK-TOOL-DONE: subtool", "1")
    assert agents.notified_tasks(op["content"]) == {launch.agent_id}
    # the first turn's own records do not name it: claude starts a turn of its own for it
    assert agents.notified_tasks(json.dumps(first_turn())) == set()
    [prompt] = [r for r in MAIN if agents.is_notification_prompt(r)]
    assert agents.notified_tasks(content_text(prompt)) == {launch.agent_id}


def test_the_notification_turn_is_followed_from_records_read_before_it_began():
    """The engine of a turn claude starts itself finds its prompt by origin, also among records read
    during the previous turn (ClaudeSession carries them: ``later_records``)."""
    start = min(t for t in map(record_time, MAIN) if t)
    first = TurnEngine("go MOCK:script=agent", started=0.0, wall_start=start - 1,
                       options=TurnOptions(session_known=True))
    first.feed(Records(MAIN), 1.0)
    acts = first.decide(1.0)
    assert isinstance(acts[-1], Finish) and acts[-1].outcome.end == "turn_duration"
    later = first.later_records()
    assert any(agents.is_notification_prompt(r) for r in later)
    assert not any(r.get("uuid") in {x.get("uuid") for x in acts[-1].outcome.records} for r in later)
    end = max(t for t in map(record_time, MAIN) if t)
    cont = TurnEngine("", started=2.0, wall_start=end + 5,      # (begun after every record was written)
                      options=TurnOptions(session_known=True, prompt_origin=agents.NOTIFICATION_ORIGIN))
    cont.feed(Records(later), 2.0)
    acts = cont.decide(2.0)
    announce = next(a for a in acts if isinstance(a, AnnounceSession))
    assert agents.is_notification_prompt(announce.prompt)
    assert isinstance(acts[-1], Finish)
    texts = [b.get("text") for r in acts[-1].outcome.records if r["type"] == "assistant" for b in r["message"]["content"]]
    assert texts == ["MOCK-SCRIPT-END"]


def no_ids(content: list[dict]) -> list[dict]:
    """Content blocks without their ids (the reference is another run)."""
    return [{k: v for k, v in b.items() if k not in ("id", "tool_use_id")} for b in content]


def _print_lines(subtype: str) -> list[dict]:
    return [r for r in PRINT if r.get("subtype") == subtype]


def test_task_lines_have_claude_p_s_shapes():
    book = TaskBook(lambda: "S", new_uuid=lambda: "U")
    [launch] = agents.background_launches(first_turn())
    call = next(b for r in MAIN if r["type"] == "assistant" for b in r["message"]["content"] if b["type"] == "tool_use")
    changed, started = book.launched(launch, call["input"])
    assert book.launched(launch, call["input"]) == []                     # once per agent
    ref_changed, ref_started = _print_lines("background_tasks_changed")[0], _print_lines("task_started")[0]
    no_run_id = lambda d: {k: v for k, v in d.items() if k != "run_id"}  # noqa: E731 - (see output/tasks.py)
    assert list(started) == list(no_run_id(ref_started))
    for k in ("description", "subagent_type", "is_backgrounded", "spawn_depth", "task_type", "prompt"):
        assert started[k] == ref_started[k], k
    assert [list(no_run_id(t)) for t in changed["tasks"]] == [list(no_run_id(t)) for t in ref_changed["tasks"]]

    def translate(rec):
        return messages.stream_messages({k: v for k, v in rec.items() if k != "isSidechain"}, session_id="S",
                                        version="2.1.329")
    task = book.tasks[launch.agent_id]
    lines = book.agent_lines(task, AGENT, translate)
    assert book.agent_lines(task, AGENT, translate) == []                # nothing twice
    ref = [r for r in PRINT if r.get("parent_tool_use_id") or r.get("subtype") == "task_progress"]
    assert [(r["type"], r.get("subtype")) for r in lines] == [(r["type"], r.get("subtype")) for r in ref]
    for ours, theirs in zip(lines, ref, strict=True):
        assert list(ours) == [k for k in theirs if not (ours["type"] == "system" and k == "run_id")]
        if ours["type"] != "system":
            assert no_ids(ours["message"]["content"]) == no_ids(theirs["message"]["content"])
            assert (ours["parent_tool_use_id"], ours["agent_id"]) == (launch.tool_use_id, launch.agent_id)

    [op] = [r for r in MAIN if r.get("type") == "queue-operation" and r.get("operation") == "enqueue"]
    fields = agents.notification_fields(op["content"])
    updated, notification, after = book.finished(fields, 1234, "RUN")
    assert book.finished(fields, 1234, "RUN") == []                        # once
    ref_n = _print_lines("task_notification")[0]
    assert list(notification) == list(ref_n) and list(updated) == list(_print_lines("task_updated")[0])
    assert (notification["status"], notification["summary"], notification["summary_is_report"]) == \
        (ref_n["status"], ref_n["summary"], ref_n["summary_is_report"])
    assert notification["usage"]["tool_uses"] == ref_n["usage"]["tool_uses"]
    assert updated["patch"] == {"status": "completed", "end_time": 1234} and updated["run_id"] == "RUN"
    assert after["tasks"] == [] == _print_lines("background_tasks_changed")[-1]["tasks"]


@pytest.mark.parametrize("text,ids", [
    ("<task-notification>\n<task-id>a1</task-id>\n</task-notification>", {"a1"}),
    ("<task-notification><task-id>a1</task-id></task-notification><task-notification><task-id>b2</task-id>"
     "</task-notification>", {"a1", "b2"}),
    ("agentId: a1 (internal ID)", set()),
    (None, set()),
])
def test_notified_tasks(text, ids):
    assert agents.notified_tasks(text) == ids


def test_foreground_agent_lines_have_2_1_197_p_s_shapes():
    """2.1.197: the agent runs inside the turn; -p prints its start, the prompt it was given, its tool
    calls (each after a task_progress) and results, and its end, right before the call's tool_result."""
    d = DATA.parent / "2.1.197"
    main, agent, ref = (load_from(d / n) for n in ("main.jsonl", "agent.jsonl", "print.jsonl"))
    prompt = find_prompt(main, text="go MOCK:script=agent")
    turn = TurnTree(prompt["uuid"]).add_all(main).ordered()
    assert agents.background_launches(turn) == []
    [end] = agents.foreground_ends(turn)
    assert (end.status, end.tool_uses) == ("completed", 1) and end.total_tokens > 0
    call = next(b for r in turn if r["type"] == "assistant" for b in r["message"]["content"] if b["type"] == "tool_use")
    assert end.launch.tool_use_id == call["id"]
    book = TaskBook(lambda: "S", new_uuid=lambda: "U")

    def translate(rec):
        return messages.stream_messages({k: v for k, v in rec.items() if k != "isSidechain"}, session_id="S",
                                        version="2.1.197")
    lines = book.foreground(end, call["input"], agent, translate, 1234)
    assert book.foreground(end, call["input"], agent, translate, 1234) == []       # once
    expected = [r for r in ref if r.get("parent_tool_use_id") or str(r.get("subtype")).startswith("task")]
    assert [(r["type"], r.get("subtype")) for r in lines] == [(r["type"], r.get("subtype")) for r in expected]
    for ours, theirs in zip(lines, expected, strict=True):
        assert list(ours) == list(theirs), (ours["type"], ours.get("subtype"))
        if ours["type"] != "system":
            assert no_ids(ours["message"]["content"]) == no_ids(theirs["message"]["content"])
            assert ours["parent_tool_use_id"] == call["id"]
    started, notification = lines[0], lines[-1]
    for k in ("description", "subagent_type", "task_type", "prompt"):
        assert started[k] == expected[0][k], k
    for k in ("status", "output_file", "summary"):
        assert notification[k] == expected[-1][k], k
    assert notification["usage"]["tool_uses"] == expected[-1]["usage"]["tool_uses"]
    assert lines[-2]["patch"] == {"status": "completed", "end_time": 1234}


def load_from(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_agent_s_requests_count_in_model_usage_not_in_usage():
    """-p's result counts what the agent's requests cost in modelUsage and total_cost_usd, and only the
    main thread's in usage (2.1.329 -p on this prompt: modelUsage inputTokens 69 over both results)."""
    from claude_bridge_tmux.output.result import result_message
    turn = first_turn()
    kw = dict(session_id="S", duration_ms=1, duration_api_ms=1, uuid="U", version="2.1.329")
    plain = result_message(turn, **kw)
    billed = result_message(turn, agent_records=AGENT, **kw)
    assert billed["usage"] == plain["usage"]
    model = next(iter(plain["modelUsage"]))
    agent_in = sum(r["message"]["usage"]["input_tokens"] for r in
                   {r["message"]["id"]: r for r in AGENT if r["type"] == "assistant"}.values())
    assert billed["modelUsage"][model]["inputTokens"] == plain["modelUsage"][model]["inputTokens"] + agent_in
    assert billed["total_cost_usd"] > plain["total_cost_usd"]


def test_the_cost_is_added_up_in_the_order_the_responses_arrived():
    """-p adds each request's cost to total_cost_usd when the response lands; a float sum depends on the
    order, so an agent whose requests land between the main thread's two responses is added there
    (token counts picked so that the two orders give different floats: 0.0035744 vs 0.0035743999999999997)."""
    import copy

    from claude_bridge_tmux.output import pricing
    from claude_bridge_tmux.output.result import responses, result_message
    turn = first_turn()
    main = responses(turn)
    stamps = {r["message"]["id"]: r["timestamp"] for r in turn if r.get("type") == "assistant"}
    between = "2026-12-02T06:20:45.500Z"          # (the recorded responses landed at .488 and .587)
    assert stamps[main[0]["id"]] < between < stamps[main[1]["id"]]
    agent = copy.deepcopy(AGENT)
    counts = {}
    for r in agent:
        if "timestamp" in r:
            r["timestamp"] = between
        if r.get("type") == "assistant":
            n = counts.setdefault(r["message"]["id"], [(33, 16), (64, 98)][len(counts)])
            r["message"]["usage"].update(input_tokens=n[0], output_tokens=n[1])
    table = pricing.load_table("2.1.329")
    side = responses([{k: v for k, v in r.items() if k != "isSidechain"} for r in agent])

    def added(order):
        total = 0.0
        for m in order:
            total += pricing.usage_cost(table.lookup(pricing.strip_1m(m["model"])), m["usage"], table)
        return total
    arrived, grouped = added([main[0], *side, main[1]]), added([*main, *side])
    assert arrived != grouped
    kw = dict(session_id="S", duration_ms=1, duration_api_ms=1, uuid="U", version="2.1.329")
    assert result_message(turn, agent_records=agent, **kw)["total_cost_usd"] == arrived
