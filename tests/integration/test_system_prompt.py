"""--system-prompt / --system-prompt-file through the interactive pane, side by side with the real
``claude -p`` (each pinned CLI): what the model receives (the request's system blocks, tools, first
user message) and the errors. docs/cli-behaviour.md §9 names the one block that differs and why."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

SDK_IDENTITY = "You are a Claude agent, built on Anthropic's Claude Agent SDK."
SDK_PRESET_IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude, running within the Claude Agent SDK."
CLI_IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."


def request_of(bed, run, *args: str) -> dict:
    """The body of the conversation's request made by ``run`` (``bed.claude_p`` or ``bed.bridge``)."""
    bed.mock.clear()
    p = run("-p", "sp check", "--output-format", "json", *args)
    assert p.returncode == 0, p.stderr.decode()
    assert json.loads(p.stdout)["result"] == "MOCK-REPLY to: sp check"
    [req] = bed.mock.main_requests()
    return req["body"]


@pytest.mark.parametrize("case", ["text", "file", "append", "empty"])
def test_the_model_gets_claude_ps_system_prompt(bed, case):
    (bed.cwd / "sp.txt").write_text("You answer like a pirate.\nAlways.\n")
    args = {"text": ["--system-prompt", "You answer like a pirate."],
            "file": ["--system-prompt-file", "sp.txt"],
            "append": ["--system-prompt", "Base prompt.", "--append-system-prompt", "Appended part."],
            "empty": ["--system-prompt", ""]}[case]
    theirs, ours = request_of(bed, bed.claude_p, *args), request_of(bed, bed.bridge, *args)
    a, b = theirs["system"], ours["system"]
    assert len(a) == len(b) == (2 if case == "empty" else 3)
    # 0: the billing header names the entrypoint: -p "sdk-cli", the interactive CLI "cli" (not disguised)
    assert a[0]["text"].replace("cc_entrypoint=sdk-cli;", "cc_entrypoint=cli;") == b[0]["text"]
    # 1: the identity line interactive claude always sends (chosen by print mode, no flag or setting)
    assert a[1]["text"] == (SDK_PRESET_IDENTITY if case == "append" else SDK_IDENTITY)
    assert b[1]["text"] == CLI_IDENTITY
    assert a[1].get("cache_control") == b[1].get("cache_control")
    # 2: the caller's system prompt, exactly -p's (no Claude Code prompt around it)
    assert a[2:] == b[2:]
    if case != "empty":
        want = {"text": "You answer like a pirate.", "file": "You answer like a pirate.\nAlways.\n",
                "append": "Base prompt.\n\nAppended part."}[case]
        assert b[2]["text"] == want
    assert [t["name"] for t in ours["tools"]] == [t["name"] for t in theirs["tools"]]
    assert ours["messages"][0] == theirs["messages"][0]       # system-reminders and the prompt


@pytest.mark.parametrize("path", ["missing.txt", "/nonexistent/dir/sp.txt"])
def test_missing_system_prompt_file_is_claude_ps_error(bed, path):
    args = ("-p", "x", "--system-prompt-file", path)
    real, p = bed.claude_p(*args), bed.bridge(*args)
    assert (p.returncode, p.stdout, p.stderr) == (real.returncode, real.stdout, real.stderr)
    assert p.returncode == 1 and p.stderr.decode().startswith("Error: System prompt file not found: ")
    assert bed.mock.main_requests() == []


def test_system_prompt_with_system_prompt_file_as_claude_p(bed):
    """2.1.197 refuses the pair; 2.1.329 joins the file's text and the prompt's."""
    (bed.cwd / "sp.txt").write_text("From the file.")
    args = ("-p", "both", "--system-prompt", "From the flag.", "--system-prompt-file", "sp.txt")
    real = bed.claude_p(*args)
    theirs = [r["body"]["system"][2:] for r in bed.mock.main_requests()]
    bed.mock.clear()
    p = bed.bridge(*args)
    assert (p.returncode, p.stdout, p.stderr) == (real.returncode, real.stdout, real.stderr)
    assert [r["body"]["system"][2:] for r in bed.mock.main_requests()] == theirs
