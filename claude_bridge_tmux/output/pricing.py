"""Per-model token prices (``data/pricing-<version>.json``) and the cost formula of `claude -p`.

One table per CLI version, chosen like the other versioned data (:mod:`versioned`):

* ``pricing-2.1.197.json`` was derived from captured 2.1.197 `-p` results (that CLI has its prices
  as code constants);
* ``pricing-2.1.329.json`` is the model catalog baked into 2.1.329 (``scripts/extract-pricing``),
  cross-checked against 2.1.329 `-p` results on the mock.

Costs reproduce the CLI's bit for bit, including floating-point rounding, when requests are costed
one at a time with :func:`usage_cost` and summed in request order starting from 0 (which is what
the CLI does).  Per request::

    (input/1e6*in + output/1e6*out + cache_read/1e6*cr + cache_write) * geo + web_searches*ws

where ``cache_write`` prices the 1-hour share of ``cache_creation_input_tokens``
(``usage.cache_creation.ephemeral_1h_input_tokens``) at the 1-hour rate when the entry has one,
the rest at the 5-minute rate; ``geo`` is the table's ``us_geo_multiplier`` when
``usage.inference_geo == "us"`` (1 otherwise, and always 1 for 2.1.197); a ``long_prompt`` entry's
prices replace the base prices when input + cache read + cache creation tokens exceed its
``above_prompt_tokens``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from claude_bridge_tmux import versions as versioned

ONE_MILLION_SUFFIX = "[1m]"
ONE_MILLION_CONTEXT = 1_000_000
DEFAULT_VERSION = "2.1.197"


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens (``web_search_request``: USD per request)."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    web_search_request: float = 0.01
    context_window: int = 200_000
    max_output_tokens: int = 32_000
    cache_write_1h: float | None = None
    long_prompt: ModelPrice | None = None
    above_prompt_tokens: int | None = None
    first_party: str | None = None
    cost_basis: str = "list"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelPrice:
        lp = d.get("long_prompt")
        return cls(
            input=d["input"],
            output=d["output"],
            cache_read=d["cache_read"],
            cache_write=d["cache_write"],
            web_search_request=d.get("web_search_request", 0.01),
            context_window=int(d.get("context_window", 200_000)),
            max_output_tokens=int(d.get("max_output_tokens", 32_000)),
            cache_write_1h=d.get("cache_write_1h"),
            long_prompt=cls.from_dict(lp) if isinstance(lp, Mapping) else None,
            above_prompt_tokens=int(lp["above_prompt_tokens"]) if isinstance(lp, Mapping) else None,
            first_party=d.get("first_party"),
            cost_basis=str(d.get("cost_basis", "list")),
        )


@dataclass(frozen=True)
class PriceTable:
    source: str
    date: str
    models: dict[str, ModelPrice]
    default: ModelPrice
    version: str = ""
    us_geo_multiplier: float = 1.0
    _by_first_party: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def _entry(self, model: str | None) -> str | None:
        base = strip_1m(model or "")
        if base in self.models:
            return base
        if base in self._by_first_party:
            return self._by_first_party[base]
        best = None
        for name in self.models:
            if base.startswith(name) and (best is None or len(name) > len(best)):
                best = name
        return best

    def lookup(self, model: str | None) -> ModelPrice:
        """Price entry for a model id or model key (``[1m]`` suffix ignored).

        Exact id first, then a first-party id (``claude-haiku-4-5-20251001``), then the longest
        entry that is a prefix of the id, else ``default``.
        """
        name = self._entry(model)
        return self.models[name] if name is not None else self.default

    def known(self, model: str | None) -> bool:
        return self._entry(model) is not None

    def canonical(self, model: str | None) -> str:
        """``canonicalModel`` of 2.1.329's modelUsage: the catalog id, else the id itself (no ``[1m]``)."""
        return self._entry(model) or strip_1m(model or "")

    def cost_basis(self, model: str | None) -> str:
        """``costBasis``: ``"list"`` for catalog models, the default entry's (``"unknown"``) otherwise."""
        return "list" if self.known(model) else self.default.cost_basis

    def context_window(self, model_key: str | None) -> int:
        if model_key and model_key.endswith(ONE_MILLION_SUFFIX):
            return ONE_MILLION_CONTEXT
        return self.lookup(model_key).context_window

    def max_output_tokens(self, model_key: str | None) -> int:
        return self.lookup(model_key).max_output_tokens


