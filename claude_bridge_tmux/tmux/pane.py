"""Claude panes on private tmux servers, driven through libtmux.

Every server the bridge starts has its own socket inside a 0700 run directory, a minimal config
(``remain-on-exit`` so a dead claude's last screen can still be read, no status line, a wide
window so replies do not wrap), and no environment of its own reaches claude: panes run the
``launch`` trampoline, which ``execve``s claude with the exact environment in a 0600 spec file.

Every command goes through libtmux's ``Server.cmd`` (one ``tmux -S SOCKET -f CONF ...`` client
process, a few ms); libtmux is imported when the first server is made, so the paths that start no
pane (usage errors, ``--version``, a pool client) never pay for its import (~110 ms). A new pane is
one ``new-session`` call that also prints the pane's id and pid and the server's pid. Whether a
pane's claude still runs is read from /proc first (no client call while it does).

Shapes: screen lines are ``list[str]`` without trailing newlines; sizes are in cells.
Errors: PaneError (one-line reason) for tmux failures.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from claude_bridge_tmux.errors import PaneError
from claude_bridge_tmux.host.paths import write_private
from claude_bridge_tmux.host.proc import process_gone
from claude_bridge_tmux.tmux import launch as launch_module

PANE_WIDTH = 250
STATUS_SETTLE_S = 1.0     # s a dead pane's exit status may take to appear in tmux
PANE_HEIGHT = 50

TMUX_CONF = """\
set -g remain-on-exit on
set -g history-limit 5000
set -g status off
set -g focus-events on
set -s escape-time 10
set -g default-terminal "{term}"
"""


def tmux_binary() -> str | None:
    """Path of the tmux binary (``$CLAUDE_BRIDGE_TMUX`` or ``tmux`` on PATH), or None."""
    return os.environ.get("CLAUDE_BRIDGE_TMUX") or shutil.which("tmux")


def _terminal_name() -> str:
    for name, first in (("tmux-256color", "t"), ("screen-256color", "s")):
        for base in ("/usr/share/terminfo", "/lib/terminfo", "/etc/terminfo"):
            if os.path.exists(os.path.join(base, first, name)):
                return name
    return "screen"


@dataclass
class LaunchSpec:
    """How to start claude in a pane: absolute ``argv`` (argv[0] = claude binary), exact ``env``, ``cwd``;
    ``stdin``: bytes for claude's standard input (its first prompt), or None for the terminal."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    stdin: bytes | None = None


def _unlink(*paths: Path | None) -> None:
    for path in paths:
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


