"""Prepare a print-mode call: flags -> plan, the caller's settings, the ``system/init`` to print.

``prepare(argv, env=..., cwd=...)`` parses argv with the installed CLI's option table, builds the
``RunPlan`` and loads the caller's ``--settings``; it raises UsageError with claude's own message and
exit code for every bad invocation (nothing has been started then).
"""

from __future__ import annotations

import os
import uuid as uuidlib
from dataclasses import dataclass, field

from claude_bridge_tmux.follow.session import SessionInfo
from claude_bridge_tmux.follow.transcript import continued_transcript, records_from_end, resumed_transcript
from claude_bridge_tmux.host.hooks import SettingsError, load_caller_settings
from claude_bridge_tmux.invocation import flags as flagmod
from claude_bridge_tmux.invocation.plan import (
    RunPlan,
    UsageError,
    build_plan,
    claude_version,
    find_claude,
    project_dirs,
)
from claude_bridge_tmux.output import jsjson, messages, pricing
from claude_bridge_tmux.output.result import RestoredCost, restored_cost
from claude_bridge_tmux.run.init_probe import InitProbe
from claude_bridge_tmux.versions import dialect

INIT_PROBE_WAIT = 20.0    # s to wait for the init probe's answer before building system/init ourselves


def init_message(plan: RunPlan, info: SessionInfo, probe: InitProbe | None = None) -> dict:
    """``system/init``: the CLI's own init line learned by ``initprobe`` (per-run fields replaced),
    else one built from what the run knows (empty inventories)."""
    probed = probe.result(INIT_PROBE_WAIT) if probe is not None else None
    if probed is not None:
        probed["session_id"] = info.session_id or plan.session_id
        probed["uuid"] = str(uuidlib.uuid4())
        base = lambda m: (m or "").split("[", 1)[0]  # noqa: E731
        if info.model and base(info.model) != base(probed.get("model")):
            probed["model"] = info.model  # the pane really runs another model than -p would report
        if "permissionMode" in probed:
            probed["permissionMode"] = plan.permission_mode   # changed at run time (SDK set_permission_mode)
        return probed
    built = messages.init_message(
        session_id=info.session_id or plan.session_id, cwd=plan.cwd,
        model=info.model or plan.model or "default", permission_mode=plan.permission_mode,
        claude_code_version=plan.cli_version,
        api_key_source="ANTHROPIC_API_KEY" if plan.env.get("ANTHROPIC_API_KEY") else "none",
        uuid=str(uuidlib.uuid4()), home=plan.env.get("HOME"), version=plan.cli_version, fill_from_sample=True,
    )
    tools = built.get("tools")
    if plan.json_schema is not None and isinstance(tools, list) and tools and "StructuredOutput" not in tools:
        # -p lists its StructuredOutput tool (the first tool stays first, the rest sorted)
        built["tools"] = tools[:1] + sorted([*tools[1:], "StructuredOutput"])
    return built


@dataclass
class Prepared:
    """A validated print-mode call: its plan, the settings to merge hooks into, the CLI it runs."""

    plan: RunPlan
    settings: dict
    claude_bin: str
    version: str
    notices: list[str] = field(default_factory=list)   # warnings -p prints in this run (billing notice)
    # --resume / --continue: each SessionStart hook command's latest record in the session so far
    session_start_before: dict[str, dict] = field(default_factory=dict)
    # the cost a resumed/continued/forked session starts from (the first result counts it), see resumed_cost
    restored: RestoredCost | None = None


def prepare(argv: list[str], *, env: dict[str, str], cwd: str, stdin_text: str | None = None, warn=None,
            read_stdin=None) -> Prepared:
    """flags -> plan. Raises UsageError (claude's message and exit code) for every bad invocation;
    claude's parse-time warnings (e.g. for --effort) go to ``warn(line)`` first, as claude prints them."""
    claude_bin = find_claude(env)
    if claude_bin is None:
        raise UsageError("claude-bridge: the claude CLI was not found (install it, or set CLAUDE_BRIDGE_CLAUDE_BIN)", 127)
    version = claude_version(claude_bin, env)
    table = flagmod.load_table(version)
    try:
        parsed = flagmod.parse(argv, table)
    except flagmod.FlagError as e:
        if warn:
            for line in getattr(e, "warnings", ()) or ():
                warn(line)
        raise UsageError(e.message, e.exit_code) from e
    if warn:
        for line in getattr(parsed, "warnings", ()) or ():
            warn(line)
    if read_stdin is not None and parsed.options.get("input-format") != "stream-json":
        stdin_text = read_stdin()   # (stream-json input is read message by message while the run goes on)
    plan = build_plan(parsed, stdin_text=stdin_text, caller_env=env, cwd=cwd,
                      claude_bin=claude_bin, cli_version=version, table=table)
    args = plan.claude_args
    if "--append-system-prompt-file" in args:
        path = args[args.index("--append-system-prompt-file") + 1]
        if not os.path.isfile(path if os.path.isabs(path) else os.path.join(cwd, path)):
            # claude's own start-up check (2.1.197, 2.1.329); interactive claude would exit with it in the pane
            raise UsageError(f"Error: Append system prompt file not found: {path}")
    if "--system-prompt" in args and "--system-prompt-file" in args and not dialect(version).system_prompt_pair_joined:
        raise UsageError("Error: Cannot use both --system-prompt and --system-prompt-file. Please use only one.")
    missing = missing_system_prompt_file(args, cwd)
    if missing is not None:
        raise UsageError(f"Error: System prompt file not found: {missing}")
    try:
        settings = load_caller_settings(plan.settings_value, cwd, show_resolved=dialect(version).settings_path_resolved)
    except SettingsError as e:
        raise UsageError(str(e), 1) from e
    if plan.bypass or "--allow-dangerously-skip-permissions" in plan.claude_args:
        # The caller asked for bypass (or to allow switching to it, as the Agent SDK's callers do):
        # skip its warning dialog for this run only (per-run --settings; the user's settings.json is
        # never written).
        settings = dict(settings, skipDangerousModePermissionPrompt=True)
    return Prepared(plan=plan, settings=settings, claude_bin=claude_bin, version=version,
                    restored=resumed_cost(plan, version),
                    session_start_before=earlier_session_start(plan) if has_session_start_hooks(settings) else {})


