"""Prometheus metrics and the health endpoint (off by default; loopback when on)."""

from __future__ import annotations

import json
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from socketserver import ThreadingMixIn

from prometheus_client import Counter, Gauge, Histogram, make_wsgi_app

SESSIONS = Counter("telefeatures_sessions_total", "AGI sessions by tenant, route and outcome",
                   ["tenant", "route", "status"])
SESSION_SECONDS = Histogram(
    "telefeatures_session_seconds",
    "AGI session duration",
    ["route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
ACTIVE = Gauge("telefeatures_active_sessions", "AGI sessions in progress")
REDIS_ERRORS = Counter("telefeatures_redis_errors_total", "Redis operations that failed")
REJECTED = Counter("telefeatures_rejected_connections_total", "Connections closed at once", ["reason"])

# (tenant, route, status) -> the labelled SESSIONS and SESSION_SECONDS children;
# route and status come from short fixed lists, tenants from the dialplan
# (validated names the administrator chose), so this stays small.
_session_children: dict[tuple[str, str, str], tuple] = {}


def session_finished(route: str, status: str, seconds: float, tenant: str = "") -> None:
    """Count one finished AGI session of ``tenant`` ("" = none) and observe its duration."""
    children = _session_children.get((tenant, route, status))
    if children is None:
        children = (SESSIONS.labels(tenant, route, status), SESSION_SECONDS.labels(route))
        _session_children[(tenant, route, status)] = children
    children[0].inc()
    children[1].observe(seconds)


class Health:
    """What /healthz reports; written by the event loop, read by the HTTP thread."""

    def __init__(self) -> None:
        self.accepting = False
        self.redis_ok = False
        self.detail = ""

    def snapshot(self) -> tuple[bool, dict]:
        ok = self.accepting and self.redis_ok
        return ok, {"ok": ok, "accepting": self.accepting, "redis": self.redis_ok, "detail": self.detail}


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def start_http(host: str, port: int, health: Health) -> WSGIServer:
    metrics_app = make_wsgi_app()

    def app(environ, start_response):
        if environ.get("PATH_INFO") == "/healthz":
            ok, body = health.snapshot()
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
            return [json.dumps(body).encode()]
        return metrics_app(environ, start_response)

    server = make_server(host, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server
