"""screen: dialogs recognised on real captured screens (recorded from the real CLI)."""

from pathlib import Path

import pytest

from claude_bridge_tmux.tmux import screen
from claude_bridge_tmux.tmux.screen import find_dialog, is_ready

SCREENS = Path(__file__).resolve().parent.parent / "data" / "screens"


def load(name):
    return (SCREENS / name).read_text(encoding="utf-8", errors="replace").splitlines()


@pytest.mark.parametrize("name,kind", [
    ("00_preflight_fail_unseeded_home.txt", "preflight"),
    ("01_theme.txt", "theme"),
    ("03_after_security.txt", "trust"),
    ("11_apikey.txt", "api_key"),
    ("13_mcp_json_approval.txt", "mcp_approval"),
    ("14_settings_error.txt", "settings_error"),
    ("20_bypass_warning.txt", "bypass"),
    ("30_permission_prompt.txt", "permission"),
])
def test_blocking_dialogs_are_recognised(name, kind):
    d = find_dialog(load(name))
    assert d is not None and d.kind == kind


@pytest.mark.parametrize("name", ["04_ready.txt", "21_bypass_ready.txt"])
def test_ready_screens(name):
    lines = load(name)
    assert find_dialog(lines) is None
    assert is_ready(lines)


def test_reply_text_mentioning_permissions_is_not_a_dialog():
    # a reply that talks about permissions is no permission dialog (the dialog needs its own markers)
    assert is_ready(load("04_ready.txt"))
    assert find_dialog(load("04_ready.txt")[:10] + ["● I need permission to allow this."]) is None


# Input boxes as captured from real panes (2.1.197 and 2.1.329 render them alike).
RULE = "─" * 100
SHELL_BOX = ["╰" + "─" * 60, RULE, "! echo hi", RULE, "  ! for shell mode"]
SHELL_EMPTY = ["╰" + "─" * 60, RULE, "!", RULE, "  ! for shell mode"]
NORMAL_BANG = ["╰" + "─" * 60, RULE, "❯ !echo hi", RULE, "  ? for shortcuts · ← for agents"]
NORMAL_EMPTY = ["╰" + "─" * 60, RULE, "❯\u00a0", RULE, "  ? for shortcuts"]


def test_shell_mode_is_the_bang_row_below_a_rule():
    assert screen.shell_mode(SHELL_BOX) and screen.shell_mode(SHELL_EMPTY)
    assert not screen.shell_mode(NORMAL_BANG) and not screen.shell_mode(NORMAL_EMPTY)
    assert screen.input_text(SHELL_BOX) is None
    assert screen.input_text(NORMAL_BANG) == "!echo hi"


def test_a_bang_prompt_is_submitted_only_when_shown_as_text():
    from claude_bridge_tmux.tmux.input_box import bang_prompt_shown as _bang_prompt_shown

    assert _bang_prompt_shown(NORMAL_BANG, "!echo hi")
    assert not _bang_prompt_shown(SHELL_BOX, "!echo hi")               # would run locally
    guard_left = [r.replace("!echo hi", "!echo hix") for r in NORMAL_BANG]
    assert not _bang_prompt_shown(guard_left, "!echo hi")              # the guard "x" still there
    assert _bang_prompt_shown(guard_left, "!echo hix")
    placeholder = [r.replace("!echo hi", "[Pasted text #1 +1 lines]") for r in NORMAL_BANG]
    assert _bang_prompt_shown(placeholder, "!a\nb")
    assert not _bang_prompt_shown([r.replace("]", "]x") for r in placeholder], "!a\nb")
    assert not _bang_prompt_shown(NORMAL_EMPTY, "!echo hi")
