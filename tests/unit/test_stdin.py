"""stdin: claude's rules for a piped prompt."""

import os
import subprocess
import sys
import time

import pytest

from claude_bridge_tmux.invocation.stdin import StdinError, read_prompt_stdin


def test_reads_pipe_to_eof_keeping_trailing_newline():
    r, w = os.pipe()
    os.write(w, "héllo\n".encode())
    os.close(w)
    with os.fdopen(r, "rb") as f:
        assert read_prompt_stdin(f) == "héllo\n"


def test_silent_pipe_warns_after_3s_and_proceeds():
    code = ("import sys; from claude_bridge_tmux.invocation.stdin import read_prompt_stdin;"
            "print(repr(read_prompt_stdin(warn=lambda m: print(m, file=sys.stderr))))")
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    t0 = time.monotonic()
    p.wait(timeout=10)  # stdin stays open and silent
    elapsed = time.monotonic() - t0
    out, err = p.stdout.read(), p.stderr.read()
    p.stdin.close()
    assert out.strip() == b"None"
    assert b"no stdin data received in 3s" in err
    assert elapsed >= 2.9


def test_too_large_is_an_error(tmp_path):
    big = tmp_path / "big"
    big.write_bytes(b"x" * (10 * 1024 * 1024 + 1))
    with open(big, "rb") as f, pytest.raises(StdinError, match="exceeds 10MB"):
        read_prompt_stdin(f)
