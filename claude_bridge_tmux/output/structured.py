"""``--json-schema`` for the interactive CLI (which ignores the flag): instructions, answer checks, re-prompts.

``claude -p --json-schema S`` gives the model a ``StructuredOutput`` tool whose input schema is S and
ends the run when the model calls it with valid input (``structured_output`` in the result; the
``result`` is that value as compact JSON).  Interactive claude has no such tool, so the bridge:

1. appends :func:`instructions` (the schema, and "answer with only a JSON value") to the system
   prompt (``--append-system-prompt``, merged with the caller's own);
2. takes the turn's final text (the ``result``), finds the JSON value in it (:func:`extract`) and
   validates it with ``jsonschema`` (:func:`problem`);
3. answers like ``claude -p``: valid → ``structured_output``; text without any JSON → one nudge in the
   same pane, then a plain success without ``structured_output`` (what ``-p`` does when the model never
   calls the tool); JSON that does not validate → a re-prompt with the validation error, at most
   ``MAX_STRUCTURED_OUTPUT_RETRIES`` (default 5, as ``-p``) attempts in all, then
   ``error_max_structured_output_retries``.

Re-prompts start with :data:`RETRY_PREFIX` (the mock model treats them as wrappers, like ``-p``'s
``[structured-output-enforce]`` nudge).
"""

from __future__ import annotations

import json
import re
from typing import Any

from claude_bridge_tmux.output.jsjson import dumps
from claude_bridge_tmux.versions import dialect

RETRY_PREFIX = "[claude-bridge:json-schema]"
SCHEMA_MARKER = "JSON Schema: "
DEFAULT_MAX_ATTEMPTS = 5


def instructions(schema: Any) -> str:
    """System-prompt text asking for a JSON answer (the schema on one line after SCHEMA_MARKER)."""
    return ("Structured output is required for this session: your final answer to each request must be a "
            "single JSON value that conforms to the JSON Schema below, and nothing else (no prose, no "
            "Markdown code fence). Use tools first if you need them.\n"
            f"{SCHEMA_MARKER}{dumps(schema)}")


def nudge_prompt() -> str:
    return (f"{RETRY_PREFIX} Your answer did not contain the required JSON value. Reply again with only a "
            "JSON value that conforms to the JSON Schema given in the system prompt, and nothing else.")


def retry_prompt(problem_text: str) -> str:
    return (f"{RETRY_PREFIX} Your answer does not match the required JSON Schema: {problem_text}. Reply again "
            "with only a corrected JSON value that conforms to the schema, and nothing else.")


_FENCE = re.compile(r"```(?:json|JSON)?\s*\n(.*?)\n?```", re.S)
_MISSING = object()


def extract(text: str | None) -> Any:
    """The JSON value in an answer: the whole text, else a fenced block, else the first ``{...}`` /
    ``[...]`` span that parses. :data:`MISSING` when there is none."""
    if not text:
        return _MISSING
    t = text.strip()
    for cand in (t, *(m.group(1).strip() for m in _FENCE.finditer(t))):
        try:
            return json.loads(cand)
        except ValueError:
            pass
    dec = json.JSONDecoder()
    for i, ch in enumerate(t):
        if ch in "{[":
            try:
                value, _end = dec.raw_decode(t, i)
                return value
            except ValueError:
                continue
    return _MISSING


MISSING = _MISSING


def _ajv_message(e) -> str:
    """jsonschema's error in the words of ajv (which ``claude -p`` uses), for the common keywords."""
    v, kw = e.validator_value, e.validator
    words = {
        "type": lambda: "must be " + (",".join(v) if isinstance(v, list) else str(v)),
        "required": lambda: "must have required property '" + (e.message.split("'")[1] if "'" in e.message else "?") + "'",
        "additionalProperties": lambda: "must NOT have additional properties",
        "enum": lambda: "must be equal to one of the allowed values",
        "const": lambda: "must be equal to constant",
        "minimum": lambda: f"must be >= {v}", "maximum": lambda: f"must be <= {v}",
        "exclusiveMinimum": lambda: f"must be > {v}", "exclusiveMaximum": lambda: f"must be < {v}",
        "minLength": lambda: f"must NOT have fewer than {v} characters",
        "maxLength": lambda: f"must NOT have more than {v} characters",
        "minItems": lambda: f"must NOT have fewer than {v} items",
        "maxItems": lambda: f"must NOT have more than {v} items",
        "pattern": lambda: f'must match pattern "{v}"', "format": lambda: f'must match format "{v}"',
    }
    return words[kw]() if kw in words else e.message


def problem(value: Any, schema: Any) -> str | None:
    """Why ``value`` does not conform to ``schema`` (one line, every error, worded like ``claude -p``'s
    ``Output does not match required schema: /name: must be string``), or None when it does."""
    import jsonschema

    cls = jsonschema.validators.validator_for(schema)
    errors = sorted(cls(schema).iter_errors(value), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    parts = []
    for e in errors[:10]:
        where = "/" + "/".join(str(p) for p in e.absolute_path) if e.absolute_path else "root"
        parts.append(f"{where}: {_ajv_message(e)}")
    return "Output does not match required schema: " + ", ".join(parts)


def schema_error(schema: Any) -> str | None:
    """Why ``schema`` is not a valid JSON Schema (jsonschema's words), or None."""
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as e:
        where = "/".join(str(p) for p in e.absolute_path)
        return f"data{'/' + where if where else ''} {e.message}"
    return None


def max_attempts(env: dict[str, str]) -> int:
    try:
        n = int(env.get("MAX_STRUCTURED_OUTPUT_RETRIES") or DEFAULT_MAX_ATTEMPTS)
    except ValueError:
        n = DEFAULT_MAX_ATTEMPTS
    return max(1, n)


def exhausted_error(attempts: int, last_problem: str | None, version: str | None) -> str:
    """``errors[0]`` of ``error_max_structured_output_retries`` (2.1.329 adds the last error)."""
    text = f"Failed to provide valid structured output after {attempts} attempts"
    if last_problem and dialect(version).structured_retries_last_error:
        text += f" \u2014 last StructuredOutput error: {last_problem}"
    return text