class TmuxServer:
    """A private tmux server: socket ``<run_dir>/tmux.sock``, started on the first pane, killed by ``kill()``."""

    def __init__(self, run_dir: Path):
        tmux = tmux_binary()
        if not tmux:
            raise PaneError("tmux is not installed (apt-get install tmux)")
        self.run_dir = run_dir
        self.socket_path = run_dir / "tmux.sock"
        conf = run_dir / "tmux.conf"
        if not conf.exists():
            write_private(conf, TMUX_CONF.format(term=_terminal_name()).encode())
        import libtmux  # (see the module docstring)

        self.server = libtmux.Server(socket_path=str(self.socket_path), config_file=str(conf), tmux_bin=tmux)
        self.pid: int | None = None       # the server process, once a pane has started it
        self.killed = False
        self._lock = threading.Lock()

    def cmd(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run one tmux command on this server (libtmux ``Server.cmd``); its result, stdout and stderr
        as text (libtmux drops trailing empty lines). Never raises for a failing command (see
        ``returncode``); a tmux that cannot be run becomes PaneError."""
        try:
            res = self.server.cmd(*args)
        except Exception as e:  # libtmux raises its own exception types, and OSError
            raise PaneError(f"tmux {args[0] if args else ''} failed: {e}") from e
        return subprocess.CompletedProcess(list(res.cmd), int(res.returncode or 0),
                                           "\n".join(res.stdout) + ("\n" if res.stdout else ""),
                                           "\n".join(res.stderr))

    def new_pane(self, spec: LaunchSpec, *, name: str | None = None,
                 width: int = PANE_WIDTH, height: int = PANE_HEIGHT) -> ClaudePane:
        """Start claude (through the trampoline) in a new detached session; return its pane.

        Raises PaneError when tmux fails to create the session.
        """
        name = name or f"cb-{uuidlib.uuid4().hex[:10]}"
        if self.killed:
            raise PaneError("the tmux server was stopped")
        spec_path = self.run_dir / f"launch-{name}.json"
        stdin_path = self.run_dir / f"launch-{name}.stdin" if spec.stdin is not None else None
        if stdin_path is not None:
            write_private(stdin_path, spec.stdin or b"")
        write_private(spec_path, orjson.dumps({"argv": spec.argv, "env": spec.env, "cwd": spec.cwd,
                                               "stdin": str(stdin_path) if stdin_path else None}))
        # -I: isolated (no PYTHON* variables, no user site); -S: no site start-up (the trampoline needs
        # only json/os/sys; saves ~25 ms of .pth processing per cold run)
        command = shlex.join([sys.executable, "-I", "-S", launch_module.__file__, str(spec_path)])
        try:
            with self._lock:  # never (re)start a server that kill() has stopped
                if self.killed:
                    raise PaneError("the tmux server was stopped")
                res = self.cmd("new-session", "-d", "-P", "-F", "#{pane_id} #{pane_pid} #{pid}", "-s", name,
                               "-c", spec.cwd, "-x", str(width), "-y", str(height), command)
        except PaneError:
            _unlink(spec_path, stdin_path)
            raise
        fields = res.stdout.split()
        if res.returncode != 0 or len(fields) != 3 or not fields[0].startswith("%"):
            _unlink(spec_path, stdin_path)
            reason = res.stderr.strip().splitlines()[0] if res.stderr.strip() else f"exit {res.returncode}"
            raise PaneError(f"tmux could not start a session: {reason}")
        pane_id, pane_pid, server_pid = fields
        if self.pid is None and server_pid.isdigit():
            self.pid = int(server_pid)
        return ClaudePane(server=self, pane_id=pane_id, name=name, started=time.monotonic(),
                          process=int(pane_pid) if pane_pid.isdigit() else None)

    def alive(self) -> bool:
        """True while the tmux server answers."""
        return (self.socket_path.exists() and not self.killed
                and self.cmd("list-sessions", "-F", "#{session_id}").returncode == 0)

    def kill(self) -> None:
        """Kill the server (and every pane on it) and remove its socket. Idempotent, never raises;
        no pane can be started on this server afterwards.

        A server whose pid is known gets SIGTERM, which is what tmux's own ``kill-server`` does to
        itself (one client process less on every cold run's teardown); otherwise ``kill-server``."""
        with self._lock:
            self.killed = True
        with contextlib.suppress(Exception):
            if self.socket_path.exists() and not self._signal(signal.SIGTERM):
                self.cmd("kill-server")
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    def _signal(self, signum: int) -> bool:
        """Send ``signum`` to this server's process (its pid from ``new-session``, still named tmux in
        /proc: not a reused pid); True when sent."""
        pid = self.pid
        if pid is None or process_gone(pid):
            return False
        try:
            with open(f"/proc/{pid}/comm", "rb") as f:
                if not f.read().startswith(b"tmux"):
                    return False        # (the pid was reused)
            os.kill(pid, signum)
            return True
        except OSError:
            return False


@dataclass
class ClaudePane:
    """One pane running claude. ``pane_id`` is tmux's ``%N`` (targets never use names: prefix matching);
    ``process``: the pane's process (the trampoline, then claude: ``exec`` keeps the pid), None if unknown."""

    server: TmuxServer
    pane_id: str
    name: str
    started: float
    process: int | None = None
    _buffers: int = field(default=0)

    def _tmux(self, *args: str) -> list[str]:
        res = self.server.cmd(*args)
        if res.returncode != 0:
            raise PaneError(f"tmux {args[0]} failed: {res.stderr.strip()}")
        return res.stdout.splitlines()

    def screen(self, history: bool = False) -> list[str]:
        """The visible screen (with ``history``: scrollback too), one string per row, trailing spaces
        trimmed. [] when the pane is gone."""
        extra = ["-S", "-"] if history else []
        try:
            return [line.rstrip() for line in self._tmux("capture-pane", "-p", *extra, "-t", self.pane_id)]
        except PaneError:
            return []

    def status(self) -> tuple[bool, int | None]:
        """``(dead, exit_status)``; a vanished pane or server counts as dead with status None. While the
        pane's process runs (/proc) and its server's socket exists, the answer is ``(False, None)``
        without asking tmux. A pane that has just died may show no status yet: it is asked again for up
        to STATUS_SETTLE_S."""
        if (self.process is not None and not self.server.killed and not process_gone(self.process)
                and self.server.socket_path.exists()):
            return False, None
        end = time.monotonic() + STATUS_SETTLE_S
        while True:
            try:
                out = self._tmux("display-message", "-p", "-t", self.pane_id, "#{pane_dead} #{pane_dead_status}")
            except PaneError:
                return True, None
            parts = (out[0] if out else "").split()
            if not parts or parts[0] != "1":
                if self.process is None or not process_gone(self.process) or time.monotonic() > end:
                    return False, None
                time.sleep(0.05)       # gone in /proc, not yet seen dead by tmux (it reaps first)
                continue
            if len(parts) > 1 and parts[1].lstrip("-").isdigit():
                return True, int(parts[1])
            if time.monotonic() > end:
                return True, None
            time.sleep(0.05)

    def pid(self) -> int | None:
        """PID of the pane's process (claude after the trampoline's exec)."""
        if self.process is not None:
            return self.process
        try:
            out = self._tmux("display-message", "-p", "-t", self.pane_id, "#{pane_pid}")
            self.process = int(out[0])
            return self.process
        except (PaneError, ValueError, IndexError):
            return None

    def paste(self, text: str) -> None:
        """Paste ``text`` as one bracketed paste (``load-buffer`` from a 0600 file, ``paste-buffer -p -d``).

        No size limit from tmux's command length; newlines do not submit.  Raises PaneError.
        """
        self._buffers += 1
        buf = f"{self.name}-{self._buffers}"
        path = self.server.run_dir / f"paste-{buf}"
        write_private(path, text.encode("utf-8", "surrogatepass"))
        try:
            self._tmux("load-buffer", "-b", buf, str(path))
            self._tmux("paste-buffer", "-p", "-d", "-b", buf, "-t", self.pane_id)
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def send_keys(self, *keys: str, literal: bool = False) -> None:
        """Send tmux key names (``Enter``, ``Escape``, ``C-a``) or, with ``literal``, text. Raises PaneError."""
        args = ["send-keys", "-t", self.pane_id]
        if literal:
            args.append("-l")
        self._tmux(*args, *keys)

    def kill(self) -> None:
        """Kill this pane's session. Idempotent, never raises."""
        with contextlib.suppress(Exception):
            self._tmux("kill-session", "-t", f"={self.name}")
