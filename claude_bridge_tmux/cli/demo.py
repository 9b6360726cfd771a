"""``claude-bridge demo``: one real run on the bundled mock model, for a first look without a login.

Starts ``testing.mock_api`` on a free loopback port, makes a throwaway HOME and working folder,
and runs ``claude-bridge -p "<prompt>" --output-format stream-json --verbose`` (a tool-use turn:
the model runs ``echo hello from the bridge`` through Bash) with the real claude CLI in tmux.
Prints the command and its output; returns the bridge's exit code.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from claude_bridge_tmux.testing.mock_api import MockServer

DEMO_PROMPT = "Show me the bridge at work MOCK:tool=echo_hello_from_the_bridge"


def run_demo(claude_version: str | None = None) -> int:
    """Run the demo; the claude binary comes from CLAUDE_BRIDGE_CLAUDE_BIN, ``claude`` on PATH, or
    ``scripts/install-claude <claude_version>`` when a version is given."""
    env = dict(os.environ)
    if claude_version:
        script = Path(__file__).resolve().parents[2] / "scripts" / "install-claude"
        res = subprocess.run([str(script), claude_version], capture_output=True, text=True)
        if res.returncode != 0:
            print(res.stderr, file=sys.stderr)
            return 1
        env["CLAUDE_BRIDGE_CLAUDE_BIN"] = res.stdout.strip().splitlines()[-1]
    tmp = Path(tempfile.mkdtemp(prefix="claude-bridge-demo-"))
    try:
        home, work = tmp / "home", tmp / "work"
        home.mkdir()
        work.mkdir()
        with MockServer() as mock:
            env.update({
                "HOME": str(home), "ANTHROPIC_BASE_URL": mock.url, "ANTHROPIC_API_KEY": "sk-ant-demo-key-not-real-0000",
                "CLAUDE_CODE_MAX_RETRIES": "0",
            })
            env.pop("CLAUDE_CONFIG_DIR", None)
            argv = ["-p", DEMO_PROMPT, "--output-format", "stream-json", "--verbose"]
            print(f"$ claude-bridge {' '.join(argv)}    # mock model at {mock.url}, HOME={home}", flush=True)
            proc = subprocess.run([sys.executable, "-m", "claude_bridge_tmux", *argv], env=env, cwd=work,
                                  stdin=subprocess.DEVNULL)
            print(f"# exit code {proc.returncode}; model requests seen by the mock: {len(mock.main_requests())}")
            return proc.returncode
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
