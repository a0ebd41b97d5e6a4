"""The pipelined Redis connection: the commands a feature makes during a call,
on one connection shared by every session.

:class:`RedisCommands` says which commands the state repository uses; redis-py's
client serves all of them, and :class:`PipelinedRedis` serves them too: the
per-call ones (GET, SET, DEL, EXISTS, HSET, HGETALL) pipelined, and the few
administrative ones (PING, SCAN, MULTI/EXEC pipelines) by handing them,
by name, to the redis-py client it wraps. Nothing else passes through.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

try:
    import hiredis
except ImportError:  # redis[hiredis] is a dependency; without it every call uses redis-py
    hiredis = None


class RedisCommands(Protocol):
    """The Redis commands telefeatures state uses, as redis-py's asyncio client spells them."""

    async def get(self, name: str) -> Any: ...

    async def set(self, name: str, value: str) -> Any: ...

    async def delete(self, *names: str) -> int: ...

    async def exists(self, *names: str) -> int: ...

    async def hset(self, name: str, *, mapping: dict[str, str]) -> int: ...

    async def hgetall(self, name: str) -> dict: ...

    async def hget(self, name: str, key: str) -> Any: ...

    async def zscore(self, name: str, value: str) -> Any: ...

    async def zrange(self, name: str, start: int, end: int, withscores: bool = False) -> list: ...

    async def zrem(self, name: str, *values: str) -> int: ...

    def pipeline(self, transaction: bool = True) -> Any: ...

    def scan_iter(self, match: str, count: int) -> AsyncIterator: ...

    async def ping(self) -> bool: ...

    async def aclose(self) -> None: ...


def fast_fail_retry() -> Retry:
    # One immediate retry replaces a pooled connection that died with a Redis
    # restart; no backoff, so a Redis outage costs a call milliseconds, not seconds.
    return Retry(NoBackoff(), retries=1)


_FAILOVER_ERRORS = ("READONLY", "MASTERDOWN")


