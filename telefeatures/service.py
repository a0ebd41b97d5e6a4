"""Wiring: which application answers the AGI layer.

``telefeatures serve``: state backend, feature app, FastAGI server, metrics.
``telefeatures-agi``: the same feature app behind the classic stdin/stdout path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from . import metrics
from .agi import classic
from .agi.channel import ChannelHungUp
from .agi.protocol import ProtocolError
from .agi.server import FastAgiServer, run_until_signalled
from .app import ROUTES, FeatureApp
from .config import Settings, SettingsError, load_settings
from .logsetup import configure_logging
from .state.backend import EmbeddedRedisError, StateBackend

log = logging.getLogger("telefeatures")
HEALTH_INTERVAL = 5.0
REPEAT_WARNING = 60.0  # seconds between "still not reachable" warnings


class StartupError(Exception):
    """A listener could not be opened; the message names which and why."""


async def watch_redis(backend: StateBackend, health: metrics.Health) -> None:
    """Keep /healthz honest about Redis, and say in the log when it comes and
    goes, naming the store and the error; while it stays away, say so again
    every REPEAT_WARNING seconds."""
    loop = asyncio.get_running_loop()
    warned = loop.time()
    while True:
        await asyncio.sleep(HEALTH_INTERVAL)
        problem = await backend.check()
        ok = problem is None
        if ok:
            await backend.check_schema()
        if ok != health.redis_ok:
            if ok:
                log.info("Redis at %s is reachable", backend.description)
            else:
                log.warning("Redis at %s is NOT reachable: %s", backend.description, problem)
            warned = loop.time()
        elif not ok and loop.time() - warned >= REPEAT_WARNING:
            log.warning("Redis at %s is still not reachable: %s; serving with on_state_error", backend.description,
                        problem)
            warned = loop.time()
        health.redis_ok = ok


async def start(settings: Settings) -> tuple[FastAgiServer, StateBackend, asyncio.Task]:
    try:
        backend = StateBackend.from_settings(settings)
    except EmbeddedRedisError as exc:
        raise StartupError(str(exc)) from None
    health = metrics.Health()
    problem = await backend.check()
    health.redis_ok = problem is None
    if health.redis_ok:
        await backend.check_schema()
        log.info("state in Redis at %s", backend.description)
    else:
        # Keep going: outbound calls still get their presentation (on_state_error)
        # and feature codes answer with the error prompt until Redis is back.
        log.warning("Redis is not reachable yet at %s: %s; serving with on_state_error=%s until it answers",
                    backend.description, problem, settings.features.on_state_error)
    app = FeatureApp(settings.features, backend.repository)
    server = FastAgiServer(
        app,
        host=str(settings.host),
        port=settings.port,
        allow_peers=settings.allow_peers,
        max_sessions=settings.max_sessions,
        header_timeout=settings.header_timeout,
        session_timeout=settings.session_timeout,
        health=health,
    )
    http = None
    where = f"metrics {settings.metrics.host}:{settings.metrics.port}"
    try:
        # Metrics first: once the FastAGI port answers, /healthz and /metrics do too.
        if settings.metrics.enabled:
            http = metrics.start_http(str(settings.metrics.host), settings.metrics.port, health)
            log.info("metrics on http://%s:%d/metrics and /healthz", settings.metrics.host,
                     settings.metrics.port)
        where = f"FastAGI {settings.host}:{settings.port}"
        await server.start()
    except OSError as exc:
        if http is not None:
            http.shutdown()
        await backend.close()
        raise StartupError(f"cannot listen on {where}: {exc.strerror or exc}") from exc
    watcher = asyncio.create_task(watch_redis(backend, health))
    return server, backend, watcher


async def serve(settings: Settings) -> int:
    server, backend, watcher = await start(settings)
    try:
        return await run_until_signalled(server, settings.shutdown_grace)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await backend.close()


# --------------------------------------------------------------------------- classic AGI


async def classic_session(connection: classic.ClassicConnection, settings: Settings) -> int:
    """One classic AGI session: the header first (a bad one costs no Redis
    connection), then the feature app on a state backend of its own."""
    try:
        route, request = classic.split_route(connection.read_request())
    except ProtocolError as exc:
        log.error("protocol error in the AGI header: %s (classic)", exc)
        return 1
    except ChannelHungUp:
        log.error("stdin ended before the AGI header did (classic)")
        return 1
    try:
        backend = StateBackend.from_settings(settings)
    except EmbeddedRedisError as exc:
        log.error("%s (classic)", exc)
        return 1
    try:
        app = FeatureApp(settings.features, backend.repository)
        return await classic.run_session(connection, route, request, app)
    finally:
        await backend.close()


def classic_main() -> None:
    """``telefeatures-agi``: the features as classic AGI, ``AGI(telefeatures-agi,<route>,<arg1>,...)``."""
    if classic.usage_wanted(sys.argv, sys.stdin):
        asked = sys.argv[1:2] in (["-h"], ["--help"])
        print(classic.USAGE.format(routes=", ".join(ROUTES)), end="", file=sys.stdout if asked else sys.stderr)
        sys.exit(0 if asked else 2)
    agi = classic.open_agi()
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"telefeatures-agi: bad settings: {exc}", file=sys.stderr)
        sys.exit(1)
    configure_logging(settings.log_level, settings.log_format)
    sys.exit(asyncio.run(classic_session(classic.ClassicConnection(agi), settings)))
