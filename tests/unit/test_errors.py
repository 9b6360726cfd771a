"""One exception tree; a bad environment is a one-line error, never a traceback."""

from __future__ import annotations

import io
import json

import pytest

from claude_bridge_tmux import errors
from claude_bridge_tmux.api import SchemaError
from claude_bridge_tmux.follow.session import TurnError
from claude_bridge_tmux.host.hooks import SettingsError
from claude_bridge_tmux.host.paths import UnsafeDirectoryError, ensure_private_dir
from claude_bridge_tmux.host.preseed import PreseedError
from claude_bridge_tmux.invocation.flags import FlagError
from claude_bridge_tmux.invocation.stdin import StdinError
from claude_bridge_tmux.run.cold import run_print


@pytest.mark.parametrize("cls,base", [
    (FlagError, errors.UsageError), (PreseedError, errors.SetupError), (SettingsError, errors.SetupError),
    (StdinError, errors.SetupError), (UnsafeDirectoryError, errors.SetupError), (TurnError, errors.BridgeError),
    (errors.PaneError, errors.BridgeError), (SchemaError, errors.BridgeError), (errors.UsageError, errors.BridgeError),
])
def test_every_error_has_the_common_base(cls, base):
    assert issubclass(cls, base) and issubclass(cls, errors.BridgeError)


def test_turn_error_exit_code_is_claudes_when_known():
    assert TurnError("x").exit_code == 1
    assert TurnError("x", cli_message="m", cli_exit_code=2).exit_code == 2


def test_a_private_dir_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(UnsafeDirectoryError, match="is not a directory"):
        ensure_private_dir(f)
    with pytest.raises(UnsafeDirectoryError, match="cannot create"):
        ensure_private_dir(f / "sub")


@pytest.fixture
def fake_claude(tmp_path):
    """A `claude` that only knows --version (enough for everything before the pane)."""
    b = tmp_path / "bin" / "claude"
    b.parent.mkdir()
    b.write_text("#!/bin/sh\necho '2.1.329 (Claude Code)'\n")
    b.chmod(0o755)
    return str(b)


def test_runtime_dir_that_is_a_file_is_one_line(tmp_path, fake_claude):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".claude.json").write_text(json.dumps({"keep": 1}))
    runtime = tmp_path / "runtime-file"
    runtime.write_text("not a dir")
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "CLAUDE_BRIDGE_CLAUDE_BIN": fake_claude,
           "CLAUDE_BRIDGE_RUNTIME_DIR": str(runtime), "CLAUDE_BRIDGE_POOL": "off", "CLAUDE_BRIDGE_NO_INIT_PROBE": "1"}
    err, out = io.StringIO(), io.BytesIO()
    code = run_print(["-p", "hello"], env=env, cwd=str(tmp_path), stdin=io.BytesIO(b""), stdout=out, stderr=err)
    assert code == 1 and out.getvalue() == b""
    lines = err.getvalue().splitlines()
    assert lines == [f"claude-bridge: {runtime} is not a directory"]
    # the temporary trust the run added is gone again; the user's keys are kept
    config = json.loads((home / ".claude.json").read_text())
    assert config["keep"] == 1 and not (config.get("projects") or {}).get(str(tmp_path), {}).get("hasTrustDialogAccepted")


def test_corrupt_claude_json_is_refused_and_left_untouched(tmp_path, fake_claude):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".claude.json").write_text('{"half": ')
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "CLAUDE_BRIDGE_CLAUDE_BIN": fake_claude,
           "CLAUDE_BRIDGE_RUNTIME_DIR": str(tmp_path / "rt"), "CLAUDE_BRIDGE_POOL": "off"}
    err = io.StringIO()
    code = run_print(["-p", "hello"], env=env, cwd=str(tmp_path), stdin=io.BytesIO(b""), stdout=io.BytesIO(), stderr=err)
    assert code == 1
    assert len(err.getvalue().splitlines()) == 1 and "is not valid JSON" in err.getvalue()
    assert (home / ".claude.json").read_text() == '{"half": '
