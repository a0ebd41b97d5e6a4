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


def state_as_dict(state: ExtensionState) -> dict:
    caller = None
    if state.last_caller is not None:
        c = state.last_caller
        caller = {
            "number": c.number, "name": c.name, "presentation": c.presentation,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(c.time)) if c.time else None,
            "withheld": c.withheld, "reason": c.reason,
        }
    return {"extension": state.extension, "cidblock": state.cidblock, "last_caller": caller}


def astdb_plan(settings: Settings, path: Path, block_family: str, lastcall_family: str) -> ImportPlan:
    """Read the AstDB (read-only) and sort its values into what could be imported and what is skipped."""
    rows = read_astdb(path)
    return plan_import(rows, block_family, lastcall_family, NumberRules.from_settings(settings.features),
                       file_time(path))
