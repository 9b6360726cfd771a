"""`claude -p` semantics in the interactive pane, side by side with the real `claude -p` (each pinned CLI):
the tools offered to the model, prompts starting with ``/`` or ``!``, sessions (--resume, --continue,
--fork-session, --name, --session-id) and --max-turns.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import stream_lines

pytestmark = pytest.mark.integration

NEW_SLASH_TO_MODEL = "2.1.329"   # from this version on, claude -p sends an unknown /command to the model




def result_json(p) -> dict:
    assert p.returncode in (0, 1), p.stderr.decode()
    return json.loads(p.stdout)


# -- 1. -p semantics ------------------------------------------------------------------------------

def test_model_is_offered_exactly_claude_p_tools(bed):
    """Interactive-only tools (AskUserQuestion, EnterPlanMode, ExitPlanMode) are never offered."""
    assert bed.claude_p("-p", "tools", "--output-format", "json").returncode == 0
    theirs = bed.mock.main_requests()[-1]
    assert bed.bridge("-p", "tools", "--output-format", "json").returncode == 0
    ours = bed.mock.main_requests()[-1]
    assert ours["tools"] == theirs["tools"]
    assert "AskUserQuestion" not in json.dumps(ours["body"]["tools"])
    # nor interactive claude's own agent (claude-code-guide): the agent listing the model reads is -p's
    agents = [json.dumps(r["body"]).count("claude-code-guide") for r in (theirs, ours)]
    assert agents[1] == agents[0] == 0
    # an explicitly allowed one stays
    assert bed.bridge("-p", "tools", "--output-format", "json", "--tools", "Bash,AskUserQuestion").returncode == 0
    assert "AskUserQuestion" in bed.mock.main_requests()[-1]["tools"]


def test_unknown_slash_command_as_claude_p(bed):
    p = bed.bridge("-p", "/nosuchcmd arg", "--output-format", "json")
    res = result_json(p)
    real = result_json(bed.claude_p("-p", "/nosuchcmd arg", "--output-format", "json"))
    assert (res["subtype"], res["is_error"], res["num_turns"]) == (real["subtype"], real["is_error"], real["num_turns"])
    if not bed.at_least(NEW_SLASH_TO_MODEL):
        assert res["result"] == real["result"] == "Unknown command: /nosuchcmd"
        assert res["num_turns"] == 0 and res["stop_reason"] is None
        assert bed.mock.main_requests() == []
        assert list(res) == list(real)
    else:
        # sent to the model; interactive claude only takes it as text with a leading space (documented)
        prompts = [r["prompt"] for r in bed.mock.main_requests()]
        assert prompts == [" /nosuchcmd arg", "/nosuchcmd arg"]
        assert res["result"] == "MOCK-REPLY to:  /nosuchcmd arg" and res["num_turns"] == 1


@pytest.mark.parametrize("fmt", ["text", "stream-json"])
def test_local_slash_command_clear(bed, fmt):
    args = ["-p", "/clear", "--output-format", fmt] + (["--verbose"] if fmt == "stream-json" else [])
    p = bed.bridge(*args)
    real = bed.claude_p(*args)
    assert (p.returncode, p.stderr) == (real.returncode, real.stderr) == (0, b"")
    assert bed.mock.main_requests() == []
    if fmt == "text":
        assert p.stdout == real.stdout == b"\n"
        return
    ours = stream_lines(p.stdout)
    # 2.1.329 -p announces the cleared conversation first (not reproduced, documented)
    theirs = [m for m in stream_lines(real.stdout) if m["type"] != "conversation_reset"
              and m.get("subtype") != "background_tasks_changed"]
    assert [m["type"] for m in ours] == [m["type"] for m in theirs]
    for x, y in zip(ours, theirs):
        assert list(x) == list(y)
        if x["type"] == "assistant":     # 2.1.197: the synthetic "(no content)" answer
            assert x["message"]["content"] == y["message"]["content"]
            assert list(x["message"]) == list(y["message"])
    a, b = ours[-1], theirs[-1]
    assert list(a) == list(b)
    assert (a["result"], a["num_turns"], a["stop_reason"], a["usage"]) == ("", 0, None, b["usage"])
    assert a["session_id"] == ours[0]["session_id"]


def test_panel_command_fails_in_one_line(bed):
    t0 = time.monotonic()
    p = bed.bridge("-p", "/help")
    assert p.returncode == 1 and p.stdout == b""
    assert p.stderr.decode().splitlines()[0].startswith("claude-bridge: /help opens a panel in interactive claude")
    assert time.monotonic() - t0 < 30


def test_bang_prompt_reaches_the_model_literally(bed):
    p = bed.bridge("-p", "!touch bang-marker", "--output-format", "json")
    res = result_json(p)
    assert res["result"] == "MOCK-REPLY to: !touch bang-marker" and res["num_turns"] == 1
    assert [r["prompt"] for r in bed.mock.main_requests()] == ["!touch bang-marker"]
    assert not (bed.cwd / "bang-marker").exists()


@pytest.mark.parametrize("prompt", ["!touch bang-marker", "!touch bang-marker\nsecond line x"])
def test_pasted_bang_prompt_reaches_the_model_literally(bed, prompt):
    """Pasted (pool panes, --mcp-config, stream-json input, huge prompts), "!" would switch the input box
    to bash mode and run the command locally; the bridge keeps it text."""
    p = bed.bridge("-p", prompt, "--output-format", "json", env=dict(bed.env, CLAUDE_BRIDGE_SUBMIT="paste"))
    res = result_json(p)
    assert res["num_turns"] == 1 and [r["prompt"] for r in bed.mock.main_requests()] == [prompt]
    assert not (bed.cwd / "bang-marker").exists()


# -- 9. sessions ------------------------------------------------------------------------------------

def first_session(bed, prompt="same prompt") -> str:
    p = bed.bridge("-p", prompt, "--output-format", "json", "--name", "bridge-title")
    return result_json(p)["session_id"]


def answered(bed, p) -> tuple[dict, list[dict]]:
    """(result, lines) of a stream-json run; every line carries the result's session id and the
    assistant lines are the mock's *latest* answers (never an earlier turn's)."""
    assert p.returncode == 0, p.stderr.decode()
    lines = stream_lines(p.stdout)
    res = lines[-1]
    assert {m["session_id"] for m in lines} == {res["session_id"]}
    latest = bed.mock.main_requests()[-1]["answer"]["msg_id"]
    assert [m["message"]["id"] for m in lines if m["type"] == "assistant"] == [latest]
    return res, lines


SJ = ("--output-format", "stream-json", "--verbose")


def test_resume_continue_and_titles_report_the_new_turn(bed):
    sid = first_session(bed)
    n0 = bed.mock.main_requests()[-1]["nmsg"]
    for args in (["--resume", sid], ["--continue"], ["--resume", "bridge-title"]):
        res, _ = answered(bed, bed.bridge("-p", "same prompt", *SJ, *args))
        assert res["session_id"] == sid and res["result"] == "MOCK-REPLY to: same prompt"
        assert bed.mock.main_requests()[-1]["nmsg"] > n0        # the history was sent
        n0 = bed.mock.main_requests()[-1]["nmsg"]
    assert [t.stem for t in bed.transcripts()] == [sid]


def test_continue_takes_up_a_session_claude_p_wrote(bed):
    """-p continues the cwd's latest session whoever wrote it; interactive 2.1.329's --continue skips a
    session only -p wrote, so the bridge names it to the pane by id."""
    older = json.loads(bed.claude_p("-p", "older", "--output-format", "json").stdout)["session_id"]
    latest = json.loads(bed.claude_p("-p", "latest", "--output-format", "json").stdout)["session_id"]
    assert older != latest
    res, _ = answered(bed, bed.bridge("-p", "go on", *SJ, "--continue"))
    assert res["session_id"] == latest and res["result"] == "MOCK-REPLY to: go on"
    assert bed.mock.main_requests()[-1]["nmsg"] > 1        # the history was sent


def test_fork_session_gets_a_new_id_and_file(bed):
    sid = first_session(bed)
    before = (bed.transcripts()[0]).read_bytes()
    res, _ = answered(bed, bed.bridge("-p", "same prompt", *SJ, "--resume", sid, "--fork-session"))
    new = res["session_id"]
    assert new != sid
    chosen = "11111111-2222-4333-8444-555555555555"
    res, _ = answered(bed, bed.bridge("-p", "same prompt", *SJ, "--continue", "--fork-session", "--session-id", chosen))
    assert res["session_id"] == chosen
    assert sorted(t.stem for t in bed.transcripts()) == sorted([sid, new, chosen])
    assert (bed.home / ".claude" / "projects").exists()
    assert next(t for t in bed.transcripts() if t.stem == sid).read_bytes() == before   # the original is untouched


@pytest.mark.parametrize("args", [
    ["--resume"], ["--resume", "nosuchtitle"], ["--resume", "22222222-2222-4333-8444-555555555555"],
    ["--session-id", "22222222-2222-4333-8444-555555555555", "--continue"],
])
def test_session_errors_are_claudes(bed, args):
    p = bed.bridge("-p", "x", *args)
    real = bed.claude_p("-p", "x", *args)
    assert (p.returncode, p.stdout, p.stderr) == (real.returncode, real.stdout, real.stderr)
    assert p.returncode == 1
    assert bed.mock.main_requests() == []


# -- 2. --max-turns ---------------------------------------------------------------------------------

MAX_TURNS_FIELDS = ("type", "subtype", "is_error", "num_turns", "stop_reason", "errors", "terminal_reason",
                    "permission_denials")


@pytest.mark.parametrize("prompt,n,extra", [
    ("a MOCK:tool=echo_x", "1", ()),
    ("b MOCK:tools2", "1", ()),
    ("c MOCK:toolloop", "2", ()),
    ("d MOCK:tool=ls_/nonexistent-dir", "1", ()),                 # the last tool needs approval: denied
    ("e MOCK:tool=false", "1", ("--allowedTools", "Bash")),      # the last tool fails
], ids=["tool", "parallel_tools", "loop", "denied_tool", "failed_tool"])
def test_max_turns_stops_like_claude_p(bed, prompt, n, extra):
    args = ("-p", prompt, "--max-turns", n, *extra, "--output-format", "json")
    real = bed.claude_p(*args)
    theirs = len(bed.mock.main_requests())
    bed.mock.clear()
    p = bed.bridge(*args)
    assert (p.returncode, p.stderr) == (real.returncode, real.stderr) == (1, b"")
    a, b = json.loads(p.stdout), json.loads(real.stdout)
    assert list(a) == list(b)
    for r in (a, b):                   # (tool_use ids are the mock's random ones)
        r["permission_denials"] = [{k: v for k, v in d.items() if k != "tool_use_id"} for d in r["permission_denials"]]
    assert {k: a.get(k) for k in MAX_TURNS_FIELDS} == {k: b.get(k) for k in MAX_TURNS_FIELDS}
    assert a["usage"]["output_tokens"] == b["usage"]["output_tokens"]
    assert len(bed.mock.main_requests()) == theirs == int(n)    # no request beyond the limit


def test_max_turns_text_and_stream_json(bed):
    p = bed.bridge("-p", "x MOCK:toolloop", "--max-turns", "1")
    assert (p.returncode, p.stdout, p.stderr) == (1, b"Error: Reached max turns (1)", b"")
    p = bed.bridge("-p", "y MOCK:toolloop", "--max-turns", "1", *SJ)
    lines = stream_lines(p.stdout)
    assert p.returncode == 1
    assert [(m["type"], m.get("subtype")) for m in lines] == [
        ("system", "init"), ("assistant", None), ("user", None), ("result", "error_max_turns")]
    # within the limit nothing changes
    p = bed.bridge("-p", "z MOCK:tool=echo_ok", "--max-turns", "2", "--output-format", "json")
    assert p.returncode == 0 and json.loads(p.stdout)["result"] == "MOCK-TOOL-DONE: ok"


# -- 7. --no-session-persistence --------------------------------------------------------------------

def projects_tree(bed) -> set[str]:
    root = bed.home / ".claude" / "projects"
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


def test_no_session_persistence_leaves_what_claude_p_leaves(bed):
    real = bed.claude_p("-p", "x MOCK:tool=echo_x", "--output-format", "json", "--no-session-persistence")
    assert real.returncode == 0
    theirs = projects_tree(bed)
    assert not any(p.endswith(".jsonl") for p in theirs)
    p = bed.bridge("-p", "x MOCK:tool=echo_x", "--output-format", "json", "--no-session-persistence")
    assert p.returncode == 0, p.stderr.decode()
    assert json.loads(p.stdout)["result"] == "MOCK-TOOL-DONE: x"
    assert projects_tree(bed) == theirs      # no transcript, nothing else either


def test_no_session_persistence_keeps_a_resumed_session_as_it_was(bed):
    sid = first_session(bed)
    path = next(t for t in bed.transcripts() if t.stem == sid)
    before = path.read_bytes()
    p = bed.bridge("-p", "more", "--output-format", "json", "--resume", sid, "--no-session-persistence")
    assert p.returncode == 0 and json.loads(p.stdout)["session_id"] == sid
    assert bed.mock.main_requests()[-1]["nmsg"] > 1          # the history was sent
    assert path.read_bytes() == before and [t.stem for t in bed.transcripts()] == [sid]


# -- 3. --max-budget-usd ----------------------------------------------------------------------------

BUDGET_FIELDS = ("type", "subtype", "is_error", "num_turns", "stop_reason", "errors", "terminal_reason")


def test_max_budget_like_claude_p(bed):
    cases = [("p plain", "0.0000001"), ("ok MOCK:tool=echo_x", "5")]
    if bed.at_least("2.1.329"):
        # 2.1.197 -p also counts its racy session-title request, which moves the point it stops at
        cases.append(("t MOCK:toolloop", "0.0006"))
    for prompt, budget in cases:
        args = ("-p", prompt, "--max-budget-usd", budget, "--output-format", "json")
        real = bed.claude_p(*args)
        n_real = len(bed.mock.main_requests())
        bed.mock.clear()
        p = bed.bridge(*args)
        assert (p.returncode, p.stderr) == (real.returncode, real.stderr)
        a, b = json.loads(p.stdout), json.loads(real.stdout)
        assert list(a) == list(b)
        assert {k: a.get(k) for k in BUDGET_FIELDS} == {k: b.get(k) for k in BUDGET_FIELDS}, prompt
        assert len(bed.mock.main_requests()) == n_real
        bed.mock.clear()
    p = bed.bridge("-p", "x", "--max-budget-usd", "0.0000001")
    assert (p.returncode, p.stdout) == (1, b"Error: Exceeded USD budget (1e-7)")
    p = bed.bridge("-p", "y MOCK:toolloop", "--max-budget-usd", "0.0006", "--output-format", "json")
    assert p.returncode == 1 and json.loads(p.stdout)["subtype"] == "error_max_budget_usd"
    assert len(bed.mock.main_requests()) <= 3       # the tool loop was stopped


# -- 8. --verbose with json, --fallback-model, --include-hook-events, --permission-prompt-tool --------

def test_json_verbose_prints_every_message_as_one_array(bed):
    args = ("-p", "v MOCK:tool=echo_x", "--output-format", "json", "--verbose")
    real, p = bed.claude_p(*args), bed.bridge(*args)
    assert (p.returncode, p.stderr) == (real.returncode, real.stderr) == (0, b"")
    assert p.stdout.startswith(b"[{") and p.stdout.endswith(b"}]\n") and p.stdout.count(b"\n") == 1
    ours, theirs = json.loads(p.stdout), json.loads(real.stdout)
    assert [(m["type"], m.get("subtype")) for m in ours] == [(m["type"], m.get("subtype")) for m in theirs]
    assert list(ours[-1]) == list(theirs[-1])        # the json-shaped result
    assert list(ours[0]) == list(theirs[0])          # the real system/init


def test_fallback_model_is_used_as_by_claude_p(bed):
    env = dict(bed.env, CLAUDE_CODE_MAX_RETRIES="4")
    args = ["-p", "fb MOCK:err=529 MOCK:errtimes=3", "--fallback-model", "claude-haiku-4-5", "--output-format", "json"]
    p = bed.bridge(*args, env=env)
    assert p.returncode == 0, p.stderr.decode()
    res = json.loads(p.stdout)
    assert res["result"] == "MOCK-REPLY to: fb MOCK:err=529 MOCK:errtimes=3"
    assert [r["model"] for r in bed.mock.main_requests()][-1] == "claude-haiku-4-5"
    assert "claude-haiku-4-5" in res["modelUsage"]     # the answering model's own entry, as -p


def test_include_hook_events_reports_the_callers_hooks(bed):
    settings = json.dumps({"hooks": {"UserPromptSubmit": [{"hooks": [{"type": "command", "command": "echo ups-out"}]}],
                                     "Stop": [{"hooks": [{"type": "command", "command": "echo stop-out"}]}]}})
    args = ("-p", "hi", "--output-format", "stream-json", "--verbose", "--settings", settings, "--include-hook-events")
    real, p = bed.claude_p(*args), bed.bridge(*args)
    assert p.returncode == real.returncode == 0, p.stderr.decode()
    hooks = lambda out: [(m["subtype"], m["hook_name"], m.get("stdout"), list(m)) for m in stream_lines(out)  # noqa: E731
                         if m.get("subtype", "").startswith("hook_")]
    assert hooks(p.stdout) == hooks(real.stdout)     # the bridge's own hooks never show
    p = bed.bridge("-p", "hi", "--output-format", "stream-json", "--verbose", "--settings", settings)
    assert not [m for m in stream_lines(p.stdout) if m.get("subtype", "").startswith("hook_")]


def test_permission_prompt_tool_is_refused_with_a_reason(bed):
    p = bed.bridge("-p", "x", "--permission-prompt-tool", "mcp__perm__ask")
    assert (p.returncode, p.stdout) == (1, b"")
    assert p.stderr.decode() == ("claude-bridge: --permission-prompt-tool is not supported by claude-bridge "
                                 "(permission prompts are answered by the bridge's PermissionRequest hook (denied "
                                 "as in claude -p's default mode); use --permission-mode or --allowedTools)\n")
    assert bed.mock.main_requests() == []
