"""Per-extension state in Redis: caller-ID blocking and the last outside caller."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from redis.exceptions import RedisError

from .. import metrics
from . import schema
from .redis_pipeline import RedisCommands
from .schema import KeySchema


class StateUnavailable(Exception):
    """Redis could not be reached or answered with an error."""


@contextlib.contextmanager
def _redis_errors() -> Iterator[None]:
    """Every Redis failure (down, timeout, error reply) becomes StateUnavailable."""
    try:
        yield
    except (RedisError, OSError) as exc:
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
class ExtensionState:
    extension: str
    cidblock: bool
    last_caller: CallerRecord | None


class StateRepository:
    """All reads and writes of telefeatures state go through here."""

    def __init__(self, client: RedisCommands, keys: KeySchema):
        self.redis = client
        self.keys = keys

    async def is_blocked(self, extension: str) -> bool:
        with _redis_errors():
            return await self.redis.get(self.keys.cidblock(extension)) is not None

    async def set_blocked(self, extension: str, blocked: bool) -> None:
        key = self.keys.cidblock(extension)
        with _redis_errors():
            if blocked:
                await self.redis.set(key, schema.CIDBLOCK_ON)
            else:
                await self.redis.delete(key)

    async def record_caller(self, extension: str, record: CallerRecord) -> None:
        # One HSET of every field: atomic, and no field of an older record survives.
        with _redis_errors():
            await self.redis.hset(self.keys.last_caller(extension), mapping=record.to_fields())

    async def last_caller(self, extension: str) -> CallerRecord | None:
        with _redis_errors():
            fields = await self.redis.hgetall(self.keys.last_caller(extension))
        if not fields:
            return None
        return CallerRecord.from_fields(_text(fields))

    async def has_state(self, extension: str) -> bool:
        with _redis_errors():
            return bool(await self.redis.exists(self.keys.cidblock(extension), self.keys.last_caller(extension)))

    async def clear(self, extension: str) -> int:
        with _redis_errors():
            return await self.redis.delete(self.keys.cidblock(extension), self.keys.last_caller(extension))

    async def snapshot(self, extension: str) -> ExtensionState:
        with _redis_errors():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.get(self.keys.cidblock(extension))
                pipe.hgetall(self.keys.last_caller(extension))
                blocked, fields = await pipe.execute()
        record = CallerRecord.from_fields(_text(fields)) if fields else None
        return ExtensionState(extension, blocked is not None, record)

    async def extensions(self) -> list[str]:
        found: set[str] = set()
        with _redis_errors():
            async for key in self.redis.scan_iter(match=self.keys.all_extension_keys(), count=500):
                ext = self.keys.extension_of(key.decode() if isinstance(key, bytes) else key)
                if ext:
                    found.add(ext)
        return sorted(found)


def _text(fields: dict) -> dict[str, str]:
    return {
        (k.decode() if isinstance(k, bytes) else k): (v.decode(errors="replace") if isinstance(v, bytes) else v)
        for k, v in fields.items()
    }
