"""Tests for claude_bridge_tmux.invocation.flags: claude's own argv parsing, reproduced.

Every expectation below was observed on the real CLI, offline (throw-away HOME, ANTHROPIC_BASE_URL on a
closed loopback port or a local mock that logs the prompt it receives), on BOTH 2.1.197 and 2.1.329
unless a test says otherwise ("v197" / "v329").  Besides these hand-picked cases, ~1200 random argv
(tokens drawn from options, values, "--", short clusters, typos) were run through the real binaries
and through parse(): error text, help/version, prompt sent and model used agreed in every case.
Facts marked "(binary)" were read from the CLI bundle, not run.
"""
from __future__ import annotations

import pytest

from claude_bridge_tmux.invocation.flags import (
    FlagError,
    OptionSpec,
    ParsedArgs,
    check_supported,
    join_prompt,
    js_number,
    known_versions,
    load_table,
    parse,
    suggest_similar,
    to_argv,
)

VERSIONS = ["2.1.197", "2.1.329"]


@pytest.fixture(params=VERSIONS)
def table(request):
    return load_table(request.param)


def err(argv, table) -> FlagError:
    with pytest.raises(FlagError) as e:
        parse(argv, table)
    return e.value


# --- tables ---------------------------------------------------------------------------------------
def test_both_tables_load():
    assert set(VERSIONS) <= set(known_versions())
    for v in VERSIONS:
        t = load_table(v)
        assert t.version == v
        assert isinstance(t["print"], OptionSpec)
        assert t["print"].short == "-p" and t["print"].handling == "bridge"
        assert t["output-format"].choices == ("text", "json", "stream-json")
        assert t["allowedTools"].arity == "variadic" and t["allowedTools"].aliases == ("--allowed-tools",)
        assert t["resume"].arity == "optional" and t["resume"].short == "-r"
        assert t["max-turns"].hidden and t["max-turns"].handling == "bridge"
        assert t["no-chrome"].negates == "chrome"
        for spec in t.values():
            assert spec.handling in ("forward", "emulate", "refuse", "bridge"), spec
            assert spec.arity in ("none", "one", "optional", "variadic"), spec
    assert load_table("2.1.197").print_detection == "argv-includes"
    assert load_table("2.1.329").print_detection == "token-scan"
    assert "--system-prompt-snapshot" not in [s.long for s in load_table("2.1.197").values()]
    assert "system-prompt-snapshot" in load_table("2.1.329")


def test_nearest_version():
    assert load_table().version == known_versions()[-1]
    assert load_table("2.1.197 (Claude Code)").version == "2.1.197"
    assert load_table("2.1.250").version == "2.1.197"      # newest table not newer than the CLI
    assert load_table("9.9.9").version == known_versions()[-1]
    assert load_table("0.1.0").version == known_versions()[0]
    assert load_table("garbage").version == known_versions()[-1]


def test_refused_and_handling_lists():
    for v in VERSIONS:
        t = load_table(v)
        for k in ["bg", "teleport", "remote", "cloud", "ide", "chrome", "worktree", "tmux", "from-pr",
                  "file", "remote-control", "sdk-url", "prompt-suggestions", "debug-to-stderr"]:
            assert t[k].handling == "refuse", k
        for k in ["model", "append-system-prompt", "append-system-prompt-file", "system-prompt",
                  "system-prompt-file", "permission-mode", "dangerously-skip-permissions",
                  "allow-dangerously-skip-permissions", "allowedTools", "disallowedTools", "tools",
                  "session-id", "settings", "setting-sources", "mcp-config", "strict-mcp-config", "add-dir",
                  "agents", "agent", "plugin-dir", "disable-slash-commands", "effort", "betas", "resume",
                  "continue", "fork-session", "name", "fallback-model", "debug", "debug-file", "verbose",
                  "bare"]:
            assert t[k].handling == "forward", k
        for k in ["print", "output-format", "input-format", "include-partial-messages", "replay-user-messages",
                  "max-turns", "max-budget-usd", "json-schema", "no-session-persistence",
                  "permission-prompt-tool", "include-hook-events", "version", "help"]:
            assert t[k].handling == "bridge", k
    assert load_table("2.1.329")["desktop"].handling == "refuse"


