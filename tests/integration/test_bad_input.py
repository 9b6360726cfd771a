"""Bad input, table-driven: each case runs through real `claude -p` and through claude-bridge in the same
bed; exit code and output must be claude's (stderr compared with paths and the mock's port masked).
Never a traceback, never a hang (every run has a timeout)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

NIL_UUID = "00000000-0000-4000-8000-000000000000"

# (id, argv after the program, stdin bytes or None, how the outputs are compared)
#   "exact": exit code, stdout and stderr;   "result": exit code and the result's text/prompt the model got
CASES = [
    ("unknown_flag", ["-p", "x", "--frobnicate"], None, "exact"),
    ("missing_value", ["-p", "x", "--model"], None, "exact"),
    ("bad_output_format", ["-p", "x", "--output-format", "yaml"], None, "exact"),
    ("bad_permission_mode", ["-p", "x", "--permission-mode", "sometimes"], None, "exact"),
    ("session_id_not_uuid", ["-p", "x", "--session-id", "abc"], None, "exact"),
    ("resume_unknown", ["-p", "x", "--resume", NIL_UUID], None, "exact"),
    ("session_id_with_resume", ["-p", "x", "--session-id", NIL_UUID, "--resume", NIL_UUID], None, "exact"),
    ("json_schema_not_json", ["-p", "x", "--json-schema", "{not json"], None, "exact"),
    ("mcp_config_missing", ["-p", "x", "--mcp-config", "/nonexistent/mcp.json"], None, "exact"),
    ("settings_missing", ["-p", "x", "--settings", "/nonexistent/settings.json"], None, "exact"),
    ("append_prompt_file_missing", ["-p", "x", "--append-system-prompt-file", "/nonexistent/p.txt"], None, "exact"),
    ("empty_prompt", ["-p", ""], None, "exact"),
    ("no_prompt_no_stdin", ["-p"], b"", "exact"),
    ("stream_json_without_verbose", ["-p", "x", "--output-format", "stream-json"], None, "exact"),
    ("stream_input_with_text_output", ["-p", "--input-format", "stream-json"], b"", "exact"),
    ("replay_without_stream_json", ["-p", "x", "--replay-user-messages"], None, "exact"),
    ("max_turns_not_a_number", ["-p", "hi", "--max-turns", "abc", "--output-format", "json"], None, "result"),
    ("prompt_starting_with_dash", ["-p", "--output-format", "json", "--", "-dash prompt"], None, "result"),
    ("prompt_hash", ["-p", "#remember this", "--output-format", "json"], None, "result"),
    ("prompt_tmux_formats", ["-p", "#{pane_pid} #[fg=red] ## #(id) %1 $SHELL", "--output-format", "json"],
     None, "result"),
    ("prompt_backslashes_quotes", ["-p", "a\\b \"q\" 'q' `x` \\n", "--output-format", "json"], None, "result"),
    ("stdin_crlf", ["-p", "--output-format", "json"], b"line one\r\nline two\r\n", "result"),
    ("stdin_invalid_utf8", ["-p", "--output-format", "json"], b"caf\xe9 \xff\xfe end\n", "result"),
    ("stdin_tabs_and_trailing_space", ["-p", "--output-format", "json"], b"\tindented\t\n  \n", "result"),
    ("stdin_only_newlines_with_arg", ["-p", "arg", "--output-format", "json"], b"\n\n", "result"),
    ("unicode_and_emoji", ["-p", "ünïcödé ✓ 🚀 שלום 日本語", "--output-format", "json"], None, "result"),
    ("very_long_line", ["-p", "x" * 20000, "--output-format", "json"], None, "result"),
    ("settings_not_json", ["-p", "hi", "--settings", "{not json", "--output-format", "json"], None, "exact"),
    ("fork_without_resume", ["-p", "hi", "--fork-session", "--output-format", "json"], None, "result"),
    ("output_format_twice", ["-p", "hi", "--output-format", "json", "--output-format", "text"], None, "result"),
    ("verbose_text", ["-p", "hi", "--verbose"], None, "result"),
    ("model_unknown_alias", ["-p", "hi", "--model", "no-such-model-x", "--output-format", "json"], None, "result"),
]


def _mask(text: str, bed) -> str:
    text = text.replace(str(bed.cwd), "CWD").replace(str(bed.home), "HOME")
    text = re.sub(r"127\.0\.0\.1:\d+", "HOST", text)
    return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "UUID", text)


def _run(cmd: list[str], bed, stdin: bytes | None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, input=stdin, capture_output=True, timeout=120, env=bed.env, cwd=bed.cwd,
                          stdin=None if stdin is not None else subprocess.DEVNULL)


def _result(p: subprocess.CompletedProcess) -> object:
    out = p.stdout.decode("utf-8", "replace")
    try:
        res = json.loads(out)
    except ValueError:
        return out
    return {k: res.get(k) for k in ("type", "subtype", "is_error", "result", "num_turns")}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_like_claude_p(bed, case):
    _name, argv, stdin, how = case
    ours = _run([sys.executable, "-m", "claude_bridge_tmux", *argv], bed, stdin)
    n_ours = len(bed.mock.main_requests())
    ours_prompt = bed.mock.main_requests()[-1]["prompt"] if n_ours else None
    real = _run([bed.claude_bin, *argv], bed, stdin)
    real_prompt = bed.mock.main_requests()[-1]["prompt"] if len(bed.mock.main_requests()) > n_ours else None
    assert b"Traceback" not in ours.stderr
    assert ours.returncode == real.returncode, (ours.stderr, real.stderr)
    if how == "exact":
        assert ours.stdout == real.stdout
        assert _mask(ours.stderr.decode("utf-8", "replace"), bed) == _mask(real.stderr.decode("utf-8", "replace"), bed)
    else:
        assert _result(ours) == _result(real)
        assert ours_prompt == real_prompt


def test_a_deleted_cwd(bed, tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    cmd = [sys.executable, "-c", "import os, subprocess, sys; os.chdir(sys.argv[1]); os.rmdir(sys.argv[1]); "
           "p = subprocess.run(sys.argv[2:], capture_output=True, timeout=60); "
           "sys.stdout.buffer.write(p.stdout); sys.stderr.buffer.write(p.stderr); sys.exit(p.returncode)", str(gone)]
    ours = subprocess.run([*cmd, sys.executable, "-m", "claude_bridge_tmux", "-p", "hi"], capture_output=True,
                          timeout=90, env=bed.env, stdin=subprocess.DEVNULL)
    assert b"Traceback" not in ours.stderr and ours.returncode != 0
    assert len(ours.stderr.decode().strip().splitlines()) == 1, ours.stderr


def test_a_settings_file_that_is_not_json(bed):
    """claude -p runs without such a file (and succeeds): so does the bridge."""
    (bed.cwd / "bad-settings.json").write_text("{not json at all")
    args = ["-p", "hi", "--settings", "bad-settings.json", "--output-format", "json"]
    ours = _run([sys.executable, "-m", "claude_bridge_tmux", *args], bed, None)
    real = _run([bed.claude_bin, *args], bed, None)
    assert (ours.returncode, _result(ours)) == (real.returncode, _result(real))
    assert ours.returncode == 0
