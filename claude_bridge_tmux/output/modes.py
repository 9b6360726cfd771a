"""What ``claude -p`` prints for a finished ``result`` in each output mode, and its exit code (pure).

Produces the ``text`` mode's (stdout, stderr, exit code) (:func:`text_output`), the ``json`` mode's one
line (:func:`json_output`) and the exit code of every mode (:func:`exit_code`); stream-json prints the
result as its last line (:mod:`emit`). Format: the text and json runs of `-p` 2.1.197 recorded in
``tests/data/print/*`` (``stdout``, ``stderr``, ``rc``: success, API errors, error_max_turns, budget) and
2.1.329's ``tests/data/v2.1.329/*.json``; the texts of the uncaptured error subtypes follow the CLI's
print mode (see :func:`text_output`; per version: ``Dialect.structured_retries_last_error``).
Exit codes: docs/cli-behaviour.md §1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from claude_bridge_tmux.output.jsjson import dumps
from claude_bridge_tmux.versions import dialect

_N_IN_PARENS = re.compile(r"\(([^()]*)\)\s*$")


def _paren_arg(result: Mapping[str, Any]) -> str | None:
    for e in result.get("errors") or ():
        m = _N_IN_PARENS.search(str(e))
        if m:
            return m.group(1)
    return None


def exit_code(result: Mapping[str, Any]) -> int:
    """1 for every ``is_error`` result (API errors report subtype success!), else 0."""
    return 1 if result.get("is_error") or result.get("subtype", "success") != "success" else 0


def text_output(result: Mapping[str, Any], version: str | None = None) -> tuple[str, str, int]:
    """(stdout, stderr, exit code) of `-p --output-format text`.

    success (also API errors, is_error=true): ``result + "\\n"`` on stdout.
    error_max_turns: ``Error: Reached max turns (N)`` on stdout, no newline (captured).
    Other error subtypes (not captured; wording from the CLI's print mode):
    ``Error: Exceeded USD budget (X)``, ``Execution error``,
    ``Error: Failed to provide valid structured output after N attempts``.
    """
    sub = result.get("subtype", "success")
    rc = exit_code(result)
    if sub == "success":
        return (str(result.get("result", "")) + "\n", "", rc)
    arg = _paren_arg(result)
    if sub == "error_max_turns":
        if arg is None:
            arg = str(max(int(result.get("num_turns", 1)) - 1, 1))
        return (f"Error: Reached max turns ({arg})", "", rc)
    if sub == "error_max_budget_usd":
        amount = (arg or "").lstrip("$")
        return (f"Error: Exceeded USD budget ({amount})", "", rc)
    if sub == "error_max_structured_output_retries":
        # 2.1.329 prints errors[0]; 2.1.197 a fixed text
        errs = result.get("errors") or [] if dialect(version).structured_retries_last_error else []
        return (f"Error: {errs[0] if errs else 'Failed to provide valid structured output after maximum retries'}",
                "", rc)
    return ("Execution error", "", rc)


def json_output(result: Mapping[str, Any]) -> str:
    """`-p --output-format json`: the result object on one line + ``\\n``."""
    return dumps(result) + "\n"
