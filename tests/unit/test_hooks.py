"""hooks: the per-run settings and the spool the real shell commands write to."""

import json
import subprocess

import pytest

from claude_bridge_tmux.host.hooks import DENY_MESSAGE, HookSpool, SettingsError, load_caller_settings, merged_settings


def run_hook(command: str, payload: dict) -> subprocess.CompletedProcess:
    # claude runs hook commands through a shell with the payload on stdin
    return subprocess.run(["sh", "-c", command], input=json.dumps(payload).encode(), capture_output=True)


def test_spooled_hook_writes_payload_file(tmp_path):
    spool = HookSpool(tmp_path / "spool dir with 'quotes'")
    settings = merged_settings({}, spool.dir, deny_permission_requests=False)
    cmd = settings["hooks"]["Stop"][0]["hooks"][0]["command"]
    payload = {"hook_event_name": "Stop", "last_assistant_message": "é $(rm -rf /) `x` 'q'"}
    assert run_hook(cmd, payload).returncode == 0
    events = spool.drain()
    assert [(e.event, e.payload) for e in events] == [("Stop", payload)]
    assert spool.drain() == [], "files are consumed"
    assert "PermissionRequest" not in settings["hooks"]


def test_permission_request_hook_denies_with_print_mode_message(tmp_path):
    spool = HookSpool(tmp_path / "s")
    settings = merged_settings({}, spool.dir, deny_permission_requests=True)
    cmd = settings["hooks"]["PermissionRequest"][0]["hooks"][0]["command"]
    res = run_hook(cmd, {"tool_name": "Bash"})
    out = json.loads(res.stdout)
    assert out["hookSpecificOutput"]["decision"] == {"behavior": "deny", "message": DENY_MESSAGE}
    assert [e.event for e in spool.drain()] == ["PermissionRequest"]


def test_caller_settings_are_kept_and_hooks_appended(tmp_path):
    caller = {"model": "x", "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "true"}]}]}}
    merged = merged_settings(caller, tmp_path, deny_permission_requests=False)
    assert merged["model"] == "x"
    assert merged["hooks"]["Stop"][0] == caller["hooks"]["Stop"][0]
    assert len(merged["hooks"]["Stop"]) == 2
    assert len(caller["hooks"]["Stop"]) == 1, "caller's dict not mutated"


def test_pane_animations_are_off_unless_the_caller_chose(tmp_path):
    merged = merged_settings({}, tmp_path, deny_permission_requests=False)
    assert merged["prefersReducedMotion"] is True and merged["spinnerTipsEnabled"] is False
    chosen = merged_settings({"prefersReducedMotion": False, "spinnerTipsEnabled": True}, tmp_path,
                             deny_permission_requests=False)
    assert chosen["prefersReducedMotion"] is False and chosen["spinnerTipsEnabled"] is True


def test_load_caller_settings_json_file_and_errors(tmp_path):
    assert load_caller_settings('{"a": 1}', str(tmp_path)) == {"a": 1}
    (tmp_path / "s.json").write_text('{"b": 2}')
    assert load_caller_settings("s.json", str(tmp_path)) == {"b": 2}
    with pytest.raises(SettingsError):
        load_caller_settings("missing.json", str(tmp_path))
    with pytest.raises(SettingsError):
        load_caller_settings("{bad", str(tmp_path))
