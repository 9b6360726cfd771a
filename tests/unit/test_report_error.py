"""runner.report_error: the one-line reason and the pane's last lines; tmux's own "Pane is dead" line
never reaches the caller (it is not something claude printed)."""

from __future__ import annotations

from claude_bridge_tmux.follow.session import TurnError
from claude_bridge_tmux.run.turn import report_error


def collect(e: TurnError) -> tuple[int, list[str]]:
    lines: list[str] = []
    return report_error(e, lines.append), lines


def test_claude_start_up_failure_is_passed_on_as_claude_prints_it():
    screen = ["", "Error: --session-id can only be used with --continue or --resume if --fork-session is also specified.",
              "", "Pane is dead (status 1, Sat Nov 21 12:19:34 2026)", ""]
    code, lines = collect(TurnError("claude exited during start-up", screen, "exited", 1))
    assert code == 1
    assert lines == ["Error: --session-id can only be used with --continue or --resume if --fork-session is also specified."]


def test_other_failures_end_with_reason_and_pane_tail():
    screen = [f"row {i}" for i in range(40)] + ["Pane is dead"]
    code, lines = collect(TurnError("timed out waiting for claude to finish the turn", screen, "timeout"))
    assert code == 1
    assert lines[0] == "claude-bridge: timed out waiting for claude to finish the turn"
    assert lines[1] == "claude-bridge: last lines of the pane:"
    assert lines[2:] == [f"  | row {i}" for i in range(25, 40)]
