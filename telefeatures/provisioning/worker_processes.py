"""Worker processes that end with the process that started them.

A forked worker outlives its parent unless told otherwise: a build's worker
waits on a task queue whose pipe it holds open itself, and a TFTP worker
keeps serving its socket. When the parent is ended by a signal it cannot
handle (SIGKILL, or SIGTERM while it is not listening), the workers would
stay: a build's for ever, a TFTP server's answering phones nobody supervises.
"""

from __future__ import annotations

import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1  # prctl(2)


def end_with_parent(parent_pid: int) -> None:
    """In a freshly forked worker: get SIGTERM when ``parent_pid`` ends (and
    exit at once if it already has)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent ended before prctl took effect
        os._exit(0)
