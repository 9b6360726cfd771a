"""Driving claude's input box: paste a prompt so that it lands as text, then press Enter.

A pasted prompt is shown as ``[Pasted text #N +M lines]`` or as the text itself; Enter must come
after it, as a key of its own (text and Enter in one send collide with paste detection). A prompt
starting with ``!`` pasted into an empty box would switch it to shell mode and run it locally: it is
placed behind a guard character instead, and Enter is only pressed once the screen shows the box in
normal mode holding the text (docs/cli-behaviour.md §5).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from claude_bridge_tmux.errors import BridgeError
from claude_bridge_tmux.tmux import screen as screenmod
from claude_bridge_tmux.tmux.pane import ClaudePane


class SubmitError(BridgeError):
    """The prompt could not be placed in the input box as text; nothing was submitted."""


def bang_prompt_shown(rows: list[str], prompt: str) -> bool:
    """The input box is in normal mode and shows ``prompt`` (which starts with "!"), the guard "x"
    gone: a one-line prompt shown in full, or a paste placeholder ("[Pasted text #1 +2 lines]")."""
    shown = screenmod.input_text(rows)
    if shown is None or screenmod.shell_mode(rows):
        return False
    if shown.startswith("[Pasted text"):
        return shown.endswith("]")
    if "\n" in prompt or len(prompt) > 200:
        return shown.startswith("!")          # shown wrapped or elided: only the start is certain
    return shown == prompt.strip(" \u00a0")


class InputBox:
    """claude's input box in ``pane``; ``log(msg)`` gets one line per retry."""

    def __init__(self, pane: ClaudePane, log: Callable[[str], None] | None = None):
        self.pane = pane
        self.log = log or (lambda msg: None)

    def wait_screen(self, predicate: Callable[[list[str]], bool], timeout: float) -> bool:
        """Poll the bottom of the screen until ``predicate(rows)``, at most ``timeout`` s; True when it held."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate(screenmod.bottom(self.pane.screen(), 12)):
                return True
            time.sleep(0.01)
        return False

    def submit(self, prompt: str) -> None:
        """Paste ``prompt`` (the box must be shown and empty), then press Enter once it has landed.
        Raises SubmitError when a ``!`` prompt cannot be placed as text (after one retry), PaneError."""
        if prompt.startswith("!"):
            for patience in (1.0, 3.0):
                if self.place_bang_prompt(prompt, patience):
                    break
                self.log("the '!' prompt did not land as text: input box emptied, trying again")
                self.empty()
            else:
                raise SubmitError("could not place the prompt starting with '!' in claude's input box as text "
                                  "(it would have run as a shell command); nothing was submitted")
        else:
            self.pane.paste(prompt)
            self.wait_screen(lambda rows: any("[Pasted text" in r for r in rows) or bool(screenmod.input_text(rows)),
                             5.0)
        time.sleep(0.02)
        self.pane.send_keys("Enter")

    def place_bang_prompt(self, prompt: str, patience: float) -> bool:
        """Type "x", move before it, paste ``prompt`` (the box is not empty: no shell mode), delete the
        "x"; True when the screen then shows the box in normal mode with the prompt (``patience``: s
        to wait for each step to show)."""
        self.pane.send_keys("x", literal=True)
        if not self.wait_screen(lambda rows: screenmod.input_text(rows) == "x", patience):
            return False
        self.pane.send_keys("Left")
        time.sleep(0.02)
        self.pane.paste(prompt)
        if not self.wait_screen(lambda rows: screenmod.input_text(rows) not in (None, "", "x"), 5 * patience):
            return False
        self.pane.send_keys("DC")
        return self.wait_screen(lambda rows: bang_prompt_shown(rows, prompt), patience)

    def empty(self) -> None:
        """Empty the input box and leave shell mode (Ctrl-U clears the text, Backspace on an empty
        shell-mode box returns to normal mode)."""
        for _ in range(5):
            rows = screenmod.bottom(self.pane.screen(), 12)
            if screenmod.input_text(rows) == "":
                return
            if screenmod.shell_mode(rows) and any(r.rstrip() == "!" for r in rows):
                self.pane.send_keys("BSpace")
            else:
                self.pane.send_keys("C-u")
            self.wait_screen(lambda r: screenmod.input_text(r) == "" or screenmod.shell_mode(r), 1.0)
