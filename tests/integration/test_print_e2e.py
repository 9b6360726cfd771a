"""claude-bridge -p end to end: the real claude CLI (each pinned version) in tmux, the mock model.

Every test runs through the ``bed`` fixture, which also asserts that no claude process, tmux
server, socket or run directory is left behind afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from tests.conftest import assert_no_leftovers, claude_processes, stream_lines

pytestmark = pytest.mark.integration

FORMATS = ["text", "json", "stream-json"]


def fmt_args(fmt: str) -> list[str]:
    return ["--output-format", fmt] + (["--verbose"] if fmt == "stream-json" else [])


def result_of(fmt: str, stdout: bytes) -> dict | str:
    if fmt == "text":
        return stdout.decode()
    if fmt == "json":
        return json.loads(stdout)
    lines = stream_lines(stdout)
    assert lines[-1]["type"] == "result"
    return lines[-1]


@pytest.mark.parametrize("fmt", FORMATS)
def test_plain_reply(bed, fmt):
    p = bed.bridge("-p", "hello bridge", *fmt_args(fmt))
    assert p.returncode == 0, p.stderr.decode()
    assert p.stderr == b""
    if fmt == "text":
        assert p.stdout == b"MOCK-REPLY to: hello bridge\n"
        return
    res = result_of(fmt, p.stdout)
    assert res["type"] == "result" and res["subtype"] == "success" and res["is_error"] is False
    assert res["result"] == "MOCK-REPLY to: hello bridge"
    assert res["num_turns"] == 1
    assert res["stop_reason"] == "end_turn"
    assert res["usage"]["output_tokens"] == len("MOCK-REPLY to: hello bridge") // 4
    assert res["usage"]["cache_creation_input_tokens"] == 7
    assert res["total_cost_usd"] > 0
    if fmt == "stream-json":
        lines = stream_lines(p.stdout)
        assert [(m["type"], m.get("subtype")) for m in lines] == [
            ("system", "init"), ("assistant", None), ("result", "success")]
        init = lines[0]
        assert init["cwd"] == str(bed.cwd)
        assert init["session_id"] == res["session_id"] == lines[1]["session_id"]
        assert lines[1]["message"]["content"] == [{"type": "text", "text": "MOCK-REPLY to: hello bridge"}]
    # the session id reported is the session claude really used: its transcript exists
    assert [t.stem for t in bed.transcripts()] == [res["session_id"]]


@pytest.mark.parametrize("fmt", FORMATS)
def test_tool_use_turn(bed, fmt):
    p = bed.bridge("-p", "run it MOCK:tool=echo_bridged", *fmt_args(fmt))
    assert p.returncode == 0, p.stderr.decode()
    if fmt == "text":
        assert p.stdout == b"MOCK-TOOL-DONE: bridged\n"
        return
    res = result_of(fmt, p.stdout)
    assert res["result"] == "MOCK-TOOL-DONE: bridged"
    assert res["num_turns"] == 2
    # usage is summed once per API response: two responses
    assert res["usage"]["cache_creation_input_tokens"] == 14
    if fmt == "stream-json":
        lines = stream_lines(p.stdout)
        kinds = [(m["type"], [c["type"] for c in m["message"]["content"]] if "message" in m else m.get("subtype"))
                 for m in lines]
        assert kinds == [("system", "init"), ("assistant", ["text"]), ("assistant", ["tool_use"]),
                         ("user", ["tool_result"]), ("assistant", ["text"]), ("result", "success")]
        tool_use = lines[2]["message"]["content"][0]
        tool_result = lines[3]["message"]["content"][0]
        assert tool_use["name"] == "Bash" and tool_use["input"]["command"] == "echo bridged"
        assert tool_result["tool_use_id"] == tool_use["id"]
        assert lines[3]["tool_use_result"]["stdout"] == "bridged"
        assert lines[3]["parent_tool_use_id"] is None


@pytest.mark.parametrize("fmt", FORMATS)
def test_three_text_blocks_result_is_last_block(bed, fmt):
    p = bed.bridge("-p", "blocks MOCK:multi=3", *fmt_args(fmt))
    assert p.returncode == 0, p.stderr.decode()
    res = result_of(fmt, p.stdout)
    text = res if fmt == "text" else res["result"]
    assert text.rstrip("\n").startswith("Block 3 of 3")
    assert "Block 1 of 3" not in text
    if fmt == "stream-json":
        assistants = [m for m in stream_lines(p.stdout) if m["type"] == "assistant"]
        assert [a["message"]["content"][0]["text"][:12] for a in assistants] == [
            "Block 1 of 3", "Block 2 of 3", "Block 3 of 3"]
        assert len({a["message"]["id"] for a in assistants}) == 1


def big_prompt(size: int = 50_000) -> str:
    lines = [f"line {i:05d}: ünïcödé ✓ 🚀 שלום \"q\" 'q' $HOME `x` \\ %s {{}} | ; & > <"
             for i in range(size // 75 + 1)]
    text = "MOCK:echo\n" + "\n".join(lines) + "\n  trailing spaces  "
    assert len(text.encode()) > size
    return text


@pytest.mark.parametrize("submit", ["launch", "paste"])
def test_50kb_multiline_prompt_arrives_byte_exact(bed, submit):
    prompt = big_prompt()
    env = dict(bed.env, CLAUDE_BRIDGE_SUBMIT=submit)
    p = bed.bridge("-p", prompt, "--output-format", "json", env=env)
    assert p.returncode == 0, p.stderr.decode()
    assert bed.mock.main_requests()[0]["prompt"] == prompt
    assert json.loads(p.stdout)["result"] == prompt


def test_1mb_prompt_on_stdin_arrives_byte_exact(bed):
    prompt = big_prompt(1_000_000)
    p = bed.bridge("-p", "--output-format", "json", input=prompt)
    assert p.returncode == 0, p.stderr.decode()
    assert bed.mock.main_requests()[0]["prompt"] == prompt


def test_prompt_on_stdin_and_joined_with_argument(bed):
    p = bed.bridge("-p", "--output-format", "json", input="from stdin ✓\n")
    assert p.returncode == 0, p.stderr.decode()
    assert bed.mock.main_requests()[-1]["prompt"] == "from stdin ✓\n"
    p = bed.bridge("-p", "the argument", "--output-format", "json", input="and stdin\n")
    assert p.returncode == 0, p.stderr.decode()
    assert bed.mock.main_requests()[-1]["prompt"] == "the argument\nand stdin\n"


@pytest.mark.parametrize("fmt", FORMATS)
def test_api_error_exits_1_with_is_error(bed, fmt):
    p = bed.bridge("-p", "boom MOCK:err=500", *fmt_args(fmt))
    assert p.returncode == 1, p.stderr.decode()
    if fmt == "text":
        assert p.stdout.startswith(b"API Error: 500")
        assert p.stdout.endswith(b"\n")
        return
    res = result_of(fmt, p.stdout)
    assert res["is_error"] is True
    assert res["subtype"] == "success"
    assert res["api_error_status"] == 500
    assert res["result"].startswith("API Error: 500")


def test_shell_metacharacters_quotes_emoji_rtl(bed):
    prompt = "MOCK:echo $(touch /tmp/pwned) `id` ; rm -rf x && echo \"dq\" 'sq' \\ 😀👍🏽 مرحبا שלום --flag -p"
    p = bed.bridge("-p", "--output-format", "json", "--", prompt)
    assert p.returncode == 0, p.stderr.decode()
    assert json.loads(p.stdout)["result"] == prompt
    assert bed.mock.main_requests()[0]["prompt"] == prompt
    assert not os.path.exists("/tmp/pwned")


def test_usage_errors_match_claude(bed):
    p = bed.bridge("-p", "x", "--output-format", "stream-json")
    assert (p.returncode, p.stdout) == (1, b"")
    assert p.stderr.decode().strip() == "Error: When using --print, --output-format=stream-json requires --verbose"
    p = bed.bridge("-p", "")
    assert p.returncode == 1
    assert p.stderr.decode().strip() == (
        "Error: Input must be provided either through stdin or as a prompt argument when using --print")
    p = bed.bridge("-p", "x", "--frobnicate")
    assert p.returncode == 1
    assert p.stderr.decode().strip() == "error: unknown option '--frobnicate'"
    assert bed.mock.main_requests() == []


def test_sigterm_cleans_up_and_exits_143(bed):
    proc = bed.spawn_bridge("-p", "slow MOCK:slow=0.5 MOCK:long=4000", "--output-format", "stream-json", "--verbose")
    deadline = time.monotonic() + 30
    while not claude_processes(bed.home) or not bed.mock.main_requests():
        assert time.monotonic() < deadline, "claude never started"
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 143, err.decode()
    assert_no_leftovers(bed)


def test_sigint_exits_130(bed):
    proc = bed.spawn_bridge("-p", "slow MOCK:slow=0.5 MOCK:long=4000")
    deadline = time.monotonic() + 30
    while not bed.mock.main_requests():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert_no_leftovers(bed)


def test_fresh_home_is_seeded_without_widening_trust(bed):
    p = bed.bridge("-p", "hi", "--output-format", "json")
    assert p.returncode == 0, p.stderr.decode()
    cfg = json.loads((bed.home / ".claude.json").read_text())
    assert cfg["hasCompletedOnboarding"] is True
    entry = cfg.get("projects", {}).get(str(bed.cwd), {})
    assert not entry.get("hasTrustDialogAccepted"), "trust must be temporary"


MUST_MATCH = ("type", "subtype", "is_error", "api_error_status", "num_turns", "result", "stop_reason",
              "permission_denials", "terminal_reason")
USAGE_MUST_MATCH = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


@pytest.mark.parametrize("prompt", ["side by side", "side MOCK:tool=echo_x", "side MOCK:multi=3",
                                    "side MOCK:tools2", "side MOCK:err=500"])
def test_result_fields_match_real_claude_p(bed, prompt):
    ours = bed.bridge("-p", prompt, "--output-format", "json")
    theirs = bed.claude_p("-p", prompt, "--output-format", "json")
    assert ours.returncode == theirs.returncode, ours.stderr.decode()
    a, b = json.loads(ours.stdout), json.loads(theirs.stdout)
    assert list(a) == list(b), "same keys in the same order"
    for k in MUST_MATCH:
        if k == "result" and "tools2" in prompt:
            # the model's own words differ: interactive claude sends the two parallel tool results in
            # completion order, -p in call order, and the mock's reply lists them as received
            assert sorted(a[k].split(": ", 1)[1].split(" / ")) == sorted(b[k].split(": ", 1)[1].split(" / "))
            continue
        assert a[k] == b[k], k
    for k in USAGE_MUST_MATCH:
        assert a["usage"][k] == b["usage"][k], k
    assert a["session_id"] != b["session_id"]


def test_callers_slow_stop_hook_finishes_before_the_bridge_returns(bed):
    """claude -p runs the caller's Stop hooks to their end before it exits; so must a cold bridge run
    (it waits for turn_duration, written after the hooks, instead of ending on its own Stop hook)."""
    marks = {who: bed.cwd / f"stop-hook-{who}" for who in ("claude", "bridge")}
    for who, mark in marks.items():
        settings = json.dumps({"hooks": {"Stop": [{"hooks": [
            {"type": "command", "command": f"sleep 3; echo done > {mark}"}]}]}})
        run = bed.claude_p if who == "claude" else bed.bridge
        p = run("-p", "hello hooks", "--output-format", "json", "--settings", settings)
        assert p.returncode == 0, p.stderr.decode()
        assert json.loads(p.stdout)["result"] == "MOCK-REPLY to: hello hooks"
        assert mark.read_text() == "done\n", f"{who}: the Stop hook was cut short"