# --- prompt positionals ---------------------------------------------------------------------------
def test_only_first_positional_is_the_prompt(table):
    # `claude -p a b` sent "a" (mock log); extra positionals are silently ignored
    r = parse(["-p", "a", "b"], table)
    assert r.prompt_args == ["a", "b"] and r.prompt == "a" and r.print_mode


def test_p_anywhere(table):
    # `claude a -p b` sent "a"; `claude hello -p --model zz` ran print mode with model zz
    r = parse(["a", "-p", "b"], table)
    assert r.print_mode and r.prompt == "a"
    r = parse(["hello", "-p", "--model", "zz"], table)
    assert r.print_mode and r.prompt == "hello" and r.options["model"] == "zz"
    assert parse(["--print", "x"], table).print_mode
    assert not parse(["x"], table).print_mode


def test_double_dash_ends_options(table):
    # `-p -- --model x` sent "--model"; `-- -p hello` sent "-p" (print mode only via non-TTY stdout)
    r = parse(["-p", "--", "--model", "x"], table)
    assert r.prompt == "--model" and "model" not in r.options
    r = parse(["--", "-p", "hello"], table)
    assert r.prompt == "-p" and not r.print_mode
    assert parse(["-p", "-", "x"], table).prompt == "-"          # a lone "-" is a positional


# --- --x=value ------------------------------------------------------------------------------------
def test_equals_form(table):
    assert parse(["-p", "--model=mq", "hello"], table).options["model"] == "mq"
    assert parse(["-p", "--model=", "x"], table).options["model"] == ""
    r = parse(["-p", "--allowedTools=A", "hello"], table)          # sent "hello": = form ends the list
    assert r.options["allowedTools"] == ["A"] and r.prompt == "hello"
    r = parse(["-p", "--tools=Bash Read", "hi"], table)            # init tools: Bash, Read
    assert r.options["tools"] == ["Bash Read"] and r.prompt == "hi"
    assert parse(["-p", "--resume=", "x"], table).options["resume"] == ""
    assert err(["-p", "--verbose=1", "x"], table).message == \
        "error: unknown option '--verbose=1'\n(Did you mean --verbose?)"
    assert err(["-p", "--bg=1"], table).message == "error: unknown option '--bg=1'"
    assert err(["-p", "--frob=1"], table).message == "error: unknown option '--frob=1'"
    assert err(["-p", "--output-format=xml", "x"], table).message == (
        "error: option '--output-format <format>' argument 'xml' is invalid. "
        "Allowed choices are text, json, stream-json.")


# --- variadic ------------------------------------------------------------------------------------
def test_variadic_swallows_the_prompt(table):
    # `-p --allowedTools A B hello`: "Error: Input must be provided either through stdin or as a prompt
    # argument when using --print" (the prompt became a tool name)
    r = parse(["-p", "--allowedTools", "A", "B", "hello"], table)
    assert r.options["allowedTools"] == ["A", "B", "hello"] and r.prompt_args == []
    # a required first value is taken even when it looks like an option: `--allowedTools -p x`
    r = parse(["-p", "--allowedTools", "-p", "x"], table)
    assert r.options["allowedTools"] == ["-p", "x"] and r.prompt is None


def test_variadic_stops_at_option_and_double_dash(table):
    r = parse(["-p", "--allowedTools", "A", "--", "hello"], table)
    assert r.options["allowedTools"] == ["A"] and r.prompt == "hello"
    r = parse(["-p", "--allowedTools", "A", "--verbose", "hello"], table)
    assert r.options["allowedTools"] == ["A"] and r.options["verbose"] is True and r.prompt == "hello"
    r = parse(["-p", "--tools", "", "--", "hi"], table)              # init tools: []
    assert r.options["tools"] == [""]


def test_variadic_accumulates_over_repeats(table):
    # init tools after `--tools Bash Read --tools Edit --`: Bash, Edit, Read
    r = parse(["-p", "--tools", "Bash", "Read", "--tools", "Edit", "--", "hi"], table)
    assert r.options["tools"] == ["Bash", "Read", "Edit"]
    assert r.occurrences == [("print", True), ("tools", ["Bash", "Read"]), ("tools", ["Edit"])]
    # `--disallowedTools=Bash --disallowedTools=Read` removed both tools
    r = parse(["-p", "--disallowedTools=Bash", "--disallowed-tools=Read", "hi"], table)
    assert r.options["disallowedTools"] == ["Bash", "Read"] and r.prompt == "hi"


