"""One run lifecycle for every pane that serves one caller: the cold path, a pool's dedicated
panes (``--resume``, ``--max-turns`` …) and ``api.Session``.

``dedicated_session(prep)`` takes the preseed lease (trust, billing notice), builds the
:class:`ClaudeSession` with every session option of the plan, and on the way out — success, error,
``Terminated``, any exception — closes the pane (claude and its children gone), undoes
``--no-session-persistence`` and releases the lease, with termination signals held off meanwhile.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import uuid as uuidlib
from collections.abc import Callable, Iterator, Mapping
from urllib.parse import urlsplit

from claude_bridge_tmux.follow.session import ClaudeSession
from claude_bridge_tmux.host.preseed import SeedRequest, preseed
from claude_bridge_tmux.invocation.plan import RunPlan
from claude_bridge_tmux.output import messages
from claude_bridge_tmux.run import mcp_config, structured_mcp
from claude_bridge_tmux.tmux.pane import TmuxServer
from claude_bridge_tmux.versions import dialect

TEARDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def deny_permission_requests(plan: RunPlan) -> bool:
    """Modes in which ``claude -p`` auto-denies what would need approval (docs/cli-behaviour.md §7);
    never with ``--permission-prompt-tool stdio``, where the Agent SDK answers (run/relay.py)."""
    return plan.permission_mode in ("default", "plan") and not plan.permission_prompt_stdio


def gate_tools(plan: RunPlan) -> bool:
    """The run needs the tool gate (--max-turns / --max-budget-usd; --json-schema, whose valid
    StructuredOutput call ends the turn)."""
    return plan.max_turns is not None or plan.max_budget_usd is not None or plan.json_schema is not None


def gateway_host(env: dict[str, str]) -> str | None:
    """``host[:port]`` of ``ANTHROPIC_BASE_URL`` when it is not Anthropic's own API, else None."""
    url = env.get("ANTHROPIC_BASE_URL")
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    host = parts.hostname or ""
    if not host or host == "anthropic.com" or host.endswith(".anthropic.com"):
        return None
    return parts.netloc.rsplit("@", 1)[-1]


def shows_auto_mode_notice(plan: RunPlan, version: str, *, any_mode: bool = False) -> bool:
    """Whether this run's CLI would show the auto-mode classifier billing notice (then the bridge
    seeds its acknowledgement for the run and prints ``-p``'s notice): plan/auto mode (``any_mode``:
    a session whose mode may be switched to them later, the Agent SDK's), a CLI that has it,
    API-key auth, requests through a gateway."""
    return (dialect(version).auto_mode_billing_notice and (any_mode or plan.permission_mode in ("plan", "auto"))
            and bool(plan.env.get("ANTHROPIC_API_KEY")) and gateway_host(plan.env) is not None)


def new_session(prep, *, log: Callable[[str], None] | None = None, server: TmuxServer | None = None,
                hooks: dict | None = None) -> ClaudeSession:
    """The :class:`ClaudeSession` a prepared call (``run.cold.Prepared``) runs in, with all its options;
    ``hooks`` (event → matcher list) are added to the run's settings (the Agent SDK relay)."""
    plan = prep.plan
    settings = prep.settings
    if plan.json_schema is not None:
        settings = structured_mcp.with_permission(settings)
    session = ClaudeSession(claude_bin=prep.claude_bin, claude_args=plan.claude_args, env=plan.env, cwd=plan.cwd,
                            session_id=plan.session_id, settings=settings,
                            deny_permission_requests=deny_permission_requests(plan), server=server, log=log,
                            session_args=plan.session_args or None, gate_tools=gate_tools(plan),
                            extra_hooks=hooks)
    wait_for_mcp_servers(session, plan.cli_version)
    if plan.json_schema is not None:
        # -p's StructuredOutput tool, from the bridge's own MCP server (run/structured_mcp.py)
        ready = session.run_dir / "structured-ready"
        session.claude_args += ["--mcp-config", structured_mcp.mcp_config(plan.json_schema, str(ready))]
        session.expect_ready(ready)
    return session


def mcp_connect_timeout_s(env: Mapping[str, str]) -> float:
    """claude's own bound for connecting an MCP server: ``MCP_CONNECT_TIMEOUT_MS`` (ms), default 5 s."""
    try:
        ms = float(env.get("MCP_CONNECT_TIMEOUT_MS") or 0)
    except ValueError:
        ms = 0
    return ms / 1000 if ms > 0 else 5.0


def wait_for_mcp_servers(session: ClaudeSession, version: str | None) -> None:
    """On a CLI whose interactive mode sends a prompt before the ``--mcp-config`` servers are up
    (``Dialect.mcp_waits_before_input``), tap each stdio server (run/mcp_tap.py) so that the first
    prompt waits for its tools, at most claude's MCP connect timeout from the start, as ``-p`` waits."""
    if dialect(version).mcp_waits_before_input:
        return
    within = mcp_connect_timeout_s(session.env)
    for ready in mcp_config.tap_stdio_servers(session.claude_args, session.cwd, session.run_dir):
        session.expect_ready(ready, within)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ignore termination signals meanwhile (main thread only: elsewhere signals go to the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, signal.SIG_IGN) for s in TEARDOWN_SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def dedicated_session(prep, *, log: Callable[[str], None] | None = None, server: TmuxServer | None = None,
                      on_close: Callable[[ClaudeSession], None] | None = None,
                      hooks: dict | None = None, modes_may_change: bool = False) -> Iterator[ClaudeSession]:
    """Preseed, then yield the run's (not yet started) :class:`ClaudeSession`; tear everything down after.

    Appends ``-p``'s billing notice to ``prep.notices`` when the run holds that claim. ``on_close``
    sees the session just before it is closed (run log: the pane's last screen); ``hooks`` go into the
    run's settings (the SDK relay); ``modes_may_change``: the permission mode can be switched at run
    time (Agent SDK), so the billing-notice acknowledgement is seeded whatever the starting mode.
    Raises PreseedError (one-line reason) before any pane exists.
    """
    plan = prep.plan
    lease = preseed(plan.env, SeedRequest(cwd=plan.cwd, api_key=plan.env.get("ANTHROPIC_API_KEY"),
                                          cli_version=prep.version,
                                          auto_mode_notice=shows_auto_mode_notice(
                                              plan, prep.version, any_mode=modes_may_change)),
                    uuidlib.uuid4().hex)
    session: ClaudeSession | None = None
    try:
        if lease is not None and lease.notice_due and shows_auto_mode_notice(plan, prep.version):
            prep.notices.append(messages.auto_mode_billing_notice(gateway_host(plan.env) or ""))
        session = new_session(prep, log=log, server=server, hooks=hooks)
        session.trust_leased = lease is not None and plan.cwd in lease.claims
        yield session
    finally:
        with _signals_held():
            try:
                if session is not None:
                    if on_close is not None:
                        with contextlib.suppress(Exception):
                            on_close(session)
                    session.close()       # claude writes ~/.claude.json on exit: gone before the revoke
                    if plan.no_session_persistence:
                        session.discard_transcripts()
            finally:
                if lease is not None:
                    lease.release()
