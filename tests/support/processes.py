"""Processes a test started: seen through /proc, and cleaned up."""

from __future__ import annotations

import os
import signal
import subprocess
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


def stop_process(process: subprocess.Popen | None, grace: float = 5) -> None:
    """SIGTERM, ``grace`` seconds to exit, then SIGKILL; reaped either way."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace)
