"""Option tables derived from an unpinned claude's --help (invocation/derive.py), on recorded help
texts: the derived table splits argv as the probed table of that version does."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from claude_bridge_tmux.invocation import derive, flags
from claude_bridge_tmux.invocation.plan import UsageError, build_plan

HELP = Path(__file__).resolve().parent.parent / "data" / "help"
PACKAGED_332 = {o["key"]: o for o in flags.raw_table("2.1.332")["options"]}


@pytest.fixture
def derived_332():
    """2.1.332 as if only 2.1.197 were pinned: its --help over 2.1.197's table."""
    return derive.derive_table(flags.raw_table("2.1.197"), (HELP / "2.1.332.txt").read_text(), "2.1.332")


def test_parse_help_reads_flags_choices_and_wrapped_descriptions():
    options, commands = derive.parse_help((HELP / "2.1.197.txt").read_text())
    by_key = {derive.key_of(o["flags"]): o for o in options}
    assert by_key["output-format"]["choices"] == ["text", "json", "stream-json"]
    assert by_key["add-dir"]["flags"] == "--add-dir <directories...>"
    assert "mcp" in commands and "doctor" in commands
    assert all("\n" not in o["help"] for o in options)
    assert derive.split_flags("-d, --debug [filter]") == {
        "names": ["-d", "--debug"], "longs": ["--debug"], "shorts": ["-d"], "value": "[filter]", "arity": "optional"}


def test_new_options_get_the_arity_and_choices_the_probe_found(derived_332):
    assert derived_332["added"] == ["autocompact", "desktop", "environment", "forward-subagent-text",
                                    "permission-prompts", "restricted", "system-prompt-snapshot"]
    for key in derived_332["added"]:
        ours = next(o for o in derived_332["options"] if o["key"] == key)
        probed = PACKAGED_332[key]
        for field in ("long", "short", "arity", "value_name", "choices", "flags"):
            assert ours[field] == probed[field], (key, field)
        assert ours["handling"] == "refuse" and "2.1.332" in ours["note"]
    # every option 2.1.197 knows keeps its reviewed entry
    base = flags.raw_table("2.1.197")["options"]
    assert derived_332["options"][:len(base)] == base
    assert derived_332["version"] == "2.1.332" and derived_332["derived_from"] == "2.1.197"


def test_argv_with_a_new_option_splits_as_that_claude_splits_it(derived_332):
    table = flags.use_derived(derived_332)
    try:
        assert flags.load_table("2.1.332 (Claude Code)") is table
        parsed = flags.parse(["-p", "--system-prompt-snapshot", "on", "the prompt"], table)
        assert parsed.prompt == "the prompt" and parsed.options["system-prompt-snapshot"] == "on"
        with pytest.raises(flags.FlagError, match="system-prompt-snapshot"):
            flags.parse(["-p", "x", "--system-prompt-snapshot", "sideways"], table)
        # a new option is refused in one line, naming why
        with pytest.raises(UsageError, match=r"--restricted is not supported by claude-bridge \(new in claude 2\.1\.332"):
            build_plan(flags.parse(["-p", "x", "--restricted"], table), stdin_text=None,
                       caller_env={"IS_SANDBOX": "1"}, cwd="/tmp", claude_bin="/bin/false", cli_version="2.1.332",
                       table=table)
    finally:
        flags._DERIVED.pop("2.1.332", None)
    assert flags.load_table("2.1.332") is not table


def test_derived_once_and_kept_private(tmp_path):
    state = tmp_path / "state"
    env = {"CLAUDE_BRIDGE_STATE_DIR": str(state)}
    fake = tmp_path / "claude"          # prints the recorded --help of 2.1.332 (what claude --help printed)
    fake.write_text(f"#!/bin/sh\ncat '{HELP / '2.1.332.txt'}'\n")
    fake.chmod(0o755)
    raw = derive.derive_for(str(fake), "2.1.400", flags.raw_table("2.1.400"), env)
    assert raw is not None and raw["derived_from"] == "2.1.332" and raw["added"] == []
    path = derive.derived_path(env, "2.1.400")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and json.loads(path.read_bytes()) == raw
    fake.unlink()                                   # the kept table is used: claude is not asked again
    assert derive.derive_for(str(fake), "2.1.400", flags.raw_table("2.1.400"), env) == raw
    # a claude whose help cannot be read: no table (the nearest bundled one is used)
    assert derive.derive_for(str(tmp_path / "gone"), "2.1.401", flags.raw_table("2.1.401"), env) is None
    assert not os.path.exists(derive.derived_path(env, "2.1.401"))
