"""Processes seen through /proc."""

from __future__ import annotations

from pathlib import Path


def running(pid: str) -> bool:
    """The process exists and has not exited (a zombie waits only to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
