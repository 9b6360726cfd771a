"""Pane keys: everything that decides how claude must be started, and the job's own environment.

Two jobs may share a pane only when their keys are equal: same CLI binary and version, cwd, the
forwarded options (model, permission mode, system-prompt flags, tool lists, MCP config, added dirs, …),
the caller's settings, the permission hook, and the values of the environment variables **claude
itself reads** (``HOME``, ``PATH``, ``CLAUDE_CONFIG_DIR``, ``ANTHROPIC_*``, proxies, …). A variable
claude never reads (``TASK_ID=17``, a CI build number) does not split the pool: it reaches the job's
tools through a per-job environment script instead (:func:`job_env_script`, sourced by claude before
every Bash command via ``CLAUDE_ENV_FILE``).

The variables claude reads are listed per CLI version in ``data/env-<version>.json``, found in the
CLI's own code by ``scripts/gen-env-names`` (docs/pool.md, "Keys"). A version without a list uses the
union of the bundled lists. Prefix rules (:data:`KEY_PREFIXES`) add families claude reads by pattern.

**Strict keys**: when something the pane starts once runs with claude's environment rather than the
job's (stdio MCP servers from ``--mcp-config``, hook commands in the caller's settings) or the caller
sets ``CLAUDE_ENV_FILE`` itself, the whole environment is in the key, as before.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources

# Variables that describe the calling shell or test runner (or the bridge), not claude's behaviour.
VOLATILE_ENV = {"_", "PWD", "OLDPWD", "SHLVL", "PS1", "PS2", "COLUMNS", "LINES", "TERM", "COLORTERM",
                "SSH_CLIENT", "SSH_CONNECTION", "SSH_TTY", "WINDOWID", "CLAUDE_BRIDGE_TIMEOUT",
                "CLAUDE_BRIDGE_DEBUG", "CLAUDE_BRIDGE_POOL", "CLAUDE_BRIDGE_SUBMIT", "PYTEST_CURRENT_TEST",
                "PYTEST_XDIST_WORKER"}

# Families claude reads by prefix or through libraries (always in the key).
KEY_PREFIXES = ("ANTHROPIC_", "CLAUDE", "AWS_", "GOOGLE_", "GCLOUD_", "CLOUDSDK_", "CLOUD_ML_", "VERTEX_",
                "AZURE_", "OTEL_", "MCP_", "DISABLE_", "ENABLE_", "NODE_", "BUN_", "LC_", "XDG_", "SSL_",
                "GIT_", "BASH_", "USE_")
KEY_NAMES = {"HOME", "PATH", "SHELL", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "CI",
             "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy",
             "all_proxy", "CLAUDE_ENV_FILE"}

_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@cache
def claude_env_names(version: str) -> frozenset[str]:
    """The variables CLI ``version`` reads (bundled list), or the union of every bundled list."""
    data = resources.files("claude_bridge_tmux").joinpath("data")
    exact = data.joinpath(f"env-{version}.json")
    files = [exact] if exact.is_file() else [f for f in data.iterdir() if f.name.startswith("env-")]
    names: set[str] = set()
    for f in files:
        names.update(json.loads(f.read_text())["names"])
    return frozenset(names)


def claude_reads(name: str, version: str) -> bool:
    """True when claude ``version`` may read variable ``name`` (its list, a prefix rule or a fixed name)."""
    return name in KEY_NAMES or name.startswith(KEY_PREFIXES) or name in claude_env_names(version)


def key_env(env: Mapping[str, str], version: str, *, strict: bool) -> dict[str, str]:
    """The part of ``env`` that goes into a pane key: what claude reads, or (``strict``) all of it."""
    return {k: v for k, v in env.items()
            if k not in VOLATILE_ENV and (strict or claude_reads(k, version))}


def needs_strict_env(env: Mapping[str, str], claude_args: Iterable[str], settings: Mapping) -> bool:
    """True when processes started once per pane see claude's environment: stdio MCP servers
    (``--mcp-config``), hook commands in the caller's settings; or the caller set ``CLAUDE_ENV_FILE``."""
    if "CLAUDE_ENV_FILE" in env:
        return True
    if any(a == "--mcp-config" or a.startswith("--mcp-config=") for a in claude_args):
        return True
    return bool(settings.get("hooks")) if isinstance(settings, Mapping) else False


def key_material(claude_bin: str, version: str, cwd: str, env: dict[str, str], claude_args: list[str],
                 settings: dict, deny: bool, gated: bool = False) -> dict:
    """The JSON-able facts a key is made of (see the module docstring). ``gated``: the pane carries
    the tool gate hook (jobs with --max-turns / --max-budget-usd, whatever their limits)."""
    strict = needs_strict_env(env, claude_args, settings)
    material = {
        "bin": claude_bin, "version": version, "cwd": cwd, "strict_env": strict,
        "env": sorted(key_env(env, version, strict=strict).items()),
        "args": list(claude_args), "settings": settings, "deny": deny,
    }
    if gated:
        material["gated"] = True      # (absent otherwise: the keys of ungated panes stay as they were)
    return material


def job_env_script(pane_env: Mapping[str, str], job_env: Mapping[str, str]) -> str:
    """POSIX sh lines that turn the pane's environment into the job's for claude's Bash commands.

    ``export NAME='value'`` for each variable the job has with another value (or the pane lacks) and
    ``unset NAME`` for each the pane has and the job does not; names a shell cannot hold and the
    volatile ones are skipped. Values are quoted with :func:`shlex.quote` (no value is ever evaluated).
    """
    lines = []
    for name in sorted(job_env):
        if name in VOLATILE_ENV or not _SHELL_NAME.match(name) or "\0" in job_env[name]:
            continue
        if pane_env.get(name) != job_env[name]:
            lines.append(f"export {name}={shlex.quote(job_env[name])}")
    for name in sorted(pane_env):
        if name not in job_env and name not in VOLATILE_ENV and _SHELL_NAME.match(name) \
                and name != "CLAUDE_ENV_FILE":
            lines.append(f"unset {name}")
    return "".join(line + "\n" for line in lines)


def route_key(version: str, cwd: str, carried_env: Mapping[str, str], claude_args: list[str], settings: dict,
              deny: bool, gated: bool = False) -> str:
    """The host-independent part of a key, for routing a queued job to a worker (pool/redisq.py): the
    same as :func:`key_material` but without the binary and with only the variables a job carries
    between hosts (``carried_env``: no credential, nothing host-specific). Two workers compute the
    same route for the same job; each pane advertises the route of the call that started it."""
    strict = needs_strict_env(carried_env, claude_args, settings)
    material = {"version": version, "cwd": cwd, "strict_env": strict,
                "env": sorted(key_env(carried_env, version, strict=strict).items()),
                "args": list(claude_args), "settings": settings, "deny": deny}
    if gated:
        material["gated"] = True
    return pane_key(material)


def pane_key(material: dict) -> str:
    """Stable short id (16 hex chars) for key material."""
    blob = json.dumps(material, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def describe(material: dict) -> str:
    """A short human label for ``pool status``: cwd, version and the options."""
    args = " ".join(material.get("args") or []) or "(no options)"
    gated = " (tool gate)" if material.get("gated") else ""
    return f"{material.get('version')} {material.get('cwd')} {args}{gated}"
