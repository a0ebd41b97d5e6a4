"""Shared fixtures: a real Redis, state backends, a FastAGI server on an ephemeral port."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.ports import free_port  # noqa: E402
from tests.support.redis_server import ClosedPort, RedisProcess  # noqa: E402
from tests.testbed.services import KEY_PREFIX  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path_factory):
    """No TELEFEATURES_* setting of the machine leaks into a test, and nothing
    can fall back to the user's real state directory."""
    for name in list(os.environ):
        if name.startswith("TELEFEATURES_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("xdg-state")))


@pytest.fixture(scope="session")
def redis_process(tmp_path_factory):
    """One redis-server (Debian's) on a Unix socket for the whole run."""
    proc = RedisProcess(tmp_path_factory.mktemp("redis")).start()
    yield proc
    proc.stop()


@pytest.fixture
def redis_url(redis_process) -> str:
    """URL of the shared Redis, emptied before the test."""
    redis_process.flush()
    return redis_process.url


@pytest.fixture
def redis_sync(redis_process, redis_url):
    """A plain synchronous client on the shared Redis, for looking at raw keys."""
    client = redis_process.client()
    yield client
    client.close()


@pytest.fixture
def closed_port():
    port = ClosedPort()
    yield port
    port.close()


@pytest.fixture
async def backend(redis_url, tmp_path):
    from telefeatures.state.backend import StateBackend

    b = StateBackend.open(redis_url, tmp_path / "state")
    yield b
    await b.close()


@pytest.fixture
async def down_backend(closed_port, tmp_path):
    """A backend whose Redis refuses every connection."""
    from telefeatures.state.backend import StateBackend

    b = StateBackend.open(closed_port.url, tmp_path / "state", timeout=0.5)
    yield b
    await b.close()


@pytest.fixture
def make_app():
    """FeatureApp factory: ``make_app(repository, **feature_settings)``."""
    from telefeatures.app import FeatureApp
    from telefeatures.config import FeatureSettings

    def make(repository, **settings):
        return FeatureApp(FeatureSettings(**settings), repository)

    return make


@pytest.fixture
async def start_server():
    """``await start_server(app, **FastAgiServer kwargs)`` -> a started server on
    127.0.0.1 with an ephemeral port; stopped after the test."""
    from telefeatures.agi.server import FastAgiServer

    servers = []

    async def start(app, **kwargs):
        kwargs.setdefault("host", "127.0.0.1")
        kwargs.setdefault("port", 0)
        server = FastAgiServer(app, **kwargs)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop(grace=1.0)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """redis-server on a loopback port with AOF (fsync always), for the suites
    that restart or kill it and check what survived."""
    server = RedisProcess(tmp_path_factory.mktemp("aof-redis"), port=free_port(), aof=True).start()
    yield server
    server.stop()


@pytest.fixture
def redis_state(redis_server):
    """A client on that Redis, with every key of the test prefix deleted first."""
    client = redis_server.emptied_client(KEY_PREFIX)
    yield client
    client.close()
