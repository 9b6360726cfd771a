"""Answering claude's folder trust dialog for a cwd the run holds temporary trust for: a pure decision.

When is it shown at all: another claude rewrote ``~/.claude.json`` from a stale copy and dropped the
bridge's temporary trust entry before this claude read it (docs/cli-behaviour.md, "Dialogs").
Confirming the dialog gives the same trust the lease gave; the lease's release takes it back.

The dialog has two rows, "Yes, I trust this folder" and "No, exit", one marked ``❯``. 2.1.197 draws
"Yes" first and selected; 2.1.329 and later may draw "No, exit" first and selected, without numbers, so
the answer is a Down (or Up) to "Yes" and then Enter. Under load the pane may show a move late, and a
second Down would wrap to "No, exit"; the dialog can also be drawn again with its default when claude
re-reads its config. Hence: a move is pressed again only once the screen shows it (or after
:data:`MOVE_WAIT_S`), and Enter only once "Yes" has stayed selected for :data:`SETTLE_S` after a move.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MOVE_WAIT_S = 3.0    # s a Down/Up may take to show before it is pressed again
SETTLE_S = 0.3       # s "Yes" must stay selected after a move before Enter confirms it
KEY_GAP_S = 0.5      # s at least between two keys
MAX_KEYS = 6         # keys pressed at most; then the dialog is left to the caller (an error)

Key = Literal["Enter", "Down", "Up"]
#: a key to press now, ``"wait"`` (being answered: look again later) or ``None`` (not a trust dialog
#: with both rows on screen, or :data:`MAX_KEYS` used up)
Decision = Key | Literal["wait"] | None


@dataclass
class TrustAnswer:
    """The state of one session's answers to the trust dialog; :meth:`decide` is pure but for it."""

    keys: int = 0
    last_key_at: float = float("-inf")      # monotonic s
    moved_from: int | None = None           # the selected row when the last Down/Up was pressed
    yes_since: float | None = None          # since when "Yes" has been selected after a move

    def decide(self, lines: list[str], now: float) -> Decision:
        """What to do about the trust dialog on ``lines`` (the pane's rows) at ``now`` (monotonic s);
        a returned key counts as pressed."""
        # (2.1.197 may mark the row of the folder's earlier answer with a trailing ✔)
        rows = [r.strip().removesuffix("✔").strip() for r in lines]
        yes = next((i for i, r in enumerate(rows) if r.endswith("Yes, I trust this folder")), None)
        chosen = next((i for i, r in enumerate(rows) if r.startswith("❯") and ("trust" in r or "exit" in r)), None)
        if yes is None or chosen is None or self.keys >= MAX_KEYS:
            return None
        if now - self.last_key_at < KEY_GAP_S:
            return "wait"
        if chosen != yes and self.moved_from == chosen and now - self.last_key_at < MOVE_WAIT_S:
            return "wait"       # the last move is not on screen yet: a second one could go past "Yes"
        if chosen != yes:
            self.yes_since = None
        elif self.moved_from is not None:
            self.yes_since = self.yes_since if self.yes_since is not None else now
            if now - self.yes_since < SETTLE_S:
                return "wait"
        key: Key = "Enter" if chosen == yes else ("Down" if chosen < yes else "Up")
        self.keys += 1
        self.last_key_at = now
        self.moved_from = None if key == "Enter" else chosen
        self.yes_since = None
        return key
