"""Follow a session's JSONL transcript as the CLI appends to it.

The CLI writes the transcript through a queue flushed every 100 ms, in batches, and may rewrite its
tail (docs/cli-behaviour.md §6), so the follower reads from a byte offset, keeps a trailing partial
line for the next read, and starts over when the file shrinks.  Change notifications come from
watchdog (inotify on Linux) on the transcript's directory; they only wake the caller — reading is
always from the offset, so a missed or merged event loses nothing.

Path rule (2.1.x): ``<config dir>/projects/<cwd with every char outside [A-Za-z0-9] replaced by
'->/<session-id>.jsonl``; an encoded name longer than 200 chars is cut and suffixed with a hash, so the
SessionStart hook's ``transcript_path`` is preferred whenever it is known.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from claude_bridge_tmux.follow.tree import Record, parse_line

# watchdog logs benign races (an emitter stopping while inotify events are queued) at ERROR level;
# with no handler configured they would reach our stderr through logging's last-resort handler.
logging.getLogger("watchdog").addHandler(logging.NullHandler())

_ENC = re.compile(r"[^A-Za-z0-9]")


def encode_project_dir(cwd: str) -> str:
    """The CLI's project folder name for ``cwd`` (exact for names up to 200 characters)."""
    return _ENC.sub("-", cwd)


def transcript_path(config_dir: Path, cwd: str, session_id: str) -> Path:
    """Expected transcript path for a session (see module docstring)."""
    return config_dir / "projects" / encode_project_dir(cwd) / f"{session_id}.jsonl"


def continued_transcript(project_dir: Path) -> Path | None:
    """The transcript ``--continue`` takes up: the project directory's most recently modified session
    file (2.1.197 and 2.1.329 pick by modification time, not by creation), or None."""
    best: tuple[float, Path] | None = None
    try:
        for p in project_dir.glob("*.jsonl"):
            try:
                mtime = p.stat().st_mtime
            except OSError:
                continue
            if best is None or mtime > best[0]:
                best = (mtime, p)
    except OSError:
        return None
    return best[1] if best else None


def resumed_transcript(projects_root: Path, project_dir: Path, session_id: str, *, any_project: bool) -> Path | None:
    """The transcript of ``--resume SESSION_ID``: the cwd's, else (``any_project``, 2.1.329) one in
    another project directory; None when there is none."""
    own = project_dir / f"{session_id}.jsonl"
    if own.exists():
        return own
    if any_project:
        try:
            return next(iter(sorted(projects_root.glob(f"*/{session_id}.jsonl"))), None)
        except OSError:
            return None
    return None


def records_from_end(path: Path, needle: bytes, block: int = 1 << 16) -> Iterator[Record]:
    """The records of a transcript whose line contains ``needle``, last first: the file is read
    backwards in ``block``-byte steps, so a caller that stops early reads only the tail. A line that
    does not parse (e.g. one being written) is skipped; a missing file yields nothing."""
    try:
        f = open(path, "rb")
    except OSError:
        return
    with f:
        pos = f.seek(0, os.SEEK_END)
        head = b""                     # the (maybe partial) first line of the part read so far
        while pos > 0:
            n = min(block, pos)
            pos -= n
            f.seek(pos)
            lines = (f.read(n) + head).split(b"\n")
            head = lines.pop(0)
            for line in reversed(lines):
                if needle in line:
                    rec = parse_line(line)
                    if rec is not None:
                        yield rec
        if needle in head:
            rec = parse_line(head)
            if rec is not None:
                yield rec


class _Wake(FileSystemEventHandler):
    def __init__(self, callback: Callable[[], None]):
        self.callback = callback

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.callback()


class DirectoryWatch:
    """Calls ``callback()`` (from a watchdog thread) on any change inside ``directory`` (non-recursive)."""

    _observer: BaseObserver | None = None
    _lock = threading.Lock()

    def __init__(self, directory: Path, callback: Callable[[], None]):
        with DirectoryWatch._lock:
            if DirectoryWatch._observer is None:
                obs = Observer()
                obs.daemon = True
                obs.start()
                DirectoryWatch._observer = obs
        self._watch: ObservedWatch | None = DirectoryWatch._observer.schedule(_Wake(callback), str(directory), recursive=False)

    def close(self) -> None:
        """Stop watching. Never raises."""
        obs = DirectoryWatch._observer
        if obs is not None and self._watch is not None:
            try:
                obs.unschedule(self._watch)
            except (KeyError, ValueError, RuntimeError):
                pass
            self._watch = None


class TranscriptReader:
    """Incremental reader of one JSONL file: ``read_new()`` returns the records appended since last call.

    Records are dicts as parsed by ``turn.parse_line`` (undecodable lines are skipped).  When the file
    shrinks below the offset (tail rewrite) reading restarts at 0 and ``restarted`` turns True, so the
    caller can rebuild from records de-duplicated by ``uuid``.
    """

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self._partial = b""
        self.restarted = False

    def read_new(self) -> list[Record]:
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return []
        if size < self.offset:
            self.offset = 0
            self._partial = b""
            self.restarted = True
        if size == self.offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read(size - self.offset)
        self.offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        records = []
        for line in lines:
            rec = parse_line(line)
            if rec is not None:
                records.append(rec)
        return records
