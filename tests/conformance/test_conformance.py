"""`claude -p` vs `claude-bridge -p`, field by field, on every pinned CLI version.

Each scenario of ``harness.SCENARIOS`` runs through the real ``claude -p`` and through the bridge
(the real interactive CLI in tmux) against the same mock model; the normalised outputs are
compared field by field. The set of differing fields of every scenario must equal the checked-in
allow-list (``allowlist.json``), and every allowed difference must carry a reason: a new
difference fails, and so does a fixed one (remove it from the list). ``REPORT.md`` is regenerated
at the end of the session; ``CLAUDE_BRIDGE_CONFORMANCE_UPDATE=1`` rewrites the expected sets
(reasons are written by hand).
"""

from __future__ import annotations

import pytest

from tests.conformance import harness
from tests.conftest import claude_binaries

pytestmark = pytest.mark.integration

VERSIONS = [v for v, _ in claude_binaries()] or ["none"]
CASES = [(v, s.name) for v in VERSIONS for s in harness.SCENARIOS]


@pytest.mark.parametrize("version,name", CASES, ids=[f"{v}-{n}" for v, n in CASES])
def test_scenario_differences_are_exactly_the_allowed_ones(conformance_run, version, name):
    c = conformance_run[(version, name)]
    allow = harness.load_allowlist()
    expected = set(allow.get("expected", {}).get(version, {}).get(name, []))
    got = set(c.diffs)
    detail = "\n".join(f"  {f}: claude -p {harness.short(a, 300)} | bridge {harness.short(b, 300)}"
                       for f, (a, b) in sorted(c.diffs.items()) if f not in expected)
    assert not (got - expected), f"new differences in {version} {name}:\n{detail}"
    # a "racy" reason (e.g. a side request that may or may not finish before -p prints) may come and go
    racy = {f for f in expected if (harness.reason_entry(allow, version, f) or {}).get("racy")}
    assert not (expected - got - racy), f"fixed (remove from allowlist.json): {sorted(expected - got - racy)}"


def test_every_allowed_difference_has_a_reason():
    allow = harness.load_allowlist()
    missing = [(v, n, f) for v, per in allow.get("expected", {}).items() for n, fields in per.items()
               for f in fields if not harness.reason_for(allow, v, f)]
    assert not missing, missing
    names = {s.name for s in harness.SCENARIOS}
    stale = [(v, n) for v, per in allow.get("expected", {}).items() for n in per if n not in names]
    assert not stale, f"allow-list entries for unknown scenarios: {stale}"


def test_normaliser_keeps_correlations_and_drops_run_values():
    n = harness.Normaliser("/tmp/cf-x-abc")
    out = n.value({"session_id": "0d5e3063-8f9b-4378-b02a-0273e5ea063b", "duration_ms": 12,
                   "cwd": "/tmp/cf-x-abc/work", "uuid": "d5caef05-0dbf-40a7-9980-2dc411802af3",
                   "a": "toolu_2fe58b5be4354d7d8d32d3bd", "b": "toolu_2fe58b5be4354d7d8d32d3bd",
                   "c": "toolu_187a05ed5dd1416d9d07ea94", "t": "2026-11-21T11:59:25.303Z"})
    assert out == {"session_id": "<session>", "duration_ms": "<ms>", "cwd": "<ROOT>/work", "uuid": "<uuid>",
                   "a": "<toolu1>", "b": "<toolu1>", "c": "<toolu2>", "t": "<TS>"}


def test_diff_reports_key_order_missing_and_sequence():
    s = harness.Scenario("x.stream-json", (), fmt="stream-json")
    a = harness.RunOutput('{"type":"system","subtype":"init","a":1}\n{"type":"result","x":1,"y":2}\n', "", 0, "/r1", 0)
    b = harness.RunOutput('{"type":"system","subtype":"init","a":1}\n{"type":"assistant"}\n'
                          '{"type":"result","y":2,"x":1,"z":3}\n', "", 0, "/r2", 0)
    d = harness.diff_outputs(s, a, b)
    assert set(d) == {"stream:sequence", "assistant#1:extra-in-bridge", "result:key-order", "result.z"}


def test_parallel_tool_results_compare_order_free():
    s = harness.Scenario("t.json", (), fmt="json", unordered_tools=True)
    a = harness.RunOutput('{"result":"MOCK-TOOLS2-DONE: two / one"}\n', "", 0, "/r1", 0)
    b = harness.RunOutput('{"result":"MOCK-TOOLS2-DONE: one / two"}\n', "", 0, "/r2", 0)
    assert harness.diff_outputs(s, a, b) == {}