# --- repeats / negations --------------------------------------------------------------------------
def test_repeated_flags_last_wins(table):
    # API request used model "m2"; init permissionMode "acceptEdits"
    r = parse(["-p", "--model", "m1", "--model", "m2", "hello"], table)
    assert r.options["model"] == "m2" and r.occurrences[1:] == [("model", "m1"), ("model", "m2")]
    r = parse(["-p", "--permission-mode", "plan", "--permission-mode", "acceptEdits", "hi"], table)
    assert r.options["permission-mode"] == "acceptEdits"
    # (binary) --plugin-dir's argParser accumulates: (value, prev) => [...prev, value]
    assert parse(["--plugin-dir", "a", "--plugin-dir", "b", "-p", "x"], table).options["plugin-dir"] == ["a", "b"]


def test_negations(table):
    assert parse(["-p", "--no-chrome", "--chrome", "x"], table).options == {"print": True, "chrome": True}
    assert parse(["-p", "--chrome", "--no-chrome", "x"], table).options == {"print": True, "no-chrome": True}
    assert parse(["-p", "--no-session-persistence", "x"], table).options["no-session-persistence"] is True
    assert err(["-p", "--session-persistence", "x"], table).message == \
        "error: unknown option '--session-persistence'\n(Did you mean --no-session-persistence?)"
    assert err(["-p", "--no-verbose", "x"], table).message == \
        "error: unknown option '--no-verbose'\n(Did you mean --verbose?)"


# --- short flags ------------------------------------------------------------------------------------
def test_short_flags(table):
    assert parse(["-p", "-c", "hi"], table).options == {"print": True, "continue": True}
    assert parse(["-pc", "hi"], table).options == {"print": True, "continue": True}      # init ran
    assert parse(["-cp", "hi"], table).options == {"print": True, "continue": True}
    assert parse(["-p", "-n", "nm", "x"], table).options["name"] == "nm"
    # -r takes the rest of a cluster / the next token: `Provided value "abc" is not a UUID`
    assert parse(["-prabc"], table).options["resume"] == "abc"
    assert parse(["-p", "-cr", "abc"], table).options["resume"] == "abc"
    assert parse(["-p", "-r=abc"], table).options["resume"] == "=abc"   # claude: Provided value "=abc"
    assert parse(["-p", "-dapi", "x"], table).options["debug"] == "api"
    r = parse(["-p", "-d2e", "x"], table)                              # hidden multi-letter short flag
    assert r.options["debug-to-stderr"] is True and r.prompt == "x"
    assert err(["-p", "-pz"], table).message == "error: unknown option '-z'"
    assert err(["-p", "-x"], table).message == "error: unknown option '-x'"
    assert err(["-p", "-n"], table).message == "error: option '-n, --name <name>' argument missing"


# --- optional values ----------------------------------------------------------------------------
def test_optional_values(table):
    # `-p -d hello`: "Input must be provided" -> hello became the debug filter
    r = parse(["-p", "-d", "hello"], table)
    assert r.options["debug"] == "hello" and r.prompt is None
    assert parse(["-p", "--debug", "api", "hello"], table).options["debug"] == "api"
    # `-p -r -p` / `-p -r -- x`: "--resume requires a valid session ID ..." without "Provided value"
    assert parse(["-p", "-r", "-p"], table).options["resume"] is True
    r = parse(["-p", "-r", "--", "x"], table)
    assert r.options["resume"] is True and r.prompt == "x"
    assert err(["-p", "--resume", "-x"], table).message == "error: unknown option '-x'"


def test_required_value_takes_anything(table):
    # `--model -x hello`: API request model "-x", prompt "hello"
    r = parse(["-p", "--model", "-x", "hello"], table)
    assert r.options["model"] == "-x" and r.prompt == "hello"
    r = parse(["-p", "--model", "--frob"], table)                   # no unknown-option error
    assert r.options["model"] == "--frob"


