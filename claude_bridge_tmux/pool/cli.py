"""``claude-bridge pool start|status|drain|stop`` (typer)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time

import typer

from claude_bridge_tmux.config import POOL_IDLE_TIMEOUT_S as DEFAULT_IDLE_TIMEOUT
from claude_bridge_tmux.host import paths
from claude_bridge_tmux.pool import client

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Manage the pool daemon (warm panes).")


@app.command()
def start(size: int = typer.Option(1, "--size", help="warm panes to keep per warm spec"),
          warm: list[str] = typer.Option(None, "--warm", help="claude -p options a warm spec uses, e.g. "
                                         "\"--model sonnet\" (repeatable; default: no options)"),
          max_jobs_per_pane: int = typer.Option(50, "--max-jobs-per-pane", help="retire a pane after K jobs"),
          idle_timeout: float = typer.Option(DEFAULT_IDLE_TIMEOUT, "--idle-timeout",
                                            help="retire panes idle this long (s) beyond the warm size"),
          max_panes: int = typer.Option(8, "--max-panes", help="cap on live panes (all keys)"),
          rss_budget_mib: int = typer.Option(0, "--rss-budget", help="total RSS of all panes, MiB "
                                             "(default: half the machine's memory)"),
          exit_idle: float = typer.Option(0.0, "--exit-idle", help="stop the daemon after this many seconds "
                                          "without a job (default 0: never)"),
          queue: str = typer.Option(None, "--queue", help="also serve jobs of a shared Redis queue "
                                    "(redis://[user:password@]host:port/db or rediss://…)"),
          root: list[str] = typer.Option(None, "--root", help="with --queue: directories queued jobs may run in "
                                         "(repeatable; default: this directory)"),
          foreground: bool = typer.Option(False, "--foreground", help="run the daemon in this process")) -> None:
    """Start the pool daemon (warm panes for this cwd and environment)."""
    warm_argvs = [shlex.split(w) for w in warm] if warm else [[]]
    for name, value in (("--size", size), ("--max-jobs-per-pane", max_jobs_per_pane), ("--max-panes", max_panes)):
        if value < 1:
            typer.echo(f"claude-bridge: {name} must be at least 1", err=True)
            raise typer.Exit(2)
    if idle_timeout < 0 or exit_idle < 0 or rss_budget_mib < 0:
        typer.echo("claude-bridge: --idle-timeout, --exit-idle and --rss-budget must not be negative", err=True)
        raise typer.Exit(2)
    if foreground:
        from claude_bridge_tmux.pool.daemon import run_daemon
        log_path = str(paths.state_dir() / "pool.log")
        raise typer.Exit(run_daemon(size=size, warm_argvs=warm_argvs, max_panes=max_panes,
                                    max_jobs_per_pane=max_jobs_per_pane, idle_timeout=idle_timeout,
                                    log_path=log_path, rss_budget=(rss_budget_mib << 20) or None,
                                    exit_idle=exit_idle, queue_url=queue,
                                    roots=[os.path.abspath(r) for r in root] if root else None))
    if queue:
        from claude_bridge_tmux.pool.redisq import QueueError, connect
        try:
            connect(queue).close()
        except QueueError as e:
            typer.echo(str(e), err=True)
            raise typer.Exit(1) from None
    env = dict(os.environ)
    if client.request(env, {"op": "ping"}, timeout=2.0) is not None:
        typer.echo(f"claude-bridge: a pool is already running ({client.socket_path(env)})")
        raise typer.Exit(0)
    cmd = [sys.executable, "-m", "claude_bridge_tmux", "pool", "start", "--foreground", "--size", str(size),
           "--max-jobs-per-pane", str(max_jobs_per_pane), "--idle-timeout", str(idle_timeout),
           "--max-panes", str(max_panes), "--rss-budget", str(rss_budget_mib), "--exit-idle", str(exit_idle)]
    for w in warm or []:
        cmd += ["--warm", w]
    if queue:
        cmd += ["--queue", queue]
    for r in root or []:
        cmd += ["--root", os.path.abspath(r)]
    log = open(paths.state_dir() / "pool.out", "ab")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                            env=env, cwd=os.getcwd())
    deadline = time.monotonic() + client.START_WAIT
    while time.monotonic() < deadline:
        if client.request(env, {"op": "ping"}, timeout=1.0) is not None:
            typer.echo(f"pool started (pid {proc.pid}, socket {client.socket_path(env)})")
            raise typer.Exit(0)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    typer.echo(f"claude-bridge: the pool daemon did not start; see {paths.state_dir() / 'pool.out'}", err=True)
    raise typer.Exit(1)


def _fmt_rss(v):
    return f"{v / 2**20:.0f} MiB" if v else "-"


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
           queue: str = typer.Option(None, "--queue", help="show every worker of this Redis queue instead")) -> None:
    """Show the daemon and its panes (pane, key, state, jobs, age, session id, RSS)."""
    if queue:
        _queue_status(queue, as_json)
        return
    reply = client.request(dict(os.environ), {"op": "status"})
    if reply is None:
        if as_json:
            typer.echo(json.dumps({"running": False}))
        else:
            typer.echo("no pool daemon is running")
        raise typer.Exit(1)
    reply.pop("ev", None)
    if as_json:
        typer.echo(json.dumps({"running": True, **reply}))
        return
    typer.echo(f"pool daemon pid {reply['pid']}, up {reply['uptime_s']} s, jobs {reply['jobs_total']} "
               f"({reply['jobs_failed']} failed), waiting {reply['waiting']}, "
               f"median overhead {reply['overhead_ms_median'] and round(reply['overhead_ms_median'], 1)} ms"
               + (", draining" if reply.get("draining") else ""))
    if reply.get("rss_budget"):
        typer.echo(f"memory {_fmt_rss(reply.get('rss_used'))} of {_fmt_rss(reply['rss_budget'])} budget, "
                   f"idle panes beyond the warm size retire after {reply.get('idle_timeout_s'):g} s"
                   + (f", daemon stops after {reply['exit_idle_s']:g} s without a job" if reply.get("exit_idle_s")
                      else ""))
    typer.echo(f"{'PANE':6} {'TMUX':5} {'KEY':17} {'STATE':9} {'JOBS':>4} {'AGE s':>7} {'RSS':>8}  SESSION")
    for p in reply["panes"]:
        typer.echo(f"{p['pane']:6} {p['tmux_pane'] or '-':5} {p['key']:17} {p['state']:9} {p['jobs']:>4} "
                   f"{p['age_s']:>7} {_fmt_rss(p['rss']):>8}  {p['session_id']}")


def _queue_status(url: str, as_json: bool) -> None:
    from claude_bridge_tmux.pool.redisq import QueueError, connect, queue_status, redact
    try:
        st = queue_status(connect(url))
    except QueueError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(st))
        return
    typer.echo(f"queue {redact(url)}: {len(st['workers'])} worker(s), {st['depth']} job(s) waiting")
    for w in st["workers"]:
        typer.echo(f"  {w['name']} (host {w.get('host')}, pid {w.get('pid')}): running {w.get('running')}, "
                   f"done {w.get('jobs_done')}, panes: " + (", ".join(f"{p['pane']} {p['state']}" for p in w["panes"])
                                                        or "none"))


@app.command()
def drain() -> None:
    """Stop taking jobs; panes retire as their jobs end."""
    if client.request(dict(os.environ), {"op": "drain"}) is None:
        typer.echo("no pool daemon is running")
        raise typer.Exit(1)
    typer.echo("pool draining")


@app.command()
def stop() -> None:
    """Stop the daemon: every pane and the tmux server are removed."""
    env = dict(os.environ)
    st = client.request(env, {"op": "status"})
    if st is None or client.request(env, {"op": "stop"}) is None:
        typer.echo("no pool daemon is running")
        raise typer.Exit(0)
    if not client.wait_gone(env, pid=st.get("pid") if isinstance(st.get("pid"), int) else None):
        typer.echo("claude-bridge: the pool daemon did not stop in time", err=True)
        raise typer.Exit(1)
    typer.echo("pool stopped")
