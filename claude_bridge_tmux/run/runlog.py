"""Per-run diagnostics of cold runs: the run log in the state directory, and the progress line.

``observed(run_print, argv)`` wraps one cold run (``cli.main``):

* a cheap ``gc`` pass first (see ``gc.py``);
* a ``RunObserver`` handed to ``runner.run_print``, which passes every debug event (``log``) and stderr
  line (``err``) through it, lets it watch the Emitter (the only stdout writer), and calls
  ``closing(session)`` just before the pane is killed, to keep the pane's final screen;
* after the run, the log ``<state dir>/runs/<UTC time>-<pid>-<random>.log`` (0600): argv (long tokens
  shortened), events with timings, stderr lines, exit code, the pane's final screen.  Only the last
  ``CLAUDE_BRIDGE_KEEP_LOGS`` logs are kept (default 50; 0 turns logging off).

Progress for humans: when stderr is a terminal and the output format is ``text`` (and
``CLAUDE_BRIDGE_DEBUG`` is off), one status line on stderr (``starting claude``, ``waiting for the
model``, ``running Bash``) with the elapsed seconds, erased before the answer or any error is written.
Never on pipes; stdout is never touched.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from claude_bridge_tmux.config import BridgeConfig, ConfigError

LOG_DIR = "runs"
DEFAULT_KEEP = 50
SCREEN_LINES = 200
TOKEN_MAX = 120


# -- progress line -------------------------------------------------------------------------------
class Progress:
    """A single status line on a terminal: ``set(text)`` shows/updates it, ``stop()`` erases it for good."""

    TICK = 1.0

    def __init__(self, stream: TextIO, *, started: float | None = None):
        self.stream = stream
        self.started = time.monotonic() if started is None else started
        self.text: str | None = None
        self.shown = False
        self.stopped = False
        self.lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True, name="claude-bridge-progress")
        self._thread.start()

    def _width(self) -> int:
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            columns = 0
        return max(20, columns - 1) if columns > 0 else 79   # 0: a terminal that never got a size

    def _render(self) -> None:   # lock held
        if self.stopped or self.text is None:
            return
        line = f"claude-bridge: {self.text} ({time.monotonic() - self.started:.0f}s)"[: self._width()]
        with contextlib.suppress(OSError, ValueError):
            self.stream.write(f"\r\x1b[2K\x1b[2m{line}\x1b[0m")
            self.stream.flush()
            self.shown = True

    def set(self, text: str) -> None:
        with self.lock:
            if text != self.text:
                self.text = text
                self._render()

    def stop(self) -> None:
        """Erase the line (if shown) and never draw again. Idempotent."""
        with self.lock:
            if self.stopped:
                return
            self.stopped = True
            if self.shown:
                with contextlib.suppress(OSError, ValueError):
                    self.stream.write("\r\x1b[2K")
                    self.stream.flush()
        self._wake.set()

    def _tick(self) -> None:
        while not self._wake.wait(self.TICK):
            with self.lock:
                self._render()


def progress_wanted(stream: TextIO, fmt: str, env: dict[str, str]) -> bool:
    if fmt != "text" or env.get("CLAUDE_BRIDGE_DEBUG") or env.get("CLAUDE_BRIDGE_NO_PROGRESS"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def phase_of_record(record: dict) -> str | None:
    """The progress text a transcript record of the turn implies, or None."""
    msg = record.get("message") or {}
    content = msg.get("content")
    if not isinstance(content, list):
        return None
    kinds = [c.get("type") for c in content if isinstance(c, dict)]
    if record.get("type") == "assistant" and "tool_use" in kinds:
        names = [c.get("name") for c in content if isinstance(c, dict) and c.get("type") == "tool_use"]
        return f"running {', '.join(n for n in names if n) or 'a tool'}"
    if record.get("type") == "user" and "tool_result" in kinds:
        return "waiting for the model"
    return None


# -- the observer --------------------------------------------------------------------------------
def _shorten(token: str) -> str:
    if len(token) <= TOKEN_MAX:
        return token
    return f"{token[:TOKEN_MAX]}…({len(token)} chars)"


class RunObserver:
    """Collects one cold run's events; see the module docstring for how the runner uses it."""

    def __init__(self, argv: list[str], env: dict[str, str], *, stderr: TextIO | None = None):
        self.argv = list(argv)
        self.env = env
        self.stderr = stderr
        self.t0 = time.monotonic()
        self.started = time.time()
        self.events: list[tuple[float, str]] = []
        self.stderr_lines: list[str] = []
        self.screen: list[str] = []
        self.pane_id: str | None = None
        self.session_id: str | None = None
        self.progress: Progress | None = None

    def event(self, msg: str) -> None:
        self.events.append((time.monotonic() - self.t0, msg))

    # called by runner.run_print -----------------------------------------------------------------
    def attach(self, log: Callable[[str], None], err: Callable[[str], None]):
        """Wrap the run's ``log`` and ``err``; returns the wrapped pair."""
        def log2(msg: str) -> None:
            self.event(msg)
            if self.progress is not None and msg.startswith("hook UserPromptSubmit"):
                self.progress.set("waiting for the model")
            log(msg)

        def err2(msg: str) -> None:
            self.stop_progress()
            self.stderr_lines.append(msg)
            err(msg)
        return log2, err2

    def watch(self, emitter) -> None:
        """Follow the Emitter: records drive the progress line; the first stdout write erases it."""
        self.session_id = getattr(emitter, "session_id", None)
        if self.stderr is not None and progress_wanted(self.stderr, getattr(emitter, "fmt", ""), self.env):
            self.progress = Progress(self.stderr, started=self.t0)
            self.progress.set("starting claude")

        def on_record(rec: dict) -> None:
            if self.progress is not None:
                phase = phase_of_record(rec)
                if phase:
                    self.progress.set(phase)
        emitter.event_hooks["write"].append(self.stop_progress)
        emitter.event_hooks["record"].append(on_record)

    def closing(self, session) -> None:
        """Keep the pane's final screen (called before the pane is killed). Never raises."""
        with contextlib.suppress(Exception):
            self.pane_id = session.pane.pane_id if session.pane is not None else None
            self.session_id = session.info.session_id or self.session_id
            lines = session.pane.screen(history=True) if session.pane is not None else []
            while lines and not lines[-1].strip():
                lines.pop()
            self.screen = lines[-SCREEN_LINES:]

    def stop_progress(self) -> None:
        if self.progress is not None:
            self.progress.stop()

    # after the run ------------------------------------------------------------------------------
    def render(self, code: int | None) -> str:
        out = ["claude-bridge run log",
               f"started   {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(self.started))}",
               f"pid       {os.getpid()}",
               f"cwd       {os.getcwd()}",
               f"argv      {' '.join(_shorten(a) for a in self.argv)}",
               f"session   {self.session_id or '-'}",
               f"pane      {self.pane_id or '-'}",
               f"exit      {code if code is not None else 'crashed'} after {time.monotonic() - self.t0:.3f} s",
               "", "--- events (seconds since start) ---"]
        out += [f"+{t:8.3f}  {m}" for t, m in self.events]
        out += ["", "--- stderr ---", *self.stderr_lines]
        out += ["", f"--- final screen of the pane ({len(self.screen)} lines) ---", *self.screen, ""]
        return "\n".join(out)

    def finish(self, code: int | None) -> Path | None:
        """Write the run log and prune old ones; return its path (None when logging is off/failed)."""
        self.stop_progress()
        keep = _keep(self.env)
        if keep <= 0:
            return None
        try:
            from claude_bridge_tmux.host.paths import state_dir
            logs = state_dir(self.env) / LOG_DIR
            logs.mkdir(mode=0o700, exist_ok=True)
            name = (f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(self.started))}-{os.getpid()}-"
                    f"{os.urandom(3).hex()}.log")
            path = logs / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write(self.render(code))
            prune(logs, keep)
            return path
        except Exception:  # noqa: BLE001 - a log must never fail a run
            return None


