"""plan.build_plan and the options the flag table marks "bridge": accepted ones are not forwarded to the
pane, the others are refused in one line; bypass as root needs IS_SANDBOX=1 (claude's own rule)."""

from __future__ import annotations

import pytest

from claude_bridge_tmux.invocation import flags
from claude_bridge_tmux.invocation.plan import ROOT_BYPASS_MESSAGE, UsageError, build_plan, bypass_refused_as_root

VERSIONS = ["2.1.197", "2.1.329"]


def plan_for(argv, version, env=None):
    table = flags.load_table(version)
    return build_plan(flags.parse(argv, table), stdin_text=None, caller_env=dict(env or {"IS_SANDBOX": "1"}),
                      cwd="/tmp", claude_bin="/bin/false", cli_version=version, table=table)


@pytest.mark.parametrize("version", VERSIONS)
def test_accepted_bridge_options_are_not_forwarded(version):
    plan = plan_for(["-p", "x", "--output-format", "json", "--verbose", "--enable-auth-status",
                     "--ax-screen-reader"], version)
    assert plan.output_format == "json"
    assert not any(a in plan.claude_args for a in ("-p", "--print", "--output-format", "--verbose",
                                                   "--enable-auth-status", "--ax-screen-reader"))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("argv", [["--permission-prompt-tool", "mcp__x__y"],
                                  ])
def test_other_bridge_options_are_refused_in_one_line(version, argv):
    with pytest.raises(UsageError) as e:
        plan_for(["-p", "x", "--output-format", "stream-json", "--verbose", *argv], version)
    assert e.value.exit_code == 1 and "\n" not in e.value.message
    assert e.value.message.startswith(f"claude-bridge: {argv[0]} is not supported by claude-bridge")


@pytest.mark.parametrize("version", VERSIONS)
def test_agent_swarm_argv_plans(version):
    argv = ["--model", "m", "--verbose", "--output-format", "stream-json", "--dangerously-skip-permissions",
            "--allow-dangerously-skip-permissions", "--permission-mode", "bypassPermissions", "-p", "do it",
            "--append-system-prompt-file", "/tmp/s.txt", "--mcp-config", "/tmp/m.json", "--strict-mcp-config"]
    plan = plan_for(argv, version)
    assert plan.bypass and plan.permission_mode == "bypassPermissions" and plan.model == "m"
    assert plan.submit == "paste"                    # MCP servers get to connect before the first request
    for opt in ("--dangerously-skip-permissions", "--allow-dangerously-skip-permissions", "--strict-mcp-config"):
        assert opt in plan.claude_args
    for opt, value in (("--append-system-prompt-file", "/tmp/s.txt"), ("--mcp-config", "/tmp/m.json"),
                       ("--permission-mode", "bypassPermissions"), ("--model", "m")):
        assert plan.claude_args[plan.claude_args.index(opt) + 1] == value


def test_bypass_as_root_rule():
    table = flags.load_table("2.1.329")
    for argv in (["--dangerously-skip-permissions"], ["--allow-dangerously-skip-permissions"],
                 ["--permission-mode", "bypassPermissions"]):
        parsed = flags.parse(["-p", "x", *argv], table)
        assert bypass_refused_as_root(parsed, {}, uid=0)
        assert not bypass_refused_as_root(parsed, {"IS_SANDBOX": "1"}, uid=0)
        assert not bypass_refused_as_root(parsed, {"CLAUDE_CODE_BUBBLEWRAP": "1"}, uid=0)
        assert not bypass_refused_as_root(parsed, {}, uid=1000)
    assert not bypass_refused_as_root(flags.parse(["-p", "x", "--permission-mode", "plan"], table), {}, uid=0)
    assert ROOT_BYPASS_MESSAGE == "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons"


# -- -p semantics in the pane -------------------------------------------------------------------------

def _after(args, flag):
    i = args.index(flag)
    out = []
    for a in args[i + 1:]:
        if a.startswith("-"):
            break
        out.append(a)
    return out


