"""Hardening suite: attacks, faults and exposure against the real
``telefeatures serve`` process and a real redis-server, all on loopback."""

from __future__ import annotations

import pytest

from tests.testbed.services import FeatureServer


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
