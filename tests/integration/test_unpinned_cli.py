"""A claude that updated itself to a version with no bundled tables (scripts/unpinned-cli-version,
a released 2.1.x between two pinned ones), run for real against the mock: the bridge derives its
option table from its own --help at first use, keeps it in the state directory, says so in
`doctor`, and answers as `claude -p` does."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from claude_bridge_tmux.invocation import flags
from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.newest_cli_only]


def unpinned_version() -> str:
    lines = (ROOT / "scripts" / "unpinned-cli-version").read_text().splitlines()
    return next(x.strip() for x in lines if x.strip() and not x.startswith("#"))


@pytest.fixture
def unpinned(bed):
    """The bed with the unpinned claude (installed by scripts/setup; install-claude is idempotent)."""
    version = unpinned_version()
    assert version not in flags.known_versions()
    out = subprocess.run([str(ROOT / "scripts" / "install-claude"), version], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    bed.claude_bin = out.stdout.strip().splitlines()[-1]
    bed.env["CLAUDE_BRIDGE_CLAUDE_BIN"] = bed.claude_bin
    return bed


def _result(p) -> dict:
    assert p.returncode == 0, p.stderr.decode()
    return json.loads(p.stdout)


def test_an_unpinned_claude_gets_a_table_of_its_own_and_answers_like_claude_p(unpinned, tmp_path):
    version = unpinned_version()
    ours = _result(unpinned.bridge("-p", "hello there", "--output-format", "json"))
    theirs = _result(unpinned.claude_p("-p", "hello there", "--output-format", "json"))
    for key in ("type", "subtype", "is_error", "num_turns", "result", "stop_reason", "usage"):
        assert ours[key] == theirs[key], key
    # derived once, from its --help, kept private in the state directory
    kept = tmp_path / "state" / "derived" / f"flags-{version}.json"
    raw = json.loads(kept.read_bytes())
    assert raw["version"] == version and raw["derived_from"] in flags.known_versions()
    assert oct(kept.stat().st_mode & 0o777) == "0o600"
    # doctor names what was derived
    p = subprocess.run([sys.executable, "-m", "claude_bridge_tmux", "doctor", "--json"], capture_output=True,
                       text=True, env=unpinned.env, cwd=unpinned.cwd, timeout=60, stdin=subprocess.DEVNULL)
    check = next(c for c in json.loads(p.stdout)["checks"] if c["name"] == "flags")
    assert f"claude {version} is not pinned" in check["detail"] and "derived from its --help" in check["detail"]
    # an option of its --help parses as claude parses it: the value is not taken for the prompt
    p = unpinned.bridge("-p", "--effort", "low", "hi again", "--output-format", "json")
    assert _result(p)["result"] == theirs["result"].replace("hello there", "hi again")
