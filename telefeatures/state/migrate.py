"""Schema versions: moving version-1 keys to the hash-tagged layout, and telling
a server whether old keys may still be there.

Safe while servers are serving: each key moves in one server-side script (copy
unless the new key exists, then delete the old one), so a write the server
makes at the same moment is never overwritten by the older value; until the
version key says 2, servers read the old key when the new one is absent (see
``StateRepository.legacy_reads``). Running it again finds nothing to move.

In a Redis Cluster the old and the new name of a key are in different slots,
so no script can hold both: the key is copied with DUMP and RESTORE (which
refuses to replace a newer key) and then deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError, ResponseError

from .schema import VERSION, KeySchema

log = logging.getLogger("telefeatures.state")

# KEYS[1] old, KEYS[2] new. COPY without REPLACE keeps a newer value the server
# already wrote under the new name; either way the old key goes.
_MOVE = """
local copied = redis.call('COPY', KEYS[1], KEYS[2])
redis.call('DEL', KEYS[1])
return copied
"""


@dataclass
class MigrationReport:
    moved: int = 0       # old key copied to the new name and deleted
    superseded: int = 0  # new key already there (newer): old key deleted
    foreign: int = 0     # matched the old pattern but is not one of our keys: left alone
    failed: int = 0      # a Redis error on this key (e.g. cross-slot in a Cluster): left alone
    version_before: str | None = None

    def lines(self, dry_run: bool) -> list[str]:
        verb = "would move" if dry_run else "moved"
        return [
            f"schema version before: {self.version_before or '1 (no version key)'}",
            f"{verb} {self.moved} key(s)",
            f"{'would drop' if dry_run else 'dropped'} {self.superseded} old key(s) already superseded by a newer one",
            f"left alone {self.foreign} key(s) that are not telefeatures keys",
        ] + ([f"FAILED on {self.failed} key(s) (see the log)"] if self.failed else [])


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def migrate_keys(client, keys: KeySchema, dry_run: bool = False) -> MigrationReport:
    """Move every version-1 key of ``keys.prefix`` to its version-2 name and
    record version 2. ``client``: a redis-py asyncio client (or cluster client)."""
    report = MigrationReport(version_before=_text(await client.get(keys.version_key())))
    if dry_run:
        move = None
    elif isinstance(client, RedisCluster):
        move = _cluster_mover(client)
    else:
        script = client.register_script(_MOVE)

        async def move(old: str, new: str) -> bool:
            return bool(await script(keys=[old, new]))
    async for raw in client.scan_iter(match=keys.legacy_keys(), count=500):
        old = _text(raw)
        owner = keys.legacy_owner(old)
        if owner is None:
            report.foreign += 1
            continue
        kind, extension = owner
        new = keys.key(kind, extension)
        if dry_run:
            if await client.exists(new):
                report.superseded += 1
            else:
                report.moved += 1
            continue
        try:
            copied = await move(old, new)
        except (RedisError, RedisClusterException) as exc:
            report.failed += 1
            log.error("cannot move %s to %s: %s", old, new, exc)
            continue
        if copied:
            report.moved += 1
        else:
            report.superseded += 1
    if not dry_run and not report.failed:
        await client.set(keys.version_key(), str(VERSION))
    return report


def _cluster_mover(client: RedisCluster):
    async def move(old: str, new: str) -> bool:
        payload = await client.dump(old)
        if payload is None:  # gone meanwhile (a server turned the feature off)
            return False
        try:
            await client.restore(new, 0, payload)
            copied = True
        except ResponseError as exc:
            if not str(exc).startswith("BUSYKEY"):
                raise
            copied = False  # the server wrote a newer value first: keep it
        await client.delete(old)
        return copied
    return move


async def needs_legacy_reads(client, keys: KeySchema, scan: bool = True) -> bool:
    """Whether old-layout keys may exist. A Redis with the version key set says
    no; without it, a SCAN decides (and records version 2 when it finds no old
    key, e.g. on a new install). ``scan=False`` (a short-lived process) assumes
    old keys may exist when the version key is missing."""
    version = _text(await client.get(keys.version_key()))
    if version is not None:
        if version != str(VERSION):
            log.warning("Redis key schema version %s, this server knows %d", version, VERSION)
        return False
    if not scan:
        return True
    async for raw in client.scan_iter(match=keys.legacy_keys(), count=1000):
        if keys.legacy_owner(_text(raw)) is not None:
            log.warning("keys of the old layout found under %r: run `telefeatures state migrate-keys`; "
                        "reading both layouts until then", keys.prefix)
            return True
    await client.set(keys.version_key(), str(VERSION))
    return False
