"""Turn parsed ``claude -p`` arguments into a run plan: what to start, with which environment.

Pure apart from reading the caller's environment/stdin values passed in and resolving the claude
binary.  Errors are raised as ``UsageError(message, exit_code)`` carrying the exact text ``claude -p``
prints (docs/cli-behaviour.md §1, §3) so the CLI can print it unchanged.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import uuid as uuidlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from claude_bridge_tmux.config import BridgeConfig
from claude_bridge_tmux.errors import BridgeError, UsageError
from claude_bridge_tmux.follow.transcript import continued_transcript
from claude_bridge_tmux.invocation import flags as flagmod
from claude_bridge_tmux.versions import dialect

OUTPUT_FORMATS = ("text", "json", "stream-json")

# Variables that must not reach the pane (field notes; docs/cli-behaviour.md §4).
STRIPPED_ENV = ("CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT", "CLAUDE_CODE_SKIP_PROMPT_HISTORY")
STRIPPED_PREFIXES = ("TMUX",)
# Interactive claude would keep running the tool's updater and terminal probes; print mode does not.
DEFAULT_ENV = {"DISABLE_AUTOUPDATER": "1"}

# Options the bridge handles itself in this version; other "bridge"-handled options are refused.
SUPPORTED_BRIDGE_OPTIONS = {"print", "output-format", "verbose", "help", "version",
                            # accepted, not forwarded: no auth_status lines (as claude when logged in);
                            # a screen-reader TUI has no effect on print output but would change the pane
                            "enable-auth-status", "ax-screen-reader",
                            "max-turns", "json-schema", "input-format", "replay-user-messages",
                            "no-session-persistence", "include-partial-messages", "max-budget-usd",
                            "include-hook-events",
                            }
# Bridge-handled options that cannot work through a pane: why (one line, after the option's name).
REFUSED_WHY = {
    "permission-prompt-tool": "permission prompts are answered by the bridge's PermissionRequest hook "
                              "(denied as in claude -p's default mode); use --permission-mode or --allowedTools",
    "permission-prompts": "permission prompts are answered by the bridge's PermissionRequest hook",
}
# Session options: not forwarded as they are; the plan turns them into ``session_args``.
SESSION_OPTIONS = ("session-id", "resume", "continue", "fork-session")
# Tools only the interactive CLI offers the model (AskUserQuestion opens a blocking dialog; the plan-mode
# tools switch modes): `claude -p` never offers them, so the pane must not either (docs/cli-behaviour.md §9;
# 2.1.329 interactive lists EnterPlanMode/ExitPlanMode as deferred tools).
INTERACTIVE_ONLY_TOOLS = ("AskUserQuestion", "EnterPlanMode", "ExitPlanMode")
WAIT_FOR_MCP_TOOL = "WaitForMcpServers"   # offered while an MCP server is connecting (2.1.197)
# agents interactive claude offers the model and -p does not (2.1.197, 2.1.329: its agent listing)
INTERACTIVE_ONLY_AGENTS = ("claude-code-guide",)
SHIM_MARKER = b"claude-bridge-shim"

_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_shim(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return SHIM_MARKER in f.read(4096)
    except OSError:
        return False


def find_claude(env: dict[str, str]) -> str | None:
    """The real claude binary: ``$CLAUDE_BRIDGE_CLAUDE_BIN``, else ``claude`` on PATH skipping our shim."""
    explicit = env.get("CLAUDE_BRIDGE_CLAUDE_BIN")
    if explicit:
        found = shutil.which(explicit, path=env.get("PATH")) if os.sep not in explicit else explicit
        return os.path.abspath(found) if found and os.access(found, os.X_OK) else None
    for d in (env.get("PATH") or os.defpath).split(os.pathsep):
        cand = os.path.join(d or ".", "claude")
        if os.path.isfile(cand) and os.access(cand, os.X_OK) and not is_shim(cand):
            return os.path.abspath(cand)
    return None


_VERSIONS: dict[tuple, str] = {}


VERSION_CACHE = "claude-versions.json"   # in the state dir: {realpath: [size, mtime_ns, version]}
CACHEABLE_MIN_SIZE = 100_000             # smaller files are wrappers whose target may change unseen


def claude_version(binary: str, env: dict[str, str] | None = None) -> str:
    """``claude --version`` → ``"2.1.329"``; raises UsageError when the binary does not answer.

    Cached per resolved binary, size and mtime: in memory, and on disk in the state directory
    (``VERSION_CACHE``, 0600) for binaries of ``CACHEABLE_MIN_SIZE`` bytes or more, since asking costs
    25-210 ms per cold run. A small file (a wrapper script) is asked every time."""
    try:
        real = os.path.realpath(binary)
        st = os.stat(real)
        cache_key: tuple | None = (real, st.st_size, st.st_mtime_ns)
    except OSError:
        cache_key = None
    if cache_key in _VERSIONS:
        return _VERSIONS[cache_key]
    disk = cache_key is not None and cache_key[1] >= CACHEABLE_MIN_SIZE
    cached = _disk_versions(env) if disk else {}
    hit = cached.get(cache_key[0]) if cache_key else None
    if hit and isinstance(hit, list) and len(hit) == 3 and cache_key is not None and tuple(hit[:2]) == cache_key[1:] \
            and isinstance(hit[2], str):
        version = hit[2]
    else:
        version = _run_version(binary)
        if disk and cache_key is not None:
            cached[cache_key[0]] = [cache_key[1], cache_key[2], version]
            _save_disk_versions(env, cached)
    if cache_key is not None:
        _VERSIONS[cache_key] = version
    _ensure_table(binary, version, env)
    return version


def _ensure_table(binary: str, version: str, env: dict[str, str] | None) -> None:
    """A version without a bundled option table gets one derived from its own ``--help`` (once per
    machine, kept in the state directory: invocation/derive.py); on failure the nearest bundled one."""
    if flagmod.has_table(version):
        return
    from claude_bridge_tmux.invocation import derive
    raw = derive.derive_for(binary, version, flagmod.raw_table(version), env,
                            run_env={k: v for k, v in os.environ.items() if k not in STRIPPED_ENV})
    if raw is not None:
        flagmod.use_derived(raw)


def _disk_versions(env: dict[str, str] | None) -> dict:
    from claude_bridge_tmux.host.paths import state_dir
    try:
        data = json.loads((state_dir(env) / VERSION_CACHE).read_bytes())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError, BridgeError):
        return {}


def _save_disk_versions(env: dict[str, str] | None, data: dict) -> None:
    """Best effort (the cache is ours to lose): never fails a run."""
    from claude_bridge_tmux.host.paths import atomic_write, state_dir
    with contextlib.suppress(OSError, BridgeError, ValueError):
        if len(data) > 32:
            data = dict(list(data.items())[-32:])
        atomic_write(state_dir(env) / VERSION_CACHE, json.dumps(data).encode())


def _run_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30,
                             env={k: v for k, v in os.environ.items() if k not in STRIPPED_ENV})
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UsageError(f"claude-bridge: cannot run {binary} --version: {e}") from e
    m = re.match(r"\s*(\d+\.\d+\.\d+)", out.stdout)
    if not m:
        raise UsageError(f"claude-bridge: {binary} --version printed no version")
    return m.group(1)


def pane_env(caller_env: dict[str, str]) -> dict[str, str]:
    """The exact environment claude gets: the caller's, minus variables that break or leak, plus defaults."""
    env = {k: v for k, v in caller_env.items()
           if k not in STRIPPED_ENV and not k.startswith(STRIPPED_PREFIXES)}
    for k, v in DEFAULT_ENV.items():
        env.setdefault(k, v)
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    return env


