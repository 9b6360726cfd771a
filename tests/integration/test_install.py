"""Install paths from a clean environment: ``pip install .`` into a fresh venv (and pipx / uv when they
install from PyPI), then ``claude-bridge --version`` and one real ``-p`` run against the mock model,
with the repository nowhere on the path.  One pinned CLI (the newest) is enough here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from claude_bridge_tmux import __version__
from tests.conftest import ROOT, assert_no_leftovers, claude_binaries, seed_home  # noqa: F401

pytestmark = pytest.mark.integration

INSTALL_TIMEOUT = 600


def _run(argv, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, **kw)


def _clean_env(tmp_path: Path, extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not k.startswith(("CLAUDE_BRIDGE_", "PIP_"))}
    env.update(extra or {})
    return env


def _copy_source(tmp_path: Path) -> Path:
    """The project as an sdist would see it (tracked files of the work tree), away from the repo."""
    src = tmp_path / "src"
    files = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT).stdout.split("\0")
    for f in filter(None, files):
        p = ROOT / f
        if p.is_file() and not f.startswith(("tests/", ".ci/")):
            dest = src / f
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, dest, follow_symlinks=False) if not p.is_symlink() else dest.symlink_to(os.readlink(p))
    return src


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return _copy_source(tmp_path_factory.mktemp("install"))


def check_installed(bridge: Path, tmp_path: Path, mock) -> None:
    """``--version``, the packaged shim, and one -p run through the installed command."""
    bins = claude_binaries()
    if not bins:
        pytest.skip("no claude CLI")
    version, claude_bin = bins[-1]
    home, work, runtime = tmp_path / "home", tmp_path / "work", tmp_path / "run"
    work.mkdir()
    seed_home(home, work, version)
    env = _clean_env(tmp_path, {
        "HOME": str(home), "ANTHROPIC_API_KEY": "sk-ant-test-0123456789abcdefghij", "ANTHROPIC_BASE_URL": mock.url,
        "CLAUDE_CODE_MAX_RETRIES": "0", "DISABLE_AUTOUPDATER": "1", "CLAUDE_BRIDGE_CLAUDE_BIN": claude_bin,
        "CLAUDE_BRIDGE_RUNTIME_DIR": str(runtime), "CLAUDE_BRIDGE_STATE_DIR": str(tmp_path / "state"),
    })
    p = _run([str(bridge), "--version"], env=env, cwd=work, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"{version} (Claude Code)\nclaude-bridge {__version__} (claude at {claude_bin})\n"
    shim = _run([str(bridge), "shim"], env=env, cwd=work, timeout=60).stdout.strip()
    assert Path(shim).is_file() and not Path(shim).is_relative_to(ROOT)
    assert b"claude-bridge-shim" in Path(shim).read_bytes()
    p = _run([str(bridge), "-p", "installed bridge", "--output-format", "json"], env=env, cwd=work, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["result"] == "MOCK-REPLY to: installed bridge"
    assert not list(runtime.iterdir())


def test_pip_install_into_a_fresh_venv(source, tmp_path, mock):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    p = _run([str(py), "-m", "pip", "install", "--quiet", str(source)], env=_clean_env(tmp_path), timeout=INSTALL_TIMEOUT)
    assert p.returncode == 0, p.stderr[-3000:]
    p = _run([str(py), "-m", "claude_bridge_tmux", "--version"], env=_clean_env(tmp_path), cwd=tmp_path, timeout=60)
    assert p.returncode == 0 and f"claude-bridge {__version__} (claude" in p.stdout, p.stderr
    check_installed(env_dir / "bin" / "claude-bridge", tmp_path, mock)


@pytest.mark.parametrize("tool", ["pipx", "uv"])
def test_tool_install(source, tmp_path, mock, tool):
    tools = tmp_path / "tools"
    venv.EnvBuilder(with_pip=True).create(tools)
    p = _run([str(tools / "bin" / "python"), "-m", "pip", "install", "--quiet", tool], env=_clean_env(tmp_path),
             timeout=INSTALL_TIMEOUT)
    if p.returncode != 0:
        pytest.skip(f"{tool} is not installable from the package index here: {p.stderr.strip()[-300:]}")
    bin_dir = tmp_path / "bin"
    env = _clean_env(tmp_path, {"PIPX_HOME": str(tmp_path / "pipx"), "PIPX_BIN_DIR": str(bin_dir),
                                "UV_TOOL_DIR": str(tmp_path / "uvtools"), "UV_TOOL_BIN_DIR": str(bin_dir),
                                "UV_CACHE_DIR": str(tmp_path / "uvcache"), "XDG_DATA_HOME": str(tmp_path / "data")})
    if tool == "pipx":
        argv = [str(tools / "bin" / "pipx"), "install", "--python", sys.executable, str(source)]
    else:
        argv = [str(tools / "bin" / "uv"), "tool", "install", "--python", sys.executable, str(source)]
    p = _run(argv, env=env, timeout=INSTALL_TIMEOUT)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    check_installed(bin_dir / "claude-bridge", tmp_path, mock)