# --- errors ----------------------------------------------------------------------------------------
def test_missing_argument(table):
    assert err(["-p", "--model"], table).message == "error: option '--model <model>' argument missing"
    assert err(["-p", "x", "--model"], table).exit_code == 1
    assert err(["-p", "--allowedTools"], table).message == \
        "error: option '--allowedTools, --allowed-tools <tools...>' argument missing"
    assert err(["-p", "--allowed-tools"], table).message == \
        "error: option '--allowedTools, --allowed-tools <tools...>' argument missing"
    # parse errors come in argv order: the missing argument beats the earlier unknown option
    assert err(["-p", "--frob", "--model"], table).message == "error: option '--model <model>' argument missing"


def test_unknown_option(table):
    e = err(["-p", "--frobnicate"], table)
    assert e.message == "error: unknown option '--frobnicate'" and e.exit_code == 1
    assert err(["-p", "--modle", "x", "y"], table).message == \
        "error: unknown option '--modle'\n(Did you mean --model?)"
    assert err(["-p", "--modle=x", "y"], table).message == \
        "error: unknown option '--modle=x'\n(Did you mean --model?)"
    assert err(["-p", "--agentz"], table).message == \
        "error: unknown option '--agentz'\n(Did you mean one of --agent, --agents?)"
    assert err(["-p", "--allowedtools", "x"], table).message == \
        "error: unknown option '--allowedtools'\n(Did you mean --allowed-tools?)"
    assert err(["-p", "--Model"], table).message == "error: unknown option '--Model'\n(Did you mean --model?)"
    assert err(["-p", "--outputformat", "x"], table).message == \
        "error: unknown option '--outputformat'\n(Did you mean --output-format?)"
    # hidden options are never suggested
    assert err(["-p", "--max-turn", "3", "x"], table).message == "error: unknown option '--max-turn'"
    assert err(["-p", "--routine", "x"], table).message == \
        "error: unknown option '--routine'\n(Did you mean --continue?)"
    # the first unknown option is reported, after the whole argv parsed fine
    assert err(["-p", "--frob", "x", "--zork"], table).message == "error: unknown option '--frob'"


def test_invalid_choice(table):
    assert err(["-p", "--output-format", "xml", "x"], table).message == (
        "error: option '--output-format <format>' argument 'xml' is invalid. "
        "Allowed choices are text, json, stream-json.")
    assert err(["-p", "--input-format", "xml", "x"], table).message == (
        "error: option '--input-format <format>' argument 'xml' is invalid. Allowed choices are text, stream-json.")
    assert err(["-p", "--thinking", "x", "y"], table).message == (
        "error: option '--thinking <mode>' argument 'x' is invalid. Allowed choices are enabled, adaptive, disabled.")
    assert err(["-p", "--prompt-suggestions", "maybe", "x"], table).message == (
        "error: option '--prompt-suggestions [value]' argument 'maybe' is invalid. "
        "Allowed choices are true, false, 1, 0, yes, no, on, off.")
    assert err(["-p", "--prompt-suggestions=", "x"], table).message.endswith("argument '' is invalid. "
                                                                             "Allowed choices are true, false, 1, 0, yes, no, on, off.")
    assert parse(["-p", "--prompt-suggestions", "TRUE", "x"], table).options["prompt-suggestions"] == "TRUE"
    assert parse(["-p", "--prompt-suggestions", "--", "x"], table).options["prompt-suggestions"] is True
    # the invalid value is reported even when an unknown option comes first
    assert err(["-p", "--frob", "x", "--output-format", "xml"], table).message.startswith(
        "error: option '--output-format <format>' argument 'xml' is invalid.")


def test_permission_mode_choices_per_version():
    t197, t329 = load_table("2.1.197"), load_table("2.1.329")
    assert err(["-p", "--permission-mode", "bogus", "x"], t197).message == (
        "error: option '--permission-mode <mode>' argument 'bogus' is invalid. "
        "Allowed choices are acceptEdits, auto, bypassPermissions, default, dontAsk, plan.")
    assert err(["-p", "--permission-mode", "manual", "x"], t197).message.startswith(
        "error: option '--permission-mode <mode>' argument 'manual' is invalid.")
    assert err(["-p", "--permission-mode", "bogus", "x"], t329).message == (
        "error: option '--permission-mode <mode>' argument 'bogus' is invalid. "
        "Allowed choices are acceptEdits, auto, bypassPermissions, manual, dontAsk, plan.")
    # v329 still accepts "default" (init permissionMode "default") and "manual"
    assert parse(["-p", "--permission-mode", "default", "x"], t329).options["permission-mode"] == "default"
    assert parse(["-p", "--permission-mode", "manual", "x"], t329).options["permission-mode"] == "manual"


