"""preseed: read-merge-write of ~/.claude.json under a lock; temporary trust with leases."""

import json
import os
import stat
import threading

import pytest

from claude_bridge_tmux.host.preseed import PreseedError, SeedRequest, global_config_path, is_trusted, merge_seed, preseed

KEY = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789"


def env_for(home):
    return {"HOME": str(home)}


def test_fresh_home_gets_onboarding_key_and_trust(tmp_path):
    lease = preseed(env_for(tmp_path), SeedRequest("/w/p", KEY, "2.1.329"), "run1")
    cfg = json.loads((tmp_path / ".claude.json").read_text())
    assert cfg["hasCompletedOnboarding"] is True
    assert cfg["lastOnboardingVersion"] == "2.1.329"
    assert cfg["customApiKeyResponses"]["approved"] == [KEY[-20:]]
    assert cfg["projects"]["/w/p"]["hasTrustDialogAccepted"] is True
    assert stat.S_IMODE(os.stat(tmp_path / ".claude.json").st_mode) == 0o600
    assert lease is not None
    lease.release()
    cfg = json.loads((tmp_path / ".claude.json").read_text())
    assert "hasTrustDialogAccepted" not in cfg["projects"]["/w/p"], "temporary trust must be revoked"
    assert cfg["hasCompletedOnboarding"] is True
    assert not (tmp_path / ".claude.json.claude-bridge-trust.json").exists()


def test_other_keys_and_mode_preserved_and_no_write_when_nothing_changes(tmp_path):
    path = tmp_path / ".claude.json"
    original = {"hasCompletedOnboarding": True, "lastOnboardingVersion": "1.0", "numStartups": 7,
                "customApiKeyResponses": {"approved": [KEY[-20:]], "rejected": ["other"]},
                "projects": {"/w": {"hasTrustDialogAccepted": True, "allowedTools": ["Bash"]}},
                "oauthAccount": {"x": "ünïcode"}}
    path.write_text(json.dumps(original))
    os.chmod(path, 0o640)
    before = os.stat(path)
    lease = preseed(env_for(tmp_path), SeedRequest("/w/sub/dir", KEY, "2.1.197"), "r")
    assert lease is None, "a trusted parent covers the cwd: no temporary trust"
    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), "file must not be rewritten"
    assert json.loads(path.read_text()) == original


def test_rejected_key_is_moved_to_approved_and_unrelated_keys_kept(tmp_path):
    path = tmp_path / ".claude.json"
    path.write_text(json.dumps({"hasCompletedOnboarding": True, "lastOnboardingVersion": "1",
                                "customApiKeyResponses": {"approved": ["a"], "rejected": [KEY[-20:], "b"]},
                                "projects": {"/w": {"hasTrustDialogAccepted": True}}, "theme": "dark"}))
    os.chmod(path, 0o644)
    preseed(env_for(tmp_path), SeedRequest("/w", KEY, "2.1.197"), "r")
    cfg = json.loads(path.read_text())
    assert cfg["customApiKeyResponses"] == {"approved": ["a", KEY[-20:]], "rejected": ["b"]}
    assert cfg["theme"] == "dark"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_invalid_json_is_never_overwritten(tmp_path):
    path = tmp_path / ".claude.json"
    path.write_text("{not json")
    with pytest.raises(PreseedError, match="not valid JSON"):
        preseed(env_for(tmp_path), SeedRequest("/w", KEY, "2.1.197"), "r")
    assert path.read_text() == "{not json"


def test_claude_config_dir_is_honoured(tmp_path):
    env = {"HOME": str(tmp_path / "h"), "CLAUDE_CONFIG_DIR": str(tmp_path / "cfg")}
    assert global_config_path(env) == tmp_path / "cfg" / ".claude.json"
    preseed(env, SeedRequest("/w", None, "2.1.197"), "r")
    assert (tmp_path / "cfg" / ".claude.json").exists()
    assert not (tmp_path / "h" / ".claude.json").exists()


def test_trust_lease_is_shared_between_concurrent_runs(tmp_path):
    env = env_for(tmp_path)
    a = preseed(env, SeedRequest("/w", None, "v"), "run-a")
    b = preseed(env, SeedRequest("/w", None, "v"), "run-b")
    assert a is not None and b is not None
    a.release()
    assert is_trusted(json.loads((tmp_path / ".claude.json").read_text()), "/w"), "run-b still needs it"
    b.release()
    assert not is_trusted(json.loads((tmp_path / ".claude.json").read_text()), "/w")


def test_dead_holder_does_not_keep_trust_forever(tmp_path):
    env = env_for(tmp_path)
    preseed(env, SeedRequest("/w", None, "v"), "ghost", pid=2**22 + 12345)  # no such pid
    live = preseed(env, SeedRequest("/w", None, "v"), "live")
    live.release()
    assert not is_trusted(json.loads((tmp_path / ".claude.json").read_text()), "/w")


def test_user_trust_is_never_revoked(tmp_path):
    path = tmp_path / ".claude.json"
    path.write_text(json.dumps({"projects": {"/w": {"hasTrustDialogAccepted": True}}}))
    lease = preseed(env_for(tmp_path), SeedRequest("/w", None, "v"), "r")
    assert lease is None
    assert is_trusted(json.loads(path.read_text()), "/w")


