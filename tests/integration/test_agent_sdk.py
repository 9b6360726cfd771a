"""The official Agent SDK (claude-agent-sdk, pinned in the dev dependencies) on claude-bridge.

Each test runs the same SDK program twice on the same mock model: once with ``cli_path`` set to the
real claude CLI, once to ``claude-bridge`` (which drives the interactive CLI in a pane), and compares
the message sequences the SDK yields (message types and subtypes, content blocks, result fields).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sdk = pytest.importorskip("claude_agent_sdk")
anyio = pytest.importorskip("anyio")

from claude_agent_sdk import (  # noqa: E402
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    HookMatcher,
    PermissionResultAllow,
    PermissionResultDeny,
    ResultMessage,
    SystemMessage,
    UserMessage,
    query,
)

pytestmark = pytest.mark.integration

BRIDGE = str(Path(sys.executable).parent / "claude-bridge")


def _options(bed, cli: str, **kw) -> ClaudeAgentOptions:
    kw.setdefault("env", dict(bed.env))
    return ClaudeAgentOptions(cli_path=cli, cwd=str(bed.cwd), **kw)


def _blocks(content: Any) -> list:
    if isinstance(content, str):
        return [("text", content)]
    out = []
    for b in content:
        name = type(b).__name__
        if name == "TextBlock":
            out.append(("text", b.text))
        elif name == "ToolUseBlock":
            out.append(("tool_use", b.name, b.input))
        elif name == "ToolResultBlock":
            text = b.content if isinstance(b.content, str) else str(b.content)
            out.append(("tool_result", text.split("\n")[0][:60], bool(b.is_error)))
        else:
            out.append((name,))
    return out


def shape(messages: list) -> list:
    """What must match between the real CLI and the bridge: per message its kind and the parts a
    program reads (content blocks, result subtype / is_error / num_turns / result text)."""
    out: list = []
    for m in messages:
        if isinstance(m, SystemMessage):
            out.append(("system", m.subtype))
        elif isinstance(m, AssistantMessage):
            out.append(("assistant", _blocks(m.content)))
        elif isinstance(m, UserMessage):
            out.append(("user", _blocks(m.content)))
        elif isinstance(m, ResultMessage):
            out.append(("result", m.subtype, m.is_error, m.num_turns, m.result))
        else:
            out.append((type(m).__name__,))
    return out


def one_shot(bed, cli: str, prompt, **kw) -> tuple[list, str | None]:
    """``query()``: the messages, and the name of the exception the SDK raised (or None)."""
    got: list = []

    async def go():
        async for m in query(prompt=prompt, options=_options(bed, cli, **kw)):
            got.append(m)

    try:
        anyio.run(go)
    except Exception as e:  # noqa: BLE001 - the SDK's own error type is part of what is compared
        return got, type(e).__name__
    return got, None


def both(bed, prompt, **kw):
    real = one_shot(bed, bed.claude_bin, prompt, **kw)
    ours = one_shot(bed, BRIDGE, prompt, **kw)
    return real, ours


def test_query_text(bed):
    (real, e1), (ours, e2) = both(bed, "hello sdk")
    assert e1 is e2 is None
    assert shape(ours) == shape(real)
    init = [m for m in ours if isinstance(m, SystemMessage)][0]
    assert init.data["claude_code_version"] == bed.claude_bin.split("/cli/")[1].split("/")[0]
    assert ours[-1].session_id != real[-1].session_id


def test_query_with_an_allowed_tool(bed):
    (real, e1), (ours, e2) = both(bed, "run MOCK:tool=echo_sdk-tool", allowed_tools=["Bash"])
    assert e1 is e2 is None
    assert shape(ours) == shape(real)
    assert ("tool_result", "sdk-tool", False) in [b for m in ours if isinstance(m, UserMessage)
                                                   for b in _blocks(m.content)]


def test_stream_of_input_messages(bed):
    def prompts():
        async def gen():
            for text in ("first of two", "second of two"):
                yield {"type": "user", "message": {"role": "user", "content": text}, "parent_tool_use_id": None,
                       "session_id": ""}
        return gen()
    real, e1 = one_shot(bed, bed.claude_bin, prompts())
    ours, e2 = one_shot(bed, BRIDGE, prompts())
    assert e1 is e2 is None
    assert shape(ours) == shape(real)
    assert [m.result for m in ours if isinstance(m, ResultMessage)] == [
        "MOCK-REPLY to: first of two", "MOCK-REPLY to: second of two"]


def client_rounds(bed, cli: str, prompts: list[str], *, interrupt_first: bool = False, **kw) -> list[list]:
    """``ClaudeSDKClient``: one message list per prompt (``interrupt_first``: interrupt the first turn
    once its tool_use is seen)."""
    rounds: list[list] = []

    async def go():
        with anyio.fail_after(120):
            await session()

    async def session():
        async with ClaudeSDKClient(options=_options(bed, cli, **kw)) as client:
            for i, p in enumerate(prompts):
                await client.query(p)
                got: list = []
                async for m in client.receive_response():
                    got.append(m)
                    if interrupt_first and i == 0 and isinstance(m, AssistantMessage) and any(
                            type(b).__name__ == "ToolUseBlock" for b in m.content):
                        await anyio.sleep(1.0)
                        await client.interrupt()
                rounds.append(got)

    anyio.run(go)
    return rounds


def test_client_multiturn_keeps_the_conversation(bed):
    prompts = ["remember alpha", "what did I say"]
    real = client_rounds(bed, bed.claude_bin, prompts)
    ours = client_rounds(bed, BRIDGE, prompts)
    assert [shape(r) for r in ours] == [shape(r) for r in real]
    assert ours[0][-1].session_id == ours[1][-1].session_id
    second = [r for r in bed.mock.main_requests() if r["prompt"] == "what did I say"]
    assert len(second) == 2 and second[0]["nmsg"] == second[1]["nmsg"] >= 3   # the first turn is in it


def test_interrupt_stops_the_turn_and_the_session_goes_on(bed):
    prompts = ["wait MOCK:tool=tail_-f_/dev/null", "after interrupt"]
    ours = client_rounds(bed, BRIDGE, prompts, interrupt_first=True, allowed_tools=["Bash"])
    real = client_rounds(bed, bed.claude_bin, prompts, interrupt_first=True, allowed_tools=["Bash"])
    for rounds in (ours, real):
        first = rounds[0][-1]
        assert isinstance(first, ResultMessage)
        assert (first.subtype, first.is_error) == ("error_during_execution", True)
        assert isinstance(rounds[1][-1], ResultMessage) and rounds[1][-1].is_error is False
    tool_results = [b for m in ours[0] if isinstance(m, UserMessage) for b in _blocks(m.content)
                    if b[0] == "tool_result"]
    assert tool_results and tool_results[0][1].startswith("The user doesn't want to proceed")


@pytest.mark.parametrize("decision", ["allow", "deny"])
def test_can_use_tool_callback(bed, decision):
    asked: list[tuple[str, dict]] = []

    async def can_use_tool(name, tool_input, context):
        asked.append((name, dict(tool_input)))
        if decision == "allow":
            return PermissionResultAllow(updated_input={**tool_input, "command": "echo updated-by-sdk"})
        return PermissionResultDeny(message="denied by the test")

    def prompt():
        async def gen():     # can_use_tool needs streaming input (the SDK's own rule)
            yield {"type": "user", "message": {"role": "user", "content": "go MOCK:tool=python3_-c_1"},
                   "parent_tool_use_id": None, "session_id": ""}
        return gen()
    real, e1 = one_shot(bed, bed.claude_bin, prompt(), can_use_tool=can_use_tool)
    ours, e2 = one_shot(bed, BRIDGE, prompt(), can_use_tool=can_use_tool)
    assert e1 is e2 is None
    assert [a[0] for a in asked] == ["Bash", "Bash"] and asked[0] == asked[1]
    assert [s for s in shape(ours) if s[0] != "system"] == [s for s in shape(real) if s[0] != "system"]
    results = [b for m in ours if isinstance(m, UserMessage) for b in _blocks(m.content)]
    expected = ("tool_result", "updated-by-sdk", False) if decision == "allow" else \
        ("tool_result", "denied by the test", True)
    assert expected in results


def test_hook_callbacks(bed):
    calls: list[tuple[str, str]] = []

    def hook(event: str, answer: dict):
        async def cb(input_data, tool_use_id, context):
            calls.append((event, input_data.get("hook_event_name")))
            return answer
        return cb

    deny = {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny",
                                   "permissionDecisionReason": "blocked by an SDK hook"}}
    hooks = {"PreToolUse": [HookMatcher(matcher="Bash", hooks=[hook("PreToolUse", deny)])],
             "UserPromptSubmit": [HookMatcher(hooks=[hook("UserPromptSubmit", {})])]}

    def prompt():
        async def gen():
            yield {"type": "user", "message": {"role": "user", "content": "hooked MOCK:tool=echo_x"},
                   "parent_tool_use_id": None, "session_id": ""}
        return gen()
    real, e1 = one_shot(bed, bed.claude_bin, prompt(), hooks=hooks, allowed_tools=["Bash"])
    n_real = len(calls)
    ours, e2 = one_shot(bed, BRIDGE, prompt(), hooks=hooks, allowed_tools=["Bash"])
    assert e1 is e2 is None
    assert sorted(calls[n_real:]) == sorted(calls[:n_real]) == [("PreToolUse", "PreToolUse"),
                                                                ("UserPromptSubmit", "UserPromptSubmit")]
    assert [s for s in shape(ours) if s[0] != "system"] == [s for s in shape(real) if s[0] != "system"]
    assert any("blocked by an SDK hook" in b[1] for m in ours if isinstance(m, UserMessage)
               for b in _blocks(m.content) if b[0] == "tool_result")


def test_resume_and_max_turns(bed):
    first, e = one_shot(bed, BRIDGE, "remember beta")
    assert e is None
    sid = first[-1].session_id
    again, e = one_shot(bed, BRIDGE, "and now", resume=sid)
    assert e is None and again[-1].session_id == sid and again[-1].result == "MOCK-REPLY to: and now"
    real, e1 = one_shot(bed, bed.claude_bin, "loop MOCK:toolloop", max_turns=1, allowed_tools=["Bash"])
    ours, e2 = one_shot(bed, BRIDGE, "loop MOCK:toolloop", max_turns=1, allowed_tools=["Bash"])
    assert e1 == e2
    assert shape(ours) == shape(real)
    assert ours[-1].subtype == "error_max_turns"


def test_in_process_sdk_mcp_server(bed):
    """A tool of ``create_sdk_mcp_server`` runs in the SDK's process; claude reaches it through a
    stdio relay the bridge gives it in place of the ``sdk`` server."""
    from claude_agent_sdk import create_sdk_mcp_server, tool

    calls: list[dict] = []

    @tool("add", "Add two numbers", {"a": int, "b": int})
    async def add(args: dict) -> dict:
        calls.append(dict(args))
        return {"content": [{"type": "text", "text": f"sum={args['a'] + args['b']}"}]}

    bed.mock.scripts["mcp_add"] = [{"text": "I will add.", "tool": "mcp__calc__add", "input": {"a": 2, "b": 3}},
                                   "MOCK-MCP-DONE"]
    kw = dict(mcp_servers={"calc": create_sdk_mcp_server("calc", "1.0.0", tools=[add])},
              allowed_tools=["mcp__calc__add"])
    real, e1 = one_shot(bed, bed.claude_bin, "add MOCK:script=mcp_add", **kw)
    assert calls == [{"a": 2, "b": 3}], "real claude did not call the SDK tool"
    ours, e2 = one_shot(bed, BRIDGE, "add MOCK:script=mcp_add", **kw)
    assert e1 is e2 is None
    assert calls == [{"a": 2, "b": 3}] * 2, "the bridge's claude did not call the SDK tool"
    assert [s for s in shape(ours) if s[0] != "system"] == [s for s in shape(real) if s[0] != "system"]
    init = [m for m in ours if isinstance(m, SystemMessage) and m.subtype == "init"][0]
    assert [s["name"] for s in init.data["mcp_servers"]] == ["calc"]


def permission_mode_rounds(bed, cli: str, steps: list[tuple[str, str]], **kw) -> list:
    """ClaudeSDKClient: for each (mode, prompt) set the mode, then ask; the outcome of each step."""
    out: list = []

    async def go():
        with anyio.fail_after(120):
            async with ClaudeSDKClient(options=_options(bed, cli, **kw)) as client:
                for mode, prompt in steps:
                    try:
                        await client.set_permission_mode(mode)
                    except Exception as e:  # noqa: BLE001 - the CLI's refusal is compared
                        out.append(("refused", mode, str(e)))
                        continue
                    await client.query(prompt)
                    msgs = [m async for m in client.receive_response()]
                    results = [b for m in msgs if isinstance(m, UserMessage) for b in _blocks(m.content)
                               if b[0] == "tool_result"]
                    init = [m for m in msgs if isinstance(m, SystemMessage) and m.subtype == "init"]
                    status = [m for m in msgs if isinstance(m, SystemMessage) and m.subtype == "status"]
                    out.append((mode, init[0].data["permissionMode"] if init else None, results, len(status)))

    anyio.run(go)
    return out


def test_set_permission_mode(bed):
    steps = [("acceptEdits", "edits MOCK:tool=python3_-c_6"), ("plan", "plan MOCK:tool=python3_-c_8"),
             ("bypassPermissions", "never sent"), ("default", "back MOCK:tool=python3_-c_5")]
    real = permission_mode_rounds(bed, bed.claude_bin, steps)
    ours = permission_mode_rounds(bed, BRIDGE, steps)
    strip = lambda rows: [r[:3] for r in rows]  # noqa: E731 - status lines are counted apart
    assert strip(ours) == strip(real)
    assert [r[0] for r in ours] == ["acceptEdits", "plan", "refused", "default"]


@pytest.mark.newest_cli_only
def test_set_permission_mode_to_bypass_when_launched_allowing_it(bed):
    kw = dict(env=dict(bed.env, IS_SANDBOX="1"), extra_args={"allow-dangerously-skip-permissions": None})
    steps = [("bypassPermissions", "bypass MOCK:tool=python3_-c_8")]
    assert _bypass_rounds(bed, BRIDGE, steps, kw) == _bypass_rounds(bed, bed.claude_bin, steps, kw)


def _bypass_rounds(bed, cli, steps, kw):
    opts = ClaudeAgentOptions(cli_path=cli, cwd=str(bed.cwd), env=kw["env"], extra_args=kw["extra_args"])
    out: list = []

    async def go():
        with anyio.fail_after(120):
            async with ClaudeSDKClient(options=opts) as client:
                for mode, prompt in steps:
                    await client.set_permission_mode(mode)
                    await client.query(prompt)
                    msgs = [m async for m in client.receive_response()]
                    out.append([b for m in msgs if isinstance(m, UserMessage) for b in _blocks(m.content)])

    anyio.run(go)
    return out


def set_model_rounds(bed, cli: str) -> tuple[list, list[str]]:
    """ask, set_model(haiku), ask, set_model(None), ask: the replayed "Set model to" lines and answers,
    and the model each new request went to."""
    seen: list = []
    first_request = len(bed.mock.main_requests())

    async def go():
        with anyio.fail_after(120):
            async with ClaudeSDKClient(options=_options(bed, cli)) as client:
                for step, prompt in ((None, "before"), ("claude-haiku-4-5", "after change"), (False, "after reset")):
                    if step is not None:
                        await client.set_model(step or None)
                    await client.query(prompt)
                    msgs = [m async for m in client.receive_response()]
                    seen.append([b for m in msgs if isinstance(m, UserMessage) for b in _blocks(m.content)])
                    seen.append(msgs[-1].result)

    anyio.run(go)
    models = [r["model"] for r in bed.mock.main_requests()[first_request:]]
    # the model changes request by request (the CLI may add a background request of the same model)
    return seen, [m for i, m in enumerate(models) if i == 0 or models[i - 1] != m]


@pytest.mark.newest_cli_only
def test_set_model_restarts_the_pane_on_the_same_session(bed):
    """Interactive claude's /model would also save the model as the user's default (2.1.329): the
    bridge restarts claude on the same session with --model instead."""
    real = set_model_rounds(bed, bed.claude_bin)
    ours = set_model_rounds(bed, BRIDGE)
    assert ours == real
    assert real[1][1] == "claude-haiku-4-5" and real[1][0] == real[1][2]
    assert not (bed.home / ".claude" / "settings.json").exists()


def _ts_sdk_dir() -> str | None:
    import os
    d = os.environ.get("CLAUDE_BRIDGE_SDK_TS")       # set by scripts/setup (pinned npm package)
    return d if d and (Path(d) / "sdk.mjs").exists() else None


def ts_messages(bed, cli: str, prompts: list[str]) -> list[dict]:
    import json
    import subprocess
    script = Path(__file__).with_name("sdk_ts") / "query.mjs"
    p = subprocess.run(["node", str(script), str(_ts_sdk_dir()), cli, str(bed.cwd), *prompts],
                       capture_output=True, text=True, timeout=180, env=dict(bed.env), cwd=bed.cwd)
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]


def ts_shape(messages: list[dict]) -> list:
    out: list = []
    for m in messages:
        kind = m.get("type")
        if kind == "system" and m.get("subtype") != "init":
            continue                 # status / state lines differ between the two (see shape())
        if kind in ("assistant", "user"):
            content = m["message"]["content"]
            blocks = [content] if isinstance(content, str) else [
                (b.get("type"), b.get("text") or b.get("name") or str(b.get("content"))[:40]) for b in content]
            out.append((kind, blocks))
        elif kind == "result":
            out.append((kind, m.get("subtype"), m.get("is_error"), m.get("num_turns"), m.get("result")))
        else:
            out.append((kind, m.get("subtype")))
    return out


@pytest.mark.newest_cli_only
def test_typescript_sdk(bed):
    """The TypeScript SDK (pinned @anthropic-ai/claude-agent-sdk) with pathToClaudeCodeExecutable set to
    claude-bridge: a plain turn, a tool turn, then a resumed turn, compared with the real CLI."""
    if _ts_sdk_dir() is None:
        pytest.skip("CLAUDE_BRIDGE_SDK_TS is not set (scripts/setup installs the TypeScript SDK)")
    prompts = ["hello from ts", "tool MOCK:tool=echo_ts", "and resumed"]
    real = ts_messages(bed, bed.claude_bin, prompts)
    ours = ts_messages(bed, BRIDGE, prompts)
    assert ts_shape(ours) == ts_shape(real)
    results = [m for m in ours if m["type"] == "result"]
    assert len(results) == 3 and len({r["session_id"] for r in results}) == 1


@pytest.mark.newest_cli_only
def test_fork_session(bed):
    """``resume`` + ``fork_session``: a new session id whose conversation holds the old one's turns."""
    first, e = one_shot(bed, BRIDGE, "remember gamma")
    assert e is None
    sid = first[-1].session_id
    for cli in (bed.claude_bin, BRIDGE):
        forked, e = one_shot(bed, cli, "what came before?", resume=sid, fork_session=True)
        assert e is None
        assert forked[-1].session_id != sid
        assert forked[-1].result == "MOCK-REPLY to: what came before?"
    last = bed.mock.main_requests()[-1]
    assert "remember gamma" in str(last["body"]["messages"])       # the model saw the old turn


