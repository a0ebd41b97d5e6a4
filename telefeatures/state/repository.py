"""Per-extension state in Redis: caller-ID blocking, the last outside caller,
the reject list, anonymous call rejection and the last refused call."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from redis.exceptions import RedisClusterException, RedisError

from .. import metrics
from . import schema
from .redis_pipeline import RedisCommands
from .schema import KINDS, KeySchema


class StateUnavailable(Exception):
    """Redis could not be reached or answered with an error."""


@contextlib.contextmanager
def _redis_errors() -> Iterator[None]:
    """Every Redis failure (down, timeout, error reply) becomes StateUnavailable."""
    try:
        yield
    except (RedisError, RedisClusterException, OSError) as exc:
        metrics.REDIS_ERRORS.inc()
        raise StateUnavailable(str(exc) or type(exc).__name__) from exc


@dataclass(frozen=True, slots=True)
class CallerRecord:
    """The last outside caller of an extension, as *69 needs it.

    ``number`` is empty unless it validated as dialable when it was recorded;
    ``withheld`` callers are never called back.
    """

    number: str
    name: str
    presentation: int
    time: float
    withheld: bool
    reason: str = ""

    def to_fields(self) -> dict[str, str]:
        return schema.last_caller_hash(number=self.number, name=self.name, presentation=self.presentation,
                                       time=self.time, withheld=self.withheld, reason=self.reason)

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> CallerRecord:
        def num(key: str, kind: type, default: object) -> object:
            try:
                return kind(fields.get(key, default))
            except (TypeError, ValueError):
                return default

        return cls(
            number=fields.get(schema.NUMBER, ""),
            name=fields.get(schema.NAME, ""),
            presentation=num(schema.PRES, int, 0),
            time=num(schema.TIME, float, 0.0),
            # Anything but an explicit "0" counts as withheld: a damaged record
            # must never turn into a callback.
            withheld=fields.get(schema.WITHHELD) != "0",
            reason=fields.get(schema.REASON, ""),
        )


@dataclass(frozen=True, slots=True)
class RejectedCall:
    """The last inbound call refused for an extension (never a *69 candidate).

    ``number`` is empty unless it was a validated dialable number; ``reason``
    is ``blocked-caller`` or ``anonymous``.
    """

    number: str
    name: str
    presentation: int
    time: float
    reason: str

    def to_fields(self) -> dict[str, str]:
        return schema.last_rejected_hash(number=self.number, name=self.name, presentation=self.presentation,
                                         time=self.time, reason=self.reason)

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> RejectedCall:
        record = CallerRecord.from_fields(fields)
        return cls(record.number, record.name, record.presentation, record.time, record.reason)


@dataclass(frozen=True, slots=True)
class Screening:
    """What the inbound route needs to decide RING or REJECT."""

    anon_reject: bool
    listed: bool


@dataclass(frozen=True, slots=True)
class ExtensionState:
    extension: str
    cidblock: bool
    last_caller: CallerRecord | None
    anon_reject: bool = False
    reject_list: tuple[tuple[str, float], ...] = ()  # (number, time added), oldest first
    last_rejected: RejectedCall | None = None


class StateRepository:
    """All reads and writes of telefeatures state go through here.

    ``tenant`` None is an extension without a tenant. ``legacy_reads``: keys of
    schema version 1 may still exist (``state migrate-keys`` has not run yet);
    a read that finds no new key then looks at the old one, and turning a
    feature off deletes both, so nothing set before the upgrade is forgotten
    while the migration has not happened or is running.
    """

    def __init__(self, client: RedisCommands, keys: KeySchema, legacy_reads: bool = False):
        self.redis = client
        self.keys = keys
        self.legacy_reads = legacy_reads

    def _legacy(self, kind: str, extension: str, tenant: str | None) -> str | None:
        # Version 1 knew no tenants: only tenant-less extensions have old keys.
        return self.keys.legacy_key(kind, extension) if self.legacy_reads and tenant is None else None

    def _all_keys(self, extension: str, tenant: str | None) -> list[str]:
        keys = self.keys.extension_keys(extension, tenant)
        if self.legacy_reads and tenant is None:
            keys += [self.keys.legacy_key(kind, extension) for kind in KINDS]
        return keys

    async def is_blocked(self, extension: str, tenant: str | None = None) -> bool:
        key = self.keys.cidblock(extension, tenant)
        old = self._legacy("cidblock", extension, tenant)
        with _redis_errors():
            if old is None:
                return await self.redis.get(key) is not None
            # Both sent at once: one round trip, not a second one whenever blocking is off.
            values = await asyncio.gather(self.redis.get(key), self.redis.get(old))
        return any(value is not None for value in values)

    async def set_blocked(self, extension: str, blocked: bool, tenant: str | None = None) -> None:
        key = self.keys.cidblock(extension, tenant)
        with _redis_errors():
            if blocked:
                await self.redis.set(key, schema.CIDBLOCK_ON)
                return
            old = self._legacy("cidblock", extension, tenant)
            # One DEL: a migration running now sees both keys or neither.
            await (self.redis.delete(key, old) if old else self.redis.delete(key))

    async def record_caller(self, extension: str, record: CallerRecord, tenant: str | None = None) -> None:
        # One HSET of every field: atomic, and no field of an older record survives.
        # An old-layout record is left to the migration, which keeps this newer one.
        with _redis_errors():
            await self.redis.hset(self.keys.last_caller(extension, tenant), mapping=record.to_fields())

    async def last_caller(self, extension: str, tenant: str | None = None) -> CallerRecord | None:
        key = self.keys.last_caller(extension, tenant)
        old = self._legacy("lastcaller", extension, tenant)
        with _redis_errors():
            if old is None:
                fields = await self.redis.hgetall(key)
            else:
                # Both sent at once: one round trip, not a second one when there is no new record.
                fields, old_fields = await asyncio.gather(self.redis.hgetall(key), self.redis.hgetall(old))
                fields = fields or old_fields
        if not fields:
            return None
        return CallerRecord.from_fields(_text(fields))

    async def imported_before(self, source_key: str, tenant: str | None = None) -> str | None:
        """The value an earlier AstDB import took from ``source_key``, if any."""
        with _redis_errors():
            value = await self.redis.hget(self.keys.astdb_imports(tenant), source_key)
        return value.decode() if isinstance(value, bytes) else value

    async def remember_import(self, source_key: str, value: str, tenant: str | None = None) -> None:
        with _redis_errors():
            await self.redis.hset(self.keys.astdb_imports(tenant), mapping={source_key: value})

    async def is_anon_rejecting(self, extension: str, tenant: str | None = None) -> bool:
        with _redis_errors():
            return await self.redis.get(self.keys.anon_reject(extension, tenant)) is not None

    async def set_anon_reject(self, extension: str, on: bool, tenant: str | None = None) -> None:
        key = self.keys.anon_reject(extension, tenant)
        with _redis_errors():
            if on:
                await self.redis.set(key, schema.ANONREJECT_ON)
            else:
                await self.redis.delete(key)

    async def screening(self, extension: str, number: str, tenant: str | None = None) -> Screening:
        """Anonymous rejection on? ``number`` on the reject list? Both sent at
        once (one round trip on the pipelined connection), each bounded like
        every call-path command."""
        with _redis_errors():
            anon, score = await asyncio.gather(
                self.redis.get(self.keys.anon_reject(extension, tenant)),
                self.redis.zscore(self.keys.reject_list(extension, tenant), number or "-"))
        return Screening(anon is not None, bool(number) and score is not None)

    async def add_rejected_number(self, extension: str, number: str, when: float, limit: int,
                                  tenant: str | None = None) -> bool:
        """Put ``number`` on the reject list (its first time kept when already
        there); beyond ``limit`` entries the oldest go. True when it is new."""
        key = self.keys.reject_list(extension, tenant)
        with _redis_errors():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zadd(key, {number: when}, nx=True)
                pipe.zremrangebyrank(key, 0, -limit - 1)
                added, _ = await pipe.execute()
        return bool(added)

    async def reject_list(self, extension: str, tenant: str | None = None) -> list[tuple[str, float]]:
        """(number, time added), oldest first."""
        with _redis_errors():
            entries = await self.redis.zrange(self.keys.reject_list(extension, tenant), 0, -1, withscores=True)
        return [(_str(number), float(score)) for number, score in entries]

    async def remove_rejected_number(self, extension: str, number: str, tenant: str | None = None) -> bool:
        with _redis_errors():
            return bool(await self.redis.zrem(self.keys.reject_list(extension, tenant), number))

    async def clear_reject_list(self, extension: str, tenant: str | None = None) -> int:
        """Empty the reject list; returns how many numbers it held."""
        key = self.keys.reject_list(extension, tenant)
        with _redis_errors():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zcard(key)
                pipe.delete(key)
                count, _ = await pipe.execute()
        return int(count)

    async def record_rejected(self, extension: str, call: RejectedCall, tenant: str | None = None) -> None:
        with _redis_errors():
            await self.redis.hset(self.keys.last_rejected(extension, tenant), mapping=call.to_fields())

    async def has_state(self, extension: str, tenant: str | None = None) -> bool:
        with _redis_errors():
            return bool(await self.redis.exists(*self._all_keys(extension, tenant)))

    async def clear(self, extension: str, tenant: str | None = None) -> int:
        with _redis_errors():
            return await self.redis.delete(*self._all_keys(extension, tenant))

    async def snapshot(self, extension: str, tenant: str | None = None) -> ExtensionState:
        keys = self.keys
        with _redis_errors():
            # One slot (hash tag), so this transaction works in a Cluster too.
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.get(keys.cidblock(extension, tenant))
                pipe.hgetall(keys.last_caller(extension, tenant))
                pipe.get(keys.anon_reject(extension, tenant))
                pipe.zrange(keys.reject_list(extension, tenant), 0, -1, withscores=True)
                pipe.hgetall(keys.last_rejected(extension, tenant))
                blocked, fields, anon, entries, rejected = await pipe.execute()
        screening = dict(
            anon_reject=anon is not None,
            reject_list=tuple((_str(number), float(score)) for number, score in entries),
            last_rejected=RejectedCall.from_fields(_text(rejected)) if rejected else None,
        )
        if self.legacy_reads and tenant is None:
            if blocked is None and await self.is_blocked(extension):
                blocked = b"1"
            if not fields:
                record = await self.last_caller(extension)
                return ExtensionState(extension, blocked is not None, record, **screening)
        record = CallerRecord.from_fields(_text(fields)) if fields else None
        return ExtensionState(extension, blocked is not None, record, **screening)

    async def extensions(self, tenant: str | None = None) -> list[str]:
        """Extensions of ``tenant`` (None: without a tenant) that have any state."""
        found: set[str] = set()
        with _redis_errors():
            async for key in self.redis.scan_iter(match=self.keys.all_extension_keys(tenant), count=500):
                ext = self.keys.extension_of(_str(key), tenant)
                if ext:
                    found.add(ext)
            if self.legacy_reads and tenant is None:
                async for key in self.redis.scan_iter(match=self.keys.legacy_keys(), count=500):
                    owner = self.keys.legacy_owner(_str(key))
                    if owner:
                        found.add(owner[1])
        return sorted(found)

    async def tenants(self) -> list[str]:
        """Tenants that have any state."""
        found: set[str] = set()
        with _redis_errors():
            async for key in self.redis.scan_iter(match=self.keys.all_extension_keys(), count=500):
                owner = self.keys.owner_of(_str(key))
                if owner is not None and owner[0] is not None:
                    found.add(owner[0])
        return sorted(found)


def _str(key) -> str:
    return key.decode() if isinstance(key, bytes) else key


def _text(fields: dict) -> dict[str, str]:
    return {
        (k.decode() if isinstance(k, bytes) else k): (v.decode(errors="replace") if isinstance(v, bytes) else v)
        for k, v in fields.items()
    }
