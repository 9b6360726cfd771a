"""Shared fixtures: the pinned real claude CLIs, the project's mock model, isolated HOMEs.

Integration tests never fake claude or tmux: they run the real CLI (each pinned version) in tmux
against ``claude_bridge_tmux.testing.mock_api``.  Binaries come from ``CLAUDE_BRIDGE_CLAUDE_BINS``
(``os.pathsep``-separated) or are installed by ``scripts/install-claude`` for PINNED_VERSIONS.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: scripts/pinned-cli-versions (oldest first)
PINNED_VERSIONS = tuple(line.strip() for line in (ROOT / "scripts" / "pinned-cli-versions").read_text().splitlines()
                        if line.strip() and not line.startswith("#"))
API_KEY = "sk-ant-test-0123456789abcdefghij"


def _binaries() -> list[tuple[str, str]]:
    env = os.environ.get("CLAUDE_BRIDGE_CLAUDE_BINS")
    out: list[tuple[str, str]] = []
    if env:
        for b in env.split(os.pathsep):
            if b:
                v = subprocess.run([b, "--version"], capture_output=True, text=True).stdout.split()[0]
                out.append((v, b))
        return out
    if not shutil.which("npm"):
        return []
    for v in PINNED_VERSIONS:
        res = subprocess.run([str(ROOT / "scripts" / "install-claude"), v], capture_output=True, text=True)
        if res.returncode == 0 and res.stdout.strip():
            out.append((v, res.stdout.strip().splitlines()[-1]))
        else:
            raise RuntimeError(f"cannot install claude {v}: {res.stderr}")
    return out


_BINS: list[tuple[str, str]] | None = None


@functools.cache
def cli_version(claude_bin: str) -> str:
    """``claude --version``'s first word for a binary (``"2.1.329"``)."""
    out = subprocess.run([claude_bin, "--version"], capture_output=True, text=True, timeout=60).stdout
    return out.split()[0]


def claude_binaries() -> list[tuple[str, str]]:
    global _BINS
    if _BINS is None:
        _BINS = _binaries()
    return _BINS


def pytest_generate_tests(metafunc):
    if "claude_bin" in metafunc.fixturenames:
        bins = claude_binaries()
        if not bins:
            metafunc.parametrize("claude_bin", [pytest.param(None, marks=pytest.mark.skip(reason="npm missing: no claude CLI"))])
        else:
            if getattr(metafunc.module, "NEWEST_CLI_ONLY", False) or \
                    metafunc.definition.get_closest_marker("newest_cli_only") is not None:
                # what the module (or test) checks does not depend on the CLI version (the Redis queue,
                # the pool's own lifecycle, the bridge's own failures): the newest pinned CLI only, to
                # keep CI within its budget
                bins = bins[-1:]
            metafunc.parametrize("claude_bin", [b for _, b in bins], ids=[v for v, _ in bins])


@pytest.fixture
def mock(tmp_path):
    from claude_bridge_tmux.testing.mock_api import MockServer

    with MockServer(log_path=str(tmp_path / "mock.jsonl")) as server:
        yield server


@dataclass
class Bed:
    """One isolated test bed: a throwaway HOME and cwd, the env for claude and the bridge."""

    home: Path
    cwd: Path
    runtime: Path
    env: dict
    claude_bin: str
    mock: object

    @property
    def version(self) -> str:
        """The CLI's version, as ``claude --version`` prints it first (``"2.1.329"``)."""
        return cli_version(self.claude_bin)

    @property
    def facts(self):
        """The bridge's :class:`~claude_bridge_tmux.versions.Dialect` for this CLI."""
        from claude_bridge_tmux.versions import dialect
        return dialect(self.version)

    def at_least(self, version: str) -> bool:
        """Whether this CLI is ``version`` or newer."""
        from claude_bridge_tmux.versions import parse
        return (parse(self.version) or (0, 0, 0)) >= (parse(version) or (0, 0, 0))

    def bridge(self, *args: str, input: str | bytes | None = None, timeout: float = 90, env: dict | None = None,
               cwd: Path | None = None) -> subprocess.CompletedProcess:
        """Run ``python -m claude_bridge_tmux ARGS`` (the real bridge, the real claude).

        Past ``timeout`` the bridge gets SIGTERM (it then prints the pane's last lines and writes its
        run log, as for any caller's timeout), and the test fails with what it printed."""
        argv = [sys.executable, "-m", "claude_bridge_tmux", *args]
        with subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env or self.env,
                              cwd=cwd or self.cwd) as proc:
            try:
                out, err = proc.communicate(_b(input), timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    out, err = proc.communicate(timeout=45)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    out, err = proc.communicate()
                raise AssertionError(f"claude-bridge {' '.join(args)[:200]} still running after {timeout} s; "
                                     f"after SIGTERM it printed:\n{err.decode(errors='replace')[-3000:]}"
                                     f"\nstdout:\n{out.decode(errors='replace')[-1500:]}") from None
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)

    def claude_p(self, *args: str, input: str | bytes | None = None, timeout: float = 90) -> subprocess.CompletedProcess:
        """Run the real ``claude`` with ARGS (print mode) in the same bed, for side-by-side checks."""
        return subprocess.run([self.claude_bin, *args], input=_b(input), capture_output=True, timeout=timeout,
                              env=self.env, cwd=self.cwd, stdin=None if input is not None else subprocess.DEVNULL)

    def spawn_bridge(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "claude_bridge_tmux", *args], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env, cwd=self.cwd)

    def transcripts(self) -> list[Path]:
        return sorted((self.home / ".claude" / "projects").glob("*/*.jsonl"))


