"""The two ways telefeatures talks to Redis: the call-path commands pipelined
on one connection (default), and plain redis-py (``redis_pipelining = false``).
Both must behave the same on real Redis, through auth, database selection,
a hung server, a restart and cancelled callers."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from telefeatures.state.backend import StateBackend
from telefeatures.state.redis_pipeline import PipelinedRedis
from telefeatures.state.repository import CallerRecord, StateUnavailable
from tests.support.ports import free_port
from tests.support.redis_server import RedisProcess
from telefeatures.state.schema import CIDBLOCK_ON
from tests.support.redis_server import TF_KEYS

PASSWORD = "s3cret-pw"


@pytest.fixture
def auth_redis(tmp_path):
    """redis-server on a loopback port with a password."""
    server = RedisProcess(tmp_path, port=free_port(), password=PASSWORD).start()
    yield server
    server.kill()


PATHS = pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "redis-py"])


@PATHS
async def test_the_configured_path_is_the_one_used(redis_url, tmp_path, pipelining):
    backend = StateBackend.open(redis_url, tmp_path, pipelining=pipelining)
    try:
        assert isinstance(backend.client, PipelinedRedis) is pipelining
    finally:
        await backend.close()


@PATHS
async def test_auth_and_database_selection(auth_redis, tmp_path, pipelining):
    backend = StateBackend.open(auth_redis.url_for(db=3), tmp_path, pipelining=pipelining)
    repo = backend.repository
    try:
        await repo.set_blocked("1000", True)
        record = CallerRecord("5551234567", "Pat", 0, 1.5, False)
        await repo.record_caller("1000", record)
        assert await repo.is_blocked("1000") and await repo.last_caller("1000") == record
        await repo.set_blocked("1000", False)
        assert not await repo.is_blocked("1000")
    finally:
        await backend.close()
    assert auth_redis.client(3).hget(TF_KEYS.last_caller("1000"), "number") == "5551234567"
    assert auth_redis.client(0).keys("*") == []


@PATHS
async def test_a_wrong_password_is_state_unavailable(auth_redis, tmp_path, pipelining):
    backend = StateBackend.open(auth_redis.url_for(password="wrong"), tmp_path, pipelining=pipelining)
    try:
        with pytest.raises(StateUnavailable):
            await backend.repository.is_blocked("1000")
    finally:
        await backend.close()


@PATHS
async def test_a_hung_redis_fails_within_the_timeout_and_recovers(auth_redis, tmp_path, pipelining):
    backend = StateBackend.open(auth_redis.url, tmp_path, timeout=0.3, pipelining=pipelining)
    repo = backend.repository
    try:
        assert await repo.is_blocked("1000") is False
        os.kill(auth_redis.proc.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            results = await asyncio.gather(*(repo.is_blocked("1000") for _ in range(20)), return_exceptions=True)
            elapsed = time.monotonic() - started
        finally:
            os.kill(auth_redis.proc.pid, signal.SIGCONT)
        assert all(isinstance(r, StateUnavailable) for r in results), results
        # a reply timeout plus one retry on a fresh connection, never an open-ended wait
        assert elapsed < 3 * 0.3 + 1.0
        await repo.set_blocked("1000", True)
        assert await repo.is_blocked("1000") is True
    finally:
        await backend.close()


@PATHS
async def test_a_restarted_redis_is_reconnected_by_itself(auth_redis, tmp_path, pipelining):
    backend = StateBackend.open(auth_redis.url, tmp_path, timeout=0.3, pipelining=pipelining)
    repo = backend.repository
    try:
        await repo.set_blocked("1000", True)
        auth_redis.kill()
        with pytest.raises(StateUnavailable):
            await repo.is_blocked("1000")
        auth_redis.start()  # same port, empty (no persistence in this test)
        assert await repo.is_blocked("1000") is False
        await repo.set_blocked("1000", True)
        assert await repo.is_blocked("1000") is True
    finally:
        await backend.close()


@PATHS
async def test_many_concurrent_callers_each_get_their_own_reply(redis_url, redis_sync, tmp_path, pipelining):
    for i in range(500):
        redis_sync.set(TF_KEYS.cidblock(str(i)), "1") if i % 3 == 0 else None
    # The replies are under test, not the speed: without pipelining each caller
    # opens its own connection, and 500 connects can outlast the 0.5 s default
    # on a busy machine.
    backend = StateBackend.open(redis_url, tmp_path, timeout=10, pool_size=500, pipelining=pipelining)
    try:
        answers = await asyncio.gather(*(backend.repository.is_blocked(str(i)) for i in range(500)))
    finally:
        await backend.close()
    assert answers == [i % 3 == 0 for i in range(500)]


async def test_a_cancelled_caller_does_not_shift_the_replies(redis_url, redis_sync, tmp_path):
    """A session that gives up (hang-up, timeout) while its command is in
    flight must not leave its reply to be read by the next caller."""
    redis_sync.set(TF_KEYS.cidblock("1"), CIDBLOCK_ON)
    backend = StateBackend.open(redis_url, tmp_path)
    repo = backend.repository
    try:
        assert await repo.is_blocked("1") is True  # connected
        for _ in range(50):
            doomed = asyncio.ensure_future(repo.last_caller("1"))
            await asyncio.sleep(0)  # sent, not answered
            doomed.cancel()
            assert await repo.is_blocked("1") is True
            assert await repo.is_blocked("2") is False
    finally:
        await backend.close()