class _Pipe(asyncio.Protocol):
    """One connection to Redis with commands pipelined on it; Redis answers in
    order, so each reply resolves the oldest outstanding future.

    A command unanswered ``timeout`` seconds after it was sent fails with
    TimeoutError and ends the connection (as redis-py drops a connection whose
    read timed out); everything else still outstanding on it fails with
    ConnectionError, and its caller retries once on a new connection.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float, failover: bool = False):
        self._loop = loop
        self._timeout = timeout
        # Behind Sentinel: a demoted master (READONLY) or one that lost its
        # replicas' quorum (MASTERDOWN) ends the connection, so the retry asks
        # Sentinel where the master is now.
        self._failover = failover
        self._parser = hiredis.Reader(replyError=ResponseError, protocolError=InvalidResponse)
        self._pending: deque[tuple[asyncio.Future, float]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        pending = self._pending
        parser.feed(data)
        while True:
            try:
                reply = parser.gets()
            except InvalidResponse as exc:
                self._abort(RedisConnectionError(f"Protocol error from Redis: {exc}"))
                return
            if reply is False:
                return
            if not pending:
                self._abort(RedisConnectionError("Redis sent a reply nobody asked for"))
                return
            if self._failover and isinstance(reply, ResponseError) and str(reply).startswith(_FAILOVER_ERRORS):
                self._abort(RedisConnectionError(f"not the master any more: {reply}"))
                return
            future = pending.popleft()[0]
            if not future.done():  # else its caller gave up on it
                if isinstance(reply, ResponseError):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        reason = "Connection closed by server." if exc is None else f"Error while reading from Redis: {exc}"
        self._fail_all(lambda: RedisConnectionError(reason))

    def _fail_all(self, error) -> None:
        pending = self._pending
        while pending:
            future = pending.popleft()[0]
            if not future.done():
                future.set_exception(error())

    def _abort(self, error: Exception) -> None:
        self.closed = True
        if self._pending:
            future = self._pending.popleft()[0]
            if not future.done():
                future.set_exception(error)
        self._fail_all(lambda: RedisConnectionError("Connection to Redis dropped after an earlier failure"))
        self._transport.abort()

    def _expire(self) -> None:
        self._timer = None
        if self.closed or not self._pending:
            return
        deadline = self._pending[0][1]
        if deadline <= self._loop.time():
            self._abort(RedisTimeoutError("Timeout reading from Redis"))
        else:
            self._timer = self._loop.call_at(deadline, self._expire)

    def send(self, packed: bytes) -> asyncio.Future:
        if self.closed:
            raise RedisConnectionError("Connection to Redis is closed")
        loop = self._loop
        future = loop.create_future()
        deadline = loop.time() + self._timeout
        self._pending.append((future, deadline))
        self._transport.write(packed)
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._expire)
        return future

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()


class FullClientCommands:
    """The commands not pipelined — administrative (SCAN, MULTI/EXEC), or off
    the call path (reject-list reads and edits, one hash field) — handed by
    name to the redis-py client ``self._full``."""

    _full: Any

    async def hget(self, name: str, key: str):
        return await self._full.hget(name, key)

    def pipeline(self, transaction: bool = True):
        return self._full.pipeline(transaction=transaction)

    async def zrange(self, name: str, start: int, end: int, withscores: bool = False) -> list:
        return await self._full.zrange(name, start, end, withscores=withscores)

    async def zrem(self, name: str, *values: str) -> int:
        return await self._full.zrem(name, *values)

    def scan_iter(self, match: str, count: int):
        return self._full.scan_iter(match=match, count=count)


class PipelinedCommands(FullClientCommands):
    """The call-path commands (GET, SET, DEL, EXISTS, HSET, HGETALL, ZSCORE) as
    raw Redis commands, each handed to ``_send(key, *command)``: the single
    connection ignores the key, the cluster picks its master's connection by it."""

    def _send(self, key: str, *args) -> Awaitable:
        raise NotImplementedError

    async def get(self, name):
        return await self._send(name, "GET", name)

    async def set(self, name, value):
        return await self._send(name, "SET", name, value) == b"OK"

    async def delete(self, *names):
        return await self._send(names[0], "DEL", *names)

    async def exists(self, *names):
        return await self._send(names[0], "EXISTS", *names)

    async def hset(self, name, *, mapping):
        args = [item for pair in mapping.items() for item in pair]
        return await self._send(name, "HSET", name, *args)

    async def hgetall(self, name):
        flat = await self._send(name, "HGETALL", name)
        return dict(zip(flat[::2], flat[1::2], strict=True))

    async def zscore(self, name, value):
        return await self._send(name, "ZSCORE", name, value)


