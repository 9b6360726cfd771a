"""Pre-seed the state interactive Claude needs so that no startup dialog blocks a run.

``claude -p`` shows no dialogs; the interactive CLI does (docs/cli-behaviour.md §4). This module
writes only what a run needs into the CLI's global config file (``~/.claude.json``, or
``$CLAUDE_CONFIG_DIR/.claude.json``):

* ``hasCompletedOnboarding`` / ``lastOnboardingVersion`` — skips the theme/security screens and the
  onboarding connectivity pre-flight (fatal offline).  Permanent: the same as a person clicking
  through onboarding once.
* ``customApiKeyResponses.approved`` += last 20 characters of ``ANTHROPIC_API_KEY`` — the caller
  passes that key to ``claude -p``, which uses it without asking.  Permanent.
* ``projects[cwd].hasTrustDialogAccepted`` — ``claude -p`` trusts its cwd for the run without
  persisting anything, so the bridge adds trust only for the exact cwd, only when neither it nor a
  parent is already trusted, and takes it back when the last bridge run using it ends (a lease
  file counts the runs).  Trust is never widened beyond the run.
* ``autoModeClassifierBillingNoticeAcknowledgedAt`` (epoch ms) — only for ``plan``/``auto`` runs of a
  CLI that shows the auto-mode classifier billing notice (2.1.329+, API-key auth through a gateway
  ``ANTHROPIC_BASE_URL``) when the user has not acknowledged it in the last 24 h. ``claude -p``
  prints that notice and goes on; the interactive CLI blocks on it ("Enter to continue") at the
  first classifier check. Temporary like trust (same lease file); the bridge prints ``-p``'s notice.

The file is shared with every running Claude, which does not lock it (anthropics/claude-code#28922):
every change here is a read-merge-write under an advisory lock, with an atomic replace that keeps the
file's mode, touching only the keys above.  When nothing needs changing the file is not written.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from claude_bridge_tmux.errors import SetupError
from claude_bridge_tmux.host.paths import Changed, atomic_write, exchange_write
from claude_bridge_tmux.host.proc import process_gone

API_KEY_SUFFIX_LEN = 20
NOTICE_KEY = "autoModeClassifierBillingNoticeAcknowledgedAt"
NOTICE_CLAIM = "@" + NOTICE_KEY     # its entry in the lease file (cwd entries are absolute paths)
NOTICE_VALID_MS = 86_400_000         # the CLI shows the notice again 24 h after an acknowledgement


class PreseedError(SetupError):
    """The config file could not be read or written; ``str(e)`` is a one-line reason."""


def config_dir(env: dict[str, str]) -> Path:
    """The CLI's config directory: ``$CLAUDE_CONFIG_DIR`` or ``$HOME/.claude``."""
    if env.get("CLAUDE_CONFIG_DIR"):
        return Path(env["CLAUDE_CONFIG_DIR"])
    return Path(env.get("HOME") or os.path.expanduser("~")) / ".claude"


def global_config_path(env: dict[str, str]) -> Path:
    """Path of the CLI's global config: ``$CLAUDE_CONFIG_DIR/.claude.json`` or ``$HOME/.claude.json``."""
    if env.get("CLAUDE_CONFIG_DIR"):
        return Path(env["CLAUDE_CONFIG_DIR"]) / ".claude.json"
    return Path(env.get("HOME") or os.path.expanduser("~")) / ".claude.json"


def remove_orphaned_temp_files(config_path: Path, pids: Iterable[int]) -> list[Path]:
    """Remove the temp files claude left next to its config when it was killed while writing it:
    claude writes ``<name>.tmp.<pid>.<hex>`` and renames it over ``<name>`` (seen on 2.1.329). Only
    files of ``pids`` (processes the bridge started) that are gone now are touched. Returns them."""
    removed = []
    for pid in pids:
        if not process_gone(pid):
            continue
        for tmp in config_path.parent.glob(f"{glob.escape(config_path.name)}.tmp.{int(pid)}.*"):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``<path>.claude-bridge.lock`` (0600) for the block."""
    lock_path = path.with_name(path.name + ".claude-bridge.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_config(path: Path) -> dict[str, Any]:
    """Read a JSON object file; a missing or empty file is ``{}``.

    Raises PreseedError when the file holds something other than a JSON object (we never
    overwrite a file we cannot understand).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise PreseedError(f"cannot read {path}: {e.strerror}") from e
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise PreseedError(f"{path} is not valid JSON ({e}); fix or move it, the bridge will not overwrite it") from e
    if not isinstance(data, dict):
        raise PreseedError(f"{path} does not hold a JSON object; the bridge will not overwrite it")
    return data