def earlier_session_start(plan: RunPlan) -> dict[str, dict]:
    """For a resumed session (--resume, also forked, or --continue): the latest SessionStart
    hook-result attachment of each command in its transcript, read before claude starts ({} for a new
    session). Claude does not write a resumed session's SessionStart records again when the
    conversation already holds what they say (see ``messages.session_start_lines``)."""
    if not (plan.resume or plan.continue_session):
        return {}
    root, project = project_dirs(plan.env, plan.cwd)
    if plan.resume:
        path = resumed_transcript(root, project, plan.resume,
                                  any_project=dialect(plan.cli_version).resume_any_project)
    else:
        path = continued_transcript(project)
    out: dict[str, dict] = {}
    for record in records_from_end(path, b'"SessionStart"') if path is not None else ():
        a = record.get("attachment") if record.get("type") == "attachment" else None
        if isinstance(a, dict) and a.get("hookEvent") == "SessionStart" and isinstance(a.get("command"), str):
            out.setdefault(a["command"], a)
    return out


def resumed_cost(plan: RunPlan, version: str) -> RestoredCost | None:
    """What ``claude -p`` of ``version`` restores for this call before its first request: with
    --resume ID (also forked) ID's transcript, with --continue the cwd's most recent one; its last
    valid ``cost-state`` record, read now, before the pane writes anything
    (``Dialect.restores_cost_state``; None for versions that start from 0, and for new sessions)."""
    if not dialect(version).restores_cost_state or not (plan.resume or plan.continue_session):
        return None
    root, project = project_dirs(plan.env, plan.cwd)
    if plan.resume:
        path = resumed_transcript(root, project, plan.resume, any_project=dialect(version).resume_any_project)
    else:
        path = continued_transcript(project)
    if path is None:
        return None
    prices = pricing.load_table(version)
    for record in records_from_end(path, b'"cost-state"'):
        state = restored_cost(record, path.stem, prices)
        if state is not None:
            return state
    return None


def missing_system_prompt_file(claude_args: list[str], cwd: str) -> str | None:
    """The absolute path claude names when the ``--system-prompt-file`` it is given does not exist
    (its start-up check, 2.1.197 and 2.1.329: the path resolved against the cwd), else None. Checked
    before claude starts, as claude's own start-up errors would have to be read off a dying pane."""
    if "--system-prompt-file" not in claude_args:
        return None
    path = claude_args[len(claude_args) - 1 - claude_args[::-1].index("--system-prompt-file") + 1]
    resolved = os.path.normpath(os.path.join(cwd, path))
    return None if os.path.exists(resolved) else resolved


def new_init_probe(prep: Prepared) -> InitProbe:
    """Learn ``system/init`` as ``claude -p`` with this call's options would print it (--json-schema adds
    the StructuredOutput tool to its tool list; json --verbose reports other capabilities)."""
    plan = prep.plan
    args = list(plan.claude_args)
    if plan.json_schema is not None:
        args += ["--json-schema", jsjson.dumps(plan.json_schema)]
    return InitProbe(prep.claude_bin, prep.version, args, plan.env, plan.cwd,
                     fmt="json" if plan.output_format == "json" else "stream-json")


def needs_own_pane(plan: RunPlan, settings: dict | None = None) -> bool:
    """A pool cannot serve this call on a shared warm pane: its session is chosen by the caller
    (--session-id/--resume/--continue/--fork-session), it has --json-schema (the pane's MCP server
    offers that schema's StructuredOutput tool), it must leave no transcript, or the caller's
    ``settings`` have SessionStart hooks (``-p`` runs them for the call's own session, with source
    ``startup``; on a shared pane they ran when the pane started or was cleared). --max-turns and
    --max-budget-usd need the tool gate: such calls share warm panes that carry it (pool/key.py)."""
    return (plan.session_args != ["--session-id", plan.session_id] or plan.json_schema is not None
            or plan.no_session_persistence or has_session_start_hooks(settings or {}))


def has_session_start_hooks(settings: dict) -> bool:
    """Whether the caller's settings name SessionStart hooks that claude would run."""
    hooks = settings.get("hooks") if settings.get("disableAllHooks") is not True else None
    return isinstance(hooks, dict) and bool(hooks.get("SessionStart"))