@pytest.mark.parametrize("version", VERSIONS)
def test_interactive_only_tools_are_disallowed(version):
    plan = plan_for(["-p", "x"], version)
    assert _after(plan.claude_args, "--disallowedTools") == ["AskUserQuestion", "EnterPlanMode", "ExitPlanMode",
                                                             "Agent(claude-code-guide)"]
    # an agent the caller names stays
    plan = plan_for(["-p", "x", "--allowedTools", "Agent(claude-code-guide)"], version)
    assert "Agent(claude-code-guide)" not in _after(plan.claude_args, "--disallowedTools")
    # the caller's own list is kept (repeats accumulate in claude)
    plan = plan_for(["-p", "x", "--disallowedTools", "Bash"], version)
    assert plan.claude_args.count("--disallowedTools") == 2 and "Bash" in plan.claude_args


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("argv,kept", [(["--tools", "Bash,AskUserQuestion"], "AskUserQuestion"),
                                       (["--allowedTools", "ExitPlanMode Read"], "ExitPlanMode"),
                                       (["--allowedTools=EnterPlanMode"], "EnterPlanMode")])
def test_explicitly_allowed_interactive_tools_stay(version, argv, kept):
    plan = plan_for(["-p", "x", *argv], version)
    hidden = _after(plan.claude_args, "--disallowedTools")
    assert kept not in hidden and len(hidden) == 3


@pytest.mark.parametrize("version,hidden", [("2.1.197", True), ("2.1.329", False), ("2.1.332", False)])
def test_wait_for_mcp_servers_is_hidden_where_the_bridge_waits_for_the_servers(version, hidden):
    """2.1.197 with --mcp-config: the bridge holds the first prompt until the servers are up (as -p does),
    and -p then offers no WaitForMcpServers; interactive 2.1.197 with --model offers it all session."""
    plan = plan_for(["-p", "x", "--model", "m", "--mcp-config", "/tmp/m.json"], version)
    assert ("WaitForMcpServers" in _after(plan.claude_args, "--disallowedTools")) is hidden
    assert "WaitForMcpServers" not in _after(plan_for(["-p", "x"], version).claude_args, "--disallowedTools")
    plan = plan_for(["-p", "x", "--mcp-config", "/tmp/m.json", "--allowedTools", "WaitForMcpServers"], version)
    assert "WaitForMcpServers" not in _after(plan.claude_args, "--disallowedTools")


# -- sessions ---------------------------------------------------------------------------------------

UUID = "0e1bb70b-05db-45d9-b583-01288de64b6f"
OTHER = "11111111-2222-4333-8444-555555555555"


def session_bed(tmp_path, ids=(), titles=None):
    from claude_bridge_tmux.follow.transcript import encode_project_dir
    home = tmp_path / "home"
    cwd = tmp_path / "work"
    cwd.mkdir(parents=True, exist_ok=True)
    proj = home / ".claude" / "projects" / encode_project_dir(str(cwd))
    proj.mkdir(parents=True, exist_ok=True)
    for sid in ids:
        lines = ['{"type":"user","message":{"role":"user","content":"hi"},"uuid":"u1","sessionId":"%s"}' % sid]
        if titles and sid in titles:
            lines.append('{"type":"custom-title","customTitle":"%s","sessionId":"%s"}' % (titles[sid], sid))
        (proj / f"{sid}.jsonl").write_text("\n".join(lines) + "\n")
    return {"HOME": str(home), "IS_SANDBOX": "1"}, str(cwd)


def splan(argv, version, env, cwd):
    table = flags.load_table(version)
    return build_plan(flags.parse(["-p", "x", *argv], table), stdin_text=None, caller_env=env, cwd=cwd,
                      claude_bin="/bin/false", cli_version=version, table=table)