@dataclass
class RunPlan:
    """Everything a cold run needs.

    ``claude_args``: options forwarded to interactive claude (prompt and bridge-owned options excluded);
    ``submit``: ``"launch"`` (the prompt is claude's stdin at launch) or ``"paste"`` (bracketed paste once ready).
    """

    claude_bin: str
    cli_version: str
    cwd: str
    env: dict[str, str]
    prompt: str
    output_format: str
    verbose: bool
    session_id: str
    claude_args: list[str]
    settings_value: str | None
    permission_mode: str
    bypass: bool
    model: str | None
    submit: str
    timeout: float
    debug: bool = False
    # how the pane's session is chosen: ["--session-id", id] | ["--resume", id, ...] | ["--continue", ...]
    session_args: list[str] = field(default_factory=list)
    resume: str | None = None           # session id being resumed (--resume, or title resolved)
    continue_session: bool = False      # --continue (the session is known from the SessionStart hook)
    fork: bool = False                  # --fork-session: a new session id (``session_id``) for the copy
    max_turns: float | None = None      # stop when request max_turns+1 would start (error_max_turns)
    max_budget_usd: float | None = None  # stop once the run's cost reaches it (error_max_budget_usd)
    json_schema: object = None          # --json-schema, parsed (structured output; see structured.py)
    input_format: str = "text"          # "stream-json": user messages on stdin, one turn each (prompt unused)
    replay_user_messages: bool = False  # echo each input message (isReplay) before its turn
    no_session_persistence: bool = False  # remove the run's transcript afterwards (interactive claude refuses the flag)
    include_partial_messages: bool = False  # stream_event lines synthesised per content block
    include_hook_events: bool = False   # system/hook_started + hook_response for the caller's hooks
    permission_prompt_stdio: bool = False  # --permission-prompt-tool stdio (Agent SDK): ask the SDK (can_use_tool)

    @property
    def prints_messages(self) -> bool:
        """stream-json, or json with --verbose (an array of every message): system/init is printed."""
        return self.output_format == "stream-json" or (self.output_format == "json" and self.verbose)

    @property
    def fixed_session_id(self) -> bool:
        """True when ``session_id`` is the id the run will have before claude says so (not a --continue
        whose session the bridge could not name)."""
        return not (self.continue_session and not self.fork and self.resume is None)


