"""--input-format stream-json (+ --replay-user-messages) through one pane, side by side with `claude -p`:
every user message on stdin is a turn of the same session, processed as it arrives."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import stream_lines

pytestmark = pytest.mark.integration

SJ_IN = ("-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose")


def msg(content) -> str:
    return json.dumps({"type": "user", "message": {"role": "user", "content": content}}) + "\n"


def shape(lines: list[dict]) -> list[tuple]:
    return [(m["type"], m.get("subtype"), m.get("isReplay")) for m in lines]


def test_two_turns_with_replay_like_claude_p(bed):
    stdin = msg("first turn") + msg([{"type": "text", "text": "second turn MOCK:tool=echo_2"}])
    args = (*SJ_IN, "--replay-user-messages")
    real = bed.claude_p(*args, input=stdin)
    theirs = [r["prompt"] for r in bed.mock.main_requests()]
    bed.mock.clear()
    p = bed.bridge(*args, input=stdin)
    assert (p.returncode, p.stderr) == (real.returncode, real.stderr) == (0, b"")
    ours, ref = stream_lines(p.stdout), stream_lines(real.stdout)
    assert shape(ours) == shape(ref)
    assert [r["prompt"] for r in bed.mock.main_requests()] == theirs
    results = [m for m in ours if m["type"] == "result"]
    ref_results = [m for m in ref if m["type"] == "result"]
    for a, b in zip(results, ref_results):
        assert list(a) == list(b)
        assert (a["result"], a["num_turns"], a["usage"]["input_tokens"]) == \
            (b["result"], b["num_turns"], b["usage"]["input_tokens"])
    # one session; cost / modelUsage cumulative over the run, usage per turn
    assert len({m["session_id"] for m in ours}) == 1
    assert results[1]["total_cost_usd"] > results[0]["total_cost_usd"]
    model = next(iter(results[1]["modelUsage"]))
    assert results[1]["modelUsage"][model]["inputTokens"] == \
        results[0]["usage"]["input_tokens"] + results[1]["usage"]["input_tokens"]
    replay = [m for m in ours if m.get("isReplay")]
    assert [m["message"] for m in replay] == [json.loads(msg("first turn"))["message"],
                                             json.loads(msg([{"type": "text", "text": "second turn MOCK:tool=echo_2"}]))["message"]]
    assert list(replay[0]) == list(next(m for m in ref if m.get("isReplay")))
    assert results[0]["session_id"] in [t.stem for t in bed.transcripts()]


def test_turns_are_processed_as_lines_arrive(bed):
    proc = subprocess.Popen([sys.executable, "-m", "claude_bridge_tmux", *SJ_IN], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=bed.env, cwd=bed.cwd)
    proc.stdin.write(msg("one").encode())
    proc.stdin.flush()
    first = []
    while True:
        line = proc.stdout.readline()
        assert line, proc.stderr.read().decode()
        first.append(json.loads(line))
        if first[-1]["type"] == "result":
            break
    assert first[-1]["result"] == "MOCK-REPLY to: one"      # answered while stdin is still open
    proc.stdin.write(msg("two").encode())
    proc.stdin.close()
    rest = stream_lines(proc.stdout.read())
    assert proc.wait(timeout=60) == 0
    assert rest[-1]["result"] == "MOCK-REPLY to: two" and rest[-1]["session_id"] == first[-1]["session_id"]


def test_empty_input_and_bad_lines_like_claude_p(bed):
    for stdin in ("", "not json\n" + msg("after")):
        p = bed.bridge(*SJ_IN, input=stdin)
        real = bed.claude_p(*SJ_IN, input=stdin)
        assert (p.returncode, p.stdout) == (real.returncode, real.stdout) == ((0, b"") if not stdin else (1, b""))
        if bed.facts.stream_input_error_v2 or not stdin:
            assert p.stderr == real.stderr
        else:
            assert p.stderr.startswith(b"Error parsing streaming input line: not json: SyntaxError: JSON Parse error: ")
    assert bed.mock.main_requests() == []


def test_usage_errors_like_claude(bed):
    for args in (("-p", "--input-format", "stream-json", "--output-format", "json"),
                 ("-p", "x", "--replay-user-messages", "--output-format", "stream-json", "--verbose")):
        p, real = bed.bridge(*args, input=""), bed.claude_p(*args, input="")
        assert (p.returncode, p.stdout, p.stderr) == (real.returncode, real.stdout, real.stderr)
        assert p.returncode == 1
