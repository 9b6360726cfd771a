"""plan.build_plan and the options the flag table marks "bridge": accepted ones are not forwarded to the
pane, the others are refused in one line; bypass as root needs IS_SANDBOX=1 (claude's own rule)."""

from __future__ import annotations

import pytest

from claude_bridge_tmux import flags
from claude_bridge_tmux.plan import ROOT_BYPASS_MESSAGE, UsageError, build_plan, bypass_refused_as_root

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
@pytest.mark.parametrize("argv", [["--include-partial-messages"], ["--max-turns", "3"], ["--json-schema", "{}"],
                                  ["--no-session-persistence"], ["--input-format", "stream-json"]])
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
