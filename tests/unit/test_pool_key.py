"""Pane keys: only what claude reads splits the pool; the job's own environment reaches its tools."""

from __future__ import annotations

import os
import subprocess

import pytest

from claude_bridge_tmux.pool.key import (
    claude_env_names,
    claude_reads,
    job_env_script,
    key_material,
    needs_strict_env,
    pane_key,
    route_key,
)

BASE = {"HOME": "/home/u", "PATH": "/usr/bin:/bin", "ANTHROPIC_BASE_URL": "http://127.0.0.1:1"}


def key(env, args=(), settings=None, version="2.1.329"):
    return pane_key(key_material("/bin/claude", version, "/w", env, list(args), settings or {}, False))


@pytest.mark.parametrize("version", ["2.1.197", "2.1.329", "9.9.9"])
def test_claude_variables_are_found_in_the_cli(version):
    names = claude_env_names(version)
    for name in ("HOME", "PATH", "ANTHROPIC_BASE_URL", "CLAUDE_CONFIG_DIR", "HTTPS_PROXY", "CLAUDE_ENV_FILE"):
        assert name in names, name
    assert "TASK_ID" not in names


@pytest.mark.parametrize("name,reads", [
    ("TASK_ID", False), ("GITHUB_RUN_ID", False), ("MY_APP_TOKEN", False),
    ("HOME", True), ("ANTHROPIC_MODEL", True), ("CLAUDE_CODE_MAX_OUTPUT_TOKENS", True),
    ("AWS_REGION", True), ("LC_ALL", True), ("https_proxy", True), ("ANTHROPIC_SOMETHING_NEW", True),
])
def test_claude_reads(name, reads):
    assert claude_reads(name, "2.1.329") is reads


def test_unread_variable_keeps_the_key_read_variable_changes_it():
    assert key(dict(BASE, TASK_ID="1")) == key(dict(BASE, TASK_ID="2")) == key(BASE)
    assert key(dict(BASE, PWD="/a", SHLVL="3")) == key(BASE)
    assert key(dict(BASE, ANTHROPIC_MODEL="x")) != key(BASE)
    assert key(dict(BASE, HOME="/home/v")) != key(BASE)


@pytest.mark.parametrize("env,args,settings,strict", [
    (BASE, [], {}, False),
    (BASE, ["--mcp-config", "{}"], {}, True),
    (BASE, ["--mcp-config={}"], {}, True),
    (BASE, [], {"hooks": {"Stop": []}}, True),
    (BASE, [], {"hooks": {}}, False),
    (BASE, [], {"env": {"A": "1"}}, False),
    (dict(BASE, CLAUDE_ENV_FILE="/tmp/x"), [], {}, True),
])
def test_strict_keys(env, args, settings, strict):
    assert needs_strict_env(env, args, settings) is strict
    assert (key(dict(env, TASK_ID="1"), args, settings) != key(dict(env, TASK_ID="2"), args, settings)) is strict


def test_job_env_script_exports_changes_and_unsets_extras():
    pane = {"HOME": "/h", "TASK_ID": "1", "ONLY_PANE": "x", "CLAUDE_ENV_FILE": "/r/job-env.sh", "PWD": "/"}
    job = {"HOME": "/h", "TASK_ID": "2", "NEW": "it's $(rm -rf /) `x` \"q\"", "bad-name": "v", "PWD": "/w",
           "NUL": "a\0b"}
    assert job_env_script(pane, job) == (
        "export NEW='it'\"'\"'s $(rm -rf /) `x` \"q\"'\n"
        "export TASK_ID=2\n"
        "unset ONLY_PANE\n")
    assert job_env_script(job, job) == ""


def test_job_env_script_evaluates_nothing(tmp_path):
    """Sourced by a real shell, the script sets the job's values literally and runs none of them."""
    marker = tmp_path / "ran"
    job = {"V1": f"$(touch {marker})", "V2": f"`touch {marker}`; touch {marker}", "V3": "line1\nline2", "V4": ""}
    script = tmp_path / "env.sh"
    script.write_text(job_env_script({"GONE": "1"}, job))
    out = subprocess.run(["sh", "-c", f'. "{script}"; printf "%s|" "$V1" "$V2" "$V3" "$V4" "${{GONE-unset}}"'],
                         capture_output=True, text=True, env={"PATH": os.environ["PATH"], "GONE": "1"})
    assert out.stdout == "|".join([job["V1"], job["V2"], job["V3"], "", "unset"]) + "|"
    assert not marker.exists()


