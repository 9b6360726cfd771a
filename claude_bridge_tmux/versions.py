"""Pick the packaged data file for a CLI version: ``data/<stem>-<version>.json``.

Rule (the same as the option tables'): the exact version when packaged, else the newest packaged
version not newer than it, else (an older CLI) the oldest packaged one; ``None`` or an unparseable
version gives the newest.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

_V = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def parse(version: str | None) -> tuple[int, int, int] | None:
    m = _V.search(version or "")
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


@lru_cache(maxsize=None)
def packaged(stem: str) -> tuple[str, ...]:
    """Versions of ``data/<stem>-X.Y.Z.json`` in the package, oldest first."""
    found = []
    for f in resources.files("claude_bridge_tmux").joinpath("data").iterdir():
        m = re.fullmatch(re.escape(stem) + r"-(\d+\.\d+\.\d+)\.json", f.name)
        if m:
            found.append(m.group(1))
    return tuple(sorted(found, key=parse))


def nearest(version: str | None, available: tuple[str, ...] | list[str]) -> str | None:
    """The version of ``available`` to use for ``version`` (see module docstring)."""
    avail = sorted(available, key=parse)
    if not avail:
        return None
    want = parse(version)
    if want is None:
        return avail[-1]
    older = [v for v in avail if parse(v) <= want]
    return older[-1] if older else avail[0]


def read(stem: str, version: str | None) -> tuple[str, str]:
    """(chosen version, text) of the packaged ``<stem>-<version>.json`` nearest to ``version``."""
    v = nearest(version, packaged(stem))
    if v is None:
        raise FileNotFoundError(f"no packaged data/{stem}-*.json")
    return v, resources.files("claude_bridge_tmux").joinpath("data", f"{stem}-{v}.json").read_text("utf-8")
