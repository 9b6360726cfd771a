"""Arguments of callers written for other bridges that this bridge accepts without a flag of claude's.

* ``--desplega-local-auth`` -- agent-swarm adds it (after ``claude-bridge``) when it authenticates with
  ``ANTHROPIC_API_KEY`` instead of an OAuth token, asking the desplega bridge to pass the Anthropic
  variables into the pane.  This bridge always gives claude the caller's environment, so it is a no-op.
"""

from __future__ import annotations

NO_OP_FLAGS = frozenset({"--desplega-local-auth"})


def strip_compat_flags(argv: list[str]) -> list[str]:
    """``argv`` without the no-op wrapper flags before ``--`` (never touching option values: none of
    claude's options takes a value that starts with ``--desplega-``)."""
    if not any(a in NO_OP_FLAGS for a in argv):
        return argv
    end = argv.index("--") if "--" in argv else len(argv)
    return [a for a in argv[:end] if a not in NO_OP_FLAGS] + argv[end:]
