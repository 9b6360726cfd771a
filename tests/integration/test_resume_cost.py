"""``total_cost_usd`` / ``modelUsage`` / ``duration_api_ms`` of a resumed session (--resume, --continue,
--fork-session), side by side with the real ``claude -p`` (each pinned CLI), from the same transcripts.

2.1.329 starts a resumed session's totals from the last valid ``cost-state`` record of its transcript;
2.1.197 from 0 (docs/cli-behaviour.md §3). Each scenario snapshots ``projects/``, runs ``claude -p``,
puts the snapshot back and runs the bridge with the same arguments.

The new turn itself is not the same request on both sides: a session resumed in the other mode than
the one that wrote it gets one more message (2.1.329: a "New agent types" system message; 2.1.197
likewise), so the comparison is of the part that is not the new turn (the result minus the turn's own
``model_usage_since_last_result``, or minus its ``usage`` where the version prints no such field),
field by field, plus the exact key order of every entry.
"""

from __future__ import annotations

import json
import shutil

import pytest

from claude_bridge_tmux.output import pricing
from claude_bridge_tmux.output.result import last_restored_cost
from claude_bridge_tmux.versions import dialect
from tests.conftest import stream_lines

pytestmark = pytest.mark.integration

SJ = ("--output-format", "stream-json", "--verbose")
COUNTERS = ("inputTokens", "outputTokens", "thinkingTokens", "cacheReadInputTokens", "cacheCreationInputTokens",
            "cacheCreationEphemeral5mInputTokens", "cacheCreationEphemeral1hInputTokens", "webSearchRequests",
            "costUSD")
USAGE_OF = {"inputTokens": "input_tokens", "outputTokens": "output_tokens",
            "cacheReadInputTokens": "cache_read_input_tokens", "cacheCreationInputTokens": "cache_creation_input_tokens"}




def run_ok(p) -> list[dict]:
    assert p.returncode == 0, (p.stdout.decode()[-1500:], p.stderr.decode()[-1500:])
    return stream_lines(p.stdout)


def results(lines: list[dict]) -> list[dict]:
    return [m for m in lines if m["type"] == "result"]


class Snapshot:
    """``projects/`` as it was (mtimes kept: --continue picks the most recently modified file)."""

    def __init__(self, bed):
        self.root = bed.home / ".claude" / "projects"
        self.copy = bed.home.parent / "projects-snapshot"
        shutil.rmtree(self.copy, ignore_errors=True)
        shutil.copytree(self.root, self.copy)

    def restore(self) -> None:
        shutil.rmtree(self.root)
        shutil.copytree(self.copy, self.root)


def side_by_side(bed, *args: str, input: str | None = None) -> tuple[list[dict], list[dict]]:
    """(-p's results, the bridge's results) of the same call on the same transcripts."""
    snap = Snapshot(bed)
    theirs = results(run_ok(bed.claude_p("-p", *args, *SJ, input=input)))
    snap.restore()
    ours = results(run_ok(bed.bridge("-p", *args, *SJ, input=input)))
    snap.restore()
    assert theirs and len(ours) == len(theirs)
    return theirs, ours


def turn_part(res: dict, version: str) -> dict[str, dict]:
    """The result's own turn per model: ``model_usage_since_last_result`` (2.1.329 stream-json), else
    the single model's ``usage`` costed with the version's price table."""
    if "model_usage_since_last_result" in res:
        return res["model_usage_since_last_result"]
    (model,) = res["modelUsage"] or [None]
    if model is None:
        return {}
    table = pricing.load_table(version)
    u = res["usage"]
    part = {k: u.get(v, 0) for k, v in USAGE_OF.items()}
    part["costUSD"] = pricing.usage_cost(table.lookup(model), u, table)
    return {model: part}


def not_the_turn(res: dict, version: str) -> dict:
    """What the result holds besides its own turn: total, and per model every counter minus the turn's,
    the other fields as printed, the key order."""
    turn = turn_part(res, version)
    total = res["total_cost_usd"] - sum(e.get("costUSD", 0) for e in turn.values())
    models = {}
    for m, e in res["modelUsage"].items():
        t = turn.get(m, {})
        models[m] = {"keys": list(e), **{k: (round(v - t.get(k, 0), 12) if k in COUNTERS else v) for k, v in e.items()}}
    return {"total": round(total, 12), "models": models}


def restored_state(snapshot_file, session_id: str, version: str):
    records = [json.loads(line) for line in snapshot_file.read_text().splitlines() if '"cost-state"' in line]
    return last_restored_cost(records, session_id, pricing.load_table(version))


def bridge_session(bed, prompt: str, *args: str) -> str:
    """A turn through the bridge (interactive claude writes the transcript and, 2.1.329, its cost-state)."""
    return results(run_ok(bed.bridge("-p", prompt, *args, *SJ)))[-1]["session_id"]


@pytest.fixture
def resumed_twice(bed) -> str:
    """A session of two bridge turns, the second itself resumed: its transcript holds two cost-states
    (2.1.329), the last one the sum of both runs."""
    sid = bridge_session(bed, "first turn")
    assert bridge_session(bed, "second turn", "--resume", sid) == sid
    return sid


def compare(bed, theirs: dict, ours: dict, restored) -> None:
    version = bed.version
    a, b = not_the_turn(theirs, version), not_the_turn(ours, version)
    assert b == a
    if dialect(version).restores_cost_state:
        assert restored is not None and a["total"] == round(restored["total_cost_usd"], 12)
        assert theirs["duration_api_ms"] >= restored["duration_api_ms"] <= ours["duration_api_ms"]
    else:
        assert a["total"] == 0 and all(v == 0 for m in a["models"].values() for k, v in m.items() if k in COUNTERS)