@pytest.mark.parametrize("version", VERSIONS)
def test_session_args(version, tmp_path):
    env, cwd = session_bed(tmp_path, ids=[UUID], titles={UUID: "my title"})
    p = splan([], version, env, cwd)
    assert p.session_args == ["--session-id", p.session_id] and "--session-id" not in p.claude_args
    p = splan(["--resume", UUID.upper()], version, env, cwd)
    assert (p.session_args, p.session_id, p.resume) == (["--resume", UUID], UUID, UUID)
    p = splan(["--resume", "my title"], version, env, cwd)
    assert p.session_args == ["--resume", UUID]
    # --continue: the cwd's latest transcript, named to the pane by id (interactive 2.1.329's own
    # --continue skips sessions only -p wrote)
    p = splan(["--continue"], version, env, cwd)
    assert p.session_args == ["--resume", UUID] and p.continue_session and p.fixed_session_id
    assert p.session_id == UUID
    p = splan(["--resume", UUID, "--fork-session"], version, env, cwd)
    assert p.session_args == ["--resume", UUID, "--fork-session", "--session-id", p.session_id] and p.session_id != UUID
    p = splan(["--continue", "--fork-session", "--session-id", OTHER], version, env, cwd)
    assert p.session_args == ["--resume", UUID, "--fork-session", "--session-id", OTHER]
    p = splan(["--fork-session"], version, env, cwd)      # alone: claude -p ignores it
    assert p.session_args == ["--session-id", p.session_id] and not p.fork
    p = splan(["--name", "n"], version, env, cwd)
    assert p.claude_args[p.claude_args.index("--name") + 1] == "n"


@pytest.mark.parametrize("version", VERSIONS)
def test_continue_without_sessions_starts_a_new_one(version, tmp_path):
    env, cwd = session_bed(tmp_path)
    p = splan(["--continue"], version, env, cwd)
    assert p.session_args == ["--session-id", p.session_id] and not p.continue_session


@pytest.mark.parametrize("version,argv,message", [
    ("2.1.197", ["--session-id", OTHER, "--resume", UUID],
     "Error: --session-id can only be used with --continue or --resume if --fork-session is also specified."),
    ("2.1.197", ["--session-id", OTHER, "--continue"],
     "Error: --session-id can only be used with --continue or --resume if --fork-session is also specified."),
    ("2.1.329", ["--session-id", OTHER, "--resume", UUID],
     "Error: --session-id with --continue or --resume also needs --fork-session."),
    ("2.1.197", ["--resume"], "Error: --resume requires a valid session ID or session title when used with "
                              "--print. Usage: claude -p --resume <session-id|title>"),
    ("2.1.329", ["--resume", "nosuch"], "Error: --resume requires a valid session ID or session title when used "
     "with --print. Usage: claude -p --resume <session-id|title>. Provided value \"nosuch\" is not a UUID and does "
     "not match any session title."),
    ("2.1.197", ["--resume", OTHER], f"No conversation found with session ID: {OTHER}"),
    ("2.1.329", ["--resume", OTHER], f"No conversation found with session ID: {OTHER}"),
    ("2.1.197", ["--session-id", UUID], f"Error: Session ID {UUID} is already in use."),
])
def test_session_errors_are_claudes(version, argv, message, tmp_path):
    env, cwd = session_bed(tmp_path, ids=[UUID])
    with pytest.raises(UsageError) as e:
        splan(argv, version, env, cwd)
    assert (e.value.message, e.value.exit_code) == (message, 1)


@pytest.mark.parametrize("value,expected", [("3", 3), ("1.5", 1.5), ("0", None), ("-1", None), ("abc", None)])
def test_max_turns_values_as_claude_reads_them(value, expected, tmp_path):
    env, cwd = session_bed(tmp_path)
    table = flags.load_table("2.1.197")    # 2.1.329 rejects "abc" while parsing
    p = build_plan(flags.parse(["-p", "x", "--max-turns", value], table), stdin_text=None, caller_env=env,
                   cwd=cwd, claude_bin="/bin/false", cli_version="2.1.197", table=table)
    assert p.max_turns == expected and "--max-turns" not in p.claude_args
