"""The Agent tool on the real CLI, side by side with real ``claude -p`` on the same mock.

On 2.1.329 the agent runs in the background: ``-p`` prints the task lines and the agent's own
messages, and when the agent finishes it follows the turn claude starts for the notification (a
second ``system/init`` … ``result``; ``text`` prints both results, ``json`` the last). There the order
of the lines depends on when the agent finishes against the main turn, so the comparison is of what
is printed, not of its exact interleaving. On 2.1.197 the agent runs in the foreground inside the
turn, and its lines come in a fixed order before the Agent call's tool_result.
"""

from __future__ import annotations

import collections
import json

import pytest

pytestmark = pytest.mark.integration

#: (the agent's requests wait 0.3 s, so that on 2.1.329 the main thread's reply to the launch always
#: lands before them, in -p and in the bridge alike: -p adds up the cost in the order the responses
#: arrive, and a float sum depends on that order)
AGENT_PROMPT = "sub MOCK:hang=0.3 MOCK:tool=echo_subtool"
SCRIPT = [{"text": "Delegating.", "tool": "Agent",
           "input": {"description": "Sub task", "prompt": AGENT_PROMPT,
                     "subagent_type": "general-purpose"}},
          "MAIN-DONE after agent"]
PROMPT = "go MOCK:script=agent"


def _background(bed) -> bool:
    return not bed.facts.foreground_agent_lines


def _lines(out: bytes) -> list[dict]:
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


def _kind(line: dict) -> tuple:
    content = (line.get("message") or {}).get("content")
    blocks = tuple(b.get("type") for b in content if isinstance(b, dict)) if isinstance(content, list) else ()
    return line.get("type"), line.get("subtype"), line.get("parent_tool_use_id") is not None, blocks


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_agent_call_result_is_claude_p_s(bed, fmt):
    bed.mock.scripts["agent"] = SCRIPT
    real = bed.claude_p("-p", PROMPT, "--output-format", fmt, timeout=120)
    ours = bed.bridge("-p", PROMPT, "--output-format", fmt, timeout=120)
    assert ours.returncode == real.returncode == 0, ours.stderr.decode()
    if fmt == "text":
        assert ours.stdout == real.stdout
        if _background(bed):
            assert real.stdout == b"MAIN-DONE after agent\n\nMOCK-SCRIPT-END\n"
        return
    a, b = json.loads(real.stdout), json.loads(ours.stdout)
    for k in ("type", "subtype", "is_error", "result", "num_turns", "stop_reason"):
        assert b.get(k) == a.get(k), k
    assert b.get("origin", {}).get("kind") == a.get("origin", {}).get("kind")
    # the agent's requests count in modelUsage and the cost (not in usage)
    assert b["usage"]["input_tokens"] == a["usage"]["input_tokens"]
    model = next(iter(b["modelUsage"]))
    if _background(bed):
        assert (b["total_cost_usd"], b["modelUsage"]) == (a["total_cost_usd"], a["modelUsage"])
    else:           # (2.1.197 -p also counts its session-title request there: README "Differences")
        turn_in = b["usage"]["input_tokens"]
        assert b["modelUsage"][model]["inputTokens"] > turn_in and b["total_cost_usd"] <= a["total_cost_usd"]


def test_agent_call_stream_json_is_claude_p_s(bed):
    bed.mock.scripts["agent"] = SCRIPT
    args = ("-p", PROMPT, "--output-format", "stream-json", "--verbose")
    real, ours = _lines(bed.claude_p(*args, timeout=120).stdout), _lines(bed.bridge(*args, timeout=120).stdout)
    results = [(r["result"], r["num_turns"], r["subtype"]) for r in real if r["type"] == "result"]
    assert [(r["result"], r["num_turns"], r["subtype"]) for r in ours if r["type"] == "result"] == results
    def one(lines, subtype):
        return next(r for r in lines if r.get("subtype") == subtype)
    if not _background(bed):
        # 2.1.197: the foreground agent's lines, in -p's order, keys and values (ids and times aside)
        assert [_kind(r) for r in ours] == [_kind(r) for r in real]
        for r, ref in zip(ours, real, strict=True):
            assert list(r) == list(ref), (r["type"], r.get("subtype"))
        for subtype, keys in (("task_started", ("description", "subagent_type", "task_type", "prompt")),
                              ("task_notification", ("status", "output_file", "summary")),
                              ("task_progress", ("description", "subagent_type", "last_tool_name"))):
            for k in keys:
                assert one(ours, subtype)[k] == one(real, subtype)[k], (subtype, k)
        prompt_line = next(r for r in ours if r["type"] == "user" and r.get("parent_tool_use_id"))
        assert prompt_line["message"]["content"] == [{"type": "text", "text": AGENT_PROMPT}]
        return
    assert results == [("MAIN-DONE after agent", 2, "success"), ("MOCK-SCRIPT-END", 1, "success")]
    assert collections.Counter(map(_kind, ours)) == collections.Counter(map(_kind, real))
    # each line of the first turn comes before the second turn's system/init, and the launch lines
    # come right before the Agent call's tool_result
    inits = [i for i, r in enumerate(ours) if r.get("subtype") == "init"]
    assert len(inits) == 2 and ours[inits[1] + 1]["message"]["content"][0]["text"] == "MOCK-SCRIPT-END"
    launch = next(i for i, r in enumerate(ours) if r.get("subtype") == "task_started")
    assert ours[launch - 1]["subtype"] == "background_tasks_changed" and ours[launch + 1]["type"] == "user"
    tool_use_id = one(ours, "task_started")["tool_use_id"]
    assert tool_use_id == next(b["id"] for r in ours if r["type"] == "assistant" and not r["parent_tool_use_id"]
                               for b in r["message"]["content"] if b["type"] == "tool_use")
    for subtype, keys in (("task_started", ("description", "subagent_type", "is_backgrounded", "spawn_depth",
                                            "task_type", "prompt")),
                          ("task_notification", ("status", "summary", "summary_is_report")),
                          ("task_progress", ("description", "subagent_type", "last_tool_name"))):
        for k in keys:
            assert one(ours, subtype)[k] == one(real, subtype)[k], (subtype, k)
    assert one(ours, "task_notification")["usage"]["tool_uses"] == one(real, "task_notification")["usage"]["tool_uses"]
    assert one(ours, "task_notification")["output_file"].endswith(f"/tasks/{one(ours, 'task_started')['task_id']}.output")
    agent = [r for r in ours if r.get("parent_tool_use_id")]
    assert {r["parent_tool_use_id"] for r in agent} == {tool_use_id}
    assert all(r["agent_id"] == one(ours, "task_started")["task_id"] and r["task_description"] == "Sub task"
               for r in agent)
    # key order as -p prints them
    for r, ref in ((agent[0], next(x for x in real if x.get("parent_tool_use_id"))),
                   (one(ours, "task_notification"), one(real, "task_notification"))):
        assert list(r) == list(ref) or list(r) == [k for k in ref if k != "run_id"], (list(r), list(ref))