def _keep(env: dict[str, str]) -> int:
    try:
        return BridgeConfig.from_env(env).keep_logs
    except ConfigError:
        return DEFAULT_KEEP


def log_files(logs: Path) -> list[Path]:
    """Run logs, oldest first."""
    try:
        return sorted((p for p in logs.iterdir() if p.suffix == ".log"), key=lambda p: (p.stat().st_mtime, p.name))
    except OSError:
        return []


def prune(logs: Path, keep: int) -> None:
    files = log_files(logs)
    for p in files[: max(0, len(files) - keep)]:
        with contextlib.suppress(OSError):
            p.unlink()


def observed(run: Callable[..., int], argv: list[str], *, env: dict[str, str] | None = None,
             stderr: TextIO | None = None) -> int:
    """Run one cold ``run(argv, observer=...)`` with a gc pass first and the run log after."""
    import sys
    env = dict(os.environ if env is None else env)
    obs = RunObserver(argv, env, stderr=stderr or sys.stderr)
    t0 = time.perf_counter()
    try:
        from claude_bridge_tmux.ops.gc import collect
        report = collect(env)
        obs.event(f"gc: {(time.perf_counter() - t0) * 1000:.2f} ms, "
                  + ("nothing to collect" if report.empty else
                     f"removed {len(report.removed_dirs)} run dir(s), killed {len(report.killed_servers)} "
                     f"tmux server(s), revoked {len(report.revoked_trust)} trust lease(s)"))
    except Exception as e:  # noqa: BLE001 - gc never fails a run
        obs.event(f"gc failed: {e}")
    code: int | None = None
    try:
        code = run(argv, observer=obs)
        return code
    finally:
        obs.finish(code)
