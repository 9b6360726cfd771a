"""SessionStart hooks of the caller's --settings: ``claude -p`` prints a ``system/hook_started`` and a
``system/hook_response`` line for each before ``system/init``, with or without --include-hook-events;
so does the bridge (from the interactive transcript; the bridge's own hooks never show). Side by side
with the real ``claude -p`` on each pinned CLI."""

from __future__ import annotations

import json

import pytest

from tests.conftest import stream_lines
from tests.integration.test_pool import pool, status  # noqa: F401  (the pool fixture)

pytestmark = pytest.mark.integration

HOOKS = [
    {"hooks": [{"type": "command", "command": "echo context for the model"}]},
    {"matcher": "startup|resume", "hooks": [{"type": "command", "command": "true"}]},
    {"hooks": [{"type": "command", "command": "echo only a warning >&2"}]},
    {"hooks": [{"type": "command", "command": "echo bad >&2; exit 1"}]},
    {"matcher": "clear", "hooks": [{"type": "command", "command": "echo never at startup"}]},
]
SETTINGS = json.dumps({"hooks": {"SessionStart": HOOKS}})
SJ = ("--output-format", "stream-json", "--verbose")


def head(lines: list[dict]) -> list[dict]:
    """The lines before system/init."""
    return lines[:next(i for i, m in enumerate(lines) if m.get("subtype") == "init")]


def values(lines: list[dict]) -> list[tuple]:
    return sorted((m["hook_name"], m["hook_event"], m["stdout"], m["stderr"], m["output"], m["exit_code"],
                   m["outcome"]) for m in lines if m.get("subtype") == "hook_response")


def shape(lines: list[dict]) -> list[tuple]:
    return [(m["type"], m.get("subtype"), tuple(m)) for m in lines]


def check_like_claude_p(ours: list[dict], theirs: list[dict], *, n: int) -> None:
    a, b = head(ours), head(theirs)
    assert shape(a) == shape(b) == [shape(b)[0]] * n + [shape(b)[n]] * n     # all starts, then the responses
    assert values(a) == values(b)
    assert {m["hook_id"] for m in a} == {m["hook_id"] for m in a if m["subtype"] == "hook_started"}
    sid = ours[-1]["session_id"]
    assert {m["session_id"] for m in a} == {sid}


def test_session_start_lines_as_claude_p(bed):
    args = ("-p", "hi", *SJ, "--settings", SETTINGS)
    real, p = bed.claude_p(*args), bed.bridge(*args)
    assert p.returncode == real.returncode == 0, p.stderr.decode()
    ours, theirs = stream_lines(p.stdout), stream_lines(real.stdout)
    check_like_claude_p(ours, theirs, n=4)
    assert ("SessionStart:startup", "SessionStart", "context for the model\n", "", "context for the model\n", 0,
            "success") in values(ours)
    assert [m["type"] for m in ours[8:]] == [m["type"] for m in theirs[8:]] == ["system", "assistant", "result"]
    # what the hook printed reached the model as with -p
    reqs = bed.mock.main_requests()
    assert "context for the model" in json.dumps(reqs[-1]["body"]["messages"])


def test_include_hook_events_and_json_verbose(bed):
    args = ("-p", "hi", *SJ, "--settings", SETTINGS, "--include-hook-events")
    real, p = bed.claude_p(*args), bed.bridge(*args)
    assert p.returncode == real.returncode == 0, p.stderr.decode()
    check_like_claude_p(stream_lines(p.stdout), stream_lines(real.stdout), n=4)
    # json --verbose: -p's array has no hook lines at all
    args = ("-p", "hi", "--output-format", "json", "--verbose", "--settings", SETTINGS, "--include-hook-events")
    real, p = bed.claude_p(*args), bed.bridge(*args)
    assert p.returncode == real.returncode == 0, p.stderr.decode()
    kinds = lambda out: [(m["type"], m.get("subtype")) for m in json.loads(out)]  # noqa: E731
    assert kinds(p.stdout) == kinds(real.stdout) == [("system", "init"), ("assistant", None), ("result", "success")]


def test_resumed_session_and_no_hooks(bed):
    first = bed.bridge("-p", "first", "--output-format", "json")
    sid = json.loads(first.stdout)["session_id"]
    args = ("-p", "again", *SJ, "--settings", SETTINGS, "--resume", sid)
    # -p resumes first, the bridge then resumes the same session: the hooks now say what the conversation
    # holds, so claude writes no record of them (their earlier records stand for them)
    for _ in range(2):
        real, p = bed.claude_p(*args), bed.bridge(*args)
        assert p.returncode == real.returncode == 0, p.stderr.decode()
        ours, theirs = stream_lines(p.stdout), stream_lines(real.stdout)
        check_like_claude_p(ours, theirs, n=4)
        assert {m["hook_name"] for m in head(ours)} == {"SessionStart:resume"}
    # without hooks of the caller's: nothing before system/init (the bridge's own hooks never show)
    p = bed.bridge("-p", "plain", *SJ)
    assert stream_lines(p.stdout)[0]["subtype"] == "init"


@pytest.mark.newest_cli_only
def test_through_a_pool_the_hooks_run_for_the_call(pool):  # noqa: F811  (the imported fixture)
    """A warm pane ran its SessionStart hooks when it started or was cleared: a call whose settings
    have SessionStart hooks gets a pane started for it, and prints -p's lines."""
    args = ("-p", "hi", *SJ, "--settings", SETTINGS)
    real = pool.claude_p(*args)
    for _ in range(2):
        p = pool.bridge(*args)
        assert p.returncode == 0, p.stderr.decode()
        check_like_claude_p(stream_lines(p.stdout), stream_lines(real.stdout), n=4)
    st = status(pool)
    assert st["jobs_total"] == 2
