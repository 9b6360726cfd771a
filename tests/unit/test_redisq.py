"""The Redis queue's pure parts: what a job carries, and where it may run."""

from __future__ import annotations

import os

import pytest

from claude_bridge_tmux.pool.redisq import redact, strip_credentials, worker_env


def test_no_credential_or_host_path_leaves_the_caller():
    env = {"ANTHROPIC_API_KEY": "sk-ant-x", "ANTHROPIC_AUTH_TOKEN": "t", "CLAUDE_CODE_OAUTH_TOKEN": "o",
           "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "s", "GITHUB_TOKEN": "g", "DB_PASSWORD": "p",
           "MY_APIKEY": "k", "HOME": "/home/caller", "PATH": "/caller/bin", "CLAUDE_CONFIG_DIR": "/c",
           "ANTHROPIC_BASE_URL": "http://caller-gw", "TASK_ID": "7", "ANTHROPIC_MODEL": "sonnet", "CI": "1"}
    assert strip_credentials(env) == {"TASK_ID": "7", "ANTHROPIC_MODEL": "sonnet", "CI": "1"}


def test_the_worker_keeps_its_own_login_and_home():
    own = {"HOME": "/home/worker", "ANTHROPIC_API_KEY": "sk-worker", "PATH": "/usr/bin"}
    job = {"HOME": "/home/caller", "ANTHROPIC_API_KEY": "sk-caller", "TASK_ID": "7"}
    assert worker_env(own, job) == {"HOME": "/home/worker", "ANTHROPIC_API_KEY": "sk-worker", "PATH": "/usr/bin",
                                    "TASK_ID": "7"}


@pytest.mark.parametrize("url,shown", [
    ("redis://user:secret@host:6379/0", "redis://user:***@host:6379/0"),
    ("rediss://:secret@host:6380/1", "rediss://:***@host:6380/1"),
    ("redis://host:6379/0", "redis://host:6379/0"),
])
def test_urls_are_shown_without_their_password(url, shown):
    assert redact(url) == shown


def test_cwd_must_be_inside_a_root(tmp_path):
    from functools import partial

    from claude_bridge_tmux.pool.redisq import cwd_problem

    check = partial(cwd_problem, roots=[os.path.realpath(tmp_path / "repos")], worker="w1")
    (tmp_path / "repos" / "a").mkdir(parents=True)
    (tmp_path / "reposX").mkdir()
    assert check(str(tmp_path / "repos" / "a")) is None
    assert check(str(tmp_path / "repos")) is None
    assert "outside its roots" in (check(str(tmp_path / "reposX")) or "")
    assert "does not exist" in (check(str(tmp_path / "missing")) or "")
    (tmp_path / "repos" / "link").symlink_to(tmp_path / "reposX")
    assert "outside its roots" in (check(str(tmp_path / "repos" / "link")) or "")
