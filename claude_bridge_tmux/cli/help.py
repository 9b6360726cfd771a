"""``claude-bridge --help`` / ``-p --version`` anywhere in argv: answered like claude does (commander acts
on ``-v``/``--version`` as soon as it parses it, and ``-h``/``--help`` wins over unknown options), with
the bridge's own version line and help."""

from __future__ import annotations

import os
import subprocess
import sys

from claude_bridge_tmux import __version__
from claude_bridge_tmux.invocation import flags as flagmod
from claude_bridge_tmux.invocation.plan import STRIPPED_ENV, UsageError, claude_version, find_claude

HEADER = """\
claude-bridge: `claude -p` through the interactive Claude Code CLI in a private tmux pane.

Usage: claude-bridge [claude -p options] [prompt]        (the drop-in path; prompt also from stdin)
       claude-bridge doctor [--json]                     check that a run can work here
       claude-bridge ps [--json] | attach ID | gc        live panes, read-only view, clean-up
       claude-bridge logs [-n N] [--list]                per-run logs
       claude-bridge shim [--install DIR]                the `claude` shim
       claude-bridge pool ... | demo | version

Options are claude's own, parsed exactly as `claude -p` parses them; claude's help follows.
"""


def version_line(env: dict[str, str] | None = None) -> str:
    """The drop-in ``--version`` output: claude's own line first, exactly as ``claude --version``
    prints it (``2.1.329 (Claude Code)``: harnesses parse it for the CLI version), then
    ``claude-bridge <ours> (claude at <path>)``. Without a claude CLI only the second line."""
    from claude_bridge_tmux.invocation.plan import claude_version, find_claude

    env = dict(os.environ if env is None else env)
    binary = find_claude(env)
    if binary is None:
        return f"claude-bridge {__version__} (claude CLI not found)"
    try:
        v = claude_version(binary)
    except Exception:  # noqa: BLE001 - a broken binary is reported, not raised
        return f"claude-bridge {__version__} (claude at {binary}: no version)"
    return f"{v} (Claude Code)\nclaude-bridge {__version__} (claude at {binary})"


def version_or_help(argv: list[str]) -> int | None:
    """Print the version or help when argv asks for it (exit code 0); None when it does not."""
    env = dict(os.environ)
    binary = find_claude(env)
    if binary is None:
        return None
    try:
        parsed = flagmod.parse(argv, flagmod.load_table(claude_version(binary)))
    except (flagmod.FlagError, UsageError):
        return None   # the normal path reports it
    if parsed.version_requested:
        print(version_line(env))
        return 0
    if parsed.help_requested:
        sys.stdout.write(HEADER + "\n")
        sys.stdout.flush()
        try:
            res = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30,
                                 env={k: v for k, v in env.items() if k not in STRIPPED_ENV})
            sys.stdout.write(res.stdout)
        except (OSError, subprocess.TimeoutExpired):
            pass
        return 0
    return None
