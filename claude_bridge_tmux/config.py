"""Every ``CLAUDE_BRIDGE_*`` environment variable, read and checked in one place.

``BridgeConfig.from_env(env)`` gives typed values; a malformed value raises ``ConfigError`` (a
one-line message naming the variable, exit code 2) instead of failing deep inside a run.

| variable | field | meaning |
|---|---|---|
| ``CLAUDE_BRIDGE_CLAUDE_BIN`` | ``claude_bin`` | the claude binary to drive (default: ``claude`` on PATH, not the shim) |
| ``CLAUDE_BRIDGE_TIMEOUT`` | ``timeout_s`` | overall timeout of one run, seconds > 0 (default 3600) |
| ``CLAUDE_BRIDGE_DEBUG`` | ``debug`` | the run's timeline on stderr |
| ``CLAUDE_BRIDGE_RUNTIME_DIR`` | ``runtime_dir`` | private runtime directory (sockets, spools) |
| ``CLAUDE_BRIDGE_STATE_DIR`` | ``state_dir`` | state directory (run logs) |
| ``CLAUDE_BRIDGE_KEEP_LOGS`` | ``keep_logs`` | per-run logs kept (default 50; 0 = none) |
| ``CLAUDE_BRIDGE_SUBMIT`` | ``submit`` | ``paste`` or ``launch``: force how the first prompt is submitted |
| ``CLAUDE_BRIDGE_NO_PROGRESS`` | ``no_progress`` | no status line on a terminal's stderr |
| ``CLAUDE_BRIDGE_NO_INIT_PROBE`` | ``no_init_probe`` | build ``system/init`` without asking ``claude -p`` |
| ``CLAUDE_BRIDGE_TMUX`` | ``tmux`` | the tmux binary |
| ``CLAUDE_BRIDGE_POOL`` | ``pool`` | ``auto`` (default), ``off`` (``0``, ``no``), ``require`` (``on``, ``1``), ``start`` |
| ``CLAUDE_BRIDGE_TRACE`` | ``trace`` | append the turn engine's inputs to this file (``scripts/record-traces``) |
| ``CLAUDE_BRIDGE_VIA_SHIM`` | ``via_shim`` | set by the ``claude`` shim for the bridge it runs |
| ``CLAUDE_BRIDGE_BIN`` | ``bridge_bin`` | for the shim: the ``claude-bridge`` to run |
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from claude_bridge_tmux.errors import UsageError

DEFAULT_TIMEOUT_S = 3600.0
DEFAULT_KEEP_LOGS = 50
POOL_IDLE_TIMEOUT_S = 60.0   # idle pool panes beyond the warm size retire after this (pool start --idle-timeout)
PoolMode = Literal["auto", "off", "require", "start"]
_POOL_WORDS: dict[str, PoolMode] = {
    "auto": "auto", "": "auto", "off": "off", "0": "off", "no": "off", "false": "off", "never": "off",
    "require": "require", "required": "require", "on": "require", "1": "require", "yes": "require",
    "true": "require", "start": "start"}


class ConfigError(UsageError):
    """A ``CLAUDE_BRIDGE_*`` variable has a value the bridge cannot use (exit code 2)."""

    def __init__(self, message: str):
        super().__init__(f"claude-bridge: {message}", 2)


def _number(env: Mapping[str, str], name: str, kind: Callable[[str], Any], default: Any,
            valid: Callable[[Any], bool], what: str) -> Any:
    """``env[name]`` as ``kind`` (``default`` when unset or empty); ConfigError unless ``valid``."""
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not valid(value):       # (NaN fails every comparison)
        raise ConfigError(f"{name} must be {what}, not {raw!r}")
    return value


def _flag(v: str | None) -> bool:
    return v is not None and bool(v) and v.strip().lower() not in ("0", "false", "no", "off")


@dataclass(frozen=True)
class BridgeConfig:
    """The bridge's settings from the environment (see the module docstring for each field)."""

    claude_bin: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    debug: bool = False
    runtime_dir: str | None = None
    state_dir: str | None = None
    keep_logs: int = DEFAULT_KEEP_LOGS
    submit: Literal["paste", "launch"] | None = None
    no_progress: bool = False
    no_init_probe: bool = False
    tmux: str | None = None
    pool: PoolMode = "auto"
    trace: str | None = None
    via_shim: bool = False
    bridge_bin: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BridgeConfig:
        """Read ``env``; raises ConfigError for a malformed value."""
        g = lambda k: (env.get(k) or None)  # noqa: E731 - empty means unset
        timeout_s = _number(env, "CLAUDE_BRIDGE_TIMEOUT", float, DEFAULT_TIMEOUT_S,
                            lambda v: 0 < v < float("inf"), "a number of seconds > 0")
        keep_logs = _number(env, "CLAUDE_BRIDGE_KEEP_LOGS", int, DEFAULT_KEEP_LOGS, lambda v: v >= 0,
                            "a whole number >= 0")
        submit = g("CLAUDE_BRIDGE_SUBMIT")
        if submit == "argv":      # the old name of "launch" (the prompt is no longer a launch argument)
            submit = "launch"
        if submit is not None and submit not in ("paste", "launch"):
            raise ConfigError(f"CLAUDE_BRIDGE_SUBMIT must be paste or launch, not {submit!r}")
        word = (g("CLAUDE_BRIDGE_POOL") or "auto").strip().lower()
        if word not in _POOL_WORDS:
            raise ConfigError(f"CLAUDE_BRIDGE_POOL must be auto, off, on (require) or start, not {word!r}")
        pool = _POOL_WORDS[word]
        return cls(claude_bin=g("CLAUDE_BRIDGE_CLAUDE_BIN"), timeout_s=timeout_s, debug=_flag(g("CLAUDE_BRIDGE_DEBUG")),
                   runtime_dir=g("CLAUDE_BRIDGE_RUNTIME_DIR"), state_dir=g("CLAUDE_BRIDGE_STATE_DIR"),
                   keep_logs=keep_logs, submit=submit,  # type: ignore[arg-type]
                   no_progress=_flag(g("CLAUDE_BRIDGE_NO_PROGRESS")),
                   no_init_probe=_flag(g("CLAUDE_BRIDGE_NO_INIT_PROBE")), tmux=g("CLAUDE_BRIDGE_TMUX"), pool=pool,
                   trace=g("CLAUDE_BRIDGE_TRACE"), via_shim=_flag(g("CLAUDE_BRIDGE_VIA_SHIM")),
                   bridge_bin=g("CLAUDE_BRIDGE_BIN"))
