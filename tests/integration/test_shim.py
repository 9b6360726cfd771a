"""The `claude` shim (shims/claude) with the real CLI and the mock: print mode through the bridge,
everything else to the real claude, untouched; never into itself.

Whether a call went through the bridge is read from the bridge's run logs (one per cold run).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, assert_no_leftovers, claude_processes

pytestmark = pytest.mark.integration

SHIM = ROOT / "shims" / "claude"
VENV_BIN = Path(sys.executable).parent


class ShimBed:
    def __init__(self, bed, tmp_path: Path):
        self.bed = bed
        self.shim_dir = tmp_path / "shimbin"
        self.real_dir = tmp_path / "realbin"
        self.shim_dir.mkdir()
        self.real_dir.mkdir()
        (self.shim_dir / "claude").symlink_to(SHIM)
        (self.real_dir / "claude").symlink_to(bed.claude_bin)        # the real binary, also named claude
        assert (VENV_BIN / "claude-bridge").exists(), "the package is not installed in this interpreter's venv"
        env = dict(bed.env)
        env.pop("CLAUDE_BRIDGE_CLAUDE_BIN")
        # the shim's directory twice, before the real claude; claude-bridge from the venv
        env["PATH"] = os.pathsep.join([str(self.shim_dir), str(self.shim_dir), str(self.real_dir), str(VENV_BIN),
                                       "/usr/local/bin", "/usr/bin", "/bin"])
        self.env = env
        self.logs = bed.home.parent / "state" / "runs"

    def run(self, *args: str, input: str | None = None, env: dict | None = None, timeout: float = 90,
            argv0: str = "claude") -> subprocess.CompletedProcess:
        return subprocess.run([argv0, *args], input=input.encode() if input is not None else None,
                              stdin=None if input is not None else subprocess.DEVNULL, capture_output=True,
                              env=env or self.env, cwd=self.bed.cwd, timeout=timeout)

    def bridge_runs(self) -> int:
        return len(list(self.logs.glob("*.log"))) if self.logs.exists() else 0


@pytest.fixture
def sb(bed, tmp_path):
    return ShimBed(bed, tmp_path)


def real_version(sb) -> str:
    return subprocess.run([sb.bed.claude_bin, "--version"], capture_output=True, text=True).stdout


def test_print_mode_goes_through_the_bridge(sb):
    p = sb.run("-p", "hello shim", "--output-format", "json")
    assert p.returncode == 0, p.stderr.decode()
    assert json.loads(p.stdout)["result"] == "MOCK-REPLY to: hello shim"
    assert sb.bridge_runs() == 1
    # the session ran in an interactive pane: its transcript says so (claude -p writes "sdk-cli")
    [transcript] = sb.bed.transcripts()
    entrypoints = {json.loads(x).get("entrypoint") for x in transcript.read_text().splitlines()} - {None}
    assert entrypoints == {"cli"}


@pytest.mark.newest_cli_only
def test_stdin_and_exit_code_pass_through(sb):
    p = sb.run("-p", "--output-format", "json", input="from stdin ✓\n")
    assert p.returncode == 0, p.stderr.decode()
    assert sb.bed.mock.main_requests()[-1]["prompt"] == "from stdin ✓\n"
    p = sb.run("-p", "boom MOCK:err=500")
    assert p.returncode == 1 and p.stdout.startswith(b"API Error: 500")
    assert sb.bridge_runs() == 2
    p = sb.run("-p", "x", "--output-format", "stream-json")          # claude's usage error, via the bridge
    assert p.returncode == 1
    assert p.stderr.decode().strip() == "Error: When using --print, --output-format=stream-json requires --verbose"


def test_version_and_subcommands_go_to_the_real_claude(sb):
    expected = real_version(sb)
    for args in (["--version"], ["-v"], ["-p", "--version"]):
        p = sb.run(*args)
        assert (p.returncode, p.stdout.decode(), p.stderr) == (0, expected, b""), args
    p = sb.run("mcp", "list", timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    assert b"No MCP servers configured" in p.stdout
    p = sb.run("--frobnicate")                                      # the real claude's own error and exit code
    assert p.returncode == 1 and b"unknown option '--frobnicate'" in p.stderr
    assert sb.bridge_runs() == 0


@pytest.mark.newest_cli_only
def test_option_values_that_look_like_p_go_to_the_real_claude(sb):
    """`--model -p` names a model "-p": not print mode for claude, so not for the shim either
    (the real claude, with stdout on a pipe, answers by itself)."""
    p = sb.run("--model", "-p", "hi")
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout == b"MOCK-REPLY to: hi\n"
    assert sb.bed.mock.main_requests()[-1]["body"]["model"] == "-p"
    assert sb.bridge_runs() == 0


@pytest.mark.newest_cli_only
def test_no_recursion(sb, tmp_path):
    # nothing but shims on PATH: a clear error, at once
    env = dict(sb.env, PATH=os.pathsep.join([str(sb.shim_dir), str(sb.shim_dir), str(VENV_BIN), "/usr/bin", "/bin"]))
    t0 = time.monotonic()
    p = sb.run("--version", env=env, timeout=20)
    assert p.returncode == 127 and b"real claude CLI was not found" in p.stderr
    assert time.monotonic() - t0 < 5
    # CLAUDE_BRIDGE_CLAUDE_BIN naming the shim itself (or a link to it) is refused, not followed
    p = sb.run("-p", "x", env=dict(sb.env, CLAUDE_BRIDGE_CLAUDE_BIN=str(sb.shim_dir / "claude")), timeout=20)
    assert p.returncode == 127
    # a wrapper named claude that runs `claude` again lands back in the shim: it looks past the wrapper
    wrap_dir = tmp_path / "wrapbin"
    wrap_dir.mkdir()
    wrapper = wrap_dir / "claude"
    wrapper.write_text('#!/bin/sh\nexec claude "$@"\n')
    wrapper.chmod(0o755)
    env = dict(sb.env, PATH=os.pathsep.join([str(sb.shim_dir), str(wrap_dir), str(sb.real_dir), str(VENV_BIN),
                                             "/usr/bin", "/bin"]))
    p = sb.run("--version", env=env, timeout=20)
    assert (p.returncode, p.stdout.decode()) == (0, real_version(sb))


@pytest.mark.newest_cli_only
def test_claude_binary_style_and_installed_copy(sb, tmp_path):
    """CLAUDE_BINARY=<shim>: the shim is not on PATH; `claude-bridge shim --install DIR` writes a copy that
    finds this installation's claude-bridge even when it is not on PATH."""
    env = dict(sb.env, PATH=os.pathsep.join([str(sb.real_dir), str(VENV_BIN), "/usr/bin", "/bin"]))
    p = sb.run("-p", "by absolute path", "--output-format", "json", env=env, argv0=str(SHIM))
    assert p.returncode == 0, p.stderr.decode()
    assert json.loads(p.stdout)["result"] == "MOCK-REPLY to: by absolute path"
    inst = tmp_path / "installed"
    res = subprocess.run([str(VENV_BIN / "claude-bridge"), "shim", "--install", str(inst)], capture_output=True,
                         text=True, env=sb.env)
    assert res.returncode == 0, res.stderr
    env = dict(sb.env, PATH=os.pathsep.join([str(inst), str(sb.real_dir), "/usr/bin", "/bin"]))
    p = sb.run("-p", "installed copy", "--output-format", "json", env=env)
    assert p.returncode == 0, p.stderr.decode()
    assert json.loads(p.stdout)["result"] == "MOCK-REPLY to: installed copy"
    assert sb.bridge_runs() == 2
    res = subprocess.run([str(VENV_BIN / "claude-bridge"), "shim", "--install", str(sb.real_dir)],
                         capture_output=True, text=True, env=sb.env)
    assert res.returncode == 1 and "is not the claude-bridge shim" in res.stderr   # never overwrites claude


@pytest.mark.newest_cli_only
def test_sigterm_reaches_the_bridge_through_the_shim(sb):
    proc = subprocess.Popen(["claude", "-p", "slow MOCK:slow=0.5 MOCK:long=4000", "--output-format", "stream-json",
                             "--verbose"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=sb.env, cwd=sb.bed.cwd)
    deadline = time.monotonic() + 30
    while not claude_processes(sb.bed.home) or not sb.bed.mock.main_requests():
        assert time.monotonic() < deadline, "claude never started"
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)       # the pid we started is the bridge itself (exec, no wrapper process)
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 143, err.decode()
    assert_no_leftovers(sb.bed)
