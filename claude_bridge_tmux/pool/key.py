"""Pane keys: everything that decides how claude must be started.

Two jobs may share a pane only when their keys are equal: same CLI binary and version, cwd, the
exact environment claude gets (HOME / CLAUDE_CONFIG_DIR and every other variable, minus a few that
only describe the caller's shell), the forwarded options (model, permission mode, system-prompt
flags, tool lists, MCP config, added dirs, …), the caller's settings, and the permission hook.
"""

from __future__ import annotations

import hashlib
import json

# Variables that describe the calling shell or test runner, not claude's behaviour.
VOLATILE_ENV = {"_", "PWD", "OLDPWD", "SHLVL", "PS1", "PS2", "COLUMNS", "LINES", "TERM", "COLORTERM",
                "SSH_CLIENT", "SSH_CONNECTION", "SSH_TTY", "WINDOWID", "CLAUDE_BRIDGE_TIMEOUT",
                "CLAUDE_BRIDGE_DEBUG", "CLAUDE_BRIDGE_POOL", "CLAUDE_BRIDGE_SUBMIT", "PYTEST_CURRENT_TEST",
                "PYTEST_XDIST_WORKER"}


def key_material(claude_bin: str, version: str, cwd: str, env: dict[str, str], claude_args: list[str],
                 settings: dict, deny: bool) -> dict:
    """The JSON-able facts a key is made of."""
    return {
        "bin": claude_bin, "version": version, "cwd": cwd,
        "env": sorted((k, v) for k, v in env.items() if k not in VOLATILE_ENV),
        "args": list(claude_args), "settings": settings, "deny": deny,
    }


def pane_key(material: dict) -> str:
    """Stable short id (16 hex chars) for key material."""
    blob = json.dumps(material, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def describe(material: dict) -> str:
    """A short human label for ``pool status``: cwd, version and the options."""
    args = " ".join(material.get("args") or []) or "(no options)"
    return f"{material.get('version')} {material.get('cwd')} {args}"
