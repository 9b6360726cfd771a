"""A resumed session's ``total_cost_usd`` / ``modelUsage`` / ``duration_api_ms``, rebuilt from recorded
transcripts and compared with what `claude -p` printed for them.

tests/data/resume_cost/<version>/<case>/ (scripts/record-resume-cost): ``before.jsonl`` (the
``cost-state`` records the transcript held before the run), ``turn.jsonl`` (the run's own records),
``result.json`` (-p's results), ``case.json``. 2.1.329 restores the last valid cost-state; 2.1.197
starts from 0 (docs/cli-behaviour.md §3).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from claude_bridge_tmux.follow.transcript import continued_transcript, records_from_end, resumed_transcript
from claude_bridge_tmux.output import pricing
from claude_bridge_tmux.output.jsjson import dumps
from claude_bridge_tmux.output.result import (
    COST_STATE_ENTRY_KEYS,
    RestoredCost,
    last_restored_cost,
    restored_cost,
    result_message,
    total_cost,
)
from claude_bridge_tmux.versions import dialect

DATA = Path(__file__).resolve().parents[1] / "data" / "resume_cost"
CASES = sorted((v.name, c.name) for v in DATA.iterdir() for c in v.iterdir() if c.is_dir())
SID = "abbeb744-f4d9-47b8-b805-82048d1a6fa5"


def load(version: str, case: str) -> tuple[list[dict], list[dict], list[dict], dict]:
    d = DATA / version / case

    def jl(name: str) -> list[dict]:
        return [json.loads(x) for x in (d / name).read_text().splitlines() if x.strip()]
    return jl("before.jsonl"), jl("turn.jsonl"), json.loads((d / "result.json").read_text()), \
        json.loads((d / "case.json").read_text())


def split_turns(turn: list[dict], n: int) -> list[list[dict]]:
    """The records of each prompt sent to the model (a new turn starts at a user prompt record; a
    local command's records, whose text starts with ``<``, belong to none)."""
    out: list[list[dict]] = []
    for r in turn:
        msg = r.get("message") or {}
        if r.get("type") == "user" and isinstance(msg.get("content"), str) and not r.get("isMeta") \
                and not msg["content"].startswith("<"):
            out.append([])
        if out:
            out[-1].append(r)
    assert len(out) == n
    return out


def rebuild(version: str, case: str) -> tuple[list[dict], list[dict]]:
    """(ours, theirs): result_message over the recorded records, starting from the restored state."""
    before, turn, theirs, meta = load(version, case)
    prices = pricing.load_table(version)
    state = last_restored_cost(before, meta["session_id"], prices)
    assert (state is not None) == (dialect(version).restores_cost_state and case != "other_session_only")
    prompts = [m["message"]["content"] for m in map(json.loads, (meta["stdin"] or "").splitlines())] \
        or [meta["args"][0]]
    model_turns = iter(split_turns(turn, sum(not p.startswith("/") for p in prompts)))
    parts = [[] if p.startswith("/") else next(model_turns) for p in prompts]
    previous = state
    ours = []
    for prompt, recs, res in zip(prompts, parts, theirs):
        local = prompt.startswith("/")
        before_api = 0 if previous is None else (getattr(previous, "api_ms_total", None)
                                                 or previous["duration_api_ms"])
        if local and dialect(version).clear_resets_cost and prompt == "/clear":
            before_api = 0
        own_api = 0 if local else res["duration_api_ms"] - before_api
        out = result_message([] if local else recs, session_id=res["session_id"], duration_ms=res["duration_ms"],
                             duration_api_ms=own_api, uuid=res["uuid"], model_key=next(iter(res["modelUsage"]), None),
                             version=version, fmt="stream-json", previous=previous, local_command=local,
                             command_name=prompt[1:] if local else None, result=res.get("result"))
        ours.append(out)
        previous = out
    return ours, theirs


@pytest.mark.parametrize("version,case", CASES)
def test_totals_as_claude_p(version, case):
    ours, theirs = rebuild(version, case)
    for a, b in zip(ours, theirs):
        # exact: the same floats (the CLI sums in the same order), the same key order in every entry
        assert dumps(a["modelUsage"]) == dumps(b["modelUsage"])
        assert a["total_cost_usd"] == b["total_cost_usd"]
        assert a["duration_api_ms"] == b["duration_api_ms"]
        if "model_usage_since_last_result" in b:
            assert dumps(a["model_usage_since_last_result"]) == dumps(b["model_usage_since_last_result"])


def test_what_is_restored_2_1_329():
    before, _turn, theirs, meta = load("2.1.329", "resume")
    state = last_restored_cost(before, meta["session_id"])
    cs = before[-1]
    assert state == {"total_cost_usd": cs["totalCostUSD"], "duration_api_ms": cs["totalAPIDuration"],
                     "modelUsage": {m: {**e, "contextWindow": 1_000_000, "maxOutputTokens": 128000}
                                    for m, e in cs["modelUsage"].items()}}
    # a restored entry's key order: the cost-state schema's, then contextWindow/maxOutputTokens, then
    # what the run's own response adds (canonicalModel, provider, costBasis)
    (entry,) = theirs[0]["modelUsage"].values()
    assert list(entry) == [*COST_STATE_ENTRY_KEYS, "contextWindow", "maxOutputTokens", "canonicalModel", "provider",
                           "costBasis"]
    (fresh,) = theirs[0]["model_usage_since_last_result"].values()
    assert list(fresh) != list(entry)


def test_2_1_197_writes_no_cost_state_and_ignores_one():
    for case in ("resume", "continue", "fork", "stream_input"):
        before, _t, theirs, _m = load("2.1.197", case)
        assert before == []
        assert theirs[0]["total_cost_usd"] == sum(e["costUSD"] for e in theirs[0]["modelUsage"].values())
    before329, turn, _t, meta = load("2.1.329", "resume")
    state = last_restored_cost(before329, meta["session_id"])
    assert state is not None
    a = result_message(turn, session_id=SID, duration_ms=1, duration_api_ms=5, uuid="u", version="2.1.197",
                       previous=state, model_key="claude-opus-4-8")
    b = result_message(turn, session_id=SID, duration_ms=1, duration_api_ms=5, uuid="u", version="2.1.197",
                       model_key="claude-opus-4-8")
    assert a == b and a["duration_api_ms"] == 5


def _valid() -> dict:
    before, _t, _r, _m = load("2.1.329", "resume")
    return json.loads(json.dumps(before[-1]))


@pytest.mark.parametrize("edit", [
    lambda cs: cs.update(totalCostUSD=-1),
    lambda cs: cs.update(totalCostUSD=2e9),
    lambda cs: cs.update(totalCostUSD="0.1"),
    lambda cs: cs.update(totalCostUSD=True),
    lambda cs: cs.pop("totalDuration"),
    lambda cs: cs.update(startTime=2e15),
    lambda cs: cs.update(hasUnknownModelCost="no"),
    lambda cs: cs.update(modelUsage=[]),
    lambda cs: next(iter(cs["modelUsage"].values())).pop("webSearchRequests"),
    lambda cs: next(iter(cs["modelUsage"].values())).update(thinkingTokens=None),
    lambda cs: next(iter(cs["modelUsage"].values())).update(inputTokens=float("inf")),
    lambda cs: cs["modelUsage"].update({"bad\x07name": cs["modelUsage"][next(iter(cs["modelUsage"]))]}),
    lambda cs: cs["modelUsage"].update({"a": dict(next(iter(cs["modelUsage"].values())), inputTokens=6e14),
                                        "b": dict(next(iter(cs["modelUsage"].values())), inputTokens=6e14)}),
    lambda cs: cs.update(type="cost-states"),
])
def test_records_the_cli_would_reject(edit):
    cs = _valid()
    assert restored_cost(cs, cs["sessionId"]) is not None
    edit(cs)
    assert restored_cost(cs, cs["sessionId"]) is None
    # an invalid last record leaves the earlier valid one in force
    ok = _valid()
    assert last_restored_cost([ok, cs], ok["sessionId"]) == restored_cost(ok, ok["sessionId"])


def test_records_it_accepts():
    cs = _valid()
    cs["modelUsage"]["m"] = {"inputTokens": 1, "outputTokens": 1, "cacheReadInputTokens": 0,
                             "cacheCreationInputTokens": 0, "webSearchRequests": 0, "costUSD": 0, "junk": "x"}
    cs["modelCallCostUSD"] = "not a number"      # the CLI drops a bad value of this field, not the record
    cs["other"] = {"any": 1}
    state = restored_cost(cs, cs["sessionId"])
    assert state is not None and list(state["modelUsage"]["m"]) == [
        "inputTokens", "outputTokens", "cacheReadInputTokens", "cacheCreationInputTokens", "webSearchRequests",
        "costUSD", "contextWindow", "maxOutputTokens"]
    assert restored_cost(cs, "another-session") is None


def test_budget_leaves_the_restored_cost_out():
    before, turn, theirs, meta = load("2.1.329", "resume")
    state = last_restored_cost(before, meta["session_id"])
    own = total_cost(turn, version="2.1.329")
    assert own > 0 and total_cost(turn, version="2.1.329", previous=state) == own
    first = result_message(turn, session_id=SID, duration_ms=1, duration_api_ms=1, uuid="u", version="2.1.329",
                           previous=state)
    assert first["total_cost_usd"] == theirs[0]["total_cost_usd"] > own
    # a later turn of the same process: what the first spent counts, the restored part does not
    assert total_cost(turn, version="2.1.329", previous=first) == pytest.approx(2 * own, rel=1e-12)
    assert total_cost(turn, version="2.1.329", previous=dict(first)) == pytest.approx(first["total_cost_usd"] + own)


def test_later_turns_keep_the_restored_key_order():
    before, turn, _t, meta = load("2.1.329", "model_switch")
    state = last_restored_cost(before, meta["session_id"])
    first = result_message(turn, session_id=SID, duration_ms=1, duration_api_ms=1, uuid="u", version="2.1.329",
                           previous=state)
    second = result_message(turn, session_id=SID, duration_ms=1, duration_api_ms=1, uuid="u", version="2.1.329",
                            previous=first)
    assert [list(e) for e in second["modelUsage"].values()] == [list(e) for e in first["modelUsage"].values()]
    sonnet = first["modelUsage"]["claude-sonnet-4-6"]     # restored, unused by the run: no catalog fields
    assert "canonicalModel" not in sonnet and "provider" not in sonnet and list(sonnet)[-2:] == [
        "contextWindow", "maxOutputTokens"]


# -- reading the transcripts ---------------------------------------------------------------------------

def test_records_from_end_across_blocks(tmp_path):
    lines = [json.dumps({"type": "cost-state", "n": i, "pad": "x" * (i * 37 % 300)}) for i in range(60)]
    lines.insert(10, json.dumps({"type": "user", "n": -1}))
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines) + "\n" + '{"type": "cost-state", "n": 99')   # a line being written
    for block in (7, 64, 1000, 1 << 16):
        got = [r["n"] for r in records_from_end(path, b'"cost-state"', block=block)]
        assert got == list(range(59, -1, -1)), block
    assert list(records_from_end(tmp_path / "missing.jsonl", b"x")) == []


