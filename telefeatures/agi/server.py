"""The asyncio FastAGI server: a thin shell that moves bytes and keeps time.

Per connection: check the peer against the allow-list and the session cap, read
the header block within ``header_timeout``, run the session handler under
``session_timeout`` with one command in flight at a time, close, and log one
line. Framing, limits and every protocol decision live in the sans-IO
:class:`~telefeatures.agi.protocol.AgiSession`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
from collections.abc import Sequence

from .. import metrics
from .channel import AgiChannel, ChannelHungUp, CommandRejected
from .handler import SessionHandler
from .protocol import (
    CLOSED,
    HANGUP,
    LINE_LIMIT,
    NEED_DATA,
    AgiRequest,
    AgiSession,
    ProtocolError,
    Reply,
    UnsafeArgument,
)

log = logging.getLogger("telefeatures.server")
session_log = logging.getLogger("telefeatures.session")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class AgiConnection(asyncio.Protocol):
    """The bytes of one FastAGI connection, moved between the socket and an
    :class:`~telefeatures.agi.protocol.AgiSession` that decides what they mean.

    A plain protocol rather than a StreamReader/StreamWriter pair: a session is
    a header block and a few short exchanges, and lines already received are
    handed over without a trip through the event loop. End-of-file, reset and
    flow-control semantics are those of ``readuntil``/``drain``.

    The header is parsed as it arrives (Asterisk writes the block in a few
    pieces); the session task is woken once, when the block is complete or
    refused.
    """

    __slots__ = ("_server", "_transport", "_session", "_waiter", "_exc", "_lost", "_paused",
                 "_read_paused", "_drain_waiter", "peer", "_request", "_header_error")

    def __init__(self, server: FastAgiServer):
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._session = AgiSession()
        self._waiter: asyncio.Future | None = None
        self._exc: BaseException | None = None
        self._lost = False
        self._paused = False
        self._read_paused = False
        self._drain_waiter: asyncio.Future | None = None
        self.peer = None
        self._request: AgiRequest | None = None
        self._header_error: Exception | None = None

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.peer = transport.get_extra_info("peername")
        self._server._admit(self, transport)

    def data_received(self, data: bytes) -> None:
        session = self._session
        session.receive_data(data)
        header_done = True
        if self._request is None and self._header_error is None:
            try:
                event = session.next_event()
            except Exception as exc:  # noqa: BLE001 - raised again in the session by read_request
                self._header_error = exc
            else:
                if event is NEED_DATA:
                    header_done = False
                else:
                    self._request = event
        if session.buffered > 2 * LINE_LIMIT and not self._read_paused:
            # the session is not reading: stop taking more until it does
            try:
                self._transport.pause_reading()
                self._read_paused = True
            except NotImplementedError:
                pass
        if header_done:
            self._wake()

    def eof_received(self) -> bool:
        self._session.receive_eof()
        self._wake()
        return True  # keep our side open: the session closes when it is done

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if exc is None:
            self._session.receive_eof()
        else:
            self._exc = exc
        self._wake()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- reading

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _resume_if_drained(self) -> None:
        if self._read_paused and self._session.buffered <= LINE_LIMIT:
            self._read_paused = False
            self._transport.resume_reading()

    async def read_request(self) -> AgiRequest:
        """The header block up to its blank line, within the size limits."""
        while True:
            if self._exc is not None:
                raise self._exc
            if self._header_error is not None:
                raise self._header_error
            if self._request is not None:
                self._resume_if_drained()
                return self._request
            event = self._session.next_event()
            if event is CLOSED:
                raise ChannelHungUp("connection closed")
            if event is NEED_DATA:
                await self._wait()
            else:
                self._request = event

    # -- the Transport the channel uses

    @property
    def hung_up(self) -> bool:
        return self._session.hung_up

    async def execute(self, command: bytes) -> Reply:
        self._transport.write(command)
        if self._exc is not None:
            raise self._exc
        if self._lost:
            raise ConnectionResetError("Connection lost")
        if self._paused:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._drain_waiter
            finally:
                self._drain_waiter = None
        session = self._session
        while True:
            if self._exc is not None:
                raise self._exc
            # a line already buffered (an early HANGUP) is taken before waiting
            event = session.next_event()
            if event is NEED_DATA:
                await self._wait()
                continue
            self._resume_if_drained()
            if event is HANGUP:
                continue
            if event is CLOSED:
                raise ChannelHungUp("connection closed")
            return event

    def close(self) -> None:
        self._transport.close()


class SessionDeadlines:
    """The header and session deadlines of every open session, on one timer.

    Each session runs inside an ``asyncio.timeout(None)`` (no timer of its
    own); when one of its deadlines passes, the timer reschedules that timeout
    to now and asyncio cancels the session exactly as a timeout of its own
    would. Every session gets the same two limits, so the deadlines of each
    kind arrive in order: two insertion-ordered dicts, one timer at the
    earliest deadline, and per session two dict entries instead of two timers.
    """

    __slots__ = ("_header", "_session", "_timer")

    def __init__(self) -> None:
        self._header: dict[asyncio.Timeout, float] = {}
        self._session: dict[asyncio.Timeout, float] = {}
        self._timer: asyncio.TimerHandle | None = None

    def add(self, limit: asyncio.Timeout, header_deadline: float, session_deadline: float) -> None:
        self._header[limit] = header_deadline
        self._session[limit] = session_deadline
        first = min(header_deadline, session_deadline)
        timer = self._timer
        # The timer may sit at an older session's (much later) session deadline:
        # a new header deadline must not wait for it.
        if timer is None or first < timer.when():
            if timer is not None:
                timer.cancel()
            self._arm(first)

    def header_read(self, limit: asyncio.Timeout) -> None:
        self._header.pop(limit, None)

    def discard(self, limit: asyncio.Timeout) -> None:
        self._header.pop(limit, None)
        self._session.pop(limit, None)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, when: float) -> None:
        self._timer = asyncio.get_running_loop().call_at(when, self._expire)

    def _expire(self) -> None:
        self._timer = None
        now = asyncio.get_running_loop().time()
        earliest = None
        for due in (self._header, self._session):
            while due:
                limit, deadline = next(iter(due.items()))
                if deadline > now:
                    if earliest is None or deadline < earliest:
                        earliest = deadline
                    break
                self.discard(limit)
                limit.reschedule(now)  # asyncio cancels the session: TimeoutError
        if earliest is not None:
            self._arm(earliest)


def peer_allowed(peer: object, allowed: Sequence[Network]) -> bool:
    if not isinstance(peer, tuple) or not peer:
        return False  # e.g. a Unix socket peer: not configured, not allowed
    try:
        addr = ipaddress.ip_address(peer[0].split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return any(addr in net for net in allowed)


class FastAgiServer:
    def __init__(
        self,
        handler: SessionHandler,
        *,
        host: str = "127.0.0.1",
        port: int = 4573,
        allow_peers: Sequence[Network] = (ipaddress.ip_network("127.0.0.0/8"),),
        max_sessions: int = 2048,
        header_timeout: float = 5.0,
        session_timeout: float = 60.0,
        health: metrics.Health | None = None,
    ):
        self.handler = handler
        self.host = host
        self.port = port
        self.allow_peers = tuple(allow_peers)
        self.max_sessions = max_sessions
        self.header_timeout = header_timeout
        self.session_timeout = session_timeout
        self.health = health or metrics.Health()
        self._server: asyncio.base_events.Server | None = None
        self._sessions: set[asyncio.Task] = set()
        self._deadlines = SessionDeadlines()
        # peer address -> allowed?, for the allow_peers it was worked out for
        self._peer_cache: dict[str, bool] = {}

    @property
    def active_sessions(self) -> int:
        return len(self._sessions)

    @property
    def sockets(self):
        return self._server.sockets if self._server else ()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: AgiConnection(self), self.host, self.port, backlog=1024, reuse_address=True
        )
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]
        self.health.accepting = True
        log.info("listening on %s:%d (allowed peers: %s)", self.host, self.port,
                 ", ".join(str(n) for n in self.allow_peers) or "none")

    async def stop(self, grace: float = 30.0) -> int:
        """Stop accepting, let in-flight sessions finish within ``grace`` seconds,
        cancel what is left. Returns how many had to be cancelled."""
        self.health.accepting = False
        if self._server is not None:
            self._server.close()
        pending = set(self._sessions)
        if pending:
            log.info("waiting up to %.1fs for %d session(s) to finish", grace, len(pending))
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=1.0)
            cancelled = len(still)
        else:
            cancelled = 0
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), timeout=1.0)
            except TimeoutError:
                pass
        self._deadlines.cancel()
        return cancelled

    def _peer_allowed(self, peer: object) -> bool:
        """:func:`peer_allowed`, remembered per address (Asterisk connects
        from a handful of addresses; at most 1024 are kept)."""
        if not isinstance(peer, tuple) or not peer:
            return False  # e.g. a Unix socket peer: not configured, not allowed
        allowed = self._peer_cache.get(peer[0])
        if allowed is None:
            allowed = peer_allowed(peer, self.allow_peers)
            if len(self._peer_cache) >= 1024:
                self._peer_cache.clear()
            self._peer_cache[peer[0]] = allowed
        return allowed

    def _admit(self, conn: AgiConnection, transport: asyncio.Transport) -> None:
        """Refuse the connection at once, or start its session."""
        peer = conn.peer
        if not self._peer_allowed(peer):
            metrics.REJECTED.labels("peer").inc()
            log.warning("refused connection from %s: not in allow_peers", peer[0] if peer else peer)
            transport.abort()
            return
        if len(self._sessions) >= self.max_sessions or not self.health.accepting:
            # Closing at once makes Asterisk continue its dialplan with no
            # TF_STATUS, i.e. the fallback path, rather than wait on us.
            metrics.REJECTED.labels("busy").inc()
            log.warning("refused connection from %s: %d sessions active", peer[0], len(self._sessions))
            transport.abort()
            return
        task = asyncio.get_running_loop().create_task(self._connected(conn))
        self._sessions.add(task)
        task.add_done_callback(self._sessions.discard)

    async def _connected(self, conn: AgiConnection) -> None:
        metrics.ACTIVE.inc()
        try:
            await self._session(conn)
        finally:
            metrics.ACTIVE.dec()
            conn.close()

    async def _session(self, conn: AgiConnection) -> None:
        peer = conn.peer
        loop = asyncio.get_running_loop()
        started = loop.time()
        route = route_label = "-"
        extension = tenant = None
        status = "ERROR"
        reason = ""
        uniqueid = ""
        try:
            opened = started
            async with asyncio.timeout(None) as limit:  # expired by self._deadlines
                deadlines = self._deadlines
                deadlines.add(limit, opened + self.header_timeout, opened + self.session_timeout)
                try:
                    request = await conn.read_request()
                    deadlines.header_read(limit)
                    route = request.route
                    uniqueid = request.uniqueid
                    # labelled before it runs, so a hangup or timeout is logged with it
                    session = self.handler.describe(route, request)
                    route_label, extension, tenant = session.route_label, session.extension, session.tenant
                    result = await self.handler.handle(AgiChannel(request, conn), session)
                    extension = session.extension  # the handler may have learnt it while running
                    status, reason = str(result.status), result.reason
                finally:
                    deadlines.discard(limit)
        except ChannelHungUp:
            status, reason = "HANGUP", reason or "hangup"
        except TimeoutError:
            reason = "header-timeout" if route == "-" else "session-timeout"
        except (ProtocolError, UnicodeError) as exc:
            reason = "protocol-error"
            log.warning("protocol error from %s: %s", peer[0], exc)
        except (CommandRejected, UnsafeArgument) as exc:
            reason = "command-rejected"
            log.error("route %s: %s", route, exc)
        except ConnectionError:
            status, reason = "HANGUP", "connection-lost"
        except asyncio.CancelledError:
            reason = "shutdown"
            raise
        except Exception:  # a bug: log it, keep serving everyone else
            reason = "internal-error"
            log.exception("route %s failed", route)
        finally:
            elapsed = loop.time() - started
            metrics.session_finished(route_label, status, elapsed, tenant or "")
            session_log.info(
                "route=%s ext=%s status=%s reason=%s ms=%.1f peer=%s uniqueid=%s tenant=%s",
                route[:64], extension or "-", status, reason or "-", elapsed * 1000, peer[0], uniqueid[:40] or "-",
                tenant or "-",
                extra={"route": route[:64], "tenant": tenant, "extension": extension, "status": status,
                       "reason": reason,
                       "ms": round(elapsed * 1000, 2), "peer": peer[0], "uniqueid": uniqueid[:40]},
            )


async def run_until_signalled(server: FastAgiServer, grace: float) -> int:
    """Serve until SIGTERM/SIGINT, then shut down gracefully. Returns 0."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: no new sessions; %d in flight", server.active_sessions)
    cancelled = await server.stop(grace)
    if cancelled:
        log.warning("%d session(s) cancelled after the %.1fs grace period", cancelled, grace)
    log.info("stopped")
    return 0
