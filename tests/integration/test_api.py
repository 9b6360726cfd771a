"""Python API on the real CLI: a multi-turn Session, and Pool.ask fan-out with schema validation."""

from __future__ import annotations

import asyncio
import json

import pytest

from claude_bridge_tmux.api import BridgeError, Pool, SchemaError, Session, flags_to_argv
from tests.integration.test_pool import pool, pool_cmd, status  # noqa: F401 - fixture

pytestmark = pytest.mark.integration
NEWEST_CLI_ONLY = True      # the Python API layer; the pane and turn logic under it run on every CLI elsewhere


def test_flags_to_argv():
    assert flags_to_argv({"model": "m", "allowed_tools": ["A", "B"], "verbose": True, "x": None}) == [
        "--model=m", "--allowed-tools=A", "--allowed-tools=B", "--verbose"]


def test_session_keeps_the_conversation(bed):
    with Session(cwd=str(bed.cwd), env=bed.env) as s:
        first = s.send("turn one")
        events = list(s.stream("turn two MOCK:tool=echo_api"))
    assert first["result"] == "MOCK-REPLY to: turn one"
    assert [e["type"] for e in events] == ["system", "assistant", "assistant", "user", "assistant", "result"]
    assert events[0]["subtype"] == "init" and events[0]["session_id"] == first["session_id"]
    assert events[-1]["result"] == "MOCK-TOOL-DONE: api"
    assert first["session_id"] == events[-1]["session_id"]
    reqs = bed.mock.main_requests()
    assert reqs[1]["nmsg"] > reqs[0]["nmsg"], "the second turn carries the first"


def test_session_yields_what_the_cli_prints(bed):
    """One API turn = the lines of `claude-bridge -p --output-format stream-json --verbose`."""
    with Session(cwd=str(bed.cwd), env=bed.env) as s:
        events = list(s.stream("same as the cli MOCK:tool=echo_same"))
    cli = bed.bridge("-p", "same as the cli MOCK:tool=echo_same", "--output-format", "stream-json", "--verbose")
    lines = [json.loads(line) for line in cli.stdout.splitlines()]
    assert [(e["type"], e.get("subtype")) for e in events] == [(e["type"], e.get("subtype")) for e in lines]
    assert list(events[-1]) == list(lines[-1])
    assert events[-1]["result"] == lines[-1]["result"] == "MOCK-TOOL-DONE: same"


def test_session_resume_and_fork(bed):
    with Session(cwd=str(bed.cwd), env=bed.env) as s:
        first = s.send("remember the word kiwi")
    sid = first["session_id"]
    with Session(cwd=str(bed.cwd), env=bed.env, resume=sid) as s:
        again = s.send("resumed turn")
    assert again["session_id"] == sid
    with Session(cwd=str(bed.cwd), env=bed.env, resume=sid, fork_session=True) as s:
        forked = s.send("forked turn")
    assert forked["session_id"] != sid
    reqs = [r for r in bed.mock.main_requests() if r["prompt"] in ("resumed turn", "forked turn")]
    assert len(reqs) == 2 and all(r["nmsg"] >= 3 for r in reqs), "both carry the earlier conversation"


def test_session_max_turns(bed):
    with Session(cwd=str(bed.cwd), env=bed.env, max_turns=1) as s:
        result = s.send("loop MOCK:toolloop")
    assert result["subtype"] == "error_max_turns" and result["is_error"] is True
    assert result["num_turns"] == 2


def test_session_max_budget(bed):
    with Session(cwd=str(bed.cwd), env=bed.env, max_budget_usd="0.0000001") as s:
        result = s.send("plain")
    assert result["subtype"] == "error_max_budget_usd"


def test_session_json_schema(bed):
    schema = json.dumps({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]})
    with Session(cwd=str(bed.cwd), env=bed.env, json_schema=schema) as s:
        result = s.send("answer MOCK:structured")
    real = json.loads(bed.claude_p("-p", "answer MOCK:structured", "--json-schema", schema,
                                   "--output-format", "json").stdout)
    assert result["structured_output"] == real["structured_output"]
    assert (result["subtype"], result["is_error"]) == (real["subtype"], real["is_error"]) == ("success", False)


def test_session_bad_flag_is_a_bridge_error(bed):
    with pytest.raises(BridgeError, match="unknown option"):
        Session(cwd=str(bed.cwd), env=bed.env, frobnicate=True)


def test_pool_ask_fan_out_and_schema(pool):  # noqa: F811
    p = Pool(cwd=str(pool.cwd), env=pool.env, start=False)

    async def main():
        answers = await asyncio.gather(*(p.ask(f"fan {i}") for i in range(3)))
        data = await p.ask('colours MOCK:say=["red","green"]', json_schema={"type": "array", "items": {"type": "string"}})
        return answers, data

    answers, data = asyncio.run(main())
    assert sorted(a["result"] for a in answers) == [f"MOCK-REPLY to: fan {i}" for i in range(3)]
    assert data["structured_output"] == ["red", "green"]
    with pytest.raises(SchemaError, match="does not match"):
        p.ask_sync("not json", json_schema={"type": "object"}, max_schema_retries=1)
    asked = [r for r in pool.mock.main_requests() if r["prompt"].startswith("not json")]
    assert len(asked) == 2, "one retry with the validation error"
    assert "previous answer was rejected" in asked[1]["prompt"].lower()


def test_pool_ask_validate_reasks_in_the_same_conversation_and_store_skips_answered_items(pool, tmp_path):  # noqa: F811
    store = tmp_path / "answers.sqlite"
    p = Pool(cwd=str(pool.cwd), env=pool.env, start=False, store=store)
    seen: list[str] = []

    def validate(result: dict) -> str | None:
        seen.append(result["result"])
        return None if len(seen) >= 2 else "Say it again, please"

    first = p.ask_sync("item one", item_id="one", validate=validate)
    assert first["result"] == "MOCK-REPLY to: Say it again, please"
    assert [r["prompt"] for r in pool.mock.main_requests()][-2:] == ["item one", "Say it again, please"]
    assert pool.mock.main_requests()[-1]["nmsg"] > pool.mock.main_requests()[-2]["nmsg"], "same conversation"
    n = len(pool.mock.main_requests())
    again = Pool(cwd=str(pool.cwd), env=pool.env, start=False, store=store)   # a restarted producer
    assert again.ask_sync("item one", item_id="one", validate=validate) == first
    assert len(pool.mock.main_requests()) == n, "an answered item is not asked again"
    from claude_bridge_tmux.api import ValidationFailed
    with pytest.raises(ValidationFailed, match="rejected 2 times"):
        p.ask_sync("never good", validate=lambda r: "still wrong", max_validation_retries=1)