def write_atomic(path: Path, data: dict[str, Any], unchanged=None) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically, keeping the existing file mode (new: 0600).
    ``unchanged``: see :func:`host.paths.atomic_write` (raises ``Changed``)."""
    atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8"), unchanged=unchanged)


def stamp(path: Path) -> tuple[int, int, int] | None:
    """What identifies one version of a file: (inode, mtime ns, size), or None when it is missing."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


MERGE_TRIES = 8


def update_config(path: Path, change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> dict[str, Any]:
    """Read ``path``, apply ``change(config) -> new config | None (nothing to write)`` and write the
    result atomically. claude and other programs write ~/.claude.json without the bridge's lock, so
    a version written between the read and the write must not be lost. Right before the write, a
    file changed since the read is read and merged again. The new file is then swapped in
    (:func:`host.paths.exchange_write`): when the version it displaced still is not the one read
    (it landed in the microseconds between that look and the swap), that version's changes are merged
    back and ``change`` applied again. Where the swap is not available, the last of MERGE_TRIES tries
    renames over whatever is there. Returns the config as written (or as read). Raises PreseedError,
    OSError."""
    foreign: list[tuple[dict[str, Any], dict[str, Any]]] = []   # (what was read, what displaced it)
    written: dict[str, Any] = {}
    # (a swap loses nothing, so it may be retried longer: each retry means another write landed in
    # the few milliseconds between a read and its swap)
    for attempt in range(MERGE_TRIES * 4):
        seen = stamp(path)
        config = read_config(path)
        base = config
        for before, theirs in foreign:
            config = _reapply(config, before, theirs)
        new = change(config)
        if new is None or new is config:
            if not foreign or config == base:
                return config
            new = config            # (the foreign changes alone still have to go back in)
        last = attempt >= MERGE_TRIES - 1
        written = new
        data = json.dumps(new, indent=2, ensure_ascii=False).encode("utf-8")
        try:
            # (a version that landed since the read is merged into before anything is written: a
            # swap that then finds one has let readers see a version without it for a moment)
            swapped = exchange_write(path, data, unchanged=partial(_same, path, seen)) if seen is not None else None
        except Changed:
            continue
        if swapped is not None:
            displaced, old = swapped
            if displaced == seen:
                return new
            try:
                displaced_config: Any = json.loads(old)
            except ValueError:
                displaced_config = None       # (a file that is not JSON: nothing of it to keep)
            if isinstance(displaced_config, dict):
                foreign.append((base, displaced_config))
            continue
        try:
            write_atomic(path, new, unchanged=None if last else partial(_same, path, seen))
            return new
        except Changed:
            continue
    return written


def _same(path: Path, seen: tuple[int, int, int] | None) -> bool:
    return stamp(path) == seen


def _reapply(config: dict[str, Any], before: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """``config`` with the top-level changes ``theirs`` made to ``before`` (set, changed or removed keys)."""
    out = dict(config)
    for k in theirs.keys() | before.keys():
        if k not in theirs:
            out.pop(k, None)
        elif before.get(k, _MISSING) != theirs[k]:
            out[k] = theirs[k]
    return out


_MISSING = object()


def is_trusted(config: dict[str, Any], cwd: str) -> bool:
    """True when ``cwd`` or one of its parents has ``hasTrustDialogAccepted`` (docs/cli-behaviour.md §4)."""
    projects = config.get("projects") or {}
    p = Path(cwd)
    for candidate in (p, *p.parents):
        entry = projects.get(str(candidate))
        if isinstance(entry, dict) and entry.get("hasTrustDialogAccepted"):
            return True
    return False


@dataclass(frozen=True)
class SeedRequest:
    """What one run needs: the cwd to trust for the run, the API key (or None), the CLI version."""

    cwd: str
    api_key: str | None
    cli_version: str
    # the run would block on the auto-mode billing notice (see the module docstring)
    auto_mode_notice: bool = False
    now_ms: int = 0      # the clock for the notice's acknowledgement (0: time.time())


def merge_seed(config: dict[str, Any], req: SeedRequest) -> tuple[dict[str, Any], bool]:
    """Pure merge: return ``(new_config, trust_added)``; ``new_config is config`` when nothing changes.

    Only the keys listed in the module docstring are touched; everything else is preserved.
    """
    new = dict(config)
    changed = False
    if not new.get("hasCompletedOnboarding"):
        new["hasCompletedOnboarding"] = True
        changed = True
    if not new.get("lastOnboardingVersion"):
        new["lastOnboardingVersion"] = req.cli_version
        changed = True
    if req.api_key:
        suffix = req.api_key[-API_KEY_SUFFIX_LEN:]
        responses = dict(new.get("customApiKeyResponses") or {})
        approved = list(responses.get("approved") or [])
        rejected = list(responses.get("rejected") or [])
        if suffix not in approved or suffix in rejected:
            if suffix not in approved:
                approved.append(suffix)
            rejected = [r for r in rejected if r != suffix]
            responses["approved"] = approved
            responses["rejected"] = rejected
            new["customApiKeyResponses"] = responses
            changed = True
    trust_added = False
    if not is_trusted(new, req.cwd):
        projects = dict(new.get("projects") or {})
        entry = dict(projects.get(req.cwd) or {})
        entry["hasTrustDialogAccepted"] = True
        projects[req.cwd] = entry
        new["projects"] = projects
        trust_added = True
        changed = True
    return (new if changed else config), trust_added


def notice_acknowledged(config: dict[str, Any], now_ms: int, bridge_value: int | None = None) -> bool:
    """Whether the user acknowledged the auto-mode billing notice within 24 h (a value the bridge
    itself wrote, ``bridge_value``, does not count)."""
    v = config.get(NOTICE_KEY)
    return isinstance(v, (int, float)) and v != bridge_value and now_ms - v < NOTICE_VALID_MS


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class TrustLease:
    """A run's claims on temporary config: the trust of one cwd and/or the billing-notice acknowledgement.

    The lease file (``<config>.claude-bridge-trust.json``, guarded by the same lock as the config)
    maps a claim -> ``{"holders": {run_id: pid}}``: a cwd the bridge itself trusted, or
    ``NOTICE_CLAIM`` (plus the ``"value"`` the bridge wrote).  ``release`` drops the run; when no live
    holder of a claim remains, its key is removed from the config again (``hasTrustDialogAccepted``
    of that cwd; the notice key only while it still holds the bridge's value).
    ``notice_due``: ``claude -p`` would print the billing notice in this run (the bridge prints it).
    """

    def __init__(self, config_path: Path, cwd: str | list[str], run_id: str, *, notice_due: bool = False):
        self.config_path = config_path
        self.claims = [cwd] if isinstance(cwd, str) else list(cwd)
        self.cwd = next((c for c in self.claims if not c.startswith("@")), None)
        self.run_id = run_id
        self.notice_due = notice_due
        self.released = False

    @staticmethod
    def lease_path(config_path: Path) -> Path:
        return config_path.with_name(config_path.name + ".claude-bridge-trust.json")

    def release(self) -> None:
        """Drop this run's claim; revoke the bridge-added trust when it was the last live one. Idempotent."""
        if self.released:
            return
        self.released = True
        with locked(self.config_path):
            leases = read_leases(self.config_path)
            revoked: list[tuple[str, dict[str, Any]]] = []
            for claim in self.claims:
                entry = leases.get(claim)
                if entry is None:
                    continue
                holders = {k: v for k, v in entry.get("holders", {}).items()
                           if k != self.run_id and _pid_alive(int(v))}
                if holders:
                    entry["holders"] = holders
                    continue
                leases.pop(claim, None)
                revoked.append((claim, entry))
            _write_leases(self.config_path, leases)
            if revoked:
                def change(config: dict[str, Any]) -> dict[str, Any]:
                    for claim, entry in revoked:
                        config = _revoke(config, claim, entry)
                    return config
                update_config(self.config_path, change)
            _rerevoke(self.config_path, time.time(), [(c, e) for c, e in revoked if c != NOTICE_CLAIM])


def _revoke(config: dict[str, Any], claim: str, entry: dict[str, Any]) -> dict[str, Any]:
    """``config`` without what ``claim`` added (pure)."""
    if claim == NOTICE_CLAIM:
        if config.get(NOTICE_KEY) == entry.get("value"):
            config = dict(config)
            del config[NOTICE_KEY]
        return config
    proj = (config.get("projects") or {}).get(claim)
    if isinstance(proj, dict) and proj.get("hasTrustDialogAccepted"):
        projects = dict(config["projects"])
        proj = dict(proj)
        del proj["hasTrustDialogAccepted"]
        projects[claim] = proj
        config = dict(config)
        config["projects"] = projects
    return config


REVOKED_KEEP_S = 600.0   # how long a revoked trust claim is re-revoked if a stale write brings it back


def revoked_path(config_path: Path) -> Path:
    return config_path.with_name(config_path.name + ".claude-bridge-revoked.json")


def _rerevoke(config_path: Path, now: float, also: Sequence[tuple[str, dict[str, Any]]] = ()) -> None:
    """Under the bridge's lock: revoke again any trust the bridge took back in the last REVOKED_KEEP_S
    that is set again with no lease holding it. Interactive claude rewrites ~/.claude.json from its
    in-memory copy, so a claude that read the file while the trust was leased can put it back after
    the release (seen under load: issue 12). Erring this way can only take trust away, never widen
    it. ``also``: claims revoked just now (recorded with ``now``)."""
    path = revoked_path(config_path)
    try:
        records = json.loads(path.read_bytes())
        records = records if isinstance(records, dict) else {}
    except (FileNotFoundError, ValueError):
        records = {}
    for claim, entry in also:
        records[claim] = {"at": now, "entry": entry}
    records = {c: r for c, r in records.items() if isinstance(r, dict) and now - float(r.get("at", 0)) < REVOKED_KEEP_S}
    leases = read_leases(config_path)
    due = [(c, r.get("entry") or {}) for c, r in records.items() if c not in leases]
    if due:
        def change(config: dict[str, Any]) -> dict[str, Any]:
            for claim, entry in due:
                config = _revoke(config, claim, entry)
            return config
        update_config(config_path, change)
    if records:
        write_atomic(path, records)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def read_leases(config_path: Path) -> dict[str, Any]:
    try:
        data = json.loads(TrustLease.lease_path(config_path).read_bytes())
        return data if isinstance(data, dict) else {}
    except (FileNotFoundError, ValueError):
        return {}


def _write_leases(config_path: Path, leases: dict[str, Any]) -> None:
    path = TrustLease.lease_path(config_path)
    if not leases:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    write_atomic(path, leases)


def preseed(env: dict[str, str], req: SeedRequest, run_id: str, pid: int | None = None) -> TrustLease | None:
    """Seed the global config for one run; return a TrustLease when the run holds temporary trust.

    ``env`` is the environment claude will run with (HOME / CLAUDE_CONFIG_DIR decide the file).
    Raises PreseedError with a one-line reason when the config cannot be read or written.
    """
    path = global_config_path(env)
    pid = os.getpid() if pid is None else pid
    try:
        with locked(path):
            _rerevoke(path, time.time())      # (trust a stale write brought back is not this run's to use)
            leases = read_leases(path)
            held_by_bridge = req.cwd in leases
            got: dict[str, Any] = {}

            def change(config: dict[str, Any]) -> dict[str, Any]:
                # (run again on a re-read when someone else replaced the file meanwhile)
                new, trust_added = merge_seed(config, req)
                claims: list[str] = [req.cwd] if (trust_added or held_by_bridge) else []
                notice_due, notice_value = False, None
                if req.auto_mode_notice:
                    now_ms = req.now_ms or int(time.time() * 1000)
                    held = leases.get(NOTICE_CLAIM)
                    if not notice_acknowledged(new, now_ms, held.get("value") if held else None):
                        notice_due = True
                        if held is None or new.get(NOTICE_KEY) != held.get("value"):
                            new = dict(new)
                            new[NOTICE_KEY] = notice_value = now_ms
                        claims.append(NOTICE_CLAIM)
                got.update(claims=claims, notice_due=notice_due, notice_value=notice_value)
                return new
            update_config(path, change)
            claims = got["claims"]
            if got["notice_value"] is not None:
                leases.setdefault(NOTICE_CLAIM, {"holders": {}})["value"] = got["notice_value"]
            if claims:
                for claim in claims:
                    leases.setdefault(claim, {"holders": {}})["holders"][run_id] = pid
                _write_leases(path, leases)
                return TrustLease(path, claims, run_id, notice_due=got["notice_due"])
            return None
    except OSError as e:
        raise PreseedError(f"cannot update {path}: {e.strerror or e}") from e
