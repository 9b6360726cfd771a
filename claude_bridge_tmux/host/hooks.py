"""Claude hooks passed per run with ``--settings``, and the spool directory they write to.

Each hook is a tiny shell command (no Python start-up on the turn's critical path: the Stop hook
runs before the CLI writes ``system/turn_duration``) that copies the hook's stdin JSON into a file
``<spool>/<Event>.<pid>.json`` (written as ``.tmp`` then renamed, so readers never see half a file).
The PermissionRequest hook additionally answers ``deny`` with ``claude -p``'s message, so a tool that
needs approval is denied and the turn continues, as in print mode (docs/cli-behaviour.md §7).

Nothing is ever written into the user's own settings files.  A caller's ``--settings`` (file or
JSON string) is merged: its hooks are kept and ours appended.

Hook payload shapes (2.1.197 and 2.1.329): SessionStart ``{session_id, transcript_path, cwd,
hook_event_name, source, model}``; UserPromptSubmit ``{…, prompt_id, permission_mode, prompt}``;
Stop ``{…, prompt_id, last_assistant_message, stop_hook_active}``; StopFailure ``{…, error,
last_assistant_message}``.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from claude_bridge_tmux.errors import SetupError
from claude_bridge_tmux.host.paths import write_private

SPOOLED_EVENTS = ("SessionStart", "UserPromptSubmit", "Stop", "StopFailure")
DENY_MESSAGE = "This command requires approval"
# The tool gate (PostToolBatch, only for runs with --max-turns / --max-budget-usd / --json-schema) waits
# this long for the bridge's answer before letting claude continue on its own.
GATE_EVENT = "PostToolBatch"
GATE_WAIT_S = 15
STOP_REPLY = '{"continue":false,"stopReason":"claude-bridge: limit reached"}'


class SettingsError(SetupError):
    """The caller's ``--settings`` value is neither a readable JSON file nor a JSON object string."""


def _sink_command(spool: Path, event: str, reply: str | None = None) -> str:
    target = shlex.quote(str(spool / event))
    cmd = f'f={target}.$$; cat > "$f.tmp" && mv "$f.tmp" "$f.json"'
    if reply is not None:
        cmd += f"; printf '%s' {shlex.quote(reply)}"
    return cmd


def deny_reply(message: str = DENY_MESSAGE) -> str:
    """The PermissionRequest hook output that denies with ``message`` (hook output schema of 2.1.x)."""
    return json.dumps({
        "hookSpecificOutput": {
            "hookEventName": "PermissionRequest",
            "decision": {"behavior": "deny", "message": message},
        }
    })


def gate_dir(spool: Path) -> Path:
    """Where the bridge answers tool-gate hooks: one file per waiting hook process, named by its pid."""
    return spool.parent / "gate"


def waiting_sink_command(spool: Path, name: str, answers: Path, *, tries: int | None = None,
                         alive_pid: int | None = None) -> str:
    """A hook command that spools its payload as ``<spool>/<name>.<pid>.json`` (read by HookSpool),
    then waits for the bridge's answer ``<answers>/<pid>`` and prints it as the hook's output.

    The wait ends early after ``tries`` polls of 20 ms, or once process ``alive_pid`` (the bridge) is
    gone, so a bridge that went away never blocks claude. Built from the bridge's own paths only."""
    target = shlex.quote(str(spool / name))
    reply = shlex.quote(str(answers))
    keep_waiting = []
    if tries is not None:
        keep_waiting.append(f"[ $i -lt {tries} ]")
    if alive_pid is not None:
        keep_waiting.append(f"kill -0 {alive_pid} 2>/dev/null")
    cond = " && ".join(['[ ! -e "$r" ]', *keep_waiting])
    return (f'f={target}.$$; cat > "$f.tmp" && mv "$f.tmp" "$f.json"; r={reply}/$$; i=0; '
            f'while {cond}; do sleep 0.02; i=$((i+1)); done; '
            f'[ -e "$r" ] && cat "$r"; rm -f "$r"; exit 0')


def _gate_command(spool: Path) -> str:
    """The tool gate: spool the payload, then wait for the bridge's answer ``<gate>/<pid>`` and print it
    (``{"continue":false,...}`` stops the turn before the next model request; an empty file lets it go on).
    Without an answer in GATE_WAIT_S seconds claude goes on (a bridge that went away never blocks it)."""
    return waiting_sink_command(spool, GATE_EVENT, gate_dir(spool), tries=GATE_WAIT_S * 50)


