"""Pure parts of the emulated print-mode options: the tool gate's decisions, local slash command
records, partial-message events, hook event lines, json --verbose, the pool's stream-input routing."""

from __future__ import annotations

import io
import json

import pytest

from claude_bridge_tmux.follow.localcmd import is_local_command_record as _is_local_command_record
from claude_bridge_tmux.follow.localcmd import local_command_text as _local_command_text
from claude_bridge_tmux.follow.localcmd import unknown_command as _unknown_command
from claude_bridge_tmux.invocation import flags
from claude_bridge_tmux.invocation.plan import build_plan
from claude_bridge_tmux.output.emit import EmitOptions, Emitter
from claude_bridge_tmux.output.messages import hook_event_lines, local_command_message
from claude_bridge_tmux.output.result import budget_error, model_usage, responses, total_cost
from claude_bridge_tmux.pool.client import streams_input
from claude_bridge_tmux.run.turn import turn_gate

TS = "2026-11-21T12:00:00.000Z"


def plan(*argv, version="2.1.329"):
    table = flags.load_table(version)
    return build_plan(flags.parse(["-p", "x", *argv], table), stdin_text=None, caller_env={"HOME": "/nonexistent"},
                      cwd="/tmp", claude_bin="/bin/false", cli_version=version, table=table)


def assistant(mid, block, usage=None, stop="tool_use"):
    return {"type": "assistant", "uuid": f"u-{mid}-{block.get('id', block['type'])}", "timestamp": TS, "version": "2.1.329",
            "message": {"id": mid, "model": "claude-opus-5-5", "role": "assistant", "content": [block],
                        "stop_reason": stop, "stop_sequence": None,
                        "usage": usage or {"input_tokens": 12, "output_tokens": 7, "cache_read_input_tokens": 3,
                                           "cache_creation_input_tokens": 7}}}


def tool(tid):
    return {"type": "tool_use", "id": tid, "name": "Bash", "input": {"command": "echo"}}


def test_max_turns_gate_stops_after_the_tools_of_response_n():
    gate = turn_gate(plan("--max-turns", "2"))
    recs = [assistant("m1", tool("t1")), {"type": "user"}, assistant("m2", tool("t2a")), assistant("m2", tool("t2b"))]
    assert gate(recs, "t1") is False          # request 2 may still start
    assert gate(recs, "t2a") is True and gate(recs, "t2b") is True
    assert gate(recs, "unknown") is None      # not in the transcript yet
    assert [m["id"] for m in responses(recs)] == ["m1", "m2"]
    assert turn_gate(plan()) is None


def test_budget_gate_uses_the_cost_so_far():
    recs = [assistant("m1", tool("t1"))]
    assert turn_gate(plan("--max-budget-usd", "0.0000001"), version="2.1.329")(recs, "t1") is True
    assert turn_gate(plan("--max-budget-usd", "5"), version="2.1.329")(recs, "t1") is False
    assert budget_error(1e-7) == "Reached maximum budget ($1e-7)"
    assert total_cost(recs, version="2.1.329") > 0


def test_local_command_records_and_text():
    since = 1.0
    info = {"type": "system", "subtype": "informational", "content": "Unknown command: /x", "timestamp": TS}
    stdout = {"type": "system", "subtype": "local_command", "timestamp": TS,
              "content": "<local-command-stdout>\x1b[1mdone\x1b[0m</local-command-stdout>"}
    meta = {"type": "user", "isMeta": True, "timestamp": TS, "message": {"role": "user", "content": "## Report"}}
    old = dict(stdout, timestamp="2000-01-01T00:00:00.000Z")
    assert all(_is_local_command_record(r, since) for r in (info, stdout, meta))
    assert not _is_local_command_record(old, 2e9)      # an earlier /clear's records do not count
    assert _unknown_command([info]) == "Unknown command: /x"
    assert _local_command_text([stdout]) == "done"
    assert _local_command_text([stdout, meta]) == "## Report"
    assert _local_command_text([]) == ""


def test_local_command_line_per_version():
    old = local_command_message("", session_id="s", version="2.1.197")
    assert old["message"]["content"] == [{"type": "text", "text": "(no content)"}]
    assert old["message"]["stop_reason"] == "stop_sequence" and "timestamp" not in old
    assert local_command_message("", session_id="s", version="2.1.329") is None
    new = local_command_message("hi", session_id="s", version="2.1.329")
    assert list(new["message"])[0] == "diagnostics" and new["message"]["stop_reason"] == "end_turn"


def test_partial_events_around_each_block():
    out = io.BytesIO()
    em = Emitter("stream-json", out, "s", version="2.1.329", options=EmitOptions(partial=True))
    em.record(assistant("m1", {"type": "text", "text": "Hello"}))
    em.record(assistant("m1", tool("t1")))
    em.result({"type": "result", "subtype": "success", "is_error": False})
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    kinds = [(m["event"]["type"] if m["type"] == "stream_event" else m.get("subtype") or m["type"]) for m in lines]
    assert kinds == ["status", "message_start", "content_block_start", "content_block_delta", "assistant",
                     "content_block_stop", "content_block_start", "content_block_delta", "assistant",
                     "content_block_stop", "message_delta", "message_stop", "success"]
    assert lines[3]["event"]["delta"] == {"type": "text_delta", "text": "Hello"}
    assert lines[7]["event"]["delta"] == {"type": "input_json_delta", "partial_json": '{"command":"echo"}'}
    assert lines[10]["event"]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert lines[1]["thinking_display"] == "updates" and lines[2]["api_message_id"] == "m1"