def test_numeric_validation_per_version():
    t197, t329 = load_table("2.1.197"), load_table("2.1.329")
    # v197: a plain Error from the argParser; bun prints the source, "error: ...", a stack, rc 1
    assert err(["-p", "--max-budget-usd", "-1", "x"], t197).message == \
        "error: --max-budget-usd must be a positive number greater than 0"
    assert err(["-p", "--max-budget-usd", "", "x"], t197).exit_code == 1
    assert err(["-p", "--max-budget-usd", "abc", "x"], t329).message == (
        "error: option '--max-budget-usd <amount>' argument 'abc' is invalid. "
        "--max-budget-usd must be a number greater than 0")
    assert parse(["-p", "--max-budget-usd", "0x10", "x"], t329).options["max-budget-usd"] == "0x10"
    # v197 accepts any --max-turns; v329 wants a number ("", " 7 ", "0x10", "-1", "1.5", "1,000" pass)
    assert parse(["-p", "--max-turns", "12abc", "x"], t197).options["max-turns"] == "12abc"
    assert err(["-p", "--max-turns", "12abc", "x"], t329).message == \
        "error: option '--max-turns <turns>' argument '12abc' is invalid. must be a number"
    for ok in ["", " 7 ", "0x10", "-1", "1.5", "1,000", "1_000"]:
        assert parse(["-p", "--max-turns", ok, "x"], t329).options["max-turns"] == ok
    assert err(["-p", "--max-turns", "1,00", "x"], t329).message.endswith("must be a number")
    assert err(["-p", "--task-budget", "1.5", "x"], t329).message == \
        "error: option '--task-budget <tokens>' argument '1.5' is invalid. --task-budget must be a positive integer"
    assert err(["-p", "--autocompact", "99k", "x"], t329).message == (
        "error: option '--autocompact <auto|tokens>' argument '99k' is invalid. "
        "It must be 'auto', or at least 100k (e.g. 500k, 200000, or 200 as shorthand)")
    for ok in ["100k", "200", "999", "1000", "100000", "AUTO", " auto ", "1m", "150.5k", "1,000,000"]:
        parse(["-p", "--autocompact", ok, "x"], t329)


def test_effort_warning(table):
    r = parse(["-p", "--effort", "bogus", "x"], table)
    assert r.warnings == ["Warning: Unknown --effort value 'bogus' \u2014 ignoring it and using the default "
                          "effort. Valid values: low, medium, high, xhigh, max."]
    assert parse(["-p", "--effort", " Med ", "x"], table).warnings == []
    assert parse(["-p", "--effort", "HIGH", "x"], table).warnings == []
    e = err(["-p", "--effort", "", "--model"], table)        # warning printed, then the error
    assert e.warnings and e.message == "error: option '--model <model>' argument missing"


def test_effort_alias_per_version():
    assert parse(["-p", "--effort", "ultracode", "x"], load_table("2.1.197")).warnings
    assert not parse(["-p", "--effort", "ultracode", "x"], load_table("2.1.329")).warnings


def test_setting_sources_checked_before_parsing(table):
    msg = ("Error processing --setting-sources: Invalid setting source: bogus. "
           "Valid options are: user, project, local")
    assert err(["-p", "--setting-sources", "bogus", "x"], table).message == msg
    assert err(["-p", "--setting-sources", "bogus", "-v"], table).message == msg       # before -v
    assert err(["-p", "--frob", "--setting-sources", "bogus"], table).message == msg   # before unknown
    assert err(["-p", "--setting-sources=bogus", "x"], table).message == msg
    assert err(["-p", "--setting-sources", "user,Project", "x"], table).message.endswith(
        "Invalid setting source: Project. Valid options are: user, project, local")
    parse(["-p", "--setting-sources", "", "x"], table)
    parse(["-p", "--setting-sources", " user , local ", "x"], table)
    parse(["-p", "--setting-sources", "bogus", "--setting-sources", "user", "x"], table)   # last wins
    parse(["-p", "--", "--setting-sources", "bogus"], table)