def test_concurrent_seeders_never_corrupt_the_file(tmp_path):
    env = env_for(tmp_path)
    errors = []

    def worker(i):
        try:
            lease = preseed(env, SeedRequest(f"/w/{i % 5}", f"sk-ant-key-{i:030d}", "v"), f"r{i}")
            if lease:
                lease.release()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    cfg = json.loads((tmp_path / ".claude.json").read_text())
    assert len(cfg["customApiKeyResponses"]["approved"]) == 40
    assert not any(is_trusted(cfg, f"/w/{i}") for i in range(5))


def test_merge_seed_is_pure():
    cfg = {"a": 1}
    new, added = merge_seed(cfg, SeedRequest("/x", None, "v"))
    assert cfg == {"a": 1} and added and new["a"] == 1


def test_a_write_that_lands_between_read_and_rename_is_merged_not_lost(tmp_path):
    """Another program replaces ~/.claude.json while the bridge merges its change: the bridge notices
    (the file's inode/mtime/size changed before its rename), reads again and merges into the new
    version, so the other program's key survives."""
    import json as _json

    from claude_bridge_tmux.host.preseed import update_config
    path = tmp_path / ".claude.json"
    path.write_text(_json.dumps({"a": 1}))
    calls = []

    def change(config):
        calls.append(dict(config))
        if len(calls) == 1:      # someone else writes right after the bridge read the file
            other = tmp_path / "other.tmp"
            other.write_text(_json.dumps({"a": 1, "writtenMeanwhile": True}))
            other.replace(path)
        return dict(config, bridgeKey=True)
    update_config(path, change)
    assert _json.loads(path.read_text()) == {"a": 1, "writtenMeanwhile": True, "bridgeKey": True}
    assert len(calls) == 2


def test_trust_a_stale_write_brings_back_after_the_release_is_revoked_again(tmp_path):
    """Another claude rewrites ~/.claude.json from a copy it read while the bridge's temporary trust
    was there: the trust comes back after the release. The next bridge run (its preseed or release)
    takes it back again, within REVOKED_KEEP_S; trust the user set themselves is never touched."""
    import json as _json

    from claude_bridge_tmux.host.preseed import SeedRequest, preseed, revoked_path
    home = tmp_path / "home"
    home.mkdir()
    cfg = home / ".claude.json"
    cfg.write_text(_json.dumps({"hasCompletedOnboarding": True, "projects": {"/mine": {"hasTrustDialogAccepted": True}}}))
    env = {"HOME": str(home)}
    lease = preseed(env, SeedRequest(cwd="/w", api_key=None, cli_version="2.1.329"), "run-1")
    assert lease is not None
    stale = _json.loads(cfg.read_text())          # what another claude read meanwhile
    lease.release()
    assert not _json.loads(cfg.read_text())["projects"]["/w"].get("hasTrustDialogAccepted")
    cfg.write_text(_json.dumps(stale))            # its stale write: the trust is back
    assert revoked_path(cfg).exists()
    other = preseed(env, SeedRequest(cwd="/other", api_key=None, cli_version="2.1.329"), "run-2")
    now = _json.loads(cfg.read_text())
    assert not now["projects"]["/w"].get("hasTrustDialogAccepted")
    assert now["projects"]["/mine"]["hasTrustDialogAccepted"] is True
    if other is not None:
        other.release()


def test_a_write_that_lands_between_the_check_and_the_swap_is_merged_back(tmp_path, monkeypatch):
    """Another program replaces ~/.claude.json in the instant between the bridge's last look and its
    own write: the bridge swaps its version in (renameat2 RENAME_EXCHANGE), finds the version it
    displaced is not the one it read, and merges that one's changes back: nothing is lost."""
    import json as _json

    from claude_bridge_tmux.host import paths
    from claude_bridge_tmux.host.preseed import update_config
    path = tmp_path / ".claude.json"
    path.write_text(_json.dumps({"a": 1, "gone": 1}))
    probe = tmp_path / "probe"
    probe.write_text("x")
    if paths.exchange_write(probe, b"y") is None:
        pytest.skip("no RENAME_EXCHANGE on this file system")
    real = paths._renameat2_exchange
    raced = []

    def exchange(a, b):
        if not raced:            # the other program's rename lands right before the bridge's swap
            raced.append(1)
            other = tmp_path / "other.tmp"
            other.write_text(_json.dumps({"a": 2, "writtenMeanwhile": True}))
            other.replace(path)
        return real(a, b)
    monkeypatch.setattr(paths, "_renameat2_exchange", exchange)
    written = update_config(path, lambda config: dict(config, bridgeKey=True))
    assert raced == [1]          # (the other write did land inside the bridge's write)
    assert _json.loads(path.read_text()) == {"a": 2, "writtenMeanwhile": True, "bridgeKey": True} == written
    assert not list(tmp_path.glob(".claude.json.*.tmp"))


def test_orphaned_claude_temp_files_of_gone_processes_are_removed(tmp_path):
    import subprocess

    from claude_bridge_tmux.host.preseed import remove_orphaned_temp_files
    path = tmp_path / ".claude.json"
    path.write_text("{}")
    gone = subprocess.Popen(["true"])
    gone.wait()
    alive = os.getpid()
    mine = tmp_path / f".claude.json.tmp.{gone.pid}.a28f53c86304"
    running = tmp_path / f".claude.json.tmp.{alive}.0123"
    bridge_tmp = tmp_path / ".claude.json.abcd1234.tmp"
    for p in (mine, running, bridge_tmp):
        p.write_text("{")
    assert remove_orphaned_temp_files(path, [gone.pid, alive]) == [mine]
    assert not mine.exists() and running.exists() and bridge_tmp.exists()