def _opt(parsed: flagmod.ParsedArgs, *names: str) -> Any:
    """The parsed value of the first of ``names`` given: a string (an option with a value), True (a flag,
    or an optional value left out), a list of strings (a variadic option); None when none is given."""
    for n in names:
        if n in parsed.options:
            return parsed.options[n]
    return None


ROOT_BYPASS_MESSAGE = "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons"


def bypass_refused_as_root(parsed: flagmod.ParsedArgs, env: dict[str, str], uid: int | None = None) -> bool:
    """claude refuses every bypass option as root outside a declared sandbox (``IS_SANDBOX=1`` or
    ``CLAUDE_CODE_BUBBLEWRAP``), with ROOT_BYPASS_MESSAGE and exit 1 -- also for
    ``--allow-dangerously-skip-permissions`` alone (verified on 2.1.197 and 2.1.329)."""
    uid = os.getuid() if uid is None else uid
    if uid != 0 or env.get("IS_SANDBOX") == "1" or env.get("CLAUDE_CODE_BUBBLEWRAP"):
        return False
    return bool(_opt(parsed, "dangerously-skip-permissions") or _opt(parsed, "allow-dangerously-skip-permissions")
                or _opt(parsed, "permission-mode") == "bypassPermissions")


def build_plan(parsed: flagmod.ParsedArgs, *, stdin_text: str | None, caller_env: dict[str, str],
               cwd: str, claude_bin: str, cli_version: str,
               table: Mapping[str, flagmod.OptionSpec] | None = None) -> RunPlan:
    """Validate a parsed print-mode invocation and build its RunPlan.

    Raises UsageError with claude's own message and exit code for every invalid combination checked
    here (stream-json without --verbose, empty/whitespace prompt, bad --session-id), and a
    ``claude-bridge:`` message for options the bridge does not support yet.
    """
    table = table or flagmod.load_table(cli_version)
    for key, _value in parsed.occurrences:
        spec = table.get(key)
        handling = spec.handling if spec else "forward"
        if key == "permission-prompt-tool" and _value == "stdio" and _opt(parsed, "input-format") == "stream-json":
            continue    # the Agent SDK's can_use_tool: permission requests go to the SDK (run/relay.py)
        if handling == "refuse" or (handling == "bridge" and key not in SUPPORTED_BRIDGE_OPTIONS):
            why = REFUSED_WHY.get(key) or (spec.note if spec is not None and spec.note.startswith("new in claude ")
                                           else "it cannot be run through an interactive pane yet")
            raise UsageError(f"claude-bridge: --{key} is not supported by claude-bridge ({why})")

    # claude's order (verified on 2.1.197 and 2.1.329): session id, session combination, root + bypass,
    # --resume's value, stream-json, prompt, then the resumed session must exist.
    session_id = _opt(parsed, "session-id")
    explicit_session = session_id is not None
    if session_id is not None:
        if not isinstance(session_id, str) or not _UUID_RE.match(session_id):
            raise UsageError("Error: Invalid session ID. Must be a valid UUID.")
        session_id = session_id.lower()
    else:
        session_id = str(uuidlib.uuid4())
    resume_value = _opt(parsed, "resume")
    continue_session = bool(_opt(parsed, "continue"))
    fork = bool(_opt(parsed, "fork-session"))
    if explicit_session and (resume_value is not None or continue_session) and not fork:
        raise UsageError(session_id_needs_fork_message(cli_version))
    if bypass_refused_as_root(parsed, caller_env):
        raise UsageError(ROOT_BYPASS_MESSAGE)
    projects = project_dirs(caller_env, cwd)
    resume_id: str | None = None
    if resume_value is not None:
        resume_id = resolve_resume(resume_value, projects)

    fmt = _opt(parsed, "output-format") or "text"
    verbose = bool(_opt(parsed, "verbose"))
    if fmt == "stream-json" and not verbose:
        raise UsageError("Error: When using --print, --output-format=stream-json requires --verbose")
    partial = bool(_opt(parsed, "include-partial-messages"))
    if partial and fmt != "stream-json":
        raise UsageError("Error: --include-partial-messages requires --print and --output-format=stream-json.")
    input_format = _opt(parsed, "input-format") or "text"
    if input_format == "stream-json" and fmt != "stream-json":
        raise UsageError("Error: --input-format=stream-json requires output-format=stream-json.")
    replay = bool(_opt(parsed, "replay-user-messages"))
    if replay and not (input_format == "stream-json" and fmt == "stream-json"):
        raise UsageError("Error: --replay-user-messages requires both --input-format=stream-json and "
                         "--output-format=stream-json.")

    if input_format == "stream-json":
        prompt = ""      # the prompts are the user messages read from stdin (the argument is ignored)
    else:
        prompt = flagmod.join_prompt(parsed.prompt_args, stdin_text)
        if prompt == "":
            raise UsageError("Error: Input must be provided either through stdin or as a prompt argument when using --print")
        if not prompt.strip():
            raise UsageError("Error: No messages returned from query")

    json_schema = parse_json_schema(_opt(parsed, "json-schema"), cli_version)

    if resume_id is not None and not session_exists(resume_id, projects, cli_version):
        raise UsageError(f"No conversation found with session ID: {resume_id}")
    if explicit_session and (projects[1] / f"{session_id}.jsonl").exists():
        raise UsageError(f"Error: Session ID {session_id} is already in use.")
    if continue_session and resume_id is None and not _has_sessions(projects[1]):
        # claude -p --continue without a session in this directory silently starts a new one
        # (interactive claude would stop with "No conversation found to continue")
        continue_session = False
    if continue_session and resume_id is None:
        # the session -p continues: the cwd's most recently written transcript. Interactive 2.1.329's
        # --continue skips sessions only `claude -p` wrote ("No conversation found to continue"), so
        # the pane is given that session by id (a --continue all the same: SessionStart source, cost)
        latest = continued_transcript(projects[1])
        if latest is not None:
            resume_id = latest.stem

    bypass = bool(_opt(parsed, "dangerously-skip-permissions"))
    permission_mode = _opt(parsed, "permission-mode") or ("bypassPermissions" if bypass else "default")

    claude_args: list[str] = []
    if _opt(parsed, "permission-mode") is None and not bypass:
        # print mode starts in "default"; interactive 2.1.329 would start in "auto" (docs/probe-notes.md §2)
        claude_args += ["--permission-mode", "default"]
    for key, value in parsed.occurrences:
        spec = table.get(key)
        # --verbose only shapes print-mode output; forwarding it would split pool keys for nothing
        if spec is None or spec.handling != "forward" or key in ("settings", "verbose") or key in SESSION_OPTIONS:
            continue
        claude_args += flagmod.to_argv(key, value, table)
    hidden = interactive_only_tools_to_hide(parsed, cli_version)
    if hidden:
        claude_args += ["--disallowedTools", *hidden]

    # The pane's session: a fixed id whenever claude -p would know it up front.
    if resume_id is not None:
        session_args = ["--resume", resume_id]
    elif continue_session:
        session_args = ["--continue"]
    else:
        session_args = []
    if fork and session_args:
        session_args += ["--fork-session", "--session-id", session_id]
    elif not session_args:
        session_args = ["--session-id", session_id]
    elif resume_id is not None:
        session_id = resume_id

    max_turns = _positive_number(_opt(parsed, "max-turns"))

    env = pane_env(caller_env)
    config = BridgeConfig.from_env(caller_env)
    timeout_s = config.timeout_s
    # The first prompt reaches claude as its standard input (read to EOF, byte for byte like -p), never
    # as a launch argument: a prompt is in no process's argv (docs/cli-behaviour.md §10).
    submit = "launch"
    if input_format == "stream-json":
        submit = "paste"   # claude starts while the first message is awaited; every turn is pasted
    elif config.submit == "paste":
        submit = "paste"
    elif (_opt(parsed, "mcp-config") or json_schema is not None) and config.submit != "launch":
        # `claude -p` connects the MCP servers before its first request; interactive claude (2.1.197)
        # sends a prompt given at launch before they are up, so the first request lacks their tools.
        # Submitting once the input prompt is ready gives local servers the time to connect (with
        # --json-schema: the bridge's own server of the StructuredOutput tool, run/structured_mcp.py).
        submit = "paste"
    return RunPlan(
        claude_bin=claude_bin, cli_version=cli_version, cwd=cwd, env=env, prompt=prompt,
        output_format=fmt, verbose=verbose, session_id=session_id, claude_args=claude_args,
        settings_value=_opt(parsed, "settings"), permission_mode=permission_mode,
        bypass=bypass or permission_mode == "bypassPermissions",
        model=_opt(parsed, "model"), submit=submit, timeout=timeout_s,
        debug=config.debug,
        session_args=session_args, resume=resume_id, continue_session=continue_session,
        fork=fork and bool(resume_id or continue_session), max_turns=max_turns, json_schema=json_schema,
        max_budget_usd=_positive_number(_opt(parsed, "max-budget-usd")),
        input_format=input_format, replay_user_messages=replay,
        no_session_persistence=bool(_opt(parsed, "no-session-persistence")), include_partial_messages=partial,
        include_hook_events=bool(_opt(parsed, "include-hook-events")),
        permission_prompt_stdio=_opt(parsed, "permission-prompt-tool") == "stdio",
    )