@pytest.mark.newest_cli_only
def test_max_budget_usd(bed):
    """``max_budget_usd`` below one turn's cost: the SDK sees the real CLI's error_max_budget_usd result.
    (The real CLI also counts its session-title request, racily: when that one finishes first it stops
    before the main request, so only the result is compared message for message.)"""
    real, ours = both(bed, "spend MOCK:tool=echo_hi", max_budget_usd=0.0000001, allowed_tools=["Bash"])
    assert ours[1] == real[1]
    assert ours[0][-1].subtype == real[0][-1].subtype == "error_max_budget_usd"
    assert ours[0][-1].is_error is True
    assert shape(ours[0])[-1] == shape(real[0])[-1]
    assert shape(ours[0])[0] == shape(real[0])[0] == ("system", "init")


@pytest.mark.newest_cli_only
def test_structured_output(bed):
    """``output_format`` with a JSON schema: the result carries ``structured_output`` matching it."""
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    real, ours = both(bed, "give me json MOCK:structured", output_format={"type": "json_schema", "schema": schema})
    assert ours[1] == real[1] is None
    assert ours[0][-1].structured_output == real[0][-1].structured_output
    assert isinstance(ours[0][-1].structured_output, dict) and "answer" in ours[0][-1].structured_output
    assert ours[0][-1].subtype == real[0][-1].subtype == "success"


