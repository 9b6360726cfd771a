"""Learn the real ``system/init`` inventory from the installed CLI, without a model call.

Only print mode reports the init inventory (``tools``, ``mcp_servers``, ``slash_commands``, ``agents``,
``skills``, ``plugins``, ``output_style``, ``apiKeySource``, ``permissionMode``, ``memory_paths``…;
docs/cli-behaviour.md §2).  ``claude -p /cost`` is a local slash command: the CLI prints its
``system/init`` line and answers without contacting the model (verified on 2.1.197 and 2.1.329: the
mock saw no request).  The bridge runs that with the same options, environment and cwd as the pane
(plus ``--no-session-persistence``, so no transcript is written), in a background thread while the
interactive CLI boots, and caches the init line per (binary, version, options, cwd, environment,
settings files' mtimes) for ``CACHE_TTL`` seconds in the state directory.

Per-run fields (``session_id``, ``uuid``, ``model`` when the SessionStart hook names it) are replaced
by the caller.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import orjson

from claude_bridge_tmux.host.paths import state_dir, write_private

CACHE_TTL = 600.0
PROBE_TIMEOUT = 30.0
PROBE_PROMPT = "/cost"
# Environment that can change what the CLI reports in init.
_KEY_ENV = ("HOME", "CLAUDE_CONFIG_DIR", "ANTHROPIC_MODEL", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN",
            "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX", "IS_SANDBOX", "ANTHROPIC_BASE_URL",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "DISABLE_TELEMETRY")


def _settings_mtimes(env: dict[str, str], cwd: str) -> list[tuple[str, int | None]]:
    home = Path(env.get("HOME") or "~").expanduser()
    cfg = Path(env["CLAUDE_CONFIG_DIR"]) if env.get("CLAUDE_CONFIG_DIR") else home / ".claude"
    paths = [cfg / "settings.json", cfg / "settings.local.json", cfg / "agents", cfg / "skills",
             cfg / "commands", cfg / "plugins", Path(cwd) / ".claude", Path(cwd) / ".mcp.json",
             Path(cwd) / "CLAUDE.md"]
    out: list[tuple[str, int | None]] = []          # (path, st_mtime_ns; None: absent)
    for p in paths:
        try:
            out.append((str(p), p.stat().st_mtime_ns))
        except OSError:
            out.append((str(p), None))
    return out


def cache_key(claude_bin: str, version: str, args: list[str], env: dict[str, str], cwd: str) -> str:
    """Hex digest of everything that decides the init inventory (secrets are hashed, never stored)."""
    try:
        st = os.stat(claude_bin)
        bin_id: tuple[str, int | None, int | None] = (claude_bin, st.st_size, st.st_mtime_ns)
    except OSError:
        bin_id = (claude_bin, None, None)
    material = {
        "bin": bin_id, "version": version, "args": args, "cwd": cwd,
        "env": {k: env.get(k) for k in _KEY_ENV},
        "mtimes": _settings_mtimes(env, cwd),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


# probes still running: a bridge that ends early (an error, a signal, exit_now) kills them on its way out
_RUNNING: set[subprocess.Popen[bytes]] = set()
_RUNNING_LOCK = threading.Lock()


def kill_running_probes() -> None:
    """Kill every probe process still running and reap it (an ``atexit`` handler: no probe outlives
    the bridge). Never raises."""
    with _RUNNING_LOCK:
        procs = list(_RUNNING)
    for p in procs:
        with contextlib.suppress(OSError):
            p.kill()
        with contextlib.suppress(Exception):
            p.wait(timeout=2)


atexit.register(kill_running_probes)


def run_probe(claude_bin: str, args: list[str], env: dict[str, str], cwd: str,
              fmt: str = "stream-json") -> dict | None:
    """Run ``claude ARGS -p /cost --output-format FMT --verbose --no-session-persistence`` (FMT
    ``stream-json``, or ``json``: the init of ``json --verbose``'s array, whose capabilities differ);
    return its ``system/init`` object, or None when the CLI printed none."""
    argv = [claude_bin, *args, "-p", PROBE_PROMPT, "--output-format", fmt, "--verbose",
            "--no-session-persistence"]
    try:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
    except OSError:
        return None
    with _RUNNING_LOCK:
        _RUNNING.add(proc)
    try:
        stdout, _ = proc.communicate(timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(proc)
    for line in stdout.splitlines():
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        for o in (obj if isinstance(obj, list) else [obj]):
            if isinstance(o, dict) and o.get("type") == "system" and o.get("subtype") == "init":
                return o
    return None


class InitProbe:
    """Starts learning the init line in the background; ``result(timeout)`` waits for it (or None)."""

    def __init__(self, claude_bin: str, version: str, args: list[str], env: dict[str, str], cwd: str,
                 fmt: str = "stream-json"):
        self._result: dict | None = None
        self._done = threading.Event()
        self._fmt = fmt
        self._key = cache_key(claude_bin, version, [*args, f"<{fmt}>"], env, cwd)
        cached = self._load()
        if cached is not None:
            self._result = cached
            self._done.set()
            return
        self._thread = threading.Thread(target=self._run, args=(claude_bin, args, env, cwd), daemon=True)
        self._thread.start()

    def _cache_path(self) -> Path:
        return state_dir() / "init-cache" / f"{self._key}.json"

    def _load(self) -> dict | None:
        try:
            p = self._cache_path()
            if time.time() - p.stat().st_mtime > CACHE_TTL:
                return None
            data = orjson.loads(p.read_bytes())
            return data if isinstance(data, dict) else None
        except (OSError, orjson.JSONDecodeError):
            return None

    def _run(self, claude_bin: str, args: list[str], env: dict[str, str], cwd: str) -> None:
        try:
            self._result = run_probe(claude_bin, args, env, cwd, self._fmt)
            if self._result is not None:
                p = self._cache_path()
                p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                tmp = p.with_suffix(f".{os.getpid()}.tmp")
                try:
                    write_private(tmp, orjson.dumps(self._result))
                    os.replace(tmp, p)
                except OSError:
                    pass
        finally:
            self._done.set()

    def result(self, timeout: float) -> dict | None:
        """The probed init object (a fresh dict), waiting at most ``timeout`` seconds; None if unknown."""
        self._done.wait(timeout)
        return dict(self._result) if self._result is not None else None
