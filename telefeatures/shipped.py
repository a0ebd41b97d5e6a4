"""Files shipped inside the package (``telefeatures/share``): the Asterisk
dialplan to ``#include``, the example settings and inventory, the systemd units.

In a checkout they are links to ``dialplan/``, ``contrib/`` and
``provisioning/``; a wheel carries copies, so a pip-installed user has them too.
"""

from __future__ import annotations

import os
import tempfile
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

EXAMPLES = {
    "config": "telefeatures.example.toml",
    "inventory": "inventory.example.toml",
    "systemd": "systemd/telefeatures.service",
    "systemd-tftp": "systemd/telefeatures-tftp.service",
}


def share() -> Traversable:
    return files("telefeatures") / "share"


def dialplan_files() -> dict[str, bytes]:
    """Name -> content of every dialplan file."""
    folder = share() / "dialplan"
    return {entry.name: entry.read_bytes() for entry in sorted(folder.iterdir(), key=lambda e: e.name)
            if entry.name.endswith(".conf")}


def example(name: str) -> str:
    return (share() / EXAMPLES[name]).read_text()


def install_dialplan(dest: Path, force: bool = False) -> list[tuple[str, str]]:
    """Copy the dialplan files into ``dest`` (created if missing), each written
    atomically with mode 0644. A file already there with other content is kept
    unless ``force``: it may hold local changes. Returns (file, what happened)."""
    dest.mkdir(parents=True, exist_ok=True)
    done = []
    for name, content in dialplan_files().items():
        target = dest / name
        existed = target.exists()
        if existed:
            if target.read_bytes() == content:
                done.append((name, "unchanged"))
                continue
            if not force:
                done.append((name, "kept: it differs from the shipped file (local changes?); --force replaces it"))
                continue
        fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        done.append((name, "replaced" if existed else "installed"))
    return done
