"""claude-bridge: run `claude -p` through the interactive Claude Code CLI in tmux.

Pipeline: flags -> plan -> preseed -> pane -> submit -> transcript -> emit.
"""

__version__ = "0.1.0"