@pytest.mark.parametrize("version,listed", [("2.1.329", False), ("2.1.332", True)])
def test_partial_result_lists_the_begun_messages_after_uuid(version, listed):
    """2.1.332 -p --include-partial-messages: the result has begun_message_ids (each response's API id,
    once, in order) right after uuid; 2.1.329 has none. Each result lists only its own turn's."""
    out = io.BytesIO()
    em = Emitter("stream-json", out, "s", version=version, options=EmitOptions(partial=True))
    em.record(assistant("m1", tool("t1")))
    em.record(assistant("m2", {"type": "text", "text": "a"}))
    em.record(assistant("m2", {"type": "text", "text": "b"}))
    em.result({"type": "result", "uuid": "u", "ttft_stream_ms": 1})
    em.record(assistant("m3", {"type": "text", "text": "c"}))
    em.result({"type": "result", "uuid": "u2"})
    first, second = [m for m in (json.loads(x) for x in out.getvalue().splitlines()) if m["type"] == "result"]
    if listed:
        assert list(first) == ["type", "uuid", "begun_message_ids", "ttft_stream_ms"]
        assert first["begun_message_ids"] == ["m1", "m2"] and second["begun_message_ids"] == ["m3"]
    else:
        assert "begun_message_ids" not in first and "begun_message_ids" not in second


def test_json_verbose_is_one_array():
    out = io.BytesIO()
    em = Emitter("json", out, "s", version="2.1.197", options=EmitOptions(collect=True))
    em.init({"type": "system", "subtype": "init"})
    em.record(assistant("m1", {"type": "text", "text": "Hi"}, stop="end_turn"))
    em.result({"type": "result", "subtype": "success", "is_error": False})
    text = out.getvalue().decode()
    assert text.endswith("]\n") and text.count("\n") == 1
    assert [m["type"] for m in json.loads(text)] == ["system", "assistant", "result"]


def test_hook_events_leave_the_bridges_own_hooks_out():
    rec = {"type": "attachment", "attachment": {"type": "hook_success", "hookName": "Stop", "hookEvent": "Stop",
                                                "stdout": "out\n", "stderr": "", "exitCode": 0, "command": "echo out"}}
    started, response = hook_event_lines(rec, session_id="s")
    assert (started["subtype"], response["subtype"], response["hook_id"]) == ("hook_started", "hook_response", started["hook_id"])
    assert (response["stdout"], response["outcome"]) == ("out\n", "success")
    ours = json.loads(json.dumps(rec))
    ours["attachment"]["command"] = 'f=/run/pane-1/hooks/Stop.$$; cat > "$f.tmp"'
    assert hook_event_lines(ours, session_id="s") == []


def test_fallback_model_gets_its_own_model_usage_entry():
    recs = [assistant("m1", {"type": "text", "text": "x"}, stop="end_turn")]
    recs[0]["message"]["model"] = "claude-haiku-4-5"
    mu, _ = model_usage(responses(recs), model_key="claude-opus-4-8[1m]")
    assert list(mu) == ["claude-haiku-4-5"]
    recs[0]["message"]["model"] = "claude-opus-4-8"
    mu, _ = model_usage(responses(recs), model_key="claude-opus-4-8[1m]")
    assert list(mu) == ["claude-opus-4-8[1m]"]


def test_stream_input_calls_skip_the_pool():
    assert streams_input(["-p", "--input-format", "stream-json", "--output-format", "stream-json"])
    assert streams_input(["-p", "--input-format=stream-json"])
    assert not streams_input(["-p", "--input-format", "text"])
    assert not streams_input(["-p", "--", "--input-format", "stream-json"])


def test_compact_terminal_hint_is_not_the_result():
    hint = {"type": "user", "timestamp": TS,
            "message": {"content": "<local-command-stdout>Compacted (ctrl+o to see full summary)</local-command-stdout>"}}
    assert _local_command_text([hint]) == ""        # claude -p /compact answers ""


def test_same_prompt_for_user_prompt_submit_hooks():
    from claude_bridge_tmux.follow.engine import same_prompt as _same_prompt
    assert _same_prompt("hello", "hello") and _same_prompt("hello\n", "hello") and _same_prompt(None, "x")
    assert not _same_prompt("an earlier prompt", "this prompt")


def test_built_init_lists_structured_output_with_a_schema():
    """When the init probe did not answer in time, the built init still lists -p's StructuredOutput tool."""
    from claude_bridge_tmux.follow.session import SessionInfo
    from claude_bridge_tmux.run.prepare import init_message
    tools = init_message(plan("--json-schema", "{}", version="2.1.197"), SessionInfo(session_id="s", model="m"))["tools"]
    assert "StructuredOutput" in tools and tools[0] == "Task" and tools[1:] == sorted(tools[1:])
    assert "StructuredOutput" not in init_message(plan(version="2.1.197"), SessionInfo(session_id="s", model="m"))["tools"]