def parse_json_schema(value: object, cli_version: str) -> dict[str, Any] | None:
    """The --json-schema value as claude -p checks it (a JSON object; 2.1.329 also validates the
    schema itself); None without the option. Raises UsageError with claude's message."""
    if value is None or value == "":
        return None          # claude ignores an empty --json-schema
    try:
        schema = json.loads(str(value))
    except ValueError as e:
        from claude_bridge_tmux.output.jsjson import js_parse_error
        # the JavaScript parser's words, as claude prints them; else Python's (a plain ValueError: a number
        # of more than 4300 digits, which JavaScript reads as Infinity)
        why = js_parse_error(str(value)) or (e.msg if isinstance(e, json.JSONDecodeError) else str(e))
        raise UsageError(f"Error: --json-schema is not valid JSON: JSON Parse error: {why}") from e
    if not isinstance(schema, dict):
        raise UsageError("Error: --json-schema must be a JSON object")
    if dialect(cli_version).json_schema_checked:
        from claude_bridge_tmux.output import structured
        problem = structured.schema_error(schema)
        if problem:
            raise UsageError(f"Error: --json-schema is not a valid JSON Schema: {problem}")
    return schema


def _positive_number(value: object) -> float | None:
    """claude's reading of --max-turns: a number above 0 limits, anything else (0, -1, text) does not."""
    if value is None or value is True:
        return None
    try:
        n = flagmod.js_number(str(value))
    except (ValueError, TypeError):
        return None
    return n if n == n and n > 0 else None


