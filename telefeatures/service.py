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
from .state.backend import StateBackend

log = logging.getLogger("telefeatures")
HEALTH_INTERVAL = 5.0


class StartupError(Exception):
    """A listener could not be opened; the message names which and why."""


async def watch_redis(backend: StateBackend, health: metrics.Health) -> None:
    """Keep /healthz honest about Redis, and say in the log when it comes and goes."""
    while True:
        await asyncio.sleep(HEALTH_INTERVAL)
        ok = await backend.ping()
        if ok:
            await backend.check_schema()
        if ok != health.redis_ok:
            (log.info if ok else log.warning)("Redis is %s", "reachable" if ok else "NOT reachable")
        health.redis_ok = ok


async def start(settings: Settings) -> tuple[FastAgiServer, StateBackend, asyncio.Task]:
    backend = StateBackend.from_settings(settings)
    health = metrics.Health()
    health.redis_ok = await backend.ping()
    if health.redis_ok:
        await backend.check_schema()
    if not health.redis_ok:
        # Keep going: outbound calls still get their presentation (on_state_error)
        # and feature codes answer with the error prompt until Redis is back.
        log.warning("Redis is not reachable yet; serving with on_state_error=%s",
                    settings.features.on_state_error)
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
    backend = StateBackend.from_settings(settings)
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
