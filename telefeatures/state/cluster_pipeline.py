"""The pipelined connection for a Redis Cluster: one :class:`PipelinedRedis`
connection per master, the slot map from redis-py's cluster client.

A call's command goes to the master redis-py's slot map names for its key
(every key of one extension has one hash tag, so one slot). A MOVED, TRYAGAIN
or CLUSTERDOWN reply, or a connection that cannot be made, makes the client
re-read the slot map (one refresh shared by every caller waiting on it) and
try once more; an ASK (a slot being migrated) hands that command to redis-py's
cluster client, as do administration (SCAN, transactions, PING) and the
commands not on the call path.
"""

from __future__ import annotations

import asyncio

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .redis_pipeline import PipelinedCommands, PipelinedRedis

_REDIRECTS = ("MOVED", "TRYAGAIN", "CLUSTERDOWN")


class PipelinedCluster(PipelinedCommands):
    def __init__(self, full: RedisCluster, username: str | None, password: str | None, timeout: float):
        self._full = full
        self._target = {"username": username, "password": password}
        self._timeout = timeout
        self._pipes: dict[tuple[str, int], PipelinedRedis] = {}
        self._refreshing: asyncio.Future | None = None

    def _pipe_for(self, key: str) -> PipelinedRedis:
        node = self._full.get_node_from_key(key)
        address = (node.host, node.port)
        pipe = self._pipes.get(address)
        if pipe is None:
            pipe = self._pipes[address] = PipelinedRedis(
                self._full, {**self._target, "host": node.host, "port": node.port}, self._timeout)
        return pipe

    async def _refresh(self) -> None:
        """Re-read the slot map; callers arriving meanwhile share this one."""
        if self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._full.nodes_manager.initialize())
            self._refreshing.add_done_callback(lambda _: setattr(self, "_refreshing", None))
        await asyncio.shield(self._refreshing)

    async def _send(self, key: str, *args):
        await self._full.initialize()  # a no-op once the slot map is known
        try:
            return await self._pipe_for(key).execute(*args)
        except ResponseError as exc:
            if str(exc).startswith("ASK "):  # a slot being migrated: redis-py knows ASKING
                return await self._full.execute_command(*args)
            if not str(exc).startswith(_REDIRECTS):
                raise
        except (RedisConnectionError, RedisTimeoutError, RedisClusterException):
            pass
        await self._refresh()
        return await self._pipe_for(key).execute(*args)

    def _one_slot(self, names) -> bool:
        return len({self._full.keyslot(name) for name in names}) == 1

    async def delete(self, *names):
        if not self._one_slot(names):  # redis-py splits it by slot
            return await self._full.delete(*names)
        return await super().delete(*names)

    async def exists(self, *names):
        if not self._one_slot(names):
            return await self._full.exists(*names)
        return await super().exists(*names)

    async def ping(self) -> bool:
        return await self._full.ping()

    async def aclose(self) -> None:
        for pipe in self._pipes.values():
            pipe.drop()
        self._pipes.clear()
        await asyncio.sleep(0)
        await self._full.aclose()
