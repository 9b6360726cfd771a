"""Recognise interactive-claude screens that block a run (docs/cli-behaviour.md §4, §5).

Pure functions over ``capture-pane`` lines.  Only dialogs are recognised, by several markers that
must appear together in the bottom part of the screen (a model reply that merely mentions
"permission" or "Running" never matches), and only used as a fallback when the transcript and the
hooks have stopped making progress.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

READY_RE = re.compile(r"^❯(?:[ \u00a0]|$)")


@dataclass(frozen=True)
class Dialog:
    """A blocking screen: ``kind`` (stable identifier) and ``reason`` (one line for the user);
    ``cli_message`` / ``exit_code``: what ``claude -p`` prints and returns instead, when it has an
    answer of its own for the same situation."""

    kind: str
    reason: str
    cli_message: str | None = None
    exit_code: int | None = None


# (kind, markers that must all be present, reason)
_DIALOGS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("preflight", ("Unable to connect to Anthropic services",),
     "claude could not reach Anthropic during onboarding (is the login or API key set up? try `claude` once by hand)"),
    ("login", ("Select login method",),
     "claude is not logged in: run `claude` once and log in, or set ANTHROPIC_API_KEY"),
    ("theme", ("Choose the text style",),
     "claude is showing its first-run onboarding; the bridge could not pre-seed ~/.claude.json"),
    ("trust", ("Is this a project you created or one you trust?",),
     "claude is asking whether to trust this folder; the bridge did not pre-seed trust"),
    ("trust", ("Do you trust the files in this folder?",),
     "claude is asking whether to trust this folder; the bridge did not pre-seed trust"),
    ("api_key", ("Detected a custom API key in your environment", "Do you want to use this API key?"),
     "claude is asking whether to use ANTHROPIC_API_KEY; the bridge could not pre-approve it"),
    ("bypass", ("Bypass Permissions mode", "Yes, I accept"),
     "claude is asking to confirm bypass-permissions mode"),
    ("settings_error", ("Settings Error", "Continue without these settings"),
     "claude reports an invalid settings file (see the pane lines below)"),
    ("mcp_approval", ("New MCP server found in this project",),
     "claude is asking whether to use the project's .mcp.json servers"),
    ("permission", ("Do you want to proceed?", "Esc to cancel"),
     "a tool needs permission and claude is waiting for an answer"),
    ("permission", ("Do you want to make this edit", "Esc to cancel"),
     "a tool needs permission and claude is waiting for an answer"),
    ("not_logged_in", ("Not logged in", "Run /login"),
     "claude is not logged in (no usable API key or login)"),
    # 2.1.329, plan/auto mode through a gateway, at the first classifier check (the bridge pre-seeds
    # its acknowledgement for API-key runs; seen anyway, e.g. with an OAuth login)
    ("auto_mode_notice", ("changing auto mode to no longer charge for classifier requests", "Enter to continue"),
     "claude is showing its auto-mode classifier billing notice (plan/auto mode through a gateway); "
     "acknowledge it once in an interactive `claude`, or use another permission mode"),
    # 2.1.329: the server-side safety check of auto/plan mode is unavailable (a string of the binary;
    # not reached with the mock model)
    ("auto_mode", ("Auto mode can't check actions in this session",),
     "Auto mode can't check actions in this session; use another permission mode"),
)


def bottom(lines: list[str], n: int = 20) -> list[str]:
    """The last ``n`` non-empty rows of the screen."""
    rows = [line for line in lines if line.strip()]
    return rows[-n:]


def find_dialog(lines: list[str]) -> Dialog | None:
    """The blocking dialog shown at the bottom of the screen, or None."""
    text = "\n".join(bottom(lines))
    for kind, markers, reason in _DIALOGS:
        if all(m in text for m in markers):
            return Dialog(kind, reason)
    return None


def transcript_write_failure(lines: list[str]) -> str | None:
    """The reason claude shows for failing transcript writes, or None. 2.1.329 puts a warning under
    the input box when it cannot append to its transcript, for example
    ``⚠ Transcript writes are failing (disk full — ENOSPC) · recent messages may not be saved for resume``;
    the reason is the text in parentheses ("disk full — ENOSPC")."""
    for row in bottom(lines, 6):
        at = row.find("Transcript writes are failing")
        if at >= 0:
            rest = row[at + len("Transcript writes are failing"):].strip()
            if rest.startswith("(") and ")" in rest:
                return rest[1:rest.index(")")]
            return "unknown reason"
    return None


def is_ready(lines: list[str]) -> bool:
    """True when the input prompt (``❯`` + space/NBSP) is shown with the shortcuts footer and no dialog."""
    rows = bottom(lines, 8)
    has_prompt = any(READY_RE.match(r) for r in rows)
    return has_prompt and find_dialog(lines) is None


def shell_mode(lines: list[str]) -> bool:
    """True when claude's input box is in shell mode (a ``!`` that began the input switched it): its
    row right below a horizontal rule starts with ``!`` instead of ``❯`` (seen on 2.1.197 and 2.1.329;
    footer "! for shell mode"). Enter would run the text as a local shell command."""
    for i in range(len(lines) - 1, 0, -1):
        if READY_RE.match(lines[i]):
            return False
        if lines[i].startswith("!") and lines[i - 1].lstrip().startswith("─"):
            return True
    return False


def input_text(lines: list[str]) -> str | None:
    """Text in claude's input box (the ``❯`` row right below a horizontal rule), or None when no
    input box is shown.  History rows also start with ``❯`` but are not below a rule."""
    for i in range(len(lines) - 1, 0, -1):
        if READY_RE.match(lines[i]) and lines[i - 1].lstrip().startswith("─"):
            return lines[i][1:].strip(" \u00a0")
    return None


# The permission mode as the footer under the input box shows it (2.1.197 and 2.1.329; Shift+Tab
# cycles default → acceptEdits → plan → auto (→ bypassPermissions when launched with it allowed)).
_FOOTER_MODES = (("⏵⏵ accept edits on", "acceptEdits"), ("⏸ plan mode on", "plan"), ("⏵⏵ auto mode on", "auto"),
                 ("⏵⏵ bypass permissions on", "bypassPermissions"), ("⏸ manual mode on", "default"),
                 ("? for shortcuts", "default"))


def footer_mode(lines: list[str]) -> str | None:
    """The permission mode named in the footer (the last rows of the screen), or None when no footer
    is recognised. 2.1.329 labels the default mode "manual"; 2.1.197 shows only "? for shortcuts"."""
    for row in reversed(bottom(lines, 4)):
        for text, mode in _FOOTER_MODES:
            if text in row:
                return mode
    return None
