"""Smoke test: the real ``claude -p`` (each pinned version) against the project's mock model.

Checks that the mock's wire format is accepted by the real CLI: plain text, a Bash tool turn,
an HTTP 500 without retries, and byte-exact delivery of a large unicode prompt (``MOCK:echo``).
Binaries: ``CLAUDE_BRIDGE_CLAUDE_BINS`` (os.pathsep-separated) or ``scripts/install-claude``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from claude_bridge_tmux.testing.mock_api import MockServer
from tests.conftest import claude_binaries

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-ant-test-mock-0123456789abcdef"


def pytest_generate_tests(metafunc):  # parametrize 'cli' over the pinned CLIs (tests/conftest.py finds them)
    if "cli" in metafunc.fixturenames:
        bins = claude_binaries()
        if not bins:
            metafunc.parametrize("cli", [pytest.param(None, marks=pytest.mark.skip(reason="npm missing: no claude CLI"))])
        else:
            metafunc.parametrize("cli", [b for _, b in bins], ids=[v for v, _ in bins])


@pytest.fixture
def run_claude(tmp_path, cli):
    """Run ``claude ARGS`` in a seeded throwaway HOME against a fresh mock; -> (proc, mock)."""
    home, cwd = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    cwd.mkdir()
    (home / ".claude.json").write_text(json.dumps({
        "hasCompletedOnboarding": True, "lastOnboardingVersion": "2.1.197",
        "customApiKeyResponses": {"approved": [KEY[-20:]], "rejected": []},
        "projects": {str(cwd): {"hasTrustDialogAccepted": True}},
    }))
    servers = []

    def run(*args: str, stdin: str | None = None, timeout: float = 30):
        srv = MockServer(log_path=tmp_path / f"mock{len(servers)}.jsonl").start()
        servers.append(srv)
        env = {k: v for k, v in os.environ.items() if k not in ("CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT")}
        env.update(HOME=str(home), ANTHROPIC_BASE_URL=srv.url, ANTHROPIC_API_KEY=KEY, LANG="C.UTF-8",
                   CLAUDE_CODE_MAX_RETRIES="0", DISABLE_AUTOUPDATER="1")
        proc = subprocess.run([cli, *args], input=stdin, capture_output=True, text=True, env=env, cwd=cwd,
                              timeout=timeout, stdin=None if stdin is not None else subprocess.DEVNULL)
        return proc, srv

    yield run
    for s in servers:
        s.stop()


def _lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_plain_text(run_claude):
    p, srv = run_claude("-p", "hello json", "--output-format", "json")
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res["result"] == "MOCK-REPLY to: hello json"
    assert res["is_error"] is False and res["stop_reason"] == "end_turn" and res["num_turns"] == 1
    assert res["usage"]["input_tokens"] == 12 and res["usage"]["output_tokens"] == 6
    main = srv.main_requests()
    assert len(main) == 1 and main[0]["prompt"] == "hello json"
    assert main[0]["session_id"] == res["session_id"]  # parsed from metadata.user_id
    assert main[0]["user_agent"].startswith("claude-cli/")
    p, _ = run_claude("-p", "hello text")
    assert (p.returncode, p.stdout) == (0, "MOCK-REPLY to: hello text\n")


def test_tool_turn(run_claude):
    p, srv = run_claude("-p", "run MOCK:tool", "--output-format", "stream-json", "--verbose")
    assert p.returncode == 0, p.stderr
    lines = _lines(p.stdout)
    blocks = [(m["type"], c["type"]) for m in lines if m["type"] in ("assistant", "user")
              for c in m["message"]["content"]]
    assert blocks == [("assistant", "text"), ("assistant", "tool_use"), ("user", "tool_result"), ("assistant", "text")]
    tool_use = lines[[m["type"] for m in lines].index("assistant") + 1]["message"]["content"][0]
    assert tool_use["name"] == "Bash" and tool_use["input"]["command"] == "echo hi"
    res = lines[-1]
    assert res["result"] == "MOCK-TOOL-DONE: hi" and res["num_turns"] == 2
    assert [r["tool_result"] for r in srv.main_requests()] == [False, True]


def test_http_500_without_retries(run_claude):
    p, srv = run_claude("-p", "fail MOCK:err=500", "--output-format", "json")
    assert p.returncode == 1
    res = json.loads(p.stdout)
    assert res["is_error"] is True and res["api_error_status"] == 500
    assert res["result"].startswith("API Error: 500 Internal server error (mock).")
    assert [r["status"] for r in srv.main_requests()] == [500]


def test_echo_large_unicode_prompt(run_claude):
    lines = ["MOCK:echo ünïcödé ✓ 日本語 🚀 \"quotes\" \\backslash\ttab"]
    i = 0
    while sum(len(x) + 1 for x in lines) < 50_000:
        lines.append(f"line {i:05d} αβγ 中文 😀🎉 <tag> & {{json}} $HOME `tick` " + "x" * (i % 40))
        i += 1
    prompt = "\n".join(lines) + "\nthe end\n"
    p, srv = run_claude("-p", "--output-format", "json", stdin=prompt)
    assert p.returncode == 0, p.stderr
    assert srv.main_requests()[0]["prompt"] == prompt
    assert json.loads(p.stdout)["result"] == prompt
