"""Read a print-mode prompt from stdin the way claude 2.1.x does.

Observed in the 2.1.329 binary (``getInputPrompt``): when stdin is not a TTY, claude waits up to 3 s
for the first data or end-of-file; nothing by then → it warns on stderr and goes on without stdin;
otherwise it reads to EOF (more than 10 MiB is an error).  The text is joined after the prompt
argument with a newline (``[arg, stdin].filter(Boolean).join("\\n")``).
"""

from __future__ import annotations

import os
import select
import sys
from typing import BinaryIO

from claude_bridge_tmux.errors import SetupError

FIRST_DATA_TIMEOUT = 3.0
MAX_STDIN = 10 * 1024 * 1024
NO_DATA_WARNING = ("Warning: no stdin data received in 3s, proceeding without it. If piping from a slow command, "
                   "redirect stdin explicitly: < /dev/null to skip, or wait longer.")
TOO_LARGE = "Error: piped stdin input exceeds 10MB. Pass large content as a file path in your prompt instead."


class StdinError(SetupError):
    """stdin could not be used; ``str(e)`` is claude's message."""


def read_prompt_stdin(stream: BinaryIO | None = None, *, warn=None) -> str | None:
    """Return stdin's text (UTF-8), or None when stdin is a TTY, closed, or silent for 3 s.

    ``warn(msg)`` receives claude's warning for the silent case.  Raises StdinError over 10 MiB.
    """
    stream = stream or sys.stdin.buffer
    try:
        fd = stream.fileno()
    except (AttributeError, ValueError, OSError):
        return None
    try:
        if os.isatty(fd):
            return None
    except OSError:
        return None
    try:
        ready, _, _ = select.select([fd], [], [], FIRST_DATA_TIMEOUT)
    except (OSError, ValueError):
        return None
    if not ready:
        if warn:
            warn(NO_DATA_WARNING)
        return None
    chunks: list[bytes] = []
    total = 0
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except InterruptedError:
            continue
        if not chunk:
            break
        total += len(chunk)
        if total > MAX_STDIN:
            raise StdinError(TOO_LARGE)
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")
