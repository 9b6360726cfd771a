"""Reliability under load (issue 12), on the real CLI in tmux against the mock model.

8 concurrent cold runs, and 8 concurrent callers on a pool of 4, each for N prompts (env
``CLAUDE_BRIDGE_LOAD_N``; default 3 per cold worker, 6 per pool caller) with mixed scenarios (plain,
a Bash tool turn, an API error, --max-turns), half of the workers in the bed's cwd and half in a cwd
of their own (two trusted in ``~/.claude.json``, two not: the bridge leases trust for those).

* every output is that prompt's own answer, the same as real ``claude -p`` gives for the scenario
  (exit code, subtype, result, turns, stderr); its session id is unique and the mock saw only that
  prompt in that session (no cross-talk);
* ``~/.claude.json`` is valid JSON in every version it goes through (inotify on HOME catches each
  replace and hard-links each temp file the moment it appears, so every version's writer and exact
  content are known; plus a poll every 100 ms); a foreign top-level key and a foreign project entry
  survive; another program (a thread here) adds ``writtenMeanwhile<k>`` keys while the load runs, and
  every key the bridge does not own, written by that program or by the CLI, survives every write of
  the bridge. A version's writer is its temp file's name: the bridge's ``.claude.json.XXXXXXXX.tmp``,
  claude's ``.claude.json.tmp.<pid>.<hex>``. A key the bridge drops fails the test; a key claude
  itself drops (it rewrites the file from a stale in-memory copy) is reported as a warning, with the
  versions involved;
* trust the bridge leased is taken back, its lease file is gone;
* at the end: no claude process of the bed's HOME, no tmux socket, nothing in the runtime dir, no
  tmux paste buffer or paste file left on the pool's panes, no ``*.tmp`` next to ``~/.claude.json``.

``CLAUDE_BRIDGE_LOAD_DUMP=DIR`` writes every version of the config (its writer), the inotify events,
the trust changes and the losses of each test to DIR, to see who did what.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import re
import secrets
import select
import struct
import subprocess
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import API_KEY, assert_no_leftovers, claude_processes, tmux_sockets
from tests.integration.test_pool import idle_panes, pool_cmd, status, wait_for

pytestmark = pytest.mark.integration
NEWEST_CLI_ONLY = True

_N = os.environ.get("CLAUDE_BRIDGE_LOAD_N")
COLD_N = int(_N) if _N else 3
POOL_N = int(_N) if _N else 6
WORKERS = 8
RUN_TIMEOUT = 120            # per call: catches a hang, not a slow machine
WRITE_EVERY = 0.5            # s between the foreign program's writes
POLL_EVERY = 0.1

SCENARIOS = ("plain", "tool", "api-error", "max-turns")
# worker i's step s runs MIX[(i + s) % len(MIX)]: half plain, a sixth each of the others (a --max-turns
# call gets a pane of its own, started for it: the slowest)
MIX = ("plain", "tool", "plain", "api-error", "plain", "max-turns")
# keys of ~/.claude.json the bridge owns (host/preseed.py); everything else must survive its writes
BRIDGE_TOP_KEYS = {"hasCompletedOnboarding", "lastOnboardingVersion", "customApiKeyResponses",
                   "autoModeClassifierBillingNoticeAcknowledgedAt"}
BRIDGE_PROJECT_KEYS = {"hasTrustDialogAccepted"}
FOREIGN_PROJECT = "/nonexistent/load-test-other-project"
FOREIGN_ENTRY = {"hasTrustDialogAccepted": True, "loadTestField": [1, 2, 3], "allowedTools": ["Bash(ls)"],
                 "nested": {"deep": {"x": "y"}}}


# -- the calls -----------------------------------------------------------------------------------

def scenario_call(name: str, tag: str) -> tuple[str, list[str]]:
    """(prompt, extra claude -p args) of scenario ``name``; ``tag`` makes the prompt unique."""
    if name == "plain":
        return f"load {tag} plain", []
    if name == "tool":
        return f"load {tag} MOCK:tool=echo_{tag}", []
    if name == "api-error":
        return f"load {tag} MOCK:err=500", []
    return f"load {tag} MOCK:toolloop", ["--max-turns", "2"]


def digest(p: subprocess.CompletedProcess, tag: str, mock_url: str) -> dict:
    """What must be equal between a call and real claude -p's reference for its scenario (the prompt's
    tag and the mock's address, which an API error names, replaced)."""
    try:
        res = json.loads(p.stdout)
    except ValueError:
        return {"code": p.returncode, "stdout": p.stdout[-300:], "stderr": p.stderr.decode()[-300:]}
    result = res.get("result")
    return {"code": p.returncode, "stderr": p.stderr.decode(), "type": res.get("type"), "subtype": res.get("subtype"),
            "is_error": res.get("is_error"), "num_turns": res.get("num_turns"), "stop_reason": res.get("stop_reason"),
            "result": result.replace(tag, "TAG").replace(mock_url.split("//", 1)[1], "HOST")
            if isinstance(result, str) else result}


