"""What the ``telefeatures state`` commands do, without the command line: open
the configured store, read and change per-extension state with the same rules
the routes apply, import an AstDB. The CLI only parses and prints."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from .astdb_import import ImportPlan, file_time, plan_import, read_astdb
from .config import Settings
from .features.numbers import NumberRules, classify_caller
from .state.backend import StateBackend
from .state.repository import CallerRecord, ExtensionState

T = TypeVar("T")


class InvalidLastCaller(ValueError):
    """A number given as a last caller that the inbound route would record as withheld."""


async def with_backend(settings: Settings, work: Callable[[StateBackend], Awaitable[T]]) -> tuple[T, str]:
    """Run ``work`` on the configured store; returns its result and which
    store it was (URL without the password, or ``embedded, <state dir>``)."""
    backend = StateBackend.from_settings(settings)
    try:
        return await work(backend), backend.description
    finally:
        await backend.close()


def last_caller_record(settings: Settings, number: str, name: str = "") -> CallerRecord:
    """The record the inbound route would store for this caller; refused unless
    it is a dialable number (a test record that *69 could not call back is a mistake)."""
    record = classify_caller(number, name, "0", NumberRules.from_settings(settings.features))
    if record.withheld:
        rules = settings.features
        raise InvalidLastCaller(f"{number!r} is not a dialable number ({record.reason}): give ASCII digits with "
                                f"an optional leading +, {rules.number_min_digits} to {rules.number_max_digits} "
                                "digits, no dashes or blanks")
    return record


def _when(epoch: float) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(epoch)) if epoch else None


def state_as_dict(state: ExtensionState) -> dict:
    caller = rejected = None
    if state.last_caller is not None:
        c = state.last_caller
        caller = {
            "number": c.number, "name": c.name, "presentation": c.presentation,
            "time": _when(c.time), "withheld": c.withheld, "reason": c.reason,
        }
    if state.last_rejected is not None:
        r = state.last_rejected
        rejected = {"number": r.number, "name": r.name, "presentation": r.presentation, "time": _when(r.time),
                    "reason": r.reason}
    return {"extension": state.extension, "cidblock": state.cidblock, "last_caller": caller,
            "anonreject": state.anon_reject,
            "reject_list": [{"number": number, "added": _when(added)} for number, added in state.reject_list],
            "last_rejected": rejected}


class InvalidRejectNumber(ValueError):
    """A number for the reject list that the inbound route could never match."""


def reject_numbers(settings: Settings, numbers: tuple[str, ...]) -> tuple[str, ...]:
    """Numbers for the reject list, each a plain dialable number (the only kind
    the inbound route looks up), else :class:`InvalidRejectNumber`."""
    rules = NumberRules.from_settings(settings.features)
    for number in numbers:
        if not rules.is_dialable(number):
            raise InvalidRejectNumber(f"{number[:40]!r} is not a dialable number: give ASCII digits with an optional "
                                      f"leading +, {rules.min_digits} to {rules.max_digits} digits")
    return numbers


def astdb_plan(settings: Settings, path: Path, block_family: str, lastcall_family: str,
               blacklist_family: str | None = None, blacklist_for: tuple[str, ...] = ()) -> ImportPlan:
    """Read the AstDB (read-only) and sort its values into what could be imported and what is skipped."""
    rows = read_astdb(path)
    return plan_import(rows, block_family, lastcall_family, NumberRules.from_settings(settings.features),
                       file_time(path), blacklist_family, blacklist_for, settings.features.callblock_max_entries)
