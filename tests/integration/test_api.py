"""Python API on the real CLI: a multi-turn Session, and Pool.ask fan-out with schema validation."""

from __future__ import annotations

import asyncio
import json

import pytest

from claude_bridge_tmux.api import BridgeError, Pool, SchemaError, Session, flags_to_argv
from tests.integration.test_pool import pool, pool_cmd, status  # noqa: F401 - fixture

pytestmark = pytest.mark.integration


def test_flags_to_argv():
    assert flags_to_argv({"model": "m", "allowed_tools": ["A", "B"], "verbose": True, "x": None}) == [
        "--model=m", "--allowed-tools=A", "--allowed-tools=B", "--verbose"]


def test_session_keeps_the_conversation(bed):
    with Session(cwd=str(bed.cwd), env=bed.env) as s:
        first = s.send("turn one")
        events = list(s.stream("turn two MOCK:tool=echo_api"))
    assert first["result"] == "MOCK-REPLY to: turn one"
    assert [e["type"] for e in events] == ["assistant", "assistant", "user", "assistant", "result"]
    assert events[-1]["result"] == "MOCK-TOOL-DONE: api"
    assert first["session_id"] == events[-1]["session_id"]
    reqs = bed.mock.main_requests()
    assert reqs[1]["nmsg"] > reqs[0]["nmsg"], "the second turn carries the first"


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