@pytest.mark.newest_cli_only
def test_include_partial_messages(bed):
    """``include_partial_messages``: StreamEvent messages before the assistant message, the same event
    types as the real CLI (the bridge gives one delta per block; docs: "Partial messages")."""
    from claude_agent_sdk.types import StreamEvent
    real, ours = both(bed, "stream this", include_partial_messages=True)
    assert ours[1] == real[1] is None
    events = lambda ms: [m.event["type"] for m in ms if isinstance(m, StreamEvent)]  # noqa: E731
    assert set(events(ours[0])) == set(events(real[0]))
    assert "content_block_delta" in events(ours[0])
    text = lambda ms: "".join(m.event["delta"].get("text", "") for m in ms  # noqa: E731
                              if isinstance(m, StreamEvent) and m.event["type"] == "content_block_delta")
    assert text(ours[0]) == text(real[0]) == "MOCK-REPLY to: stream this"
    strip = lambda ms: [m for m in ms if not isinstance(m, StreamEvent)]  # noqa: E731
    assert shape(strip(ours[0])) == shape(strip(real[0]))


@pytest.mark.parametrize("system_prompt", [
    {"type": "preset", "preset": "claude_code"},
    {"type": "preset", "preset": "claude_code", "append": "Always be brief."},
])
@pytest.mark.newest_cli_only
def test_system_prompt_presets(bed, system_prompt):
    """The claude_code preset (optionally with ``append``): the model gets the same system prompt text
    through the bridge as through the real CLI (the appended line included)."""
    real, ours = both(bed, "who are you", system_prompt=system_prompt)
    assert ours[1] == real[1] is None
    assert shape(ours[0]) == shape(real[0])
    reqs = bed.mock.main_requests()
    sys_text = lambda r: str(r["body"].get("system"))  # noqa: E731
    if "append" in system_prompt:
        assert "Always be brief." in sys_text(reqs[-1]) and "Always be brief." in sys_text(reqs[-2])
    assert ("Claude Code" in sys_text(reqs[-1])) == ("Claude Code" in sys_text(reqs[-2]))


