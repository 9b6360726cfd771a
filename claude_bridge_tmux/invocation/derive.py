"""Option tables for a claude version the bridge has no table for, derived from its own ``--help``.

A packaged table (``data/flags-<version>.json``, ``scripts/gen-flag-table``) is probed option by
option and reviewed. A claude that updated itself past the pinned versions gets, at its first use
on a machine, the table of the nearest packaged version below it with the options its ``--help``
lists and that table lacks added, parsed from commander's flags strings (``--name <value>``:
one value, ``[value]``: optional, ``<values...>``: variadic, none: a switch; ``(choices: "a",
"b")``). So argv is split exactly as that claude splits it, and every option known before keeps its
reviewed handling. An added option is refused with a one-line reason until the version is pinned
(``scripts/add-cli-version``), as the table generator does for any unreviewed option: whether
interactive claude honours it as ``-p`` does is not something ``--help`` tells (of the 7 options
2.1.332 added over 2.1.197, review forwards 3, emulates 1 and refuses 3). ``doctor`` names them.
Hidden options of the new version stay unknown (refused as claude refuses a typo).

The derived table is written once to the state directory (``derived/flags-<version>.json``, 0600)
and read from there afterwards; ``claude --help`` costs one claude start (about 0.3 s). It follows
the help format of commander as printed by 2.1.197-2.1.332 (``Options:``, ``Commands:`` sections,
two-space indent, description after two or more spaces).
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DERIVED_DIR = "derived"
HELP_TIMEOUT_S = 20.0


def split_flags(flags: str) -> dict:
    """Commander flags string (``"-d, --debug [filter]"``) → ``names``, ``longs``, ``shorts``, ``value``
    (the placeholder or None) and ``arity`` (none | one | optional | variadic)."""
    names, value = [], None
    for tok in re.split(r"[ ,|]+", flags.strip()):
        if tok.startswith("-"):
            names.append(tok)
        elif tok.startswith("<") or tok.startswith("["):
            value = tok
            break
    longs = [n for n in names if n.startswith("--")]
    shorts = [n for n in names if not n.startswith("--")]
    arity = "none"
    if value:
        arity = "optional" if value.startswith("[") else "one"
        if value.endswith("...>") or value.endswith("...]"):
            arity = "variadic"
    return {"names": names, "longs": longs, "shorts": shorts, "value": value, "arity": arity}


def key_of(flags: str) -> str:
    """The option's key: its first long name without dashes (``"--add-dir <d...>"`` → ``add-dir``)."""
    sf = split_flags(flags)
    return (sf["longs"][0] if sf["longs"] else sf["names"][0]).lstrip("-")


def parse_help(text: str) -> tuple[list[dict], list[str]]:
    """``claude --help`` → (options as ``{"flags", "help", "choices", "default", "preset"}``, command
    names). Wrapped description lines are joined."""
    options: list[dict] = []
    commands: list[str] = []
    section = None
    cur: dict | None = None
    for line in text.splitlines():
        if re.match(r"^\S.*:$", line):
            section = line[:-1]
            cur = None
            continue
        if section == "Options":
            m = re.match(r"^  (-\S.*?)(?:\s{2,}(.*))?$", line)
            if m and not line.startswith("   "):
                cur = {"flags": m.group(1).strip(), "desc": (m.group(2) or "").strip()}
                options.append(cur)
            elif cur is not None and line.strip():
                cur["desc"] = (cur["desc"] + " " + line.strip()).strip()
        elif section == "Commands":
            m = re.match(r"^  (\S+)", line)
            if m and not line.startswith("   "):
                commands.extend(m.group(1).split("|"))
    for o in options:
        d = o.pop("desc")
        m = re.search(r"\s*\(((?:choices|default|preset): .*)\)$", d)
        o["choices"] = o["default"] = o["preset"] = None
        if m:
            d = d[: m.start()]
            for part in re.findall(r'(choices|default|preset): ((?:"[^"]*"(?:, "[^"]*")*)|[^,]+)', m.group(1)):
                if part[0] == "choices":
                    o["choices"] = re.findall(r'"([^"]*)"', part[1])
                else:
                    o[part[0]] = part[1].strip()
        o["help"] = d.strip()
    return options, commands


