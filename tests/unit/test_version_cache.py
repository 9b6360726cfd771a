"""`claude --version` is asked once per binary (size, mtime) and remembered on disk; wrappers every time."""

from __future__ import annotations

import os

from claude_bridge_tmux.invocation import plan


def _fake(path, size_pad: int):
    calls = path.parent / f"{path.name}.calls"
    path.write_text(f"#!/bin/sh\necho x >> {calls}\necho '2.1.329 (Claude Code)'\n#" + "p" * size_pad + "\n")
    path.chmod(0o755)
    return calls


def _count(calls):
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def test_a_real_binary_is_asked_once_then_read_from_disk(tmp_path, monkeypatch):
    env = {"CLAUDE_BRIDGE_STATE_DIR": str(tmp_path / "state")}
    binary = tmp_path / "claude"
    calls = _fake(binary, plan.CACHEABLE_MIN_SIZE)
    assert plan.claude_version(str(binary), env) == "2.1.329"
    monkeypatch.setattr(plan, "_VERSIONS", {})           # a new process
    assert plan.claude_version(str(binary), env) == "2.1.329"
    assert _count(calls) == 1
    assert oct((tmp_path / "state" / plan.VERSION_CACHE).stat().st_mode & 0o777) == "0o600"
    os.utime(binary, ns=(1, 1))                           # an updated binary is asked again
    monkeypatch.setattr(plan, "_VERSIONS", {})
    plan.claude_version(str(binary), env)
    assert _count(calls) == 2


def test_a_wrapper_script_is_asked_every_time(tmp_path, monkeypatch):
    env = {"CLAUDE_BRIDGE_STATE_DIR": str(tmp_path / "state")}
    binary = tmp_path / "claude"
    calls = _fake(binary, 10)
    for _ in range(2):
        monkeypatch.setattr(plan, "_VERSIONS", {})
        assert plan.claude_version(str(binary), env) == "2.1.329"
    assert _count(calls) == 2


def test_a_corrupt_cache_is_ignored(tmp_path, monkeypatch):
    env = {"CLAUDE_BRIDGE_STATE_DIR": str(tmp_path / "state")}
    (tmp_path / "state").mkdir(mode=0o700)
    (tmp_path / "state" / plan.VERSION_CACHE).write_text("{not json")
    binary = tmp_path / "claude"
    _fake(binary, plan.CACHEABLE_MIN_SIZE)
    monkeypatch.setattr(plan, "_VERSIONS", {})
    assert plan.claude_version(str(binary), env) == "2.1.329"
