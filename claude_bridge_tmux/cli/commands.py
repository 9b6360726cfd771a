"""The bridge's own subcommands (typer): ``claude-bridge demo``, ``claude-bridge version``.

Imported only when a subcommand is given, so the drop-in ``-p`` path does not pay typer's import.
"""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="claude-bridge's own commands (the drop-in path is `claude-bridge -p ...`).")


def _register_pool() -> None:
    from claude_bridge_tmux.pool.cli import app as pool_app
    app.add_typer(pool_app, name="pool")


_register_pool()


@app.command()
def version() -> None:
    """Print the bridge's version and the claude CLI it drives."""
    from claude_bridge_tmux.cli.help import version_line
    typer.echo(version_line())


@app.command()
def demo(claude_version: str = typer.Option(None, "--claude-version", help="pinned CLI version to install and use")) -> None:
    """Run a prompt through claude-bridge against the bundled mock model (no login needed)."""
    from claude_bridge_tmux.cli.demo import run_demo
    raise typer.Exit(run_demo(claude_version))


def _register_ops() -> None:
    from claude_bridge_tmux.cli.ops import register
    register(app)


_register_ops()
