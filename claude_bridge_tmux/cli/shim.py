"""The bridge's side of the ``claude`` shim (``claude_bridge_tmux/data/claude-shim``, also ``shims/claude``).

The shell shim pre-screens argv: without a standalone ``-p``/``--print`` token before ``--`` it execs the
real claude directly.  Otherwise it execs ``claude-bridge`` with ``CLAUDE_BRIDGE_VIA_SHIM=1`` and
``CLAUDE_BRIDGE_CLAUDE_BIN=<real claude>``; ``dispatch`` then decides exactly, with the option table of
that claude's version, and execs the real claude for everything that is not a print-mode run:

* ``-p`` that is the value of another option (``--model -p``, ``--append-system-prompt -p``) is not print
  mode; neither is a ``-p`` inside a short cluster (``-pc``): the real CLI decides print mode from a
  standalone ``-p``/``--print`` token before ``--`` (2.1.329 skips option values; 2.1.197 takes the token
  anywhere, so what we send to the bridge is print mode on both) and, on a terminal, runs ``-pc``
  interactively;
* ``--version`` / ``--help`` requests: the real claude answers them itself.

Parse errors stay with the bridge (its messages are claude's).  Exec keeps the pid, stdio, exit code
and signal behaviour of the original call.
"""

from __future__ import annotations

import os
import shutil
import sys
from importlib import resources
from pathlib import Path

from claude_bridge_tmux.invocation import flags as flagmod
from claude_bridge_tmux.invocation.plan import UsageError, claude_version

VIA_SHIM = "CLAUDE_BRIDGE_VIA_SHIM"
GUARD = "CLAUDE_BRIDGE_SHIM_GUARD"
SHIM_RESOURCE = "claude-shim"
_BRIDGE_DEFAULT_LINE = "bridge_default=''"


def print_mode(argv: list[str], table) -> bool:
    """True when claude itself would run ``argv`` in print mode because of a ``-p``/``--print`` flag."""
    if not flagmod.print_flag_present(argv, table, "token-scan"):
        return False
    try:
        parsed = flagmod.parse(argv, table)
    except flagmod.FlagError:
        return True     # claude's own parse error: the bridge prints the same text
    return not (parsed.version_requested or parsed.help_requested)


def exec_real(real: str, argv: list[str]) -> None:
    """Replace this process with the real claude (never returns)."""
    env = dict(os.environ)
    env.pop(VIA_SHIM, None)
    env[GUARD] = f"{os.getpid()}:{real}"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(real, [real, *argv], env)


def dispatch(argv: list[str]) -> None:
    """Called first by ``cli.main`` when the shim started us: returns when the bridge should run
    ``argv``; otherwise execs the real claude."""
    os.environ.pop(VIA_SHIM, None)
    real = os.environ.get("CLAUDE_BRIDGE_CLAUDE_BIN")
    if not real:
        return
    try:
        table = flagmod.load_table(claude_version(real))
    except UsageError:
        exec_real(real, argv)   # claude cannot even say its version: let it speak for itself
        return
    if not print_mode(argv, table):
        exec_real(real, argv)


# -- installing the shim ----------------------------------------------------------------------------
def packaged_shim() -> Path:
    """Path of the shim shipped inside the package."""
    return Path(str(resources.files("claude_bridge_tmux").joinpath("data", SHIM_RESOURCE)))


def bridge_executable() -> str | None:
    """The ``claude-bridge`` command of this installation (next to the interpreter), or on PATH."""
    here = Path(sys.executable).parent / "claude-bridge"
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    return shutil.which("claude-bridge")


def install(directory: str | os.PathLike, *, bridge: str | None = None, force: bool = False) -> Path:
    """Write the shim as ``DIRECTORY/claude`` (mode 0755), with this installation's claude-bridge filled
    in as its default.  Raises FileExistsError when a non-shim ``claude`` is already there."""
    target = Path(directory) / "claude"
    if (target.exists() or target.is_symlink()) and not force:
        from claude_bridge_tmux.invocation.plan import is_shim
        if not is_shim(str(target)):
            raise FileExistsError(f"{target} exists and is not the claude-bridge shim (use --force)")
    text = packaged_shim().read_text()
    bridge = bridge or bridge_executable()
    if bridge:
        quoted = "'" + bridge.replace("'", "'\"'\"'") + "'"
        text = text.replace(_BRIDGE_DEFAULT_LINE, f"bridge_default={quoted}", 1)
    Path(directory).mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(".claude.shim.tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)
    return target
