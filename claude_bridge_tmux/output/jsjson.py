"""JSON text exactly as ``claude -p`` writes it: a clone of JavaScript's ``JSON.stringify`` (pure).

Produces the bytes of every ``json`` / ``stream-json`` line (:func:`dumps`, :func:`dumps_line`) and
JavaScript's number notation (:func:`js_number`, also used in error texts such as
``Reached maximum budget ($1e-7)``): no spaces, non-ASCII kept raw, lone UTF-16 surrogates as
lowercase ``\\udxxx`` escapes. The same in every CLI version; checked byte for byte against the
stdout of real ``claude -p`` 2.1.197 runs and the transcripts those runs wrote
(``tests/data/print/*/stdout``, ``tests/data/print/*/transcript_*.jsonl``,
``tests/data/transcripts``), and against 2.1.329's ``tests/data/v2.1.329/*/print.out``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from json.encoder import encode_basestring as _encode_str  # C speedup, non-ASCII kept
from typing import Any, cast

_SURROGATE = re.compile("[\ud800-\udfff]")


def _js_str(s: str) -> str:
    out = _encode_str(s)
    if _SURROGATE.search(out):
        # Pairs split into two code points are one character to JS: join them first;
        # JSON.stringify (ES2019) writes lone surrogates as lowercase \udxxx escapes.
        joined = out.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
        out = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", joined)
    return out


def js_number(x: float | int) -> str:
    """``Number.prototype.toString`` (as used by JSON.stringify) for a float or int."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if x != x or x in (float("inf"), float("-inf")):
        return "null"
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    # repr gives the shortest round-tripping digits, the same digits JS picks
    t = Decimal(repr(abs(x))).as_tuple()
    digits = "".join(map(str, t.digits)).rstrip("0") or "0"
    strip = len("".join(map(str, t.digits))) - len(digits)
    k = len(digits)
    n = k + cast(int, t.exponent) + strip  # value = 0.digits * 10**n (finite: the exponent is an int)
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mant = digits if k == 1 else digits[0] + "." + digits[1:]
        body = mant + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return sign + body


def _enc(obj: Any, parts: list[str]) -> None:
    if obj is None:
        parts.append("null")
    elif obj is True:
        parts.append("true")
    elif obj is False:
        parts.append("false")
    elif isinstance(obj, str):
        parts.append(_js_str(obj))
    elif isinstance(obj, (int, float)):
        parts.append(js_number(obj))
    elif isinstance(obj, Mapping):
        parts.append("{")
        first = True
        for k, v in obj.items():
            if not first:
                parts.append(",")
            first = False
            parts.append(_js_str(k if isinstance(k, str) else str(k)))
            parts.append(":")
            _enc(v, parts)
        parts.append("}")
    elif isinstance(obj, (list, tuple)):
        parts.append("[")
        for i, v in enumerate(obj):
            if i:
                parts.append(",")
            _enc(v, parts)
        parts.append("]")
    else:
        raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def dumps(obj: Any) -> str:
    """Compact JSON exactly like ``JSON.stringify(obj)``.

    No spaces; non-ASCII, ``/``, U+2028/U+2029 and DEL written raw; control characters
    as ``\\b \\t \\n \\f \\r`` or lowercase ``\\u00xx``; lone surrogates as ``\\udxxx``;
    numbers in JS notation (``0.00004005``, ``1e-7``, ``0`` for ``0.0``).
    """
    parts: list[str] = []
    _enc(obj, parts)
    return "".join(parts)


def dumps_line(obj: Any) -> str:
    """One stream-json / json output line (with its ``\\n``)."""
    return dumps(obj) + "\n"


# -- JSON.parse's error messages (Bun / JavaScriptCore, as claude 2.1.197 and 2.1.329 print them) ------

class _JsParseError(Exception):
    pass


_WS = " \t\n\r"
_NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?")
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def js_parse_error(text: str) -> str | None:
    """The message JavaScriptCore's ``JSON.parse(text)`` fails with (after ``JSON Parse error: ``),
    or None when ``text`` parses. Covers what the CLI was seen to print (docs/cli-behaviour.md §1):
    ``Unexpected EOF``, ``Expected '}'`` / ``Expected ']'``, ``Unexpected identifier "x"``,
    ``Property name must be a string literal``, ``Unterminated string``, ``Unrecognized token 'c'``,
    ``Expected ':' before value in object property definition``, ``Unable to parse JSON string``."""
    pos = 0

    def ws() -> None:
        nonlocal pos
        while pos < len(text) and text[pos] in _WS:
            pos += 1

    def next_char(at_eof: str) -> str:
        """The next non-space character (not consumed); ``at_eof`` is the error at the end of the text."""
        ws()
        if pos >= len(text):
            raise _JsParseError(at_eof)
        return text[pos]

    def value() -> None:
        nonlocal pos
        c = next_char("Unexpected EOF")
        if c == "{":
            pos += 1
            if next_char("Unexpected EOF") == "}":
                pos += 1
                return
            first = True
            while True:
                if next_char("Unexpected EOF") != '"':
                    raise _JsParseError("Expected '}'" if first else "Property name must be a string literal")
                string()
                if next_char("Unexpected EOF") != ":":
                    raise _JsParseError("Expected ':' before value in object property definition")
                pos += 1
                value()
                c = next_char("Expected '}'")
                pos += 1
                if c == "}":
                    return
                if c != ",":
                    raise _JsParseError("Expected '}'")
                first = False
        if c == "[":
            pos += 1
            if next_char("Unexpected EOF") == "]":
                pos += 1
                return
            while True:
                value()
                c = next_char("Expected ']'")
                if c not in ",]":
                    raise _JsParseError("Expected ']'")
                pos += 1
                if c == "]":
                    return
        if c == '"':
            string()
            return
        m = _NUMBER.match(text, pos)
        if m and m.group():
            pos = m.end()
            return
        m = _IDENT.match(text, pos)
        if m:
            word = m.group()
            if word in ("true", "false", "null"):
                pos = m.end()
                return
            raise _JsParseError(f'Unexpected identifier "{word}"')
        raise _JsParseError(f"Unrecognized token '{c}'")

    def string() -> None:
        nonlocal pos
        pos += 1
        while pos < len(text):
            c = text[pos]
            if c == '"':
                pos += 1
                return
            pos += 2 if c == "\\" else 1
        raise _JsParseError("Unterminated string")

    try:
        value()
        ws()
        if pos < len(text):
            raise _JsParseError("Unable to parse JSON string")     # text after a complete value
    except _JsParseError as e:
        return str(e)
    return None
