"""What the last build rendered, so the next renders only what changed.

Per phone file: a digest of everything the file is made from (this code and
its templates, the site, the phone, its passwords, the dial plan) and a
digest of the bytes written. A rebuild reuses a file without rendering it
when its inputs are the same and the file on disk is still exactly what was
written (an edited or damaged file is rendered again). The cache holds no
secrets (only SHA-256 digests) and lives beside the TFTP root, never in it;
losing it only costs time.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

from .files import read_if_exists, write_atomic

FORMAT = 1
CACHE_FILE_MODE = 0o600


@cache
def code_digest() -> str:
    """The provisioning code and its built-in templates: a new version of
    either renders everything again."""
    digest = hashlib.sha256()
    package = Path(__file__).parent
    for path in sorted([*package.glob("*.py"), *(package / "templates").glob("*")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def default_cache_path(tftp_root: Path) -> Path:
    root = tftp_root.resolve()
    return root.parent / f"{root.name}.build-cache.json"


class BuildCache:
    def __init__(self, path: Path | None, entries: dict[str, list[str]] | None = None):
        self.path = path
        self.entries = entries or {}  # file name -> [input digest, sha256 of the bytes written]

    @classmethod
    def load(cls, path: Path | None) -> BuildCache:
        if path is None:
            return cls(None)
        try:
            data = json.loads(path.read_bytes())
            entries = data["files"] if data.get("format") == FORMAT else {}
            if not isinstance(entries, dict):
                entries = {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            entries = {}  # missing or unreadable: everything is rendered, nothing is lost
        return cls(path, entries)

    def reusable(self, path: Path, inputs: str) -> bytes | None:
        """The file's current bytes if they are what ``inputs`` rendered last time."""
        entry = self.entries.get(path.name)
        if not entry or entry[0] != inputs:
            return None
        data = read_if_exists(path)
        if data is None or hashlib.sha256(data).hexdigest() != entry[1]:
            return None
        return data

    def record(self, path: Path, inputs: str, data: bytes) -> None:
        self.entries[path.name] = [inputs, hashlib.sha256(data).hexdigest()]

    def save(self, keep: set[str]) -> None:
        """Write the entries of the files in ``keep`` (the others left the inventory)."""
        if self.path is None:
            return
        entries = {name: value for name, value in sorted(self.entries.items()) if name in keep}
        data = json.dumps({"format": FORMAT, "files": entries}, separators=(",", ":")).encode()
        if read_if_exists(self.path) != data:
            write_atomic(self.path, data, CACHE_FILE_MODE, keep_mode=False)
