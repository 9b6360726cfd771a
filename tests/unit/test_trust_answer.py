"""The trust dialog's answer (follow/trust.py), on the dialog as 2.1.197 draws it (tests/data/screens)
and as 2.1.329 draws it with "No, exit" first and selected (seen in a load run's pane), with a fake clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from claude_bridge_tmux.follow.trust import MAX_KEYS, MOVE_WAIT_S, SETTLE_S, TrustAnswer

RECORDED = (Path(__file__).resolve().parents[1] / "data" / "screens"
            / "10_onboarded_nokey_trust_dialog_first.txt").read_text().splitlines()
HEAD = [" Accessing workspace:", " /tmp/w", " Quick safety check: ... Security guide"]
NO_SELECTED = HEAD + [" ❯ No, exit", "   Yes, I trust this folder", " Enter to confirm · Esc to cancel"]
YES_SELECTED = HEAD + ["   No, exit", " ❯ Yes, I trust this folder", " Enter to confirm · Esc to cancel"]


def test_the_recorded_dialog_is_confirmed_at_once():
    assert TrustAnswer().decide(RECORDED, 10.0) == "Enter"


def test_no_exit_selected_moves_down_then_confirms_once_yes_has_stayed():
    t = TrustAnswer()
    assert t.decide(NO_SELECTED, 0.0) == "Down"
    assert t.decide(NO_SELECTED, 0.6) == "wait"            # the move is not drawn yet: no second Down
    assert t.decide(YES_SELECTED, 0.7) == "wait"           # drawn: "Yes" must stay selected first
    assert t.decide(YES_SELECTED, 0.7 + SETTLE_S / 2) == "wait"
    assert t.decide(YES_SELECTED, 0.7 + SETTLE_S + 0.01) == "Enter"


def test_a_dialog_drawn_again_with_its_default_is_not_confirmed():
    """Seen under load: the dialog is drawn again with "No, exit" selected after the move showed."""
    t = TrustAnswer()
    assert t.decide(NO_SELECTED, 0.0) == "Down"
    assert t.decide(YES_SELECTED, 0.6) == "wait"
    assert t.decide(NO_SELECTED, 0.7) == "wait"            # drawn again: no Enter on "No, exit"
    assert t.decide(NO_SELECTED, MOVE_WAIT_S) == "Down"    # the move did not hold: move again
    assert t.decide(YES_SELECTED, MOVE_WAIT_S + 0.6) == "wait"
    assert t.decide(YES_SELECTED, MOVE_WAIT_S + 0.6 + SETTLE_S + 0.01) == "Enter"


def test_a_late_move_is_pressed_again_after_the_wait():
    t = TrustAnswer()
    assert t.decide(NO_SELECTED, 0.0) == "Down"
    assert t.decide(NO_SELECTED, MOVE_WAIT_S - 0.1) == "wait"
    assert t.decide(NO_SELECTED, MOVE_WAIT_S) == "Down"


def test_yes_below_the_selection_moves_up():
    rows = HEAD + ["   Yes, I trust this folder", " ❯ No, exit"]
    assert TrustAnswer().decide(rows, 0.0) == "Up"


@pytest.mark.parametrize("rows", [HEAD, HEAD + [" ❯ No, exit"], ["   Yes, I trust this folder"]])
def test_not_the_dialog_or_not_all_of_it(rows):
    assert TrustAnswer().decide(rows, 0.0) is None


def test_the_keys_are_bounded():
    t = TrustAnswer()
    now, pressed = 0.0, 0
    while (d := t.decide(RECORDED, now)) is not None:
        pressed += d == "Enter"
        now += 1.0
    assert pressed == MAX_KEYS


def test_a_checked_yes_row_is_still_the_yes_row():
    """2.1.197 drew "❯ 1. Yes, I trust this folder ✔" (a CI run's pane after a stale write dropped trust)."""
    checked = HEAD + [" ❯ 1. Yes, I trust this folder ✔", "   2. No, exit", " Enter to confirm · Esc to cancel"]
    assert TrustAnswer().decide(checked, 10.0) == "Enter"
