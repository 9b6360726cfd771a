"""``python -m claude_bridge_tmux`` — same as the ``claude-bridge`` command."""

import sys

from .cli import main

sys.exit(main())