def strip_1m(model: str) -> str:
    if model.endswith(ONE_MILLION_SUFFIX):
        return model[: -len(ONE_MILLION_SUFFIX)]
    return model


def table_from_dict(data: Mapping[str, Any]) -> PriceTable:
    models = {k: ModelPrice.from_dict(v) for k, v in data.get("models", {}).items()}
    return PriceTable(
        source=str(data.get("source", "")),
        date=str(data.get("date", "")),
        models=models,
        default=ModelPrice.from_dict(data["default"]),
        version=str(data.get("version", "")),
        us_geo_multiplier=float(data.get("us_geo_multiplier", 1.0)),
        _by_first_party={m.first_party: k for k, m in models.items() if m.first_party},
    )


@cache
def load_table(version: str | None = None) -> PriceTable:
    """The packaged table for a CLI version (nearest packaged one; ``None``: 2.1.197's)."""
    _v, text = versioned.read("pricing", version or DEFAULT_VERSION)
    return table_from_dict(json.loads(text))


def request_cost(
    price: ModelPrice,
    *,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_read_input_tokens: int = 0,
    cache_creation_input_tokens: int = 0,
    web_search_requests: int = 0,
    cache_creation_1h_input_tokens: int = 0,
    geo_multiplier: float = 1.0,
) -> float:
    """Cost of one API request, evaluated in the CLI's term order (matters for rounding)."""
    p = price
    if p.long_prompt is not None and p.above_prompt_tokens is not None and \
            input_tokens + cache_read_input_tokens + cache_creation_input_tokens > p.above_prompt_tokens:
        p = p.long_prompt
    one_hour = min(max(cache_creation_1h_input_tokens, 0), cache_creation_input_tokens)
    if p.cache_write_1h is None or one_hour <= 0:
        write = cache_creation_input_tokens / 1e6 * p.cache_write
    else:
        write = one_hour / 1e6 * p.cache_write_1h + (cache_creation_input_tokens - one_hour) / 1e6 * p.cache_write
    cost = (
        input_tokens / 1e6 * p.input
        + output_tokens / 1e6 * p.output
        + cache_read_input_tokens / 1e6 * p.cache_read
        + write
    )
    if geo_multiplier != 1:
        cost *= geo_multiplier
    if web_search_requests:
        cost += web_search_requests * price.web_search_request
    return cost


def usage_cost(price: ModelPrice, usage: Mapping[str, Any], table: PriceTable | None = None) -> float:
    """:func:`request_cost` for an API ``usage`` object (snake_case keys)."""
    stu = usage.get("server_tool_use") or {}
    cc = usage.get("cache_creation") or {}
    geo = table.us_geo_multiplier if table is not None and usage.get("inference_geo") == "us" else 1.0
    return request_cost(
        price,
        input_tokens=_int(usage.get("input_tokens")),
        output_tokens=_int(usage.get("output_tokens")),
        cache_read_input_tokens=_int(usage.get("cache_read_input_tokens")),
        cache_creation_input_tokens=_int(usage.get("cache_creation_input_tokens")),
        web_search_requests=_int(stu.get("web_search_requests") if isinstance(stu, Mapping) else 0),
        cache_creation_1h_input_tokens=_int(cc.get("ephemeral_1h_input_tokens") if isinstance(cc, Mapping) else 0),
        geo_multiplier=geo,
    )


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0
