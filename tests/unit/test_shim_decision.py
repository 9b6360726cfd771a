"""Which argv the `claude` shim sends through the bridge (shim.print_mode), on both pinned tables.

Ground truth, observed on the real 2.1.197 and 2.1.329 on a terminal: claude runs print mode for a
standalone -p/--print token before `--` that is not another option's value (2.1.197 also takes a -p
after `--` or as a value; we send those to the real claude, which then does exactly that); `-pc` runs
an interactive session; `-p --version` / `-p --help` print and exit.
"""

from __future__ import annotations

import pytest

from claude_bridge_tmux.cli.compat import strip_compat_flags
from claude_bridge_tmux.cli.shim import print_mode
from claude_bridge_tmux.invocation import flags

VERSIONS = ["2.1.197", "2.1.329"]

BRIDGE = [
    ["-p", "hi"],
    ["--print", "hi"],
    ["hi", "-p"],
    ["--model", "sonnet", "-p", "hi"],
    ["--model=-p", "-p", "hi"],
    ["--allowedTools", "Bash", "Read", "-p", "hi"],          # a variadic list stops at an option
    ["--resume", "-p", "hi"],                                 # optional values never look like options
    ["-d", "-p", "hi"],
    ["-p", "--frobnicate"],                                   # claude's parse error: the bridge prints it
    ["--model", "m", "--verbose", "--output-format", "stream-json", "--dangerously-skip-permissions",
     "--allow-dangerously-skip-permissions", "--permission-mode", "bypassPermissions", "-p", "prompt",
     "--append-system-prompt-file", "/tmp/f", "--mcp-config", "/tmp/m.json", "--strict-mcp-config"],
]
REAL = [
    [],
    ["hi"],
    ["--version"],
    ["-v"],
    ["mcp", "list"],
    ["-pc", "hi"],                                            # cluster: interactive on a terminal
    ["-cp", "hi"],
    ["-dp", "hi"],
    ["--model", "-p", "hi"],                                  # -p is the model name
    ["--append-system-prompt", "-p", "hi"],
    ["hi", "--", "-p"],                                       # after --: the prompt
    ["--model=-p", "hi"],
    ["-p", "--version"],                                      # claude answers itself
    ["-p", "hi", "-v"],
    ["-p", "--help"],
    ["--print=yes", "hi"],
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("argv", BRIDGE, ids=lambda a: " ".join(a) or "(none)")
def test_print_mode_goes_to_the_bridge(version, argv):
    assert print_mode(argv, flags.load_table(version)) is True


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("argv", REAL, ids=lambda a: " ".join(a) or "(none)")
def test_everything_else_goes_to_the_real_claude(version, argv):
    assert print_mode(argv, flags.load_table(version)) is False


def test_desplega_local_auth_is_dropped_before_double_dash_only():
    assert strip_compat_flags(["--desplega-local-auth", "-p", "x"]) == ["-p", "x"]
    assert strip_compat_flags(["-p", "--", "--desplega-local-auth"]) == ["-p", "--", "--desplega-local-auth"]
    argv = ["-p", "x"]
    assert strip_compat_flags(argv) is argv
