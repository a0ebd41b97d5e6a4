"""Import caller-ID blocking and last-caller data from Asterisk's AstDB.

Reads ``astdb.sqlite3`` (table ``astdb(key, value)``, keys like
``/CIDBlock/1000``) through SQLite's backup API from a read-only connection, so
a running Asterisk is never disturbed and the import sees one consistent
snapshot.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from .features.numbers import NumberRules, classify_caller
from .state.repository import CallerRecord, StateRepository
from .state.schema import valid_extension

TRUE_VALUES = frozenset({"1", "yes", "true", "on"})
FALSE_VALUES = frozenset({"0", "no", "false", "off", ""})


@dataclass
class ImportPlan:
    blocks: dict[str, tuple[str, bool]] = field(default_factory=dict)  # ext -> (key, blocked)
    callers: dict[str, tuple[str, CallerRecord]] = field(default_factory=dict)  # ext -> (key, record)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (key, value, why)


def read_astdb(path: Path) -> list[tuple[str, str]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        snapshot = sqlite3.connect(":memory:")
        source.backup(snapshot)
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"{path}: not an AstDB sqlite3 file ({exc})") from exc
    finally:
        source.close()
    try:
        rows = snapshot.execute("SELECT key, value FROM astdb ORDER BY key").fetchall()
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"{path}: no astdb table ({exc})") from exc
    finally:
        snapshot.close()
    return [(str(k), "" if v is None else str(v)) for k, v in rows]


def plan_import(
    rows: list[tuple[str, str]],
    block_family: str,
    lastcall_family: str,
    numbers: NumberRules,
    recorded_at: float,
) -> ImportPlan:
    plan = ImportPlan()
    for key, value in rows:
        parts = key.split("/")
        if len(parts) < 3 or parts[0] != "" or parts[1] not in (block_family, lastcall_family):
            continue  # another family: not ours
        family, ext = parts[1], "/".join(parts[2:])
        if not valid_extension(ext):
            plan.skipped.append((key, value, "invalid extension"))
            continue
        if family == block_family:
            v = value.strip().lower()
            if v in TRUE_VALUES:
                plan.blocks[ext] = (key, True)
            elif v in FALSE_VALUES:
                plan.blocks[ext] = (key, False)
            else:
                plan.skipped.append((key, value, "not an on/off value"))
        else:
            record = classify_caller(value.strip(), "", "0", numbers, now=recorded_at)
            if record.withheld:
                plan.skipped.append((key, value, f"not a dialable number ({record.reason})"))
            else:
                plan.callers[ext] = (key, record)
    return plan


BLOCK_KEPT = "Redis already has a blocking setting for this extension (use --overwrite)"
BLOCK_CHANGED_SINCE = "imported before; the setting changed since (e.g. *82) is kept (use --overwrite)"
CALLER_KEPT = "Redis already has a last caller for this extension (use --overwrite)"


async def apply_import(plan: ImportPlan, repo: StateRepository, overwrite: bool, tenant: str | None = None,
                       dry_run: bool = False) -> tuple[int, int]:
    """Write the plan for the extensions of ``tenant`` (or with ``dry_run``
    only work out what would be written: the same reads, the same decisions,
    the same report).

    Each kind of state is judged on its own. Without ``overwrite``:
    - a CIDBlock value is kept out when Redis already has a blocking setting
      for the extension, or when that same AstDB value was imported before and
      the setting has changed since (a *82 after the move must not be undone);
    - a LastCIDNum value is kept out when Redis already has a last caller for
      the extension (a newer caller, or an earlier import).
    """
    blocks = callers = 0
    for ext, (key, blocked) in sorted(plan.blocks.items()):
        value = "1" if blocked else "0"
        if not overwrite:
            if await repo.has_blocking(ext, tenant):
                plan.skipped.append((key, value, BLOCK_KEPT))
                continue
            if await repo.imported_before(key, tenant) == value:
                plan.skipped.append((key, value, BLOCK_CHANGED_SINCE))
                continue
        if not dry_run:
            await repo.set_blocked(ext, blocked, tenant)
            await repo.remember_import(key, value, tenant)
        blocks += 1
    for ext, (key, record) in sorted(plan.callers.items()):
        if not overwrite and await repo.has_last_caller(ext, tenant):
            plan.skipped.append((key, record.number, CALLER_KEPT))
            continue
        if not dry_run:
            await repo.record_caller(ext, record, tenant)
        callers += 1
    return blocks, callers


def file_time(path: Path) -> float:
    return os.stat(path).st_mtime
