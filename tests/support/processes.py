"""Processes a test started: seen through /proc, and cleaned up."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def running(pid: str) -> bool:
    """The process exists and has not exited (a zombie waits only to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def kill_leftovers(pids: list[str]) -> None:
    """SIGKILL whichever of ``pids`` is still there (a test's clean-up)."""
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
