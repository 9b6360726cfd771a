"""Command-line entry point of ``claude-bridge``.

``claude-bridge [claude -p flags] PROMPT`` is the drop-in path (parsed like claude itself).
The bridge's own subcommands come first on the command line (``claude-bridge demo``,
``claude-bridge version``); they are typer commands (``commands.py``) and never reach the drop-in
parser.
"""

from __future__ import annotations

import os
import sys

SUBCOMMANDS = {"demo", "version", "pool"}
SUBCOMMANDS |= {"doctor", "ps", "attach", "gc", "logs", "shim"}  # operability commands (commands.py)


def is_sdk_invocation(argv: list[str]) -> bool:
    """True for the Agent SDK's command line: no ``-p``/``--print`` and ``--input-format stream-json``
    (the SDK always passes it, with ``--output-format stream-json --verbose``; docs/sdk-protocol.md)."""
    head = argv[:argv.index("--")] if "--" in argv else argv
    if any(a in ("-p", "--print") for a in head):
        return False
    return "--input-format=stream-json" in head or any(
        a == "--input-format" and i + 1 < len(head) and head[i + 1] == "stream-json" for i, a in enumerate(head))


def main(argv: list[str] | None = None) -> int:
    """Dispatch: our subcommands, ``--version``, else the drop-in print path. Returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    via_shim = bool(os.environ.get("CLAUDE_BRIDGE_VIA_SHIM"))
    if via_shim:
        from claude_bridge_tmux.cli.shim import dispatch
        dispatch(argv)  # execs the real claude unless argv is a print-mode call
    if argv and argv[0] in SUBCOMMANDS and not via_shim:
        import typer
        try:
            from click.exceptions import ClickException
        except ImportError:  # typer >= 0.29 vendors click
            from typer._click.exceptions import ClickException  # type: ignore[assignment]

        from claude_bridge_tmux.cli.commands import app
        try:
            rv = app(args=argv, prog_name="claude-bridge", standalone_mode=False)
            if isinstance(rv, int):  # click returns typer.Exit's code instead of raising it
                return rv
        except typer.Exit as e:
            return e.exit_code or 0
        except ClickException as e:
            e.show()
            return e.exit_code
        except typer.Abort:
            return 130
        return 0
    from claude_bridge_tmux.cli.compat import strip_compat_flags
    argv = strip_compat_flags(argv)  # agent-swarm's --desplega-local-auth (a no-op here)
    if argv in (["--version"], ["-v"]):
        from claude_bridge_tmux.cli.help import version_line
        print(version_line())
        return 0
    if any(a in ("-v", "--version", "-h", "--help") for a in argv[:argv.index("--") if "--" in argv else None]):
        from claude_bridge_tmux.cli.help import version_or_help
        code = version_or_help(argv)
        if code is not None:
            return code
    try:
        os.getcwd()
    except FileNotFoundError:
        # claude 2.1.329's words (2.1.197 fails with a bare ENOENT); exit 1 like both
        print("The current directory no longer exists (it was deleted or moved). Start Claude Code from an "
              "existing directory.", file=sys.stderr)
        return 1
    if is_sdk_invocation(argv):          # started by the Agent SDK (cli_path="claude-bridge")
        from claude_bridge_tmux.run.sdk import run_sdk
        return run_sdk(argv)
    from claude_bridge_tmux.errors import BridgeError
    from claude_bridge_tmux.pool.client import run as run_pooled
    try:
        code = run_pooled(argv)
    except BridgeError as e:           # e.g. a malformed CLAUDE_BRIDGE_* variable
        print(e.message or str(e), file=sys.stderr)
        return e.exit_code
    if code is not None:
        return code
    from claude_bridge_tmux.run.cold import run_print
    from claude_bridge_tmux.run.runlog import observed
    return observed(run_print, argv)
