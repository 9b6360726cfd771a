"""When may a pool turn end on the Stop hook before ``system/turn_duration`` is written?

Only once the transcript shows the final reply the hook names: on a loaded machine the hook runs
well before the CLI's writer has put the reply in the file (CI saw an empty ``result`` when the
bridge ended 1.5 s after the hook without looking at the file)."""

from claude_bridge_tmux.follow.engine import final_reply_written


def _assistant(text=None, *, stop_reason="end_turn", blocks=None, api_error=False):
    content = blocks if blocks is not None else [{"type": "text", "text": text}]
    rec = {"type": "assistant", "uuid": "a", "message": {"stop_reason": stop_reason, "content": content}}
    if api_error:
        rec["isApiErrorMessage"] = True
    return rec


PROMPT = {"type": "user", "uuid": "p", "message": {"role": "user", "content": "hi"}}
TOOL_RESULT = {"type": "user", "uuid": "r", "message": {"role": "user", "content": [
    {"type": "tool_result", "tool_use_id": "t", "content": "denied"}]}}


def test_reply_not_in_the_file_yet():
    assert not final_reply_written([PROMPT], {"last_assistant_message": "hello"})


def test_tool_round_without_its_final_reply():
    tool_use = _assistant(stop_reason="tool_use", blocks=[{"type": "tool_use", "id": "t", "name": "Bash", "input": {}}])
    recs = [PROMPT, _assistant("Let me run it", stop_reason="tool_use"), tool_use, TOOL_RESULT]
    assert not final_reply_written(recs, {"last_assistant_message": "MOCK-TOOL-ERROR: denied"})


def test_final_reply_in_the_file():
    recs = [PROMPT, _assistant("MOCK-TOOL-ERROR: denied")]
    assert final_reply_written(recs, {"last_assistant_message": "MOCK-TOOL-ERROR: denied"})


def test_an_earlier_reply_with_other_text_is_not_the_final_one():
    recs = [PROMPT, _assistant("first answer")]
    assert not final_reply_written(recs, {"last_assistant_message": "second answer"})


def test_hook_text_may_span_several_blocks_the_last_one_ends_it():
    recs = [PROMPT, _assistant("part one"), _assistant("part two")]
    assert final_reply_written(recs, {"last_assistant_message": "part one\n\npart two\n"})


def test_final_reply_must_have_finished():
    recs = [PROMPT, _assistant("hello", stop_reason=None)]
    assert not final_reply_written(recs, {"last_assistant_message": "hello"})


def test_hook_without_a_message_never_matches():
    recs = [PROMPT, _assistant("hello")]
    assert not final_reply_written(recs, {})
    assert not final_reply_written(recs, {"last_assistant_message": None})


def test_an_api_error_record_is_never_a_final_reply():
    err = [PROMPT, _assistant("API Error: 500", api_error=True)]
    assert not final_reply_written(err, {"last_assistant_message": "API Error: 500"})