def _tool_names(values: Iterable[object] | None) -> set[str]:
    """Tool names in --tools / --allowedTools values (``Bash,Read``, ``"Bash Read"``, ``Bash(git:*)``)."""
    out: set[str] = set()
    for v in values or ():
        for part in re.split(r"[,\s]+", str(v)):
            name = part.split("(", 1)[0].strip()
            if name:
                out.add(name)
    return out


def interactive_only_tools_to_hide(parsed: flagmod.ParsedArgs, cli_version: str | None = None) -> list[str]:
    """INTERACTIVE_ONLY_TOOLS minus the ones the caller explicitly allowed (--tools / --allowedTools),
    and ``Agent(name)`` for each of INTERACTIVE_ONLY_AGENTS the caller did not name that way.

    With ``--mcp-config`` on a CLI whose interactive mode does not wait for the servers
    (``Dialect.mcp_waits_before_input`` false, 2.1.197) also ``WaitForMcpServers``: the bridge holds
    the first prompt until they are up (run/mcp_tap.py), as ``-p`` does, and ``-p`` then offers no such
    tool; interactive 2.1.197 with ``--model`` offers it for the whole session although every
    server is connected (docs/cli-behaviour.md §14)."""
    allowed = _tool_names(_opt(parsed, "tools")) | _tool_names(_opt(parsed, "allowedTools"))
    named = " ".join(str(v) for key in ("tools", "allowedTools") for v in (_opt(parsed, key) or ()))
    tools = list(INTERACTIVE_ONLY_TOOLS)
    if _opt(parsed, "mcp-config") and not dialect(cli_version).mcp_waits_before_input:
        tools.append(WAIT_FOR_MCP_TOOL)
    return [t for t in tools if t not in allowed] + \
        [f"Agent({a})" for a in INTERACTIVE_ONLY_AGENTS if f"Agent({a})" not in named]