def _b(x):
    return x.encode() if isinstance(x, str) else x


def seed_home(home: Path, cwd: Path, version: str = "2.1.197") -> None:
    """A HOME as a logged-in user would have it (onboarding done, key approved, cwd trusted)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / ".claude.json").write_text(json.dumps({
        "hasCompletedOnboarding": True, "lastOnboardingVersion": version,
        "customApiKeyResponses": {"approved": [API_KEY[-20:]], "rejected": []},
        "projects": {str(cwd): {"hasTrustDialogAccepted": True}},
    }))


@pytest.fixture
def bed(tmp_path, mock, claude_bin) -> Bed:
    home = tmp_path / "home"
    cwd = tmp_path / "work"
    runtime = tmp_path / "run"
    cwd.mkdir(parents=True)
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "ANTHROPIC_API_KEY": API_KEY,
        "ANTHROPIC_BASE_URL": mock.url,
        "CLAUDE_CODE_MAX_RETRIES": "0",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_BRIDGE_CLAUDE_BIN": claude_bin,
        "CLAUDE_BRIDGE_RUNTIME_DIR": str(runtime),
        "CLAUDE_BRIDGE_STATE_DIR": str(tmp_path / "state"),
        "PYTHONPATH": str(ROOT),
    }
    b = Bed(home=home, cwd=cwd, runtime=runtime, env=env, claude_bin=claude_bin, mock=mock)
    yield b
    assert_no_leftovers(b)


def other_pids() -> list[int]:
    """Every process in /proc but this one."""
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and int(e) != os.getpid()]


def claude_processes(home: Path) -> list[int]:
    """PIDs of live processes whose environment has HOME=<home> (claude started for this bed)."""
    needle = f"HOME={home}".encode()
    pids = []
    for entry in other_pids():
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    with open(f"/proc/{entry}/stat", "rb") as s:
                        if s.read().split()[2] != b"Z":
                            pids.append(entry)
        except OSError:
            continue
    return pids


def tmux_sockets(runtime: Path) -> list[Path]:
    return [p for p in runtime.rglob("*") if p.is_socket()] if runtime.exists() else []


def assert_no_leftovers(b: Bed, wait: float = 15.0) -> None:
    """No claude process, tmux server or run directory of this bed may outlive a bridge run."""
    deadline = time.monotonic() + wait
    while True:
        procs = claude_processes(b.home)
        socks = tmux_sockets(b.runtime)
        dirs = [p for p in b.runtime.iterdir()] if b.runtime.exists() else []
        if not procs and not socks and not dirs:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for pid in procs:
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    raise AssertionError(f"left behind: processes {procs}, sockets {socks}, run dirs {dirs}")


def stream_lines(stdout: bytes) -> list[dict]:
    return [json.loads(line) for line in stdout.decode().splitlines() if line.strip()]


# A test that failed once on timing and passed when run again (``--reruns``, scripts/test) is shown
# only as RERUN; its first failure is printed here, so that a flake can be understood and fixed.
_RERUN_FAILURES: list[tuple[str, str]] = []


def pytest_runtest_logreport(report):
    if report.outcome == "rerun" and report.longrepr is not None:
        _RERUN_FAILURES.append((report.nodeid, str(report.longreprtext)[-4000:]))


def pytest_terminal_summary(terminalreporter):
    if _RERUN_FAILURES:
        terminalreporter.section("failures of tests that were run again")
        for nodeid, text in _RERUN_FAILURES:
            terminalreporter.write_line(f"--- {nodeid}")
            terminalreporter.write_line(text)