def test_setting_sources_scan_dialects():
    # v197's scan skips only a fixed set of value options; v329's skips by arity
    argv = ["-p", "--system-prompt", "--setting-sources", "x"]
    assert err(argv, load_table("2.1.197")).message.endswith("Invalid setting source: x. "
                                                             "Valid options are: user, project, local")
    assert parse(argv, load_table("2.1.329")).prompt == "x"


# --- help / version -----------------------------------------------------------------------------
def test_version_and_help(table):
    assert parse(["-p", "--frob", "-v"], table).version_requested          # stdout "X (Claude Code)", rc 0
    assert parse(["-p", "-v", "--output-format", "xml"], table).version_requested
    assert parse(["-pv"], table).version_requested
    assert parse(["-p", "-h", "-v"], table).version_requested              # -v acts while parsing
    assert err(["-p", "--output-format", "xml", "-v"], table).message.startswith("error: option")
    r = parse(["-p", "-h", "--frob"], table)                                # help, rc 0
    assert r.help_requested and not r.version_requested
    assert parse(["-p", "--frob", "-h"], table).help_requested
    assert parse(["--help"], table).help_requested
    assert parse(["-p", "--model", "-h", "x"], table).options["model"] == "-h"
    assert err(["-p", "--help=1"], table).message == "error: unknown option '--help=1'\n(Did you mean --help?)"


# --- subcommands --------------------------------------------------------------------------------
def test_subcommands(table):
    assert parse(["mcp", "list"], table).subcommand == "mcp"                # "Usage: claude mcp ..."
    assert parse(["--model", "m", "mcp", "--help"], table).subcommand == "mcp"
    assert parse(["--verbose", "plugins"], table).subcommand == "plugins"
    assert parse(["-pc", "mcp"], table).subcommand == "mcp"                 # "-p" token absent
    assert parse(["--", "mcp", "--help"], table).subcommand == "mcp"       # mcp: unknown command '--help'
    r = parse(["-p", "mcp"], table)                                         # sent "mcp"
    assert r.subcommand is None and r.prompt == "mcp"
    assert parse(["x", "mcp", "--help"], table).help_requested              # main help
    assert parse(["-d", "mcp", "--help"], table).subcommand is None         # mcp = debug filter
    assert parse(["--allowedTools", "A", "mcp"], table).subcommand is None
    assert parse(["doctor"], table).subcommand == "doctor"


def test_subcommand_print_detection_per_version():
    argv = ["--model", "-p", "mcp", "--help"]
    assert parse(argv, load_table("2.1.197")).help_requested               # any "-p" token disables them
    assert parse(argv, load_table("2.1.329")).subcommand == "mcp"          # "-p" here is --model's value


# --- join rule ----------------------------------------------------------------------------------
def test_join_prompt():
    # mock logs: ARG + "\n" + STDIN, stdin alone for an empty ARG, stdin's newline kept
    assert join_prompt(["A"], "B\n") == "A\nB\n"
    assert join_prompt([""], "B\n") == "B\n"
    assert join_prompt(["A"], "") == "A"
    assert join_prompt(["A"], None) == "A"
    assert join_prompt(["A"], "\n") == "A\n\n"
    assert join_prompt(["A\n"], "  B  ") == "A\n\n  B  "
    assert join_prompt(["A", "C"], "B") == "A\nB"
    assert join_prompt([], "B") == "B"
    assert join_prompt([" "], "B") == " \nB"
    assert join_prompt([], None) == ""


# --- to_argv --------------------------------------------------------------------------------------
ROUND_TRIP = [
    ("model", "claude-x"), ("model", "-weird"), ("model", ""), ("model", "a=b"),
    ("allowedTools", ["Bash", "Read"]), ("allowedTools", ["Bash(git *)", "-x"]), ("tools", [""]),
    ("disallowedTools", ["--", "Edit"]), ("resume", True), ("resume", "abc"), ("resume", "-r"),
    ("debug", "api,hooks"), ("debug", True), ("verbose", True), ("no-chrome", True),
    ("dangerously-skip-permissions", True), ("plugin-dir", ["a", "-b"]), ("permission-mode", "plan"),
    ("append-system-prompt", "--- header ---"), ("name", "-n"), ("mcp-config", ["/tmp/a.json", "{\"x\":1}"]),
]


