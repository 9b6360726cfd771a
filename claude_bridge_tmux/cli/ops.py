"""Operability subcommands (typer), registered on ``commands.app``: doctor, ps, attach, gc, logs, shim."""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any, TypedDict

import typer

if TYPE_CHECKING:
    from claude_bridge_tmux.ops.registry import Entry


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def _tmux_version(tmux: str) -> tuple[int, ...]:
    import re
    import subprocess
    try:
        out = subprocess.run([tmux, "-V"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ()
    m = re.search(r"(\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else ()


class PaneFacts(TypedDict):
    """What tmux says of a registered pane: ``pid`` (claude's) and ``dead`` (it exited); None unknown."""

    pid: int | None
    dead: bool | None


def pane_facts(entry: Entry) -> PaneFacts:
    """Live facts of a registered pane from its tmux server: claude's pid and whether it exited."""
    import subprocess

    from claude_bridge_tmux.tmux.pane import tmux_binary
    tmux = tmux_binary()
    facts: PaneFacts = {"pid": None, "dead": None}
    if not tmux or not entry["socket"] or not entry["pane_id"]:
        return facts
    try:
        res = subprocess.run([tmux, "-S", entry["socket"], "display-message", "-p", "-t", entry["pane_id"],
                              "#{pane_pid} #{pane_dead}"], capture_output=True, text=True, timeout=5,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return facts
    parts = res.stdout.split()
    if res.returncode == 0 and len(parts) == 2:
        facts["pid"] = int(parts[0]) if parts[0].isdigit() else None
        facts["dead"] = parts[1] == "1"
    else:
        facts["dead"] = True
    return facts


def ps_rows(env: dict[str, str] | None = None, *, include_dead: bool = False) -> list[dict[str, Any]]:
    """One dict per registered pane (live owners only unless ``include_dead``)."""
    from claude_bridge_tmux.host.paths import runtime_dir
    from claude_bridge_tmux.ops.registry import entries
    now = time.time()
    rows = []
    for e in entries(runtime_dir(env)):
        if not e.owner_alive and not include_dead:
            continue
        facts = pane_facts(e)
        state = e["state"]
        if not e.owner_alive:
            state = "orphaned"
        elif facts["dead"]:
            state = "exited"
        rows.append({"id": e["id"], "kind": e["kind"], "pid": facts["pid"], "pane": e["pane_id"],
                     "age_s": round(now - (e["started"] or now), 1), "state": state,
                     "session_id": e["session_id"], "cwd": e["cwd"], "owner_pid": e["owner_pid"],
                     "socket": e["socket"]})
    return rows


def register(app: typer.Typer) -> None:
    @app.command()
    def doctor(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
        """Check that a run can work here (tmux, claude, login, directories, pool); exit 0 when it can."""
        from claude_bridge_tmux.ops.doctor import doctor as run
        out, code = run(as_json=as_json)
        typer.echo(out)
        raise typer.Exit(code)

    @app.command()
    def ps(as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
           all_: bool = typer.Option(False, "--all", "-a", help="also panes whose owner died (see gc)")) -> None:
        """The bridge's live panes: cold runs and pool panes (ID, kind, claude pid, age, state, session, cwd)."""
        rows = ps_rows(include_dead=all_)
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        if not rows:
            typer.echo("no live claude-bridge panes")
            return
        typer.echo(f"{'ID':13} {'KIND':5} {'PID':>7} {'AGE':>6} {'STATE':9} {'SESSION':36}  CWD")
        for r in rows:
            typer.echo(f"{r['id']:13} {r['kind']:5} {r['pid'] or '-':>7} {_age(r['age_s']):>6} {r['state']:9} "
                       f"{r['session_id'] or '-':36}  {r['cwd']}")

    @app.command()
    def attach(ident: str = typer.Argument(..., metavar="ID", help="ps ID (or a prefix), pane id %N, or session id")) -> None:
        """Open a read-only view of a pane (tmux attach, read-only, on its private server); detach with C-b d."""
        from claude_bridge_tmux.host.paths import runtime_dir
        from claude_bridge_tmux.ops.registry import find
        from claude_bridge_tmux.tmux.pane import tmux_binary
        entry = find(runtime_dir(), ident)
        if entry is None:
            typer.echo(f"claude-bridge: no live pane matches {ident!r} (see `claude-bridge ps`)", err=True)
            raise typer.Exit(1)
        tmux = tmux_binary()
        if not tmux:
            typer.echo("claude-bridge: tmux is not installed", err=True)
            raise typer.Exit(1)
        # read-only; with tmux >= 3.2 also ignore-size, so the viewer's terminal never resizes claude's pane
        flags = ["-f", "read-only,ignore-size"] if _tmux_version(tmux) >= (3, 2) else ["-r"]
        argv = [tmux, "-S", entry["socket"], "attach-session", *flags, "-t", entry["pane_id"] or entry["id"]]
        if not os.isatty(0) or not os.isatty(1):
            typer.echo("claude-bridge: attach needs a terminal; run: " + " ".join(argv), err=True)
            raise typer.Exit(1)
        env = {k: v for k, v in os.environ.items() if k != "TMUX"}
        os.execve(tmux, argv, env)

    @app.command()
    def gc(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
        """Remove panes, tmux servers, run directories and trust leases left by dead bridge processes."""
        from claude_bridge_tmux.ops.gc import collect
        t0 = time.perf_counter()
        report = collect()
        ms = (time.perf_counter() - t0) * 1000
        if as_json:
            typer.echo(json.dumps({**report.__dict__, "elapsed_ms": round(ms, 2)}, indent=2))
        else:
            if report.empty:
                typer.echo(f"nothing to collect ({ms:.1f} ms)")
            for s in report.killed_servers:
                typer.echo(f"killed tmux server {s}")
            for d in report.removed_dirs:
                typer.echo(f"removed {d}")
            for c in report.revoked_trust:
                typer.echo(f"revoked temporary trust of {c}")
            for e in report.errors:
                typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1 if report.errors else 0)

    @app.command()
    def logs(n: int = typer.Option(1, "-n", help="show the Nth most recent run log (1 = last)"),
             list_: bool = typer.Option(False, "--list", "-l", help="list the kept run logs, newest last"),
             path_only: bool = typer.Option(False, "--path", help="print only the log's path")) -> None:
        """Per-run logs of cold runs (events with timings, stderr, the pane's final screen)."""
        from claude_bridge_tmux.host.paths import state_dir
        from claude_bridge_tmux.run.runlog import LOG_DIR, log_files
        files = log_files(state_dir() / LOG_DIR)
        if list_:
            for p in files:
                typer.echo(str(p))
            return
        if not files or n < 1 or n > len(files):
            typer.echo("claude-bridge: no such run log" + ("" if files else " (no runs logged yet)"), err=True)
            raise typer.Exit(1)
        path = files[-n]
        typer.echo(str(path) if path_only else path.read_text(errors="replace"))

    @app.command()
    def shim(install: str = typer.Option(None, "--install", metavar="DIR", help="write the shim as DIR/claude"),
             force: bool = typer.Option(False, "--force", help="replace an existing non-shim DIR/claude")) -> None:
        """Print the path of the `claude` shim, or install it into a directory (see README)."""
        from claude_bridge_tmux.cli.shim import install as do_install
        from claude_bridge_tmux.cli.shim import packaged_shim
        if not install:
            typer.echo(str(packaged_shim()))
            return
        try:
            target = do_install(install, force=force)
        except (FileExistsError, OSError) as e:
            typer.echo(f"claude-bridge: {e}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"installed {target}; put {os.path.dirname(target)} first on PATH or set CLAUDE_BINARY={target}")