_REFS: dict[str, dict[str, dict]] = {}


def references(bed) -> dict[str, dict]:
    """Real ``claude -p`` on a bed, once per scenario and CLI: what every call of it must print."""
    if bed.claude_bin in _REFS:
        return _REFS[bed.claude_bin]
    refs = {}
    for name in SCENARIOS:
        tag = f"ref-{name}"
        prompt, extra = scenario_call(name, tag)
        p = bed.claude_p("-p", prompt, "--output-format", "json", *extra, timeout=RUN_TIMEOUT)
        refs[name] = digest(p, tag, bed.mock.url)
    # the scenarios are what they claim to be
    assert refs["plain"]["result"] == "MOCK-REPLY to: load TAG plain" and refs["plain"]["code"] == 0, refs["plain"]
    assert refs["tool"]["result"] == "MOCK-TOOL-DONE: TAG" and refs["tool"]["num_turns"] == 2, refs["tool"]
    assert refs["api-error"]["code"] == 1 and refs["api-error"]["is_error"] is True, refs["api-error"]
    assert refs["max-turns"]["subtype"] == "error_max_turns" and refs["max-turns"]["code"] == 1, refs["max-turns"]
    _REFS[bed.claude_bin] = refs
    return refs


@dataclass
class Call:
    worker: int
    step: int
    scenario: str
    tag: str
    prompt: str
    cwd: Path
    seconds: float = 0.0
    proc: subprocess.CompletedProcess | None = None
    error: str | None = None            # the call did not finish (a hang) or could not be run
    left: list[int] = field(default_factory=list)    # processes in its cwd right after it exited


def processes_in(home: Path, cwd: Path) -> list[int]:
    """This bed's live processes whose cwd is ``cwd``."""
    out = []
    for pid in claude_processes(home):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/cwd") == str(cwd):
                out.append(pid)
    return out