def test_which_transcript_is_resumed(tmp_path):
    root = tmp_path / "projects"
    here, there = root / "-work", root / "-elsewhere"
    here.mkdir(parents=True)
    there.mkdir()
    (there / f"{SID}.jsonl").write_text("{}\n")
    assert resumed_transcript(root, here, SID, any_project=True) == there / f"{SID}.jsonl"
    assert resumed_transcript(root, here, SID, any_project=False) is None
    (here / f"{SID}.jsonl").write_text("{}\n")
    assert resumed_transcript(root, here, SID, any_project=True) == here / f"{SID}.jsonl"
    # --continue: the most recently modified file, not the newest one
    old, new = here / "a.jsonl", here / "b.jsonl"
    old.write_text("{}\n")
    new.write_text("{}\n")
    now = time.time()
    os.utime(new, (now - 50, now - 50))
    os.utime(here / f"{SID}.jsonl", (now - 100, now - 100))
    os.utime(old, (now, now))
    assert continued_transcript(here) == old
    assert continued_transcript(tmp_path / "none") is None


def test_restored_cost_is_a_previous_result():
    state = RestoredCost(total_cost_usd=0.5, modelUsage={}, duration_api_ms=7)
    assert isinstance(state, dict) and state["total_cost_usd"] == 0.5
