"""``python -m claude_bridge_tmux`` — same as the ``claude-bridge`` command."""

import sys

from claude_bridge_tmux.cli.main import main

sys.exit(main())
