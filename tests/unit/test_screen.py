"""screen: dialogs recognised on real captured screens (claude-reference interactive/screens)."""

from pathlib import Path

import pytest

from claude_bridge_tmux.screen import find_dialog, is_ready

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
