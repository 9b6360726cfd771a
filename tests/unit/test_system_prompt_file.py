"""The --system-prompt-file start-up check the bridge makes before claude starts (claude's wording:
``Error: System prompt file not found: <path resolved against the cwd>``, 2.1.197 and 2.1.329)."""

from __future__ import annotations

from claude_bridge_tmux.run.prepare import missing_system_prompt_file
from claude_bridge_tmux.versions import dialect


def test_a_missing_file_is_named_by_its_resolved_path(tmp_path):
    (tmp_path / "there.txt").write_text("x")
    args = ["--permission-mode", "default", "--system-prompt-file", "sub/../missing.txt"]
    assert missing_system_prompt_file(args, str(tmp_path)) == str(tmp_path / "missing.txt")
    assert missing_system_prompt_file(["--system-prompt-file", "/no/such/f"], str(tmp_path)) == "/no/such/f"
    assert missing_system_prompt_file(["--system-prompt-file", "there.txt"], str(tmp_path)) is None
    assert missing_system_prompt_file(["--system-prompt", "x"], str(tmp_path)) is None
    # the last one counts (as claude's parser keeps the last value)
    args = ["--system-prompt-file", "missing.txt", "--system-prompt-file", "there.txt"]
    assert missing_system_prompt_file(args, str(tmp_path)) is None


def test_the_pair_of_options_per_version():
    assert not dialect("2.1.197").system_prompt_pair_joined and dialect("2.1.329").system_prompt_pair_joined