def test_a_route_is_the_same_on_every_host_and_splits_like_a_key():
    """route_key leaves out the binary and takes only the carried variables: two workers with other
    binaries compute one route for one job; another option or a variable claude reads gives another."""
    from claude_bridge_tmux.pool.redisq import strip_credentials, worker_env
    job = {"ANTHROPIC_MODEL": "m", "TASK_ID": "7", "MY_API_KEY": "secret"}
    host_a = {"HOME": "/home/a", "PATH": "/a/bin", "CLAUDE_BRIDGE_RUNTIME_DIR": "/run/a"}
    host_b = {"HOME": "/home/b", "PATH": "/b/bin", "CLAUDE_BRIDGE_RUNTIME_DIR": "/run/b"}
    carried = strip_credentials(job)
    assert "MY_API_KEY" not in carried
    ra = route_key("2.1.329", "/w", carried, ["--model", "x"], {}, False)
    rb = route_key("2.1.329", "/w", strip_credentials(job), ["--model", "x"], {}, False)
    assert ra == rb
    # (the pane keys of the two hosts differ: their HOME and PATH are in them)
    ka = pane_key(key_material("/a/claude", "2.1.329", "/w", worker_env(host_a, job), ["--model", "x"], {}, False))
    kb = pane_key(key_material("/b/claude", "2.1.329", "/w", worker_env(host_b, job), ["--model", "x"], {}, False))
    assert ka != kb
    assert route_key("2.1.329", "/w", carried, ["--model", "y"], {}, False) != ra
    assert route_key("2.1.329", "/w", dict(carried, ANTHROPIC_MODEL="n"), ["--model", "x"], {}, False) != ra
    assert route_key("2.1.329", "/w", dict(carried, TASK_ID="8"), ["--model", "x"], {}, False) == ra
    assert route_key("2.1.329", "/other", carried, ["--model", "x"], {}, False) != ra


def test_gated_calls_share_a_gated_pane_key(tmp_path):
    """--max-turns and --max-budget-usd calls (any limit) share warm panes that carry the tool gate;
    those panes are not the ungated calls' panes; --json-schema and session options keep their own pane."""
    from claude_bridge_tmux.pool.daemon import Daemon
    from claude_bridge_tmux.run.prepare import prepare
    fake = tmp_path / "claude"
    fake.write_text("#!/bin/sh\necho '2.1.329 (Claude Code)'\n")
    fake.chmod(0o755)
    env = dict(BASE, HOME=str(tmp_path), CLAUDE_BRIDGE_CLAUDE_BIN=str(fake),
               CLAUDE_BRIDGE_STATE_DIR=str(tmp_path / "state"))

    def job(*argv: str):
        prep = prepare(["-p", "x", *argv], env=env, cwd=str(tmp_path))
        own = Daemon.needs_dedicated_pane(prep, ["-p", "x", *argv])
        cfg = Daemon._config(prep)
        return own, cfg

    own_plain, plain = job("--output-format", "json")
    own_1, turns_1 = job("--output-format", "json", "--max-turns", "1")
    own_5, turns_5 = job("--output-format", "json", "--max-turns", "5")
    own_b, budget = job("--output-format", "json", "--max-budget-usd", "0.5")
    assert not (own_plain or own_1 or own_5 or own_b)
    assert turns_1.gated and turns_5.gated and budget.gated and not plain.gated
    assert turns_1.key == turns_5.key == budget.key != plain.key
    assert turns_1.route == turns_5.route != plain.route
    assert "(tool gate)" in turns_1.label and "(tool gate)" not in plain.label
    assert job("--json-schema", '{"type":"object"}')[0]
    assert job("--max-turns", "1", "--session-id", "00000000-0000-4000-8000-000000000000")[0]
    assert job("--max-turns", "1", "--no-session-persistence")[0]
