"""Registry of the bridge's live panes, for ``claude-bridge ps`` / ``attach`` / ``gc``.

Every ``ClaudeSession`` (cold run or pool pane) writes one small JSON record into its own run directory
(``<runtime dir>/pane-<owner pid>-<random>/session.json``, 0600) when its pane starts, updates its state
at turn boundaries, and loses it with the run directory on ``close()``.  Keeping the record inside the
run directory means a record never outlives the files it describes and there is no shared directory to
create or clean.

Record (all keys always present)::

    {"id": "cb-1a2b3c4d5e",            # the pane's tmux session name (unique, also the ps ID)
     "kind": "cold" | "pool",
     "pane_id": "%0", "socket": "<tmux socket>", "run_dir": "<run dir>",
     "cwd": "...", "session_id": "<claude session id>",
     "started": <epoch s>, "owner_pid": <pid>, "owner_start": <epoch s or null>,
     "state": "starting" | "busy" | "idle", "updated": <epoch s>}

``owner_start`` (the owner's process start time, Linux ``/proc``) guards against pid reuse: an owner
pid that is alive but started after the record was written is someone else.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

RECORD_NAME = "session.json"
# Run directories made by paths.new_run_dir: <kind>-<owner pid>-<random>
RUN_DIR_RE = re.compile(r"^(pane|run|pool)-(\d+)-[A-Za-z0-9_]+$")


# -- processes -----------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _boot_time() -> float | None:
    try:
        with open("/proc/stat", "rb") as f:
            for line in f:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def _proc_stat(pid: int) -> tuple[bytes, float | None] | None:
    """``(state letter, start time in epoch s)`` of ``pid`` from ``/proc`` (Linux), None without it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    fields = data[data.rfind(b")") + 2:].split()
    boot = _boot_time()
    try:
        start = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK") if boot is not None else None
    except (IndexError, ValueError, OSError):
        start = None
    return (fields[0] if fields else b"?"), start


def process_start(pid: int) -> float | None:
    """Start time of ``pid`` in epoch seconds (Linux), or None when unknown."""
    st = _proc_stat(pid)
    return st[1] if st else None


def owner_state(pid: int) -> tuple[bool, float | None]:
    """``(alive, start time)`` of ``pid``; a zombie is dead, the start time is None when unknown."""
    if pid <= 0:
        return False, None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False, None
    except PermissionError:
        pass
    st = _proc_stat(pid)
    if st is None:
        return True, None
    return st[0] != b"Z", st[1]


def pid_alive(pid: int) -> bool:
    return owner_state(pid)[0]


def owner_alive(pid: int, not_after: float | None, *, slack: float = 2.0,
                state: tuple[bool, float | None] | None = None) -> bool:
    """True when ``pid`` runs and (if ``not_after`` is given) started no later than ``not_after`` (+slack):
    a process that started after the thing it supposedly owns is a reused pid.  ``state`` is a cached
    ``owner_state(pid)``."""
    alive, start = state if state is not None else owner_state(pid)
    if not alive:
        return False
    return not_after is None or start is None or start <= not_after + slack


@lru_cache(maxsize=1)
def _own_start() -> float | None:
    return process_start(os.getpid())


# -- records ------------------------------------------------------------------------------------
def _write(path: Path, record: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(orjson.dumps(record))
    os.replace(tmp, path)


def register(session, *, state: str = "starting") -> None:
    """Write the record of a started ``ClaudeSession``. Never raises (the registry is best effort)."""
    with contextlib.suppress(Exception):
        pane = session.pane
        now = time.time()
        record = {
            "id": pane.name if pane is not None else session.run_dir.name,
            "kind": "cold" if session.own_server else "pool",
            "pane_id": pane.pane_id if pane is not None else None,
            "socket": str(session.server.socket_path),
            "run_dir": str(session.run_dir),
            "cwd": session.cwd,
            "session_id": session.info.session_id or session.session_id,
            "started": now,
            "owner_pid": os.getpid(),
            "owner_start": _own_start(),
            "state": state,
            "updated": now,
        }
        session.registry_record = record
        _write(Path(session.run_dir) / RECORD_NAME, record)


def set_state(session, state: str) -> None:
    """Update the state (and the session id, which ``/clear`` changes) of a registered session."""
    with contextlib.suppress(Exception):
        record = session.registry_record
        if record is None or session.closed:
            return
        record["state"] = state
        record["session_id"] = session.info.session_id or record["session_id"]
        record["updated"] = time.time()
        _write(Path(session.run_dir) / RECORD_NAME, record)


@dataclass
class Entry:
    """A record as found on disk, with the owner's liveness."""

    record: dict[str, Any]
    path: Path
    owner_alive: bool

    def __getitem__(self, key: str) -> Any:
        return self.record.get(key)


def read_record(path: Path) -> dict[str, Any] | None:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def entries(runtime: Path) -> list[Entry]:
    """Every record under ``runtime``, oldest first."""
    out: list[Entry] = []
    try:
        names = os.listdir(runtime)
    except OSError:
        return out
    for name in names:
        if not RUN_DIR_RE.match(name):
            continue
        path = runtime / name / RECORD_NAME
        rec = read_record(path)
        if rec is None:
            continue
        alive = owner_alive(int(rec.get("owner_pid") or 0), rec.get("started"))
        out.append(Entry(rec, path, alive))
    out.sort(key=lambda e: e.record.get("started") or 0)
    return out


def live_entries(runtime: Path) -> list[Entry]:
    return [e for e in entries(runtime) if e.owner_alive]


def find(runtime: Path, ident: str) -> Entry | None:
    """The live entry named by ``ident``: its id, pane id (``%N``), claude session id, or a unique prefix
    of the id / session id. None when nothing (or more than one) matches."""
    live = live_entries(runtime)
    for e in live:
        if ident in (e["id"], e["pane_id"], e["session_id"]):
            return e
    matches = [e for e in live if (e["id"] or "").startswith(ident) or (e["session_id"] or "").startswith(ident)]
    return matches[0] if len(matches) == 1 else None