def session_id_needs_fork_message(cli_version: str) -> str:
    """claude's error for --session-id with --resume/--continue but no --fork-session (wording per version)."""
    if dialect(cli_version).fork_message_v2:
        return "Error: --session-id with --continue or --resume also needs --fork-session."
    return "Error: --session-id can only be used with --continue or --resume if --fork-session is also specified."


RESUME_USAGE = ("Error: --resume requires a valid session ID or session title when used with --print. "
                "Usage: claude -p --resume <session-id|title>")


def project_dirs(env: dict[str, str], cwd: str) -> tuple[Path, Path]:
    """(the projects directory of claude's config dir, the cwd's project directory in it)."""
    from claude_bridge_tmux.follow.transcript import encode_project_dir
    from claude_bridge_tmux.host.preseed import config_dir
    root = config_dir(env) / "projects"
    return root, root / encode_project_dir(cwd)


def resolve_resume(value: object, projects: tuple[Path, Path]) -> str:
    """The session id ``--resume VALUE`` means: a UUID as is, else the newest session of the cwd whose
    custom title (``--name``, ``/rename``) is VALUE. Raises UsageError with claude -p's messages."""
    if value is True or value == "":
        raise UsageError(RESUME_USAGE)
    value = str(value)
    if _UUID_RE.match(value):
        return value.lower()
    found = _find_titled_session(projects[1], value)
    if found is None:
        raise UsageError(f'{RESUME_USAGE}. Provided value "{value}" is not a UUID and does not match any session title.')
    return found


def _find_titled_session(project_dir: Path, title: str) -> str | None:
    best: tuple[float, str] | None = None
    try:
        files = list(project_dir.glob("*.jsonl"))
    except OSError:
        return None
    needle = title.encode()
    for f in files:
        try:
            data = f.read_bytes()
        except OSError:
            continue
        if b'"custom-title"' not in data or needle not in data:
            continue
        current = None
        for line in data.splitlines():
            if b'"custom-title"' not in line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("type") == "custom-title":
                current = rec.get("customTitle")
        if current == title:
            mtime = f.stat().st_mtime
            if best is None or mtime > best[0]:
                best = (mtime, f.stem)
    return best[1] if best else None


def _has_sessions(project_dir: Path) -> bool:
    try:
        return any(project_dir.glob("*.jsonl"))
    except OSError:
        return False


def session_exists(session_id: str, projects: tuple[Path, Path], cli_version: str) -> bool:
    """Whether a transcript of ``session_id`` exists where claude looks for it: the cwd's project
    directory (2.1.197); any project directory (2.1.329 resumes sessions of other directories too)."""
    if (projects[1] / f"{session_id}.jsonl").exists():
        return True
    if dialect(cli_version).resume_any_project:
        try:
            return any(projects[0].glob(f"*/{session_id}.jsonl"))
        except OSError:
            return False
    return False