def bridge_hooks(spool: Path, *, deny_permission_requests: bool, gate_tools: bool = False) -> dict[str, Any]:
    """The ``hooks`` settings object the bridge adds to a run (``gate_tools``: the tool gate that lets
    the bridge stop a turn between a response's tool results and the next model request)."""
    hooks: dict[str, Any] = {}
    for event in SPOOLED_EVENTS:
        # async: claude does not wait for a hook that only reports (the caller's hooks are still
        # awaited); a waited-for spool hook held up the prompt, the request and turn_duration by one
        # sh + cat + mv each, 20-350 ms under load (scripts/bench --breakdown)
        hooks[event] = [{"hooks": [{"type": "command", "command": _sink_command(spool, event), "async": True}]}]
    if deny_permission_requests:
        hooks["PermissionRequest"] = [{"matcher": "*", "hooks": [{
            "type": "command", "command": _sink_command(spool, "PermissionRequest", deny_reply())}]}]
    if gate_tools:
        gate_dir(spool).mkdir(mode=0o700, exist_ok=True)
        # PostToolBatch runs once after all tools of a response resolved (succeeded, failed or were
        # denied), before the next request, and honours continue:false (2.1.197, 2.1.329). PostToolUse
        # would miss failed tools (PostToolUseFailure ignores continue:false) and denied ones (neither
        # fires): docs/cli-behaviour.md §9b
        hooks[GATE_EVENT] = [{"hooks": [{
            "type": "command", "command": _gate_command(spool), "timeout": GATE_WAIT_S + 30}]}]
    return hooks


def answer_gate(spool: Path, pid: int, stop: bool) -> None:
    """Answer a waiting tool-gate hook (``pid``): stop the turn, or let it continue."""
    d = gate_dir(spool)
    tmp = d / f".{pid}.tmp"
    try:
        tmp.write_text(STOP_REPLY if stop else "")
        os.replace(tmp, d / str(pid))
    except OSError:
        pass


def load_caller_settings(value: str | None, cwd: str, *, show_resolved: bool = True) -> dict[str, Any]:
    """Parse a caller's ``--settings`` value the way claude does: a JSON object string, else a file path
    (a file that is not JSON is ignored, as ``-p`` does). ``show_resolved``: a missing file is named by
    its absolute path (2.1.329; 2.1.197 names it as given).

    Raises SettingsError (one line) for a missing or unreadable file.
    """
    if value is None:
        return {}
    text = value.strip()
    data: Any = None
    parsed = False
    if text.startswith("{"):
        try:
            data, parsed = json.loads(text), True
        except ValueError:
            pass           # like claude (2.1.197, 2.1.329): not JSON, so it is taken as a file name
    if not parsed:
        path = Path(value) if os.path.isabs(value) else Path(cwd) / value
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise SettingsError(f"Error: Settings file not found: {path if show_resolved else value}") from e
        except ValueError:
            data = {}      # a file that is not JSON: claude -p runs without it (2.1.197, 2.1.329)
        except OSError as e:
            raise SettingsError(f"Error: Invalid settings file {value}: {e}") from e
    if not isinstance(data, dict):
        raise SettingsError("Error: --settings must be a JSON object")
    return data


def merged_settings(caller: dict[str, Any], spool: Path, *, deny_permission_requests: bool,
                    gate_tools: bool = False, extra_hooks: dict[str, list] | None = None) -> dict[str, Any]:
    """Caller settings with the bridge's hooks appended to each event's matcher list, and the
    terminal's animations off (``prefersReducedMotion``, no spinner tips) unless the caller set them:
    nobody watches a bridge pane, and a waiting pane's spinner costs CPU (measured on 2.1.329:
    ~0.18 s of CPU per second of model wait with the animation)."""
    out = dict(caller)
    out.setdefault("prefersReducedMotion", True)
    out.setdefault("spinnerTipsEnabled", False)
    hooks = {k: list(v) for k, v in (caller.get("hooks") or {}).items()}
    for event, matchers in bridge_hooks(spool, deny_permission_requests=deny_permission_requests,
                                        gate_tools=gate_tools).items():
        hooks.setdefault(event, []).extend(matchers)
    for event, matchers in (extra_hooks or {}).items():
        hooks.setdefault(event, []).extend(matchers)
    out["hooks"] = hooks
    return out


def write_settings(path: Path, settings: dict[str, Any]) -> Path:
    """Write the run's settings file (0600)."""
    return write_private(path, orjson.dumps(settings))


@dataclass(frozen=True)
class HookEvent:
    """One spooled hook call: ``event`` name, ``payload`` (the JSON claude gave the hook), file ``mtime``."""

    event: str
    payload: dict[str, Any]
    mtime: float
    pid: int | None = None   # the hook process (names the gate answer file)


class HookSpool:
    """Reads (and deletes) the hook files in a spool directory, oldest first."""

    def __init__(self, spool: Path):
        self.dir = spool
        spool.mkdir(mode=0o700, exist_ok=True)

    def drain(self) -> list[HookEvent]:
        """Return every complete hook file written since the last call, oldest first."""
        events: list[HookEvent] = []
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return events
        for name in names:
            if not name.endswith(".json"):
                continue
            path = self.dir / name
            try:
                st = path.stat()
                data = orjson.loads(path.read_bytes())
                path.unlink()
            except (OSError, orjson.JSONDecodeError):
                continue
            if isinstance(data, dict):
                parts = name.split(".")
                pid = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None
                events.append(HookEvent(parts[0], data, st.st_mtime, pid))
        events.sort(key=lambda e: e.mtime)
        return events
