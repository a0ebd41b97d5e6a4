"""What the last build rendered, so the next renders only what changed.

Per phone file: a digest of everything the file is made from (this code and
its templates, the site, the phone, its passwords, the dial plan) and the
size and modification time the file was written with. A rebuild reuses a file without rendering it
when its inputs are the same and the file on disk is still exactly what was
written (an edited or damaged file is rendered again). The cache holds no
secrets (only SHA-256 digests of the inputs) and lives beside the TFTP root, never in it;
losing it only costs time.

For the PJSIP include (one file made of every phone's sections): the size and
modification time it was written with, its head's length, and per phone the
digest of what its sections are made from and their length, so a rebuild takes
an unchanged phone's sections from the file on disk instead of rendering them.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from pathlib import Path

from .files import read_if_exists, write_atomic

FORMAT = 2
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
    def __init__(self, path: Path | None, entries: dict[str, list[str]] | None = None,
                 sections: dict[str, list] | None = None):
        self.path = path
        # file name -> [input digest, size, mtime_ns] of the file as written
        self.entries = entries or {}
        # file name -> [full path, size, mtime_ns, head length, [[input digest, length], ...]]
        self.sections: dict[str, list] = sections or {}

    @classmethod
    def load(cls, path: Path | None) -> BuildCache:
        if path is None:
            return cls(None)
        try:
            data = json.loads(path.read_bytes())
            entries = data["files"] if data.get("format") == FORMAT else {}
            sections = data.get("sections", {}) if data.get("format") == FORMAT else {}
            if not isinstance(entries, dict):
                entries = {}
            if not isinstance(sections, dict):
                sections = {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            entries, sections = {}, {}  # missing or unreadable: everything is rendered, nothing is lost
        return cls(path, entries, sections)

    def reusable(self, path: Path, inputs: str) -> bool:
        """True if the file is what ``inputs`` rendered last time: same inputs,
        and the file still has the size and modification time it was written
        with (an edited file is rendered again)."""
        entry = self.entries.get(path.name)
        if not entry or entry[0] != inputs or len(entry) != 3:
            return False
        try:
            info = os.stat(path)
        except OSError:
            return False
        return [info.st_size, info.st_mtime_ns] == entry[1:]

    def record(self, path: Path, inputs: str) -> None:
        info = os.stat(path)
        self.entries[path.name] = [inputs, info.st_size, info.st_mtime_ns]

    def reusable_sections(self, path: Path, head: bytes, tail: bytes) -> dict[str, bytes]:
        """input digest -> the sections the file at ``path`` holds for it, if
        the file is still exactly as written (same size and modification time,
        and the recorded head, sections and tail add up to it); else {}."""
        entry = self.sections.get(path.name)
        try:
            where, size, mtime_ns, head_length, parts = entry  # type: ignore[misc]
            info = os.stat(path)
            if where != str(path.resolve()) or [info.st_size, info.st_mtime_ns] != [size, mtime_ns] or head_length != len(head):
                return {}
            data = path.read_bytes()
            if any(not isinstance(length, int) or length < 0 for _, length in parts):
                return {}
            if len(data) != size or not data.startswith(head) or not data.endswith(tail) \
                    or head_length + sum(length for _, length in parts) + len(tail) != size:
                return {}
            found: dict[str, bytes] = {}
            offset = head_length
            for inputs, length in parts:
                found[inputs] = data[offset:offset + length]
                offset += length
            return found
        except (OSError, TypeError, ValueError):
            return {}  # nothing recorded, or not what was recorded: every section is rendered

    def record_sections(self, path: Path, head_length: int, parts: list[tuple[str, int]]) -> None:
        info = os.stat(path)
        self.sections[path.name] = [str(path.resolve()), info.st_size, info.st_mtime_ns, head_length, [list(part) for part in parts]]

    def save(self, keep: set[str]) -> None:
        """Write the entries of the files in ``keep`` (the others left the inventory)."""
        if self.path is None:
            return
        entries = {name: value for name, value in sorted(self.entries.items()) if name in keep}
        sections = {name: value for name, value in sorted(self.sections.items()) if name in keep}
        data = json.dumps({"format": FORMAT, "files": entries, "sections": sections},
                          separators=(",", ":")).encode()
        if read_if_exists(self.path) != data:
            write_atomic(self.path, data, CACHE_FILE_MODE, keep_mode=False)
