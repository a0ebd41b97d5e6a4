"""Import caller-ID blocking, last-caller and blacklist data from Asterisk's AstDB.

Reads ``astdb.sqlite3`` (table ``astdb(key, value)``, keys like
``/CIDBlock/1000``) through SQLite's backup API from a read-only connection, so
a running Asterisk is never disturbed and the import sees one consistent
snapshot.

Blacklists: FreePBX keeps one PBX-wide list, ``/blacklist/<number>`` (value: a
description) and ``/blacklist/blocked`` (``1``: refuse callers without a
number). telefeatures' lists are per extension, so the PBX-wide one goes to the
extensions the admin names (``blacklist_for``); a per-extension layout,
``/blacklist/<extension>/<number>``, goes to that extension.
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


# The FreePBX blacklist key that means "refuse callers without a number".
BLACKLIST_ANONYMOUS = "blocked"


@dataclass
class ImportPlan:
    blocks: dict[str, tuple[str, bool]] = field(default_factory=dict)  # ext -> (key, blocked)
    callers: dict[str, tuple[str, CallerRecord]] = field(default_factory=dict)  # ext -> (key, record)
    rejects: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # ext -> [(key, number)]
    anon_reject: dict[str, tuple[str, bool]] = field(default_factory=dict)  # ext -> (key, on)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (key, value, why)
    max_entries: int = 1000  # callblock_max_entries: a reject list never grows beyond it


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
    blacklist_family: str | None = None,
    blacklist_for: tuple[str, ...] = (),
    max_entries: int = 1000,
) -> ImportPlan:
    plan = ImportPlan(max_entries=max_entries)
    families = (block_family, lastcall_family, blacklist_family)
    for key, value in rows:
        parts = key.split("/")
        if len(parts) < 3 or parts[0] != "" or parts[1] not in families:
            continue  # another family: not ours
        if parts[1] == blacklist_family:
            _plan_blacklist(plan, key, value, parts[2:], numbers, blacklist_for)
            continue
        family, ext = parts[1], "/".join(parts[2:])
        if not valid_extension(ext):
            plan.skipped.append((key, value, "invalid extension"))
            continue
        if family == block_family:
            on = _on_off(plan, key, value)
            if on is not None:
                plan.blocks[ext] = (key, on)
        else:
            record = classify_caller(value.strip(), "", "0", numbers, now=recorded_at)
            if record.withheld:
                plan.skipped.append((key, value, f"not a dialable number ({record.reason})"))
            else:
                plan.callers[ext] = (key, record)
    return plan


def _on_off(plan: ImportPlan, key: str, value: str) -> bool | None:
    """An AstDB on/off value; None (and reported as skipped) when it is neither."""
    v = value.strip().lower()
    if v in TRUE_VALUES or v in FALSE_VALUES:
        return v in TRUE_VALUES
    plan.skipped.append((key, value, "not an on/off value"))
    return None


def _plan_blacklist(plan: ImportPlan, key: str, value: str, rest: list[str], numbers: NumberRules,
                    blacklist_for: tuple[str, ...]) -> None:
    if len(rest) == 1:  # PBX-wide: /blacklist/<number> or /blacklist/blocked
        if not blacklist_for:
            plan.skipped.append((key, value, "a PBX-wide blacklist (name the extensions with --blacklist-for)"))
            return
        targets, item = blacklist_for, rest[0]
    elif len(rest) == 2 and valid_extension(rest[0]):  # /blacklist/<extension>/<number>
        targets, item = (rest[0],), rest[1]
    else:
        plan.skipped.append((key, value, "invalid extension"))
        return
    if item == BLACKLIST_ANONYMOUS:
        on = _on_off(plan, key, value)
        if on is not None:
            for ext in targets:
                plan.anon_reject[ext] = (key, on)
        return
    # Only what the inbound route can match: plain dialable numbers.
    if not numbers.is_dialable(item):
        plan.skipped.append((key, value, "not a dialable number"))
        return
    for ext in targets:
        listed = plan.rejects.setdefault(ext, [])
        if len(listed) >= plan.max_entries:
            plan.skipped.append((key, value, f"reject list of {ext} full (callblock_max_entries={plan.max_entries})"))
        else:
            listed.append((key, item))


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
            if await repo.is_blocked(ext, tenant):  # a stored setting: off is no key
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
        if not overwrite and await repo.last_caller(ext, tenant) is not None:
            plan.skipped.append((key, record.number, CALLER_KEPT))
            continue
        if not dry_run:
            await repo.record_caller(ext, record, tenant)
        callers += 1
    return blocks, callers


ANON_KEPT = "Redis already has anonymous call rejection on for this extension (use --overwrite)"
NUMBER_IMPORTED_BEFORE = "imported before; a *80 since is not undone (use --overwrite)"


async def apply_blacklist(plan: ImportPlan, repo: StateRepository, overwrite: bool, tenant: str | None = None,
                          dry_run: bool = False, recorded_at: float = 0.0) -> tuple[int, list[str]]:
    """Write the plan's blacklist part (``dry_run``: decide only); returns how
    many numbers go onto reject lists and the extensions whose anonymous call
    rejection is turned on. Without ``overwrite``: anonymous rejection already
    on is left alone, and a number an earlier import listed is not listed again
    (the user may have emptied the list with *80 since). Numbers are added to
    what a list holds, with the AstDB file's time, oldest dropped beyond the
    size limit."""
    numbers, anon_on = 0, []
    for ext, (key, on) in sorted(plan.anon_reject.items()):
        if not overwrite and await repo.is_anon_rejecting(ext, tenant):
            plan.skipped.append((key, "1" if on else "0", ANON_KEPT))
            continue
        if not dry_run:
            await repo.set_anon_reject(ext, on, tenant)
        if on:
            anon_on.append(ext)
    for ext, listed in sorted(plan.rejects.items()):
        for key, number in listed:
            mark = f"{key}@{ext}"
            if not overwrite and await repo.imported_before(mark, tenant) == number:
                plan.skipped.append((key, number, NUMBER_IMPORTED_BEFORE))
                continue
            if not dry_run:
                await repo.add_rejected_number(ext, number, recorded_at, plan.max_entries, tenant)
                await repo.remember_import(mark, number, tenant)
            numbers += 1
    return numbers, anon_on


def file_time(path: Path) -> float:
    return os.stat(path).st_mtime
