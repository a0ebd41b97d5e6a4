"""The TFTP server's record of who fetched which file and when, for
``telefeatures provision doctor``.

Where: ``<state_dir>/tftp/fetches-<worker>.json``, one file per server worker
process (``state_dir`` is the ``state_dir`` setting, ``--state-dir``). Each is
rewritten atomically (temporary file, fsync, rename) at most once a second while
transfers happen, and when the server stops; a reader never sees half a file.
``load_fetches(state_dir)`` merges them all (the newest entry wins).

Format, version 1 (times are UTC, ISO 8601, to the millisecond)::

    {
      "version": 1,
      "root": "/srv/tftp",
      "written": "2026-11-29T07:40:02.500+00:00",
      "files": {
        "SEP0019E8F490AD.cnf.xml": {
          "ok":      {"peer": "10.0.10.21", "at": "2026-11-29T07:40:01.123+00:00", "bytes": 4312},
          "refused": {"peer": "10.0.10.99", "at": "...", "reason": "not the phone's address"},
          "failed":  {"peer": "10.0.10.21", "at": "...", "reason": "timed out at block 3"}
        }
      }
    }

Per file name (as the client asked for it, relative to the TFTP root) at most
three entries, each the latest of its kind: ``ok`` a complete transfer,
``refused`` a request for an existing file that the server turned away (the
phone's config asked from another address than the inventory's ``ip``; the
client saw "file not found"), ``failed`` a transfer that started and did not
complete. Names that do not exist are never recorded, so the record is bounded
by the files in the root, whatever strangers ask for.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .files import write_atomic

VERSION = 1
KINDS = ("ok", "refused", "failed")
RECORD_MODE = 0o600  # peer addresses: for the server's user (and root) only


@dataclass(frozen=True)
class Fetch:
    peer: str
    at: datetime
    bytes: int | None = None  # "ok" entries
    reason: str | None = None  # "refused" and "failed" entries

    def to_json(self) -> dict:
        entry: dict = {"peer": self.peer, "at": self.at.isoformat(timespec="milliseconds")}
        if self.bytes is not None:
            entry["bytes"] = self.bytes
        if self.reason is not None:
            entry["reason"] = self.reason
        return entry

    @classmethod
    def from_json(cls, entry: dict) -> Fetch:
        return cls(peer=str(entry["peer"]), at=datetime.fromisoformat(entry["at"]),
                   bytes=entry.get("bytes"), reason=entry.get("reason"))


@dataclass(frozen=True)
class FileFetches:
    ok: Fetch | None = None
    refused: Fetch | None = None
    failed: Fetch | None = None


def record_dir(state_dir: str | os.PathLike[str]) -> Path:
    return Path(state_dir) / "tftp"


class FetchRecord:
    """The server side: keeps the latest entries in memory, writes them out."""

    def __init__(self, state_dir: str | os.PathLike[str], root: str, worker: int = 0):
        self.path = record_dir(state_dir) / f"fetches-{worker}.json"
        self.root = root
        self.files: dict[str, dict[str, dict]] = {}
        self.dirty = False
        try:  # keep what an earlier run of this worker recorded
            old = json.loads(self.path.read_text())
            if old.get("version") == VERSION and isinstance(old.get("files"), dict):
                self.files = old["files"]
        except (OSError, ValueError):
            pass

    def note(self, name: str, kind: str, peer: str, *, bytes: int | None = None, reason: str | None = None) -> None:
        fetch = Fetch(peer, datetime.now(timezone.utc), bytes, reason)
        self.files.setdefault(name, {})[kind] = fetch.to_json()
        self.dirty = True

    def write(self) -> None:
        """Write the record atomically if anything changed since the last write."""
        if not self.dirty:
            return
        self.dirty = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        document = {"version": VERSION, "root": self.root,
                    "written": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "files": self.files}
        write_atomic(self.path, json.dumps(document, separators=(",", ":")).encode(), RECORD_MODE, keep_mode=False)


def load_fetches(state_dir: str | os.PathLike[str]) -> dict[str, FileFetches]:
    """Every worker's record merged: file name -> latest ok/refused/failed fetch.
    Unreadable or foreign files are skipped (no record is not an error: the
    server may never have run with this state dir)."""
    merged: dict[str, dict[str, Fetch]] = {}
    for path in sorted(record_dir(state_dir).glob("fetches-*.json")):
        try:
            document = json.loads(path.read_text())
            if document.get("version") != VERSION:
                continue
            files = document["files"]
            for name, kinds in files.items():
                for kind in KINDS:
                    if kind in kinds:
                        fetch = Fetch.from_json(kinds[kind])
                        known = merged.setdefault(name, {}).get(kind)
                        if known is None or fetch.at > known.at:
                            merged[name][kind] = fetch
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return {name: FileFetches(**kinds) for name, kinds in merged.items()}