def run_workers(bed, cwds: list[Path], n: int, env: dict, token: str, *, check_own_cwd: bool) -> list[Call]:
    """WORKERS threads, worker i in cwds[i], each making n calls one after another; all calls."""
    calls: list[Call] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        for step in range(n):
            name = MIX[(i + step) % len(MIX)]
            tag = f"{token}-w{i}-s{step}"
            prompt, extra = scenario_call(name, tag)
            call = Call(worker=i, step=step, scenario=name, tag=tag, prompt=prompt, cwd=cwds[i])
            t0 = time.monotonic()
            try:
                call.proc = bed.bridge("-p", prompt, "--output-format", "json", *extra, env=env, cwd=cwds[i],
                                       timeout=RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                call.error = f"no answer after {RUN_TIMEOUT} s"
            except Exception as e:  # noqa: BLE001 - reported by the test
                call.error = repr(e)
            call.seconds = time.monotonic() - t0
            if check_own_cwd and cwds[i] != bed.cwd:
                # alone in its cwd: nothing of this run may outlive the bridge (no grace, as test_outcomes)
                call.left = processes_in(bed.home, cwds[i])
            with lock:
                calls.append(call)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(RUN_TIMEOUT * (n + 1))
    assert not [t for t in threads if t.is_alive()], "a worker thread hung"
    return calls


def check_calls(bed, calls: list[Call], refs: dict[str, dict], expected: int) -> list[str]:
    """Every call finished and printed its own scenario's answer; no two share a session; the mock saw
    exactly that call's prompt in that call's session."""
    problems = [] if len(calls) == expected else [f"{len(calls)} calls ran, not {expected}"]
    sessions: dict[str, Call] = {}
    by_session: dict[str, set] = {}
    for r in bed.mock.main_requests():
        by_session.setdefault(r.get("session_id") or "", set()).add(r.get("prompt"))
    for c in sorted(calls, key=lambda c: (c.worker, c.step)):
        where = f"worker {c.worker} step {c.step} ({c.scenario}, {c.cwd.name}, {c.seconds:.1f} s)"
        if c.left:
            problems.append(f"{where}: processes {c.left} still ran in its cwd when the bridge had exited")
        if c.error or c.proc is None:
            problems.append(f"{where}: {c.error}")
            continue
        got = digest(c.proc, c.tag, bed.mock.url)
        if got != refs[c.scenario]:
            problems.append(f"{where}: {got} != claude -p's {refs[c.scenario]}")
            continue
        sid = json.loads(c.proc.stdout).get("session_id") or ""
        if sid in sessions:
            other = sessions[sid]
            problems.append(f"{where}: session {sid} also printed by worker {other.worker} step {other.step}")
        sessions[sid] = c
        if by_session.get(sid) != {c.prompt}:
            problems.append(f"{where}: the mock saw prompts {by_session.get(sid)} in session {sid}")
    return problems


# -- ~/.claude.json under concurrent writers ------------------------------------------------------

_IN_MODIFY, _IN_MOVED_FROM, _IN_MOVED_TO, _IN_CREATE, _IN_DELETE = 0x2, 0x40, 0x80, 0x100, 0x200
_IN_Q_OVERFLOW, _IN_ISDIR = 0x4000, 0x40000000
_EVENT = struct.Struct("iIII")


def writer_of(tmp_name: str | None) -> str:
    """Who wrote a version of ~/.claude.json, from the temp file it was renamed from."""
    if tmp_name is None:
        return "unknown"
    if tmp_name.startswith(".claude.json.loadtest-"):
        return "test-writer"
    m = re.fullmatch(r"\.claude\.json\.tmp\.(\d+)\.[0-9a-f]+", tmp_name)
    if m:
        return f"claude[{m.group(1)}]"
    if re.fullmatch(r"\.claude\.json\.[a-z0-9_]{8}\.tmp", tmp_name):      # host.paths.atomic_write (mkstemp)
        return "bridge"
    return f"unknown({tmp_name})"


@dataclass
class Loss:
    what: str           # the key (path) lost
    writer: str         # who wrote the first version without it
    version: int        # that version's index in ConfigWatch.versions
    certain: bool       # False: unobserved versions came between (writer lists every candidate)


class ConfigWatch:
    """Follows every version of ``~/.claude.json``, checks each, and plays another program writing it.

    An inotify watch on HOME sees each temp file created next to the config and hard-links it at once
    (the link keeps its content and inode, so nothing is confused by a reused inode), and each rename
    onto ``.claude.json``: the renamed temp's name says who wrote that version, the link holds its
    exact content. A version whose temp was gone before it could be linked is read from the file
    itself when no later rename is queued, else counted as unobserved. Each version must be a JSON
    object and must keep every key the bridge does not own that the one before had (its writer is
    blamed; after unobserved versions, each candidate). Every POLL_EVERY s the file is also read and
    must parse and hold the foreign keys.

    The writer thread adds ``writtenMeanwhile<k>`` every WRITE_EVERY s the careful way a program that
    knows nothing of the bridge's lock would: read, temp file, replace only if the file was not replaced
    meanwhile (else read again). Such a key must be in every version from its own rename on.
    """

    def __init__(self, path: Path, links: Path):
        self.path = path
        self.links = links
        links.mkdir()
        self.versions: list[dict] = []            # {"writer", "keys" | None (unobserved)}
        self.invalid: list[str] = []
        self.losses: list[Loss] = []
        self.written: list[str] = []
        self.writer_errors: list[str] = []
        self.trust_log: list[str] = []            # who added / removed which project's trust
        self.events: list[tuple[int, str, int]] = []
        self.overflow = False
        self.polls = 0
        self._queue: deque[tuple[int, int, str]] = deque()
        self._linked: dict[str, Path] = {}        # temp file name -> hard link to it
        self._cookies: dict[int, str] = {}
        self._tracked: set[str] = set()           # key paths the next version must have
        self._trust: set[str] = set()
        self._gap: list[str] = []                 # writers of unobserved versions since the last observed
        self._armed: set[str] = set()
        self._n = 0
        self._stop = threading.Event()
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self.fd >= 0, os.strerror(ctypes.get_errno())
        wd = libc.inotify_add_watch(self.fd, str(path.parent).encode(),
                                    _IN_MODIFY | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_CREATE | _IN_DELETE)
        assert wd >= 0, os.strerror(ctypes.get_errno())
        self.threads = [threading.Thread(target=self._follow, daemon=True),
                        threading.Thread(target=self._write_foreign, daemon=True)]

    def __enter__(self) -> ConfigWatch:
        self._version("before the test", self.path.read_bytes())
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self.threads:
            t.join(10)
        self._read_events()
        self._handle_queue()
        os.close(self.fd)
        for link in self.links.iterdir():
            link.unlink()
        self.links.rmdir()

    # following the file
    def _follow(self) -> None:
        while not self._stop.is_set():
            if not select.select([self.fd], [], [], POLL_EVERY)[0]:
                self._poll()
                continue
            self._read_events()
            self._handle_queue()

    def _read_events(self) -> None:
        while True:
            try:
                buf = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return
            off = 0
            while off < len(buf):
                _wd, mask, cookie, n = _EVENT.unpack_from(buf, off)
                name = buf[off + _EVENT.size: off + _EVENT.size + n].rstrip(b"\0").decode(errors="replace")
                off += _EVENT.size + n
                if mask & _IN_CREATE and not mask & _IN_ISDIR and self._is_temp(name):
                    self._link(name)              # at once: the temp may be renamed any moment
                self._queue.append((mask, cookie, name))

    def _is_temp(self, name: str) -> bool:
        return name.startswith(self.path.name + ".") and ".claude-bridge" not in name and not name.endswith(".lock")

    def _link(self, name: str) -> None:
        self._n += 1
        link = self.links / str(self._n)
        with contextlib.suppress(OSError):
            os.link(self.path.parent / name, link)
            self._linked[name] = link

    def _handle_queue(self) -> None:
        while self._queue:
            mask, cookie, name = self._queue.popleft()
            if mask & _IN_Q_OVERFLOW:
                self.overflow = True
            if name != self.path.name and not self._is_temp(name):
                continue
            self.events.append((mask, name, len(self.versions)))
            if mask & _IN_ISDIR:
                continue
            if mask & _IN_DELETE:
                self._unlink(name)
            elif mask & _IN_MOVED_FROM:
                self._cookies[cookie] = name
            elif mask & _IN_MOVED_TO:
                src = self._cookies.pop(cookie, None)
                if name != self.path.name:
                    self._unlink(src)
                    continue
                if src and src.startswith(".claude.json.loadtest-"):
                    self._armed.add(src.removeprefix(".claude.json.loadtest-").removesuffix(".tmp"))
                link = self._linked.pop(src, None) if src else None
                if link is not None:
                    raw: bytes | None = link.read_bytes()
                    link.unlink()
                else:
                    raw = self._current_if_last()
                self._version(writer_of(src), raw)
            elif mask & _IN_MODIFY and name == self.path.name:
                self._version("in-place write", self._current_if_last())

    def _unlink(self, name: str | None) -> None:
        link = self._linked.pop(name, None) if name else None
        if link is not None:
            link.unlink()

    def _renamed_later(self) -> bool:
        return any(m & (_IN_MOVED_TO | _IN_MODIFY) and n == self.path.name for m, _c, n in self._queue)

    def _current_if_last(self) -> bytes | None:
        """The file's content when it is still the version just renamed (no later rename queued, before
        the read or after it), else None."""
        if self._renamed_later():
            return None
        raw = self.path.read_bytes()
        self._read_events()
        return None if self._renamed_later() else raw

    def _version(self, writer: str, raw: bytes | None) -> None:
        index = len(self.versions)
        if raw is None:
            self.versions.append({"writer": writer, "keys": None})
            self._gap.append(writer)
            return
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except ValueError as e:
            self.invalid.append(f"version #{index} by {writer}: {e}: {raw[:120]!r}")
            self.versions.append({"writer": writer, "keys": None})
            return
        keys = self._key_paths(data)
        self.versions.append({"writer": writer, "keys": keys})
        culprit = writer if not self._gap else f"one of {', '.join(self._gap + [writer])}"
        lost = (self._tracked - keys) | {f"writtenMeanwhile{k}" for k in self._armed} - keys
        for k in sorted(lost):
            self.losses.append(Loss(k, culprit, index, certain=not self._gap))
        self._gap, self._armed = [], set()
        self._tracked = {k for k in keys if not self._owned(k)}
        trust = {k for k in keys if k.endswith("].hasTrustDialogAccepted")}
        for k in sorted(trust ^ self._trust):
            self.trust_log.append(f"#{index} {culprit} {'adds' if k in trust else 'removes'} {k}")
        self._trust = trust

    def _poll(self) -> None:
        self.polls += 1
        try:
            data = json.loads(self.path.read_bytes())
            problem = None if isinstance(data, dict) and data.get("loadTestKeep") == {"a": 1} and \
                (data.get("projects") or {}).get(FOREIGN_PROJECT) == FOREIGN_ENTRY else "a foreign key is gone"
        except (OSError, ValueError) as e:
            problem = repr(e)
        if problem:
            self.invalid.append(f"poll {self.polls}: {problem}")

    @staticmethod
    def _key_paths(data: dict) -> set[str]:
        keys = set(data)
        for p, entry in (data.get("projects") or {}).items():
            keys.add(f"projects[{p}]")
            if isinstance(entry, dict):
                keys.update(f"projects[{p}].{k}" for k in entry)
        return keys

    @staticmethod
    def _owned(key: str) -> bool:
        if key in BRIDGE_TOP_KEYS:
            return True
        m = re.fullmatch(r"projects\[.*\]\.(\w+)", key)
        return bool(m) and m.group(1) in BRIDGE_PROJECT_KEYS

    # the other program
    def _write_foreign(self) -> None:
        k = 0
        while not self._stop.wait(WRITE_EVERY):
            k += 1
            try:
                self._write_one(k)
                self.written.append(f"writtenMeanwhile{k}")
            except Exception as e:  # noqa: BLE001 - reported by the test
                self.writer_errors.append(f"write {k}: {e!r}")

    def _write_one(self, k: int) -> None:
        tmp = self.path.with_name(f".claude.json.loadtest-{k}.tmp")
        for _ in range(100):
            with open(self.path, "rb") as f:
                ino = os.fstat(f.fileno()).st_ino
                data = json.loads(f.read())
            data[f"writtenMeanwhile{k}"] = k
            tmp.write_text(json.dumps(data, indent=2))
            if os.stat(self.path).st_ino == ino:
                os.replace(tmp, self.path)
                return
            time.sleep(0.01)                   # replaced meanwhile: read it again
        tmp.unlink()
        raise RuntimeError("the file never stayed put long enough")

    def report(self, losses: list[Loss]) -> str:
        lines = []
        for loss in losses:
            lo = max(0, loss.version - 3)
            around = ", ".join(f"#{i} {v['writer']}" + ("" if v["keys"] is not None else " (unobserved)")
                               for i, v in enumerate(self.versions[lo:loss.version + 1], lo))
            lines.append(f"{loss.what} lost in version #{loss.version} written by {loss.writer} (versions {around})")
        return "\n".join(lines)


def seed_load_home(bed, trusted: list[Path]) -> None:
    """A HOME like seed_home's (onboarding done, key approved, the bed's cwd trusted), plus the trusted
    cwds and keys that belong to no one the test runs (a foreign top-level key and project entry)."""
    path = bed.home / ".claude.json"
    config = json.loads(path.read_text()) if path.exists() else {}
    config.setdefault("hasCompletedOnboarding", True)
    config.setdefault("customApiKeyResponses", {"approved": [API_KEY[-20:]], "rejected": []})
    projects = config.setdefault("projects", {})
    for cwd in [bed.cwd, *trusted]:
        projects.setdefault(str(cwd), {})["hasTrustDialogAccepted"] = True
    projects[FOREIGN_PROJECT] = FOREIGN_ENTRY
    config["loadTestKeep"] = {"a": 1}
    path.write_text(json.dumps(config, indent=2))


def worker_cwds(bed) -> tuple[list[Path], list[Path], list[Path]]:
    """(cwd of each worker, own trusted cwds, own untrusted cwds): workers 0-3 share the bed's cwd,
    4-5 have trusted cwds of their own, 6-7 untrusted ones (the bridge leases trust for the run)."""
    base = bed.cwd.parent
    trusted = [base / f"own-trusted-{i}" for i in (4, 5)]
    untrusted = [base / f"own-untrusted-{i}" for i in (6, 7)]
    for d in trusted + untrusted:
        d.mkdir()
    return [bed.cwd] * 4 + trusted + untrusted, trusted, untrusted


def check_config(bed, watch: ConfigWatch, trusted: list[Path], untrusted: list[Path]) -> list[str]:
    """Every version valid; nothing the bridge does not own dropped by the bridge; the final file holds
    the foreign keys, the written-meanwhile keys (or claude dropped them: reported), the trust the
    user gave and none the bridge leased; no lease, no temp file."""
    path = bed.home / ".claude.json"
    problems = []
    if watch.overflow:
        problems.append("the inotify queue overflowed: versions were missed")
    unobserved = sum(1 for v in watch.versions if v["keys"] is None)
    if not (len(watch.versions) > 10 and len(watch.written) >= 2 and watch.polls > 0):
        problems.append(f"nothing happened: {len(watch.versions)} versions, {len(watch.written)} foreign writes")
    elif unobserved > len(watch.versions) // 5:
        problems.append(f"{unobserved} of {len(watch.versions)} versions could not be read: the check saw too little")
    problems += watch.writer_errors + watch.invalid
    # the test's own writer can lose what another wrote in the instant between its check and its replace
    blamed = [x for x in watch.losses if x.certain and not x.writer.startswith("claude[") and x.writer != "test-writer"]
    if blamed:
        problems.append("keys the bridge does not own were dropped by the bridge (or a writer not recognised):\n"
                        + watch.report(blamed))
    final = json.loads(path.read_text())
    accounted = {x.what for x in watch.losses}
    missing = [k for k in watch.written if k not in final and k not in accounted]
    if missing:
        problems.append(f"written meanwhile, gone at the end without a version that dropped them: {missing}")
    if final.get("loadTestKeep") != {"a": 1}:
        problems.append(f"loadTestKeep is {final.get('loadTestKeep')!r}")
    projects = final.get("projects") or {}
    if projects.get(FOREIGN_PROJECT) != FOREIGN_ENTRY:
        problems.append(f"the foreign project entry is {projects.get(FOREIGN_PROJECT)!r}")
    if API_KEY[-20:] not in (final.get("customApiKeyResponses") or {}).get("approved", []):
        problems.append("the API key approval is gone")
    for cwd in [bed.cwd, *trusted]:
        if (projects.get(str(cwd)) or {}).get("hasTrustDialogAccepted") is not True:
            problems.append(f"the user's trust of {cwd} is gone")
    for cwd in untrusted:
        # the bridge trusted it for the runs only; claude's own entry for it stays
        if "hasTrustDialogAccepted" in (projects.get(str(cwd)) or {}):
            changes = [c for c in watch.trust_log if f"[{cwd}]" in c]
            problems.append(f"{cwd} is still trusted after the runs; its trust went: {changes}")
    lease = bed.home / ".claude.json.claude-bridge-trust.json"
    if lease.exists():
        problems.append(f"a trust lease is left: {lease.read_text()}")
    tmp = sorted(p.name for p in bed.home.iterdir() if "tmp" in p.name)
    if tmp:
        problems.append(f"temp files next to ~/.claude.json: {tmp}")
    by_claude = [x for x in watch.losses if x.writer.startswith("claude[")]
    unsure = [x for x in watch.losses if not x.certain]
    if by_claude or unsure:
        warnings.warn(f"claude itself dropped {len(by_claude)} keys that other programs (this test's writer, other "
                      f"claude processes) wrote meanwhile ({len(unsure)} more losses after unobserved versions; "
                      f"{unobserved} of {len(watch.versions)} versions unobserved):\n"
                      + watch.report((by_claude + unsure)[:12]), stacklevel=1)
    return problems


def check_nothing_left(bed) -> None:
    assert_no_leftovers(bed, wait=20)
    assert claude_processes(bed.home) == []
    assert not bed.runtime.exists() or list(bed.runtime.rglob("*")) == []


def dump_versions(watch: ConfigWatch, where: Path) -> None:
    """With CLAUDE_BRIDGE_LOAD_DUMP=DIR: every version (writer), inotify event, trust change and loss."""
    where.parent.mkdir(parents=True, exist_ok=True)
    with open(where, "w") as f:
        for i, v in enumerate(watch.versions):
            f.write(f"V#{i} {v['writer']} {'unobserved' if v['keys'] is None else ''}\n")
        for mask, name, idx in watch.events:
            f.write(f"E {mask:#x} {name} before V#{idx}\n")
        for line in watch.trust_log:
            f.write(f"T {line}\n")
        f.write(watch.report(watch.losses) + "\n")
        f.write(f"written {watch.written}\n")


# -- the tests -------------------------------------------------------------------------------------

def _prepare(bed):
    """(cwds, trusted, untrusted, the real -p references, a token): the HOME seeded, the mock cleared."""
    cwds, trusted, untrusted = worker_cwds(bed)
    refs = references(bed)
    seed_load_home(bed, trusted)
    bed.mock.clear()
    return cwds, trusted, untrusted, refs, secrets.token_hex(3)


def _verdict(bed, watch, calls, refs, expected: int, trusted, untrusted) -> None:
    if os.environ.get("CLAUDE_BRIDGE_LOAD_DUMP"):
        dump_versions(watch, Path(os.environ["CLAUDE_BRIDGE_LOAD_DUMP"]) / f"{bed.cwd.parent.name}.txt")
    problems = check_calls(bed, calls, refs, expected) + check_config(bed, watch, trusted, untrusted)
    assert not problems, "\n".join(problems)


def test_concurrent_cold_runs(bed):
    cwds, trusted, untrusted, refs, token = _prepare(bed)
    env = dict(bed.env, CLAUDE_BRIDGE_POOL="0")
    with ConfigWatch(bed.home / ".claude.json", bed.cwd.parent / "config-versions") as watch:
        calls = run_workers(bed, cwds, COLD_N, env, token, check_own_cwd=True)
        check_nothing_left(bed)
    _verdict(bed, watch, calls, refs, WORKERS * COLD_N, trusted, untrusted)


def pool_buffers(bed) -> list[str]:
    """Paste buffers on every tmux server of the pool, and paste files in its run dirs."""
    left = []
    for sock in [s for s in tmux_sockets(bed.runtime) if s.name != "pool.sock"]:
        out = subprocess.run(["tmux", "-S", str(sock), "list-buffers", "-F", "#{buffer_name}"], capture_output=True,
                             text=True, timeout=30, env=bed.env)
        left += [f"{sock.parent.name}: buffer {b}" for b in out.stdout.split()]
    left += [str(p.relative_to(bed.runtime)) for p in bed.runtime.rglob("paste-*")]
    return left


def test_concurrent_callers_on_a_pool_of_4(bed):
    cwds, trusted, untrusted, refs, token = _prepare(bed)
    env = dict(bed.env, CLAUDE_BRIDGE_POOL="require")
    with ConfigWatch(bed.home / ".claude.json", bed.cwd.parent / "config-versions") as watch:
        p = pool_cmd(bed, "start", "--size", "4")
        try:
            assert p.returncode == 0, p.stdout + p.stderr
            wait_for(lambda: len(idle_panes(bed)) >= 4, timeout=120, what="4 warm panes")
            calls = run_workers(bed, cwds, POOL_N, env, token, check_own_cwd=False)
            st = wait_for(lambda: (s := status(bed)) and all(q["state"] == "idle" for q in s["panes"]) and s,
                          timeout=60, what="every pane idle again")
            assert st["jobs_total"] == WORKERS * POOL_N, "every call went through the pool"
            assert pool_buffers(bed) == []
        finally:
            stop = pool_cmd(bed, "stop", timeout=120)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        check_nothing_left(bed)
    _verdict(bed, watch, calls, refs, WORKERS * POOL_N, trusted, untrusted)

