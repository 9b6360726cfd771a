"""--include-partial-messages: stream_event lines synthesised from transcript records, side by side
with `claude -p`. The bridge's grain is one content block: one delta per block where `-p` forwards
each SSE chunk, so sequences are compared with consecutive deltas (and `-p`'s per-delta thinking
estimates) collapsed."""

from __future__ import annotations

import json

import pytest

from tests.conftest import stream_lines

pytestmark = pytest.mark.integration

ARGS = ("--output-format", "stream-json", "--verbose", "--include-partial-messages")


def label(m: dict) -> str:
    if m["type"] == "stream_event":
        ev = m["event"]
        return "ev:" + ev["type"] + (":" + ev["delta"]["type"] if ev["type"] == "content_block_delta" else "")
    return m["type"] + (":" + m["subtype"] if m["type"] == "system" else "")


def collapsed(lines: list[dict]) -> list[str]:
    out: list[str] = []
    for m in lines:
        lab = label(m)
        if lab == "system:thinking_tokens" or (out and out[-1] == lab):
            continue
        out.append(lab)
    return out


def deltas_text(lines: list[dict]) -> dict[tuple[str, int], str]:
    """(message id, block index) -> the block's content rebuilt from its deltas."""
    acc: dict[tuple[str, int], str] = {}
    mid = None
    for m in lines:
        if m["type"] != "stream_event":
            continue
        ev = m["event"]
        if ev["type"] == "message_start":
            mid = ev["message"]["id"]
        elif ev["type"] == "content_block_delta":
            d = ev["delta"]
            piece = d.get("text") or d.get("thinking") or d.get("partial_json") or d.get("signature") or ""
            acc[(mid, ev["index"])] = acc.get((mid, ev["index"]), "") + piece
    return acc


@pytest.mark.parametrize("prompt", ["hello partial", "t MOCK:tool=echo_x MOCK:thinking", "m MOCK:multi=2"])
def test_partial_messages_like_claude_p(bed, prompt):
    real = bed.claude_p("-p", prompt, *ARGS)
    p = bed.bridge("-p", prompt, *ARGS)
    assert (p.returncode, p.stderr) == (real.returncode, real.stderr) == (0, b"")
    ours, theirs = stream_lines(p.stdout), stream_lines(real.stdout)
    assert collapsed(ours) == collapsed(theirs)
    # same keys per line kind (stream_event fields of the version included)
    assert {label(m): list(m) for m in ours if m["type"] != "result"} == \
        {label(m): list(m) for m in theirs if m["type"] != "result"}
    # the deltas rebuild each block, ending before its assistant line
    rebuilt = deltas_text(ours)
    for m in (x for x in ours if x["type"] == "assistant"):
        b = m["message"]["content"][0]
        text = {"text": b.get("text"), "thinking": (b.get("thinking") or "") + (b.get("signature") or ""),
                "tool_use": json.dumps(b.get("input"), separators=(",", ":"))}[b["type"]]
        assert text in rebuilt.values()
    ends = [m["event"] for m in ours if m["type"] == "stream_event" and m["event"]["type"] == "message_delta"]
    ref_ends = [m["event"] for m in theirs if m["type"] == "stream_event" and m["event"]["type"] == "message_delta"]
    assert ends == ref_ends               # final stop_reason and usage of each response


def test_partial_messages_need_stream_json(bed):
    for args in (("-p", "x", "--include-partial-messages"),
                 ("-p", "x", "--include-partial-messages", "--output-format", "json")):
        p, real = bed.bridge(*args), bed.claude_p(*args)
        assert (p.returncode, p.stdout, p.stderr) == (real.returncode, real.stdout, real.stderr)
        assert p.returncode == 1
