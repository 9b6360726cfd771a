"""The permission mode read from the footer under the input box (rows recorded on 2.1.197 and 2.1.329)."""

import pytest

from claude_bridge_tmux.tmux.screen import footer_mode

RULE = "─" * 80


@pytest.mark.parametrize("rows,mode", [
    ([RULE, "❯ ", RULE, "  ⏵⏵ auto mode on (shift+tab to cycle) · ← for agents        ◐ medium ·"], "auto"),
    ([RULE, "❯ ", RULE, "  ⏸ manual mode on · ? for shortcuts · ← for agents          ◐ medium ·"], "default"),
    ([RULE, "❯ ", RULE, "  ⏵⏵ accept edits on (shift+tab to cycle) · ← for agents     ◐ medium ·"], "acceptEdits"),
    ([RULE, "❯ ", RULE, "  ⏸ plan mode on (shift+tab to cycle) · ← for agents"], "plan"),
    ([RULE, "❯ ", RULE, "  ? for shortcuts · ← for agents", "                 ● high ·"], "default"),
    ([RULE, "❯ ", RULE, "  ⏵⏵ bypass permissions on (shift+tab to cycle)"], "bypassPermissions"),
    (["some output", "no footer here"], None),
])
def test_footer_mode(rows, mode):
    assert footer_mode(rows) == mode