@pytest.mark.parametrize("key,value", ROUND_TRIP)
def test_to_argv_round_trip(table, key, value):
    argv = to_argv(key, value, table) + ["-p", "--", "PROMPT -x"]
    r = parse(argv, table)
    assert r.options[key] == value
    assert r.prompt == "PROMPT -x" and r.print_mode


def test_to_argv_shapes(table):
    assert to_argv("allowedTools", ["A", "B"], table) == ["--allowedTools", "A", "B"]
    assert to_argv("allowedTools", ["A", "-B"], table) == ["--allowedTools=A", "--allowedTools=-B"]
    assert to_argv("model", "m", table) == ["--model", "m"]
    assert to_argv("model", "-m", table) == ["--model=-m"]
    assert to_argv("resume", True, table) == ["--resume"]
    assert to_argv("resume", "id", table) == ["--resume=id"]
    assert to_argv("verbose", True, table) == ["--verbose"]
    assert to_argv("verbose", False, table) == []


# --- the agent-swarm command line -----------------------------------------------------------------
SWARM = ["--model", "m", "--verbose", "--output-format", "stream-json", "--dangerously-skip-permissions",
         "--allow-dangerously-skip-permissions", "--permission-mode", "bypassPermissions", "-p", "PROMPT",
         "--append-system-prompt-file", "/tmp/sp.txt", "--mcp-config", "/tmp/mcp.json", "--strict-mcp-config"]


def test_agent_swarm_argv(table):
    r = parse(SWARM, table)
    assert r.print_mode and r.prompt == "PROMPT" and r.subcommand is None
    assert r.options == {
        "model": "m", "verbose": True, "output-format": "stream-json", "dangerously-skip-permissions": True,
        "allow-dangerously-skip-permissions": True, "permission-mode": "bypassPermissions", "print": True,
        "append-system-prompt-file": "/tmp/sp.txt", "mcp-config": ["/tmp/mcp.json"], "strict-mcp-config": True,
    }
    assert [k for k, _ in r.occurrences] == ["model", "verbose", "output-format", "dangerously-skip-permissions",
                                             "allow-dangerously-skip-permissions", "permission-mode", "print",
                                             "append-system-prompt-file", "mcp-config", "strict-mcp-config"]
    assert r.refused(table) == []
    check_supported(r, table)
    forwarded = [k for k in r.options if table[k].handling == "forward"]
    rebuilt = [tok for k in forwarded for tok in to_argv(k, r.options[k], table)]
    again = parse(rebuilt + ["--", "PROMPT"], table)
    assert {k: again.options[k] for k in forwarded} == {k: r.options[k] for k in forwarded}


def test_structured_fallback_argv(table):
    r = parse(["-p", "--model", "m", "--output-format", "json", "--json-schema", '{"type":"object"}'], table)
    assert r.prompt is None and r.options["json-schema"] == '{"type":"object"}'


# --- refusal helper -------------------------------------------------------------------------------
def test_check_supported(table):
    r = parse(["-p", "--bg", "--ide", "x"], table)
    assert r.refused(table) == ["bg", "ide"]
    with pytest.raises(FlagError) as e:
        check_supported(r, table)
    assert e.value.message.startswith("error: option '--bg' is not supported by claude-bridge")
    assert "\n" not in e.value.message and e.value.exit_code == 1
    with pytest.raises(FlagError) as e:
        check_supported(parse(["mcp", "list"], table), table)
    assert "claude mcp" in e.value.message
    check_supported(parse(["-p", "--model", "m", "x"], table), table)


# --- helpers ----------------------------------------------------------------------------------------
def test_js_number():
    assert js_number("") == 0 and js_number(" 7 ") == 7 and js_number("0x10") == 16
    assert js_number("1e-3") == 0.001 and js_number("Infinity") == float("inf") and js_number(".5") == 0.5
    for bad in ["abc", "12abc", "1,5", "0x", "1_000", "--1"]:
        assert js_number(bad) != js_number(bad)   # NaN


def test_suggest_similar():
    assert suggest_similar("--modle", ["--model", "--verbose"]) == "\n(Did you mean --model?)"
    assert suggest_similar("--zzzzzz", ["--model"]) == ""
    assert suggest_similar("--ab", ["--a", "--abc"]) == "\n(Did you mean --abc?)"


def test_parsed_args_defaults():
    r = ParsedArgs()
    assert r.options == {} and r.prompt is None and not r.print_mode and r.subcommand is None
