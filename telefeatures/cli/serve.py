"""``telefeatures serve``: run the FastAGI feature server."""

from __future__ import annotations

import sys
from typing import Any

import click

from ..logsetup import configure_logging
from .root import cli, run_loop, settings_from, shared_options



@cli.command()
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="TCP port (default 4573).")
@click.option("--allow-peer", "allow_peers", multiple=True,
              help="Address or CIDR allowed to connect; repeat for more (default: loopback only).")
@click.option("--max-sessions", type=int, help="Concurrent sessions before new ones are refused.")
@click.option("--log-format", type=click.Choice(["text", "json"]))
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
@click.option("--metrics/--no-metrics", "metrics_enabled", default=None,
              help="Serve Prometheus /metrics and /healthz (default off).")
@click.option("--metrics-port", type=int)
@click.option("--event-loop", type=click.Choice(["auto", "asyncio", "uvloop"]))
@shared_options
@click.pass_obj
def serve(obj: dict, host, port, allow_peers, max_sessions, log_format, log_level, metrics_enabled,
          metrics_port, event_loop) -> None:
    """Run the FastAGI feature server."""
    metrics_over: dict[str, Any] = {}
    if metrics_enabled is not None:
        metrics_over["enabled"] = metrics_enabled
    if metrics_port is not None:
        metrics_over["port"] = metrics_port
    settings = settings_from(
        obj, starting=True, host=host, port=port, allow_peers=list(allow_peers) or None, max_sessions=max_sessions,
        log_format=log_format, log_level=log_level, event_loop=event_loop,
        metrics=metrics_over or None,
    )
    configure_logging(settings.log_level, settings.log_format)
    from ..service import StartupError
    from ..service import serve as serve_forever

    try:
        code = run_loop(settings, lambda: serve_forever(settings))
    except StartupError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)
