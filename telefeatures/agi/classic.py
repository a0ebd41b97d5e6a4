"""Classic AGI over stdin/stdout: one session per process.

The ``telefeatures-agi`` entry point (wired in :mod:`telefeatures.service`)
gives it the feature app as its session handler. Dialplan:
``AGI(telefeatures-agi,<route>,<arg1>,<arg2>)``.

The bytes Asterisk writes to stdin go to the same sans-IO
:class:`~telefeatures.agi.protocol.AgiSession` the FastAGI server feeds, so the
header and the replies are read with one grammar and one set of limits.

What of pyst2 (``asterisk.agi.AGI``) is used, and why: its SIGHUP handler
(Asterisk signals a classic AGI when the channel hangs up) with
``test_hangup()``/``AGISIGHUPHangup`` before each command, and
``send_command()`` to write a command to stdout and flush it. Not used: its
header reader (it strips values and has no size limits), its quoting (it does
not escape ``"`` or ``\\``) and its reply reader (it stops after one line, so a
520 usage block or a HANGUP line would desynchronise it).
"""

from __future__ import annotations

import io
import logging
import os
import sys

from asterisk.agi import AGI, AGISIGHUPHangup

from .channel import AgiChannel, ChannelHungUp, CommandRejected
from .handler import SessionHandler
from .protocol import CLOSED, HANGUP, NEED_DATA, AgiRequest, AgiSession, ProtocolError, Reply

log = logging.getLogger("telefeatures.classic")

READ_SIZE = 65536

USAGE = """\
usage: AGI(telefeatures-agi,<route>,<extension>[,<digits>]) in the Asterisk dialplan

telefeatures-agi is a classic AGI script: Asterisk runs it with the session on
stdin/stdout, one call per process. It is not run by hand. Routes: {routes}.
Settings come from the environment Asterisk passes (TELEFEATURES_CONFIG,
TELEFEATURES_REDIS_URL, ...). See the README, "Classic AGI".
"""


def usage_wanted(argv: list[str], stdin) -> bool:
    """Asked for help, or run on a terminal rather than by Asterisk."""
    if any(arg in ("-h", "--help") for arg in argv[1:2]):
        return True
    try:
        return stdin.isatty()
    except (AttributeError, ValueError):
        return False


class PystAgi(AGI):
    """pyst2's AGI object without its header reader: the session reads the header."""

    def _get_agi_env(self) -> None:
        self.env = {}


def open_agi() -> PystAgi:
    """pyst2's AGI on this process's stdout, its SIGHUP handler installed."""
    sys.stdout.reconfigure(encoding="utf-8")
    # stderr goes to Asterisk's verbose log; pyst2 narrates every command there.
    return PystAgi(stdin=sys.stdin, stdout=sys.stdout, stderr=io.StringIO())


class ClassicConnection:
    """The session's bytes from a file descriptor (stdin), commands out
    through pyst2."""

    def __init__(self, agi: AGI, fd: int = 0):
        self._agi = agi
        self._fd = fd
        self._session = AgiSession()

    def _receive(self) -> None:
        data = os.read(self._fd, READ_SIZE)
        if data:
            self._session.receive_data(data)
        else:
            self._session.receive_eof()

    def read_request(self) -> AgiRequest:
        """The header block, within the session's limits."""
        while True:
            event = self._session.next_event()
            if event is NEED_DATA:
                self._receive()
            elif event is CLOSED:
                raise ChannelHungUp("stdin closed before the header ended")
            else:
                return event

    @property
    def hung_up(self) -> bool:
        return self._session.hung_up or self._agi._got_sighup  # noqa: SLF001 - set by pyst2's handler

    async def execute(self, command: bytes) -> Reply:
        try:
            self._agi.test_hangup()
        except AGISIGHUPHangup as exc:
            raise ChannelHungUp("SIGHUP") from exc
        try:
            self._agi.send_command(command.decode("utf-8").rstrip("\n"))
        except BrokenPipeError as exc:
            raise ChannelHungUp("stdout closed") from exc
        session = self._session
        while True:
            event = session.next_event()
            if event is NEED_DATA:
                self._receive()
            elif event is CLOSED:
                raise ChannelHungUp("stdin closed")
            elif event is not HANGUP:
                return event


def split_route(request: AgiRequest) -> tuple[str, AgiRequest]:
    """Classic AGI passes the route (``route[?tenant=...]``) as the first
    argument; shift it off and keep it where FastAGI has its script."""
    script = request.args[0] if request.args else ""
    shifted = AgiRequest(env={**request.env, "agi_network_script": script}, args=request.args[1:])
    return shifted.route, shifted


async def run_session(connection: ClassicConnection, route: str, request: AgiRequest,
                      handler: SessionHandler) -> int:
    """Run one session through ``handler``; returns the process exit code."""
    session = handler.describe(route, request)
    channel = AgiChannel(request, connection)
    try:
        result = await handler.handle(channel, session)
        log.info("route=%s ext=%s status=%s reason=%s tenant=%s (classic)", route, session.extension or "-",
                 result.status, result.reason or "-", session.tenant or "-")
    except ChannelHungUp:
        log.info("route=%s status=HANGUP (classic)", route)
    except CommandRejected as exc:
        log.error("route=%s: %s (classic)", route, exc)
        return 1
    except ProtocolError as exc:
        log.error("route=%s: protocol error: %s (classic)", route, exc)
        return 1
    return 0