class PipelinedRedis(PipelinedCommands):
    """:class:`RedisCommands` with the calls a feature makes during a call (GET,
    SET, DEL, EXISTS, HSET, HGETALL) pipelined on one connection; PING, SCAN and
    transactions go to the redis-py client it wraps.

    Many sessions at once then share one connection instead of waiting for a
    pooled one, and a command costs an encode, a write and a parsed reply.
    Errors are redis-py's (ConnectionError, TimeoutError, ResponseError), with
    its retry policy: one immediate retry on a new connection after a
    connection error or timeout. ``timeout`` bounds the connect and each reply.
    """

    def __init__(self, full: aioredis.Redis, target: dict, timeout: float,
                 locate: Callable[[], Awaitable[tuple[str, int]]] | None = None):
        self._full = full
        # Sentinel: where the master is, asked again before every connection.
        self._locate = locate
        self._path = target.get("path")
        self._host = target.get("host", "localhost")
        self._port = int(target.get("port", 6379))
        self._handshake = []
        if target.get("password") is not None:
            username = target.get("username")
            auth = ("AUTH", username, target["password"]) if username else ("AUTH", target["password"])
            self._handshake.append(hiredis.pack_command(auth))
        if int(target.get("db", 0)):
            self._handshake.append(hiredis.pack_command(("SELECT", int(target["db"]))))
        self._timeout = timeout
        self._pipe: _Pipe | None = None
        self._connecting: asyncio.Future | None = None

    @classmethod
    def for_sentinel(cls, full: aioredis.Redis, locate: Callable[[], Awaitable[tuple[str, int]]],
                     username: str | None, password: str | None, db: int,
                     timeout: float) -> aioredis.Redis | PipelinedRedis:
        """Pipelined commands to the master that ``locate`` (Sentinel) names,
        asked again on every new connection; redis-py's Sentinel-managed client
        ``full`` for the rest."""
        if hiredis is None:
            return full
        return cls(full, {"username": username, "password": password, "db": db}, timeout, locate)

    @classmethod
    def wrap(cls, full: aioredis.Redis, url: str, timeout: float) -> aioredis.Redis | PipelinedRedis:
        """The pipelined client for a plain ``redis://`` or ``unix://`` URL;
        the redis-py client itself for TLS or URL options it does not know."""
        if hiredis is None or not url.startswith(("redis://", "unix://")):
            return full
        target = parse_url(url)
        if set(target) - {"host", "port", "db", "username", "password", "path", "connection_class"}:
            return full
        return cls(full, target, timeout)

    async def _connect(self) -> _Pipe:
        """The live connection, or a new one. Callers arriving while a connection
        is being made share that one attempt and its outcome: against a hung
        Redis, a burst of calls fails once, together, instead of queueing for a
        connect timeout each."""
        pipe = self._live()
        if pipe is not None:
            return pipe
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
            self._connecting.add_done_callback(self._connected)
        # shield: one caller giving up must not cancel the attempt the others wait on
        return await asyncio.shield(self._connecting)

    def _connected(self, attempt: asyncio.Future) -> None:
        self._connecting = None
        if not attempt.cancelled() and attempt.exception() is None:
            self._pipe = attempt.result()

    async def _open(self) -> _Pipe:
        loop = asyncio.get_running_loop()
        where = self._path or f"{self._host}:{self._port}"
        failover = self._locate is not None

        def protocol() -> _Pipe:
            return _Pipe(loop, self._timeout, failover)

        pipe = None
        try:
            async with asyncio.timeout(self._timeout):
                if self._locate is not None:
                    where = "the master (asking Sentinel)"
                    self._host, self._port = await self._locate()
                    where = f"{self._host}:{self._port} (the master Sentinel names)"
                if self._path:
                    _, pipe = await loop.create_unix_connection(protocol, self._path)
                else:
                    _, pipe = await loop.create_connection(protocol, self._host, self._port)
                for command in self._handshake:
                    await pipe.send(command)
        except TimeoutError:
            if pipe is not None:
                pipe.close()
            raise RedisTimeoutError(f"Timeout connecting to Redis at {where}") from None
        except OSError as exc:
            raise RedisConnectionError(f"Error connecting to Redis at {where}: {exc}") from exc
        except BaseException:
            if pipe is not None:
                pipe.close()
            raise
        return pipe

    async def execute(self, *args):
        packed = hiredis.pack_command(args)
        try:
            return await (self._live() or await self._connect()).send(packed)
        except (RedisConnectionError, RedisTimeoutError):  # one immediate retry on a new connection
            return await (self._live() or await self._connect()).send(packed)

    def _live(self) -> _Pipe | None:
        pipe = self._pipe
        return pipe if pipe is not None and not pipe.closed else None

    def _send(self, key: str, *args) -> Awaitable:
        return self.execute(*args)  # one connection: every key goes the same way

    # not pipelined (see FullClientCommands for the rest)

    async def ping(self) -> bool:
        return await self._full.ping()

    def drop(self) -> None:
        """Close the pipelined connection (not the redis-py client)."""
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            pipe.close()

    async def aclose(self) -> None:
        self.drop()
        await asyncio.sleep(0)  # let the transport finish closing on this loop
        await self._full.aclose()
