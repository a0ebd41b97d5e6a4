"""Hardening suite: attacks, faults and exposure against the real
``telefeatures serve`` process and a real redis-server, all on loopback."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.asterisk_peer import call
from tests.testbed.services import FeatureServer, RedisServer


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def serve(tmp_path, redis_server):
    """``serve(*flags, env={...})`` starts ``telefeatures serve``; stopped after the test."""
    started: list[FeatureServer] = []

    def start(*args: str, env: dict[str, str] | None = None, redis_url: str | None = None) -> FeatureServer:
        server = FeatureServer(tmp_path / f"server{len(started)}", redis_url or redis_server.url,
                               args=["--event-loop", "asyncio", *args], env=env)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def redis_client(redis_server):
    client = redis_server.emptied_client()
    yield client
    client.close()


async def normal_session(port: int, ext: str = "1000", number: str = "5552345678"):
    """An ordinary outbound session; it must complete quickly after any attack."""
    result = await call("127.0.0.1", port, "outbound", [ext, number], timeout=3)
    assert result.status in ("OK", "ERROR"), result.sets
    assert result.variables.get("TF_DIAL") == number
    return result


def run(coro):
    return asyncio.run(coro)
