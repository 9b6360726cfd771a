"""Private runtime and state directories of the bridge.

* runtime dir: ``$XDG_RUNTIME_DIR/claude-bridge`` (else ``/tmp/claude-bridge-<uid>``), mode 0700, owned
  by the current user — holds tmux sockets, per-run hook spools, settings and launch specs.
* state dir: ``$XDG_STATE_HOME/claude-bridge`` (else ``~/.local/state/claude-bridge``) — run logs.
Both can be overridden with ``CLAUDE_BRIDGE_RUNTIME_DIR`` / ``CLAUDE_BRIDGE_STATE_DIR``.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from claude_bridge_tmux.errors import SetupError


class UnsafeDirectoryError(SetupError):
    """A private directory exists but is not owned by us or is accessible to others."""


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700; refuse one owned by another user or open to others.

    Raises UnsafeDirectoryError with a one-line reason.
    """
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = path.lstat()
    except FileExistsError:
        raise UnsafeDirectoryError(f"{path} is not a directory") from None
    except OSError as e:
        raise UnsafeDirectoryError(f"cannot create {path}: {e.strerror or e}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeDirectoryError(f"{path} is not a directory")
    if st.st_uid != os.getuid():
        raise UnsafeDirectoryError(f"{path} is owned by uid {st.st_uid}, not by you")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def runtime_dir(env: Mapping[str, str] | None = None) -> Path:
    """The bridge's private runtime directory (created 0700); ``env`` defaults to ``os.environ``."""
    env = os.environ if env is None else env
    if env.get("CLAUDE_BRIDGE_RUNTIME_DIR"):
        return ensure_private_dir(Path(env["CLAUDE_BRIDGE_RUNTIME_DIR"]))
    xdg = env.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg) and os.access(xdg, os.W_OK):
        return ensure_private_dir(Path(xdg) / "claude-bridge")
    return ensure_private_dir(Path(tempfile.gettempdir()) / f"claude-bridge-{os.getuid()}")


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """The bridge's state directory for run logs (created 0700); ``env`` defaults to ``os.environ``."""
    env = os.environ if env is None else env
    if env.get("CLAUDE_BRIDGE_STATE_DIR"):
        return ensure_private_dir(Path(env["CLAUDE_BRIDGE_STATE_DIR"]))
    base = env.get("XDG_STATE_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".local", "state")
    return ensure_private_dir(Path(base) / "claude-bridge")


def new_run_dir(kind: str = "run", env: Mapping[str, str] | None = None) -> Path:
    """A fresh 0700 directory for one run (or one pane) inside the runtime dir: ``<kind>-<pid>-<rand>``."""
    base = runtime_dir(env)
    return Path(tempfile.mkdtemp(prefix=f"{kind}-{os.getpid()}-", dir=base))


class Changed(Exception):
    """:func:`atomic_write`'s ``unchanged`` check failed: someone else replaced the file meanwhile."""


def atomic_write(path: Path, data: bytes, mode: int = 0o600, unchanged: Callable[[], bool] | None = None) -> Path:
    """Replace ``path`` with ``data`` atomically (a temp file in the same directory, fsync, rename):
    readers see the old or the new content, never a part. The file keeps its current mode; a new
    file gets ``mode``. ``unchanged()``, when given, is asked right before the rename (after the
    fsync): False raises :class:`Changed` and leaves ``path`` alone (the caller re-reads and merges
    again). Raises OSError; the temp file is removed on any failure."""
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_copy(path, data, mode)
    try:
        if unchanged is not None and not unchanged():
            raise Changed(str(path))
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)            # (gone already once renamed)
    return path


def _temp_copy(path: Path, data: bytes, mode: int) -> str:
    """A temp file beside ``path`` holding ``data`` (fsynced, ``mode``); its name. Raises OSError
    (nothing left behind)."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


@functools.cache
def _libc_renameat2() -> Callable[..., int] | None:
    """libc's ``renameat2``, typed, or None (an older libc)."""
    import ctypes
    fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if fn is not None:
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn


def _renameat2_exchange(a: str, b: str) -> int:
    """``renameat2(a, b, RENAME_EXCHANGE)``: 0, or the errno (ENOSYS when libc lacks the call)."""
    import ctypes
    fn = _libc_renameat2()
    if fn is None:
        return errno.ENOSYS
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return 0
    return ctypes.get_errno()


def exchange_write(path: Path, data: bytes,
                   unchanged: Callable[[], bool] | None = None) -> tuple[tuple[int, int, int], bytes] | None:
    """Put ``data`` in place of the existing file ``path`` by swapping a temp file with it in one step
    (Linux ``renameat2(RENAME_EXCHANGE)``), keeping its mode. Unlike a rename over it, the version
    displaced is never lost, whoever wrote it: returns its (inode, mtime ns, size) and its bytes, so a
    caller that finds it is not the version it read can merge it back. None when the swap is not
    available here (no such call, a file system without it, ``path`` missing): nothing was written.
    ``unchanged()``: as for :func:`atomic_write`, asked right before the swap (raises ``Changed``).
    Raises OSError; the temp file is always removed."""
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return None
    tmp = _temp_copy(path, data, mode)
    try:
        if unchanged is not None and not unchanged():
            raise Changed(str(path))
        err = _renameat2_exchange(tmp, str(path))
        if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.ENOENT):
            return None
        if err:
            raise OSError(err, os.strerror(err), str(path))
        st = os.stat(tmp)
        with open(tmp, "rb") as f:
            old = f.read()
        return (st.st_ino, st.st_mtime_ns, st.st_size), old
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_private(path: Path, data: bytes) -> Path:
    """Create ``path`` with mode 0600 (O_EXCL) and write ``data``. Raises ``OSError`` naming ``path``
    (a half-written file is removed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise OSError(e.errno, e.strerror, str(path)) from e
    return path
