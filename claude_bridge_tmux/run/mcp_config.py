"""Rewriting the ``--mcp-config`` values of a run: the Agent SDK's in-process servers (run/relay.py)
and the tap in front of the caller's stdio servers (run/mcp_tap.py).

A value is what claude accepts (2.1.197-2.1.332): a JSON object text or the path of a JSON file
(relative to the run's cwd), ``{"mcpServers": {NAME: SPEC}}``. A value that is neither is left as it
is, for claude to report in its own words.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from claude_bridge_tmux.host.paths import write_private
from claude_bridge_tmux.run import mcp_tap

#: ``(name, spec) -> new spec`` or None to keep the server as it is
Replace = Callable[[str, dict], "dict | None"]


def load(value: str, cwd: str) -> dict | None:
    """The config object of one ``--mcp-config`` value, or None when it is not a JSON object
    (inline or in a readable file)."""
    text = value.strip()
    try:
        if not text.startswith("{"):
            path = value if os.path.isabs(value) else os.path.join(cwd, value)
            with open(path, encoding="utf-8") as f:
                text = f.read()
        config = json.loads(text)
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def rewrite(value: str, cwd: str, replace: Replace) -> tuple[dict | None, list[str]]:
    """The config of ``value`` with each server ``replace`` returns a spec for replaced by it, and the
    names of those servers; ``(None, [])`` when nothing was replaced."""
    config = load(value, cwd)
    servers = config.get("mcpServers") if config is not None else None
    if not isinstance(servers, dict):
        return None, []
    names = []
    for name, spec in list(servers.items()):
        new = replace(name, spec) if isinstance(spec, dict) else None
        if new is not None:
            servers[name] = new
            names.append(name)
    return (config if names else None), names


def rewrite_args(claude_args: list[str], cwd: str, replace: Replace,
                 store: Callable[[dict], str] = json.dumps) -> list[str]:
    """Rewrite every ``--mcp-config`` value of ``claude_args`` in place (``--mcp-config V...`` and
    ``--mcp-config=V``); ``store(config)`` gives the new value (default: the JSON text). Returns the
    names of the replaced servers."""
    names: list[str] = []
    i = 0
    while i < len(claude_args):
        arg = claude_args[i]
        if arg == "--mcp-config":
            j = i + 1
            while j < len(claude_args) and not claude_args[j].startswith("-"):   # variadic, as claude parses it
                config, found = rewrite(claude_args[j], cwd, replace)
                if config is not None:
                    claude_args[j] = store(config)
                    names += found
                j += 1
            i = j
            continue
        if arg.startswith("--mcp-config="):
            config, found = rewrite(arg.split("=", 1)[1], cwd, replace)
            if config is not None:
                claude_args[i] = "--mcp-config=" + store(config)
                names += found
        i += 1
    return names


_OWN_DIR = os.path.dirname(os.path.abspath(mcp_tap.__file__))


def is_stdio(spec: Mapping) -> bool:
    """A server claude starts as a child process (``type`` absent or ``stdio``, a ``command``)."""
    return spec.get("type", "stdio") == "stdio" and isinstance(spec.get("command"), str)


def is_own(spec: Mapping) -> bool:
    """One of the bridge's own servers (the SDK relay's, the StructuredOutput tool's): they say
    themselves when claude has listed their tools."""
    args = spec.get("args")
    return (spec.get("command") == sys.executable and isinstance(args, list)
            and any(isinstance(a, str) and a.startswith(_OWN_DIR + os.sep) for a in args))


def tap_stdio_servers(claude_args: list[str], cwd: str, run_dir: Path) -> list[Path]:
    """Put :mod:`mcp_tap` in front of every stdio server of the ``--mcp-config`` values of
    ``claude_args`` (in place). The rewritten configs are written to 0600 files in ``run_dir`` and
    passed by path, so nothing of the caller's config (a server's ``env`` may hold a token) reaches
    claude's argv that the caller did not put there. Returns the ready files, one per server."""
    ready: list[Path] = []

    def tapped(name: str, spec: dict) -> dict | None:
        if not is_stdio(spec) or is_own(spec):
            return None
        flag = run_dir / f"mcp-ready-{hashlib.sha256(name.encode()).hexdigest()[:16]}-{len(ready)}"
        ready.append(flag)
        args = spec.get("args")
        args = args if isinstance(args, list) else []
        return {**spec, "command": sys.executable,
                "args": ["-I", "-S", mcp_tap.__file__, str(flag), spec["command"], *args]}

    def store(config: dict) -> str:
        path = run_dir / f"mcp-config-{len(ready)}.json"
        write_private(path, json.dumps(config).encode())
        return str(path)

    rewrite_args(claude_args, cwd, tapped, store)
    return ready
