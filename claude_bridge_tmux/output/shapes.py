"""Per-version output shapes of `claude -p` (``data/shapes-<version>.json``, pure).

The files are recorded from the real CLI's `-p` output on the mock model by ``scripts/record-shapes``.
They say, for one CLI version:

* ``lines[kind].keys``: the key order of each stream-json line kind (``assistant``, ``user``,
  ``system/init``, ``system/permission_denied``, ``system/thinking_tokens`` …) merged over every
  occurrence — a key the version never prints is not listed, so it is not printed;
* ``results[fmt][variant]``: a normalised sample ``result`` per output format and variant
  (``success``, ``api_error``, ``structured``, ``error_max_turns``, ``error_max_budget_usd``): its
  key order, nested key order (``usage``, ``modelUsage`` entries), and the values of fields a
  transcript cannot supply (``subagent_stats``, ``safety_stops``, ``fast_mode_disabled_reason``,
  ``terminal_reason`` of the variant …);
* ``rules``: behaviour that differs (``model_usage_key``: ``"requested"`` — keyed by the requested
  model incl. ``[1m]``, 2.1.197 — or ``"response"`` — the response's model id, 2.1.329).

Run-specific sample values are placeholders (``"<uuid>"``, ``"<ms>"`` …) and are never copied into
output: a field whose value the translator cannot compute and whose sample is a placeholder is left out.
For an unknown version the nearest packaged one is used (:mod:`versioned`).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from claude_bridge_tmux import versions as versioned

DEFAULT_VERSION = "2.1.197"
MODEL_MAPS = ("modelUsage", "model_usage_since_last_result")
MODEL_PLACEHOLDER = "<model>"
_PLACEHOLDER = re.compile(r"^<[a-z_]+>$")
# Fields measured by the CLI during the run: never filled from a sample.
MEASURED = frozenset({"duration_ms", "duration_api_ms", "ttft_ms", "ttft_stream_ms", "time_to_request_ms",
                      "first_content_frame_ms", "thinking_duration_ms"})
# Keys printed when computed even if the variant's sample lacks them (variants not recorded).
ALWAYS = ("structured_output", "errors")


def is_placeholder(v: Any) -> bool:
    return isinstance(v, str) and bool(_PLACEHOLDER.match(v))


@dataclass(frozen=True)
class Shapes:
    version: str
    rules: Mapping[str, Any] = field(default_factory=dict)
    lines: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    results: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)

    # ---- lines
    def line_keys(self, kind: str) -> list[str] | None:
        entry = self.lines.get(kind)
        return list(entry["keys"]) if entry else None

    def has_line(self, kind: str) -> bool:
        return kind in self.lines

    def line_sample(self, kind: str) -> Mapping[str, Any]:
        entry = self.lines.get(kind)
        return entry.get("sample", {}) if entry else {}

    def order_line(self, kind: str, computed: Mapping[str, Any], *, fill: bool = False) -> dict:
        """``computed`` in the version's key order for ``kind``; keys the version never prints
        are dropped. With ``fill``, keys it prints but ``computed`` lacks are taken from the
        sample when the sample holds a real value (not a placeholder, not a measurement).
        Unknown kinds pass through unchanged."""
        keys = self.line_keys(kind)
        if keys is None:
            return dict(computed)
        sample = self.line_sample(kind)
        out: dict[str, Any] = {}
        for k in keys:
            if k in computed and computed[k] is not _MISSING:
                out[k] = computed[k]
            elif fill and k in sample and not is_placeholder(sample[k]) and k not in MEASURED:
                out[k] = copy.deepcopy(sample[k])
        return out

    # ---- results
    def result_sample(self, fmt: str, variant: str) -> Mapping[str, Any]:
        """The sample for ``fmt``/``variant``; falls back to json, then to a related variant."""
        by_fmt = self.results.get(fmt) or self.results.get("json") or {}
        for v in (variant, _FALLBACK.get(variant), "success"):
            if v and v in by_fmt:
                return by_fmt[v]
        return {}

    def model_usage_entry(self, fmt: str) -> Mapping[str, Any]:
        """A ``modelUsage`` entry sample (from any variant that has one)."""
        by_fmt = self.results.get(fmt) or self.results.get("json") or {}
        for sample in by_fmt.values():
            mu = sample.get("modelUsage")
            if isinstance(mu, Mapping) and mu:
                return next(iter(mu.values()))
        return {}

    def usage_template(self, fmt: str, variant: str) -> Mapping[str, Any]:
        u = self.result_sample(fmt, variant).get("usage")
        return u if isinstance(u, Mapping) else {}

    def recorded(self, fmt: str, variant: str) -> bool:
        return variant in (self.results.get(fmt) or self.results.get("json") or {})

    def default(self, fmt: str, variant: str, key: str) -> Any:
        """A real (non-placeholder) sample value of ``key``, else None."""
        v = self.result_sample(fmt, variant).get(key)
        return None if is_placeholder(v) else copy.deepcopy(v)

    def shape_result(self, fmt: str, variant: str, computed: Mapping[str, Any], drop: tuple[str, ...] = ()) -> dict:
        """The result object: the variant sample's keys in its order, each the computed value
        (nested dicts ordered and completed by the sample) or the sample's real value; keys of
        :data:`ALWAYS` appended when computed but absent from the sample; ``drop`` removed."""
        sample = self.result_sample(fmt, variant)
        entry = self.model_usage_entry(fmt)
        out = _apply(computed, sample, entry)
        for k in ALWAYS:
            if k in computed and k not in out and computed[k] is not _MISSING:
                out[k] = computed[k]
        for k in drop:
            out.pop(k, None)
        return out


_FALLBACK = {"error_during_execution": "error_max_turns", "error_max_structured_output_retries": "error_max_turns",
             "error_max_budget_usd": "error_max_turns", "structured": "success", "api_error": "success",
             "local_command": "success"}
_MISSING: Any = object()


def _apply(computed: Mapping[str, Any], sample: Mapping[str, Any], entry: Mapping[str, Any]) -> dict:
    out: dict[str, Any] = {}
    for k, sv in sample.items():
        if k in computed:
            v = computed[k]
            if v is _MISSING:
                continue
            if k in MODEL_MAPS and isinstance(v, Mapping):
                out[k] = {m: (_apply(e, entry, {}) if entry and isinstance(e, Mapping) else dict(e)) for m, e in v.items()}
            elif isinstance(v, Mapping) and isinstance(sv, Mapping) and sv and k not in ("structured_output",):
                out[k] = _apply(v, sv, entry)
            else:
                out[k] = v
        elif k in MEASURED or is_placeholder(sv) or (k in MODEL_MAPS):
            continue
        else:
            out[k] = copy.deepcopy(sv)
    return out


def _from_dict(d: Mapping[str, Any]) -> Shapes:
    return Shapes(version=str(d.get("version", "")), rules=dict(d.get("rules") or {}),
                  lines=dict(d.get("lines") or {}), results=dict(d.get("results") or {}))


@cache
def load(version: str | None = None) -> Shapes:
    """Shapes of the packaged version nearest to ``version`` (``None``: 2.1.197, the reference)."""
    _v, text = versioned.read("shapes", version or DEFAULT_VERSION)
    return _from_dict(json.loads(text))


MISSING = _MISSING
