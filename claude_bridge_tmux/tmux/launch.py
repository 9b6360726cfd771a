"""Pane trampoline: ``python -m claude_bridge_tmux.tmux.launch SPEC`` replaces itself with claude.

The pane's command line names only a private spec file, never the prompt, the environment or a
credential (tmux command lines are visible in ``ps``; send-keys/new-session are capped near 16 KB).
SPEC is a 0600 JSON file ``{"argv": [...], "env": {...}, "cwd": "...", "stdin": PATH | null}`` written by
the bridge; it is deleted as soon as it has been read, then ``execve(argv[0], argv, env)`` runs claude
with exactly that environment (the tmux server's own environment never leaks into the pane).

With ``stdin``, PATH (a 0600 file holding the first prompt's bytes) is opened, unlinked and made
claude's standard input: interactive claude reads a non-TTY stdin to EOF as its first prompt, byte for
byte like ``claude -p``, and keeps the terminal for its UI (docs/cli-behaviour.md §10).

Exit codes when claude cannot be started: 127 (not found / not executable), 126 (spec unreadable).
Kept import-light on purpose: it runs on every cold start.
"""

import json
import os
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m claude_bridge_tmux.tmux.launch SPEC", file=sys.stderr)
        return 126
    path = argv[1]
    try:
        with open(path, "rb") as f:
            spec = json.loads(f.read())
        os.unlink(path)
    except (OSError, ValueError) as e:
        print(f"claude-bridge: cannot read launch spec {path}: {e}", file=sys.stderr)
        return 126
    stdin_path = spec.get("stdin")
    if stdin_path:
        try:
            fd = os.open(stdin_path, os.O_RDONLY)
            os.unlink(stdin_path)
            os.dup2(fd, 0)
            os.close(fd)
        except OSError as e:
            print(f"claude-bridge: cannot read the prompt file {stdin_path}: {e.strerror}", file=sys.stderr)
            return 126
    try:
        os.chdir(spec["cwd"])
    except OSError as e:
        print(f"claude-bridge: cannot enter {spec['cwd']}: {e.strerror}", file=sys.stderr)
        return 126
    prog = spec["argv"][0]
    try:
        os.execve(prog, spec["argv"], spec["env"])
    except OSError as e:
        print(f"claude-bridge: cannot start {prog}: {e.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv))