@pytest.mark.newest_cli_only
@pytest.mark.parametrize("sources", [[], ["project"], ["user", "project", "local"]])
def test_setting_sources(bed, sources):
    """``setting_sources``: a project setting (here an env variable a Bash tool prints) applies only
    when "project" is among the sources, through the bridge as through the real CLI."""
    (bed.cwd / ".claude").mkdir(exist_ok=True)
    (bed.cwd / ".claude" / "settings.json").write_text('{"env": {"FROM_PROJECT": "project-setting"}}')
    prompt = "show MOCK:tool=echo_[$FROM%5FPROJECT]"
    real, ours = both(bed, prompt, setting_sources=sources, allowed_tools=["Bash"])
    assert ours[1] == real[1] is None
    assert shape(ours[0]) == shape(real[0])
    expect = "[project-setting]" if "project" in sources else "[]"
    assert expect in ours[0][-1].result, ours[0][-1].result


@pytest.mark.newest_cli_only
def test_sessions_are_served_from_a_warm_pool_pane(bed):
    """With a pool daemon running, SDK sessions that a shared pane can serve (no SDK hooks,
    can_use_tool or SDK MCP servers) run on the pool's panes: the messages are the real CLI's, each
    session's tools see its own environment, and the pane is cleared between sessions. (The SDK sets
    variables claude reads, such as CLAUDE_CODE_ENTRYPOINT, so its sessions have a key of their own:
    the first one starts that pane, the next ones find it warm.)"""
    from tests.conftest import assert_no_leftovers
    from tests.integration.test_pool import idle_panes, pool_cmd, status, wait_for
    prompt = "pooled MOCK:tool=echo_[$TASK%5FID]"
    p = pool_cmd(bed, "start", "--size", "1")
    assert p.returncode == 0, p.stdout + p.stderr
    try:
        wait_for(lambda: len(idle_panes(bed)) >= 1, what="a warm pane")
        warm = {p["pid"] for p in status(bed)["panes"]}
        for task in ("1", "2"):
            real, e = one_shot(bed, bed.claude_bin, prompt, allowed_tools=["Bash"], env=dict(bed.env, TASK_ID=task))
            assert e is None
            got, e = one_shot(bed, BRIDGE, prompt, allowed_tools=["Bash"], env=dict(bed.env, TASK_ID=task))
            assert e is None
            assert got[-1].result == f"MOCK-TOOL-DONE: [{task}]"
            assert shape(got)[:-1] == shape(real)[:-1]
        wait_for(lambda: len(idle_panes(bed)) >= 2, what="the panes back in the pool")
        sdk_panes = [p for p in status(bed)["panes"] if p["pid"] not in warm]
        assert len(sdk_panes) == 1 and sdk_panes[0]["jobs"] == 2, status(bed)["panes"]
        prompts = ["first pooled turn", "second pooled turn"]
        real_rounds = client_rounds(bed, bed.claude_bin, prompts, allowed_tools=["Bash"])
        rounds = client_rounds(bed, BRIDGE, prompts, allowed_tools=["Bash"])     # (the same key as above)
        assert [shape(r) for r in rounds] == [shape(r) for r in real_rounds]
        assert rounds[0][-1].session_id == rounds[1][-1].session_id
        for text in prompts:    # what the model got: the same as through the real CLI (no earlier session in it)
            real_req, ours_req = [r for r in bed.mock.main_requests() if r["prompt"] == text]
            assert ours_req["nmsg"] == real_req["nmsg"]
        wait_for(lambda: len(idle_panes(bed)) >= 2, what="the panes back in the pool")
        sdk_panes = [p for p in status(bed)["panes"] if p["pid"] not in warm]
        assert [p["jobs"] for p in sdk_panes] == [3]
    finally:
        pool_cmd(bed, "stop")
    assert_no_leftovers(bed)
