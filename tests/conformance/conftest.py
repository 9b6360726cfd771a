"""Conformance suite fixtures: one run of every scenario on every pinned CLI, shared by all tests,
and REPORT.md written at the end of the session (see harness.py)."""

from __future__ import annotations

import os

import pytest

from tests.conformance import harness
from tests.conftest import claude_binaries

_RUN: dict = {}


@pytest.fixture(scope="session")
def conformance_run() -> dict:
    """{(version, scenario name): Comparison} — claude -p and claude-bridge -p, side by side."""
    if "comps" not in _RUN:
        bins = claude_binaries()
        if not bins:
            pytest.skip("no claude CLI (npm missing)")
        workers = int(os.environ.get("CLAUDE_BRIDGE_CONFORMANCE_WORKERS") or 8)
        _RUN["comps"] = harness.run_all(bins, workers=workers)
    return {(c.version, c.scenario.name): c for c in _RUN["comps"]}


def pytest_sessionfinish(session, exitstatus):
    comps = _RUN.get("comps")
    if not comps:
        return
    allow = harness.load_allowlist()
    if os.environ.get("CLAUDE_BRIDGE_CONFORMANCE_UPDATE"):
        harness.update_expected(comps, allow)
        allow = harness.load_allowlist()
    harness.write_report(comps, allow)
