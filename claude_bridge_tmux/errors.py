"""The bridge's exceptions: one tree with a common base.

::

    BridgeError(message, exit_code=1)        every failure the bridge reports as one line
    ├── UsageError                           a bad invocation: claude's exact message and exit code
    │   └── FlagError                        an argv parse error (+ claude's warnings printed first)
    ├── SetupError                           the host is not usable for a run
    │   ├── PreseedError                     ~/.claude.json cannot be read, understood or written
    │   ├── SettingsError                    the caller's --settings is not a JSON file or object
    │   ├── StdinError                       stdin cannot be used (claude's message)
    │   └── UnsafeDirectoryError             a private directory is not ours or not a directory
    ├── PaneError                            tmux could not do what the bridge asked
    └── TurnError(kind)                      a turn could not complete (follow/session.py)
        api.SchemaError                      (Python API) an answer never matched the JSON schema

An ``OSError`` that escapes a run (a full disk or a read-only file system under the runtime dir)
becomes the one line of :func:`os_error_line` and exit 1.

``Terminated`` (run/cold.py) is a BaseException raised by SIGINT/SIGTERM/SIGHUP; it is not an error.
``str(e)`` is always the one-line message; ``e.exit_code`` what ``claude-bridge`` exits with.
"""

from __future__ import annotations


class BridgeError(Exception):
    """A failure reported as one line: ``message`` (``str(e)``) and the ``exit_code`` to exit with."""

    def __init__(self, message: str = "", exit_code: int = 1):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class UsageError(BridgeError):
    """A bad invocation: ``message`` (claude's exact text) for stderr, ``exit_code``."""


class SetupError(BridgeError):
    """The host is not usable for a run (config, settings, stdin, private directories)."""


class PaneError(BridgeError):
    """tmux could not do what the bridge asked; ``str(e)`` is a one-line reason."""


def os_error_line(e: OSError) -> str:
    """One line for an ``OSError`` that ends a run: ``claude-bridge: cannot write PATH: REASON``
    (``strerror``, for example "No space left on device"), or the error's own text without a path."""
    reason = e.strerror or str(e) or type(e).__name__
    if e.filename:
        return f"claude-bridge: cannot use {e.filename}: {reason}"
    return f"claude-bridge: {reason}"