@pytest.mark.parametrize("how", ["resume", "continue", "fork", "continue-fork"])
def test_resumed_session_counts_what_claude_p_counts(bed, resumed_twice, how):
    sid = resumed_twice
    args = {"resume": ["--resume", sid], "continue": ["--continue"],
            "fork": ["--resume", sid, "--fork-session"], "continue-fork": ["--continue", "--fork-session"]}[how]
    restored = restored_state(next(t for t in bed.transcripts() if t.stem == sid), sid, bed.version)
    (theirs,), (ours,) = side_by_side(bed, "third turn", *args)
    assert (ours["session_id"] == sid) == (theirs["session_id"] == sid) == (how in ("resume", "continue"))
    compare(bed, theirs, ours, restored)


def test_session_of_claude_p_turns_resumed(bed):
    """Turns by `claude -p` (its own cost-state records), then one more through each."""
    sid = results(run_ok(bed.claude_p("-p", "first turn", *SJ)))[-1]["session_id"]
    run_ok(bed.claude_p("-p", "second turn", "--resume", sid, *SJ))
    restored = restored_state(bed.transcripts()[0], sid, bed.version)
    (theirs,), (ours,) = side_by_side(bed, "third turn", "--resume", sid)
    compare(bed, theirs, ours, restored)


@pytest.mark.newest_cli_only   # (2.1.197 restores nothing: test_resumed_session_counts_what_claude_p_counts covers it)
def test_local_command_on_a_resumed_session_is_exact(bed, resumed_twice):
    """No model call: the whole totals are what was restored, identical field by field (2.1.329:
    duration_api_ms 0, restored entries without canonicalModel/provider/costBasis)."""
    (theirs,), (ours,) = side_by_side(bed, "/context", "--resume", resumed_twice)
    for k in ("total_cost_usd", "modelUsage", "duration_api_ms"):
        assert json.dumps(ours[k]) == json.dumps(theirs[k]), k
    (theirs,), (ours,) = side_by_side(bed, "/clear", "--resume", resumed_twice)
    assert (ours["total_cost_usd"], ours["modelUsage"]) == (theirs["total_cost_usd"], theirs["modelUsage"])


@pytest.mark.newest_cli_only   # (2.1.197 restores nothing: test_resumed_session_counts_what_claude_p_counts covers it)
def test_budget_counts_only_the_run(bed, resumed_twice):
    """--max-budget-usd compares what this run spends: a restored total above it is no error."""
    restored = restored_state(next(t for t in bed.transcripts() if t.stem == resumed_twice), resumed_twice,
                              bed.version)
    budget = str(restored["total_cost_usd"] * 0.9) if restored else "0.01"
    (theirs,), (ours,) = side_by_side(bed, "third turn", "--resume", resumed_twice, "--max-budget-usd", budget)
    assert (ours["subtype"], ours["is_error"]) == (theirs["subtype"], theirs["is_error"]) == ("success", False)
    compare(bed, theirs, ours, restored)


@pytest.mark.newest_cli_only   # (2.1.197 restores nothing: test_resumed_session_counts_what_claude_p_counts covers it)
def test_stream_input_on_a_resumed_session(bed, resumed_twice):
    """stream-json input: the first result starts from the restored state, the next from the first."""
    sid = resumed_twice
    restored = restored_state(next(t for t in bed.transcripts() if t.stem == sid), sid, bed.version)
    stdin = "".join(json.dumps({"type": "user", "message": {"role": "user", "content": t}}) + "\n"
                    for t in ("stream one", "stream two"))
    theirs, ours = side_by_side(bed, "--resume", sid, "--input-format", "stream-json", input=stdin)
    compare(bed, theirs[0], ours[0], restored)
    for side in (theirs, ours):
        later = not_the_turn(side[1], bed.version)
        assert later["total"] == round(side[0]["total_cost_usd"], 12)
        assert side[1]["duration_api_ms"] >= side[0]["duration_api_ms"]
    assert [list(e) for e in ours[1]["modelUsage"].values()] == [list(e) for e in theirs[1]["modelUsage"].values()]


@pytest.mark.newest_cli_only
def test_agent_sdk_resume(bed, resumed_twice):
    """The Agent SDK's ``resume=`` (the SDK path of the bridge: stream-json input, control protocol)
    reports the same restored totals as the SDK on the real CLI."""
    sdk = pytest.importorskip("claude_agent_sdk")
    anyio = pytest.importorskip("anyio")
    import sys
    from pathlib import Path
    bridge = str(Path(sys.executable).parent / "claude-bridge")
    sid = resumed_twice
    restored = restored_state(next(t for t in bed.transcripts() if t.stem == sid), sid, bed.version)

    def result_of(cli: str) -> dict:
        got: list = []

        async def go():
            opts = sdk.ClaudeAgentOptions(cli_path=cli, cwd=str(bed.cwd), env=dict(bed.env), resume=sid)
            async for m in sdk.query(prompt="sdk turn", options=opts):
                got.append(m)
        anyio.run(go)
        res = got[-1]
        assert isinstance(res, sdk.ResultMessage) and not res.is_error
        return {"total_cost_usd": res.total_cost_usd, "modelUsage": res.model_usage, "usage": res.usage,
                "duration_api_ms": res.duration_api_ms, "session_id": res.session_id}

    snap = Snapshot(bed)
    theirs = result_of(bed.claude_bin)
    snap.restore()
    ours = result_of(bridge)
    snap.restore()
    assert ours["session_id"] == theirs["session_id"] == sid
    compare(bed, theirs, ours, restored)
