"""Per-model token prices (data in ``data/pricing.json``) and the cost formula of `claude -p`.

The prices were derived from captured `claude -p` results (costUSD per model key) and
reproduce them bit for bit, including the floating-point rounding, when requests are
costed one at a time with :func:`request_cost` and summed in request order starting
from 0 (which is what the CLI does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

ONE_MILLION_SUFFIX = "[1m]"
ONE_MILLION_CONTEXT = 1_000_000


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

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelPrice":
        return cls(
            input=d["input"],
            output=d["output"],
            cache_read=d["cache_read"],
            cache_write=d["cache_write"],
            web_search_request=d.get("web_search_request", 0.01),
            context_window=int(d.get("context_window", 200_000)),
            max_output_tokens=int(d.get("max_output_tokens", 32_000)),
        )


@dataclass(frozen=True)
class PriceTable:
    source: str
    date: str
    models: dict[str, ModelPrice]
    default: ModelPrice

    def lookup(self, model: str | None) -> ModelPrice:
        """Price entry for a model id or model key (``[1m]`` suffix ignored).

        Exact id first, then the longest entry that is a prefix of the id
        (``claude-haiku-4-5-20251001`` -> ``claude-haiku-4-5``), else ``default``.
        """
        base = strip_1m(model or "")
        if base in self.models:
            return self.models[base]
        best = None
        for name in self.models:
            if base.startswith(name) and (best is None or len(name) > len(best)):
                best = name
        return self.models[best] if best is not None else self.default

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
    return PriceTable(
        source=str(data.get("source", "")),
        date=str(data.get("date", "")),
        models={k: ModelPrice.from_dict(v) for k, v in data.get("models", {}).items()},
        default=ModelPrice.from_dict(data["default"]),
    )


@lru_cache(maxsize=1)
def load_table() -> PriceTable:
    """The packaged table (``claude_bridge_tmux/data/pricing.json``)."""
    text = resources.files("claude_bridge_tmux").joinpath("data/pricing.json").read_text("utf-8")
    return table_from_dict(json.loads(text))


def request_cost(
    price: ModelPrice,
    *,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_read_input_tokens: int = 0,
    cache_creation_input_tokens: int = 0,
    web_search_requests: int = 0,
) -> float:
    """Cost of one API request, evaluated in the CLI's term order (matters for rounding)."""
    cost = (
        input_tokens / 1e6 * price.input
        + output_tokens / 1e6 * price.output
        + cache_read_input_tokens / 1e6 * price.cache_read
        + cache_creation_input_tokens / 1e6 * price.cache_write
    )
    if web_search_requests:
        cost += web_search_requests * price.web_search_request
    return cost


def usage_cost(price: ModelPrice, usage: Mapping[str, Any]) -> float:
    """:func:`request_cost` for an API ``usage`` object (snake_case keys)."""
    stu = usage.get("server_tool_use") or {}
    return request_cost(
        price,
        input_tokens=_int(usage.get("input_tokens")),
        output_tokens=_int(usage.get("output_tokens")),
        cache_read_input_tokens=_int(usage.get("cache_read_input_tokens")),
        cache_creation_input_tokens=_int(usage.get("cache_creation_input_tokens")),
        web_search_requests=_int(stu.get("web_search_requests") if isinstance(stu, Mapping) else 0),
    )


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0
