"""Atomic, change-only file writes.

A phone may fetch its file at any moment (it reboots, or is told to re-sync),
so a file is either the old version or the new one, never half of each:
write a temporary file in the same directory, fsync it, then rename it over
the target. Unchanged files are not touched at all, so their inode and mtime
stay as they were and nothing downstream sees a spurious change.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


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
