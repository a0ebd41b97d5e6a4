"""The ``telefeatures`` command as a user runs it: the script installed next to
this Python (the project's venv), else whatever ``telefeatures`` is on PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

TELEFEATURES = shutil.which("telefeatures", path=os.path.dirname(sys.executable)) or "telefeatures"


def run_cli(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``telefeatures ARGS`` with ``env`` added to this process's environment; output captured as text."""
    return subprocess.run([TELEFEATURES, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