def option_spec(o: Mapping[str, Any], note: str) -> dict:
    """A table entry (the ``data/flags-*.json`` option format) for one ``--help`` option, refused with ``note``."""
    sf = split_flags(str(o["flags"]))
    long_ = sf["longs"][0] if sf["longs"] else sf["names"][0]
    key = long_.lstrip("-")
    choices = list(o["choices"]) if o.get("choices") else None
    return {
        "key": key, "flags": o["flags"], "long": long_, "aliases": [n for n in sf["longs"] if n != long_],
        "suggest_as": sf["longs"][-1] if sf["longs"] else None,
        "short": sf["shorts"][0] if sf["shorts"] and len(sf["shorts"][0]) == 2 else None,
        "extra_shorts": [s for s in sf["shorts"] if len(s) != 2], "arity": sf["arity"],
        "value_name": sf["value"][1:-1].removesuffix("...") if sf["value"] else None,
        "choices": choices, "negates": key[3:] if key.startswith("no-") else None, "repeatable": False,
        "hidden": False, "handling": "refuse", "note": note,
        "validate": {"kind": "choices", "accept": choices} if choices else None, "help": o.get("help", ""),
    }


def derive_table(base: Mapping[str, Any], help_text: str, version: str) -> dict:
    """The option table (raw ``data/flags-*.json`` form) for ``version``: ``base`` (the nearest
    packaged table) plus every option of ``help_text`` (that version's ``--help``) whose key or
    names ``base`` lacks, refused until reviewed. ``derived_from``/``added`` record what was done. Pure."""
    options, commands = parse_help(help_text)
    known_keys = {o["key"] for o in base["options"]}
    known_names = {n for o in base["options"] for n in split_flags(o["flags"])["names"]}
    note = (f"new in claude {version} (not in the reviewed table of {base['version']}): refused until "
            f"claude-bridge pins {version}")
    added = []
    for o in options:
        sf = split_flags(o["flags"])
        if key_of(o["flags"]) in known_keys or any(n in known_names for n in sf["names"]):
            continue
        added.append(option_spec(o, note))
    raw = dict(base)
    raw.update(version=version, derived_from=base["version"], added=[o["key"] for o in added],
               generated_by=f"claude_bridge_tmux.invocation.derive from claude {version} --help over "
                            f"{base['version']}'s table",
               options=[*base["options"], *added],
               subcommands=sorted(set(base.get("subcommands") or ()) | {c for c in commands if c != "help"}))
    return raw


def derived_path(env: Mapping[str, str] | None, version: str) -> Path:
    """Where the derived table of ``version`` is kept (the state directory). Raises BridgeError."""
    from claude_bridge_tmux.host.paths import state_dir
    return state_dir(dict(env) if env is not None else None) / DERIVED_DIR / f"flags-{version}.json"


def load_derived(env: Mapping[str, str] | None, version: str) -> dict | None:
    """The derived table of ``version`` kept in the state directory, or None."""
    from claude_bridge_tmux.errors import BridgeError
    try:
        raw = json.loads(derived_path(env, version).read_bytes())
    except (OSError, ValueError, BridgeError):
        return None
    return raw if isinstance(raw, dict) and raw.get("version") == version and isinstance(raw.get("options"), list) \
        else None


def derive_for(binary: str, version: str, base: Mapping[str, Any], env: Mapping[str, str] | None,
               run_env: Mapping[str, str] | None = None) -> dict | None:
    """The derived table of ``version`` (kept, or made now from ``binary --help`` and written to the
    state directory). None when claude's help cannot be read (the caller keeps the nearest table)."""
    kept = load_derived(env, version)
    if kept is not None:
        return kept
    try:
        out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=HELP_TIMEOUT_S,
                             env=dict(run_env) if run_env is not None else None, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 or "Options:" not in out.stdout:
        return None
    raw = derive_table(base, out.stdout, version)
    from claude_bridge_tmux.errors import BridgeError
    from claude_bridge_tmux.host.paths import atomic_write
    with contextlib.suppress(OSError, BridgeError):
        path = derived_path(env, version)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(path, json.dumps(raw, indent=1).encode())     # ours to lose: never fails a run
    return raw


__all__ = ["derive_for", "derive_table", "derived_path", "key_of", "load_derived", "option_spec", "parse_help",
           "split_flags"]
