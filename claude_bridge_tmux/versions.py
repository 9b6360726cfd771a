"""Pick the packaged data file for a CLI version: ``data/<stem>-<version>.json``.

Rule (the same as the option tables'): the exact version when packaged, else the newest packaged
version not newer than it, else (an older CLI) the oldest packaged one; ``None`` or an unparseable
version gives the newest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

_V = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def _key(version: str) -> tuple[int, int, int]:
    """Sort key of a version string (unparseable ones first)."""
    return parse(version) or (0, 0, 0)


def parse(version: str | None) -> tuple[int, int, int] | None:
    m = _V.search(version or "")
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


@cache
def packaged(stem: str) -> tuple[str, ...]:
    """Versions of ``data/<stem>-X.Y.Z.json`` in the package, oldest first."""
    found = []
    for f in resources.files("claude_bridge_tmux").joinpath("data").iterdir():
        m = re.fullmatch(re.escape(stem) + r"-(\d+\.\d+\.\d+)\.json", f.name)
        if m:
            found.append(m.group(1))
    return tuple(sorted(found, key=_key))


def nearest(version: str | None, available: tuple[str, ...] | list[str]) -> str | None:
    """The version of ``available`` to use for ``version`` (see module docstring)."""
    avail = sorted(available, key=_key)
    if not avail:
        return None
    want = parse(version)
    if want is None:
        return avail[-1]
    older = [v for v in avail if _key(v) <= want]
    return older[-1] if older else avail[0]


def read(stem: str, version: str | None) -> tuple[str, str]:
    """(chosen version, text) of the packaged ``<stem>-<version>.json`` nearest to ``version``."""
    v = nearest(version, packaged(stem))
    if v is None:
        raise FileNotFoundError(f"no packaged data/{stem}-*.json")
    return v, resources.files("claude_bridge_tmux").joinpath("data", f"{stem}-{v}.json").read_text("utf-8")


# ------------------------------------------------------------------------------------- dialects

@dataclass(frozen=True)
class Dialect:
    """What a CLI version does differently, as named facts (resolved once per version).

    Every fact was observed on the pinned CLIs with the mock model (docs/probe-notes.md); a version
    between two pinned ones gets the facts of the newest pinned version not newer than it.
    """

    version: str | None
    #: ``claude -p /unknown`` sends the text to the model (2.1.197 answers "Unknown command" itself)
    unknown_command_to_model: bool
    #: an API error ends with a ``system/turn_duration`` record (2.1.329 writes none: StopFailure ends it)
    api_error_turn_duration: bool
    #: plan/auto mode through a gateway shows the classifier billing notice
    auto_mode_billing_notice: bool
    #: stream_event lines carry ``thinking_display`` / ``api_message_id``; system/status key order
    stream_event_extras: bool
    #: a local command with an empty answer prints no synthetic assistant line (2.1.197: "(no content)")
    local_command_empty_line: bool
    #: error_max_structured_output_retries prints/keeps the last validation error
    structured_retries_last_error: bool
    #: --json-schema is checked as a JSON Schema at parse time
    json_schema_checked: bool
    #: --session-id with --resume/--continue without --fork-session: the 2.1.329 wording
    fork_message_v2: bool
    #: --resume ID finds sessions of other project directories
    resume_any_project: bool
    #: a stream-json input line that is not JSON: "(type=unknown, N chars)" wording
    stream_input_error_v2: bool
    #: the SDK's set_model: "Set model to `M`" and a ``{"model": M}`` answer (2.1.197: no quotes, no answer body)
    set_model_v2: bool
    #: a missing --settings file is named by its absolute path (2.1.197: as given)
    settings_path_resolved: bool
    #: --resume/--continue/--fork-session: total_cost_usd, modelUsage and duration_api_ms start from the
    #: session's last valid ``cost-state`` transcript record (2.1.197: from 0; docs/cli-behaviour.md §3)
    restores_cost_state: bool
    #: a /clear result, and the turns after it in the same process, count from 0 again (2.1.197 keeps counting)
    clear_resets_cost: bool
    #: a local command's result has ``duration_api_ms: 0`` (2.1.197: the process's running total)
    local_command_api_ms_zero: bool
    #: error_max_structured_output_retries: modelUsage and total_cost_usd count the last response too
    #: (2.1.197 leaves it out, as both versions do in ``usage``)
    structured_retries_cost_all: bool
    #: --fork-session runs the SessionStart hooks with source ``fork`` (2.1.197: ``resume``)
    session_start_fork_source: bool
    #: --system-prompt with --system-prompt-file: the file's text and the flag's are joined (2.1.197
    #: refuses the pair: "Cannot use both --system-prompt and --system-prompt-file")
    system_prompt_pair_joined: bool
    #: an Agent call's agent runs in the foreground, inside the turn; ``-p`` prints its task lines in
    #: the 2.1.197 shapes before the call's tool_result (2.1.329: in the background, output/tasks.py)
    foreground_agent_lines: bool
    #: a prompt sent while ``--mcp-config`` servers connect gets what ``-p`` gives (MCP tools deferred in
    #: both modes, a call waits for its server); 2.1.197's interactive mode sends the first request
    #: without their tools, where ``-p`` waits for them (run/mcp_tap.py, docs/cli-behaviour.md §14)
    mcp_waits_before_input: bool
    #: with --include-partial-messages the stream-json result lists ``begun_message_ids`` (the API
    #: message ids whose stream began in the turn) after ``uuid`` (2.1.332)
    result_begun_message_ids: bool


_NEW = (2, 1, 329)


@cache
def dialect(version: str | None) -> Dialect:
    """The :class:`Dialect` of a CLI ``version`` string (``"2.1.329"``, ``"2.1.329 (Claude Code)"``);
    an unparseable or missing version gets the newest facts."""
    v = parse(version)
    new = v is None or v >= _NEW
    return Dialect(version=version, unknown_command_to_model=new, api_error_turn_duration=not new,
                   auto_mode_billing_notice=new, stream_event_extras=new, local_command_empty_line=not new,
                   structured_retries_last_error=new, json_schema_checked=new, fork_message_v2=new,
                   resume_any_project=new, stream_input_error_v2=new, set_model_v2=new,
                   settings_path_resolved=new, restores_cost_state=new, clear_resets_cost=new,
                   local_command_api_ms_zero=new, structured_retries_cost_all=new,
                   session_start_fork_source=new, system_prompt_pair_joined=new,
                   foreground_agent_lines=not new, mcp_waits_before_input=new,
                   result_begun_message_ids=v is None or v >= (2, 1, 332))
