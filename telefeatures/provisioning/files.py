"""Atomic, change-only file writes.

A phone may fetch its file at any moment (it reboots, or is told to re-sync),
so a file is either the old version or the new one, never half of each:
write a temporary file in the same directory, fsync it, then rename it over
the target. Unchanged files are not touched at all, so their inode and mtime
stay as they were and nothing downstream sees a spurious change.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import secrets
import tempfile
from collections.abc import Sequence
from pathlib import Path

_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def write_atomic(path: Path, data: bytes, mode: int, keep_mode: bool = True) -> None:
    """Replace ``path`` with ``data`` (permissions ``mode``) in one rename.

    With ``keep_mode``, an existing file's permission bits are kept, so an
    admin's chmod (say, 0640 for Asterisk's group) survives rebuilds.
    """
    directory = path.parent
    if keep_mode:
        try:
            mode = os.stat(path).st_mode & 0o7777
        except FileNotFoundError:
            pass
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_many_atomic(files: Sequence[tuple[Path, bytes, int]]) -> None:
    """``write_atomic`` for many files with one flush to disk instead of one
    fsync each (10,000 phone files: 0.4 s instead of 9 s). Every new content
    is on disk before any file is replaced, so each file is still either its
    old or its new version after a crash; the directories are synced last."""
    temporaries: list[tuple[str, Path]] = []
    renamed = 0
    # One random part for all of this call's temporary names (mkstemp draws one per file, which
    # costs more than the file's write); a name taken already is never overwritten (O_EXCL).
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    try:
        for path, data, mode in files:
            try:
                mode = os.stat(path).st_mode & 0o7777  # keep an admin's chmod
            except FileNotFoundError:
                pass
            fd, tmp = _create_temporary(path, token)
            temporaries.append((tmp, path))
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
        for directory in {path.parent for _, path in temporaries}:
            sync_filesystem(directory)
        for tmp, path in temporaries:
            os.replace(tmp, path)
            renamed += 1
    finally:
        for tmp, _ in temporaries[renamed:]:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
    for directory in {path.parent for path, _, _ in files}:
        fsync_directory(directory)


_TEMPORARY_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _create_temporary(path: Path, token: str) -> tuple[int, str]:
    """A new file beside ``path`` (mode 0600 until its own is set), as mkstemp makes it."""
    tmp = f"{path.parent}/.{path.name}.{token}.tmp"
    try:
        return os.open(tmp, _TEMPORARY_FLAGS, 0o600), tmp
    except FileExistsError:
        return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)


def sync_filesystem(directory: Path) -> None:
    """Flush the filesystem holding ``directory`` (syncfs(2); sync(2) where it fails)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _LIBC.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def fsync_directory(directory: Path) -> None:
    """Make completed renames in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_if_exists(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
