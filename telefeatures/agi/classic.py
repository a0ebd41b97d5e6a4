"""Classic AGI over stdin/stdout: one session per process.

The ``telefeatures-agi`` entry point (wired in :mod:`telefeatures.service`)
gives it the feature app as its session handler. Dialplan: ``AGI(telefeatures-agi,<route>,<arg1>,<arg2>)``. pyst2's
``asterisk.agi.AGI`` reads the header block and owns stdin/stdout and SIGHUP;
commands are encoded and replies parsed by :mod:`telefeatures.agi.protocol`
(pyst2's own quoting does not escape and its reply reader stops after one line,
so 520 blocks and HANGUP lines would desynchronise it).
"""

from __future__ import annotations

import io
import logging
import sys

from .channel import AgiChannel, ChannelHungUp, CommandRejected
from .handler import SessionHandler
from .protocol import AgiRequest, ProtocolError, Reply, ReplyReader, build_request, decode_line

log = logging.getLogger("telefeatures.classic")


class PystTransport:
    """One command out, one reply back, through a pyst2 AGI object."""

    def __init__(self, agi):
        self._agi = agi
        self._replies = ReplyReader()

    @property
    def hung_up(self) -> bool:
        return self._replies.hung_up or self._agi._got_sighup  # noqa: SLF001 - set by pyst2's handler

    async def execute(self, command: bytes) -> Reply:
        from asterisk.agi import AGISIGHUPHangup

        try:
            self._agi.test_hangup()
        except AGISIGHUPHangup as exc:
            raise ChannelHungUp("SIGHUP") from exc
        try:
            self._agi.send_command(command.decode("utf-8").rstrip("\n"))
        except BrokenPipeError as exc:
            raise ChannelHungUp("stdout closed") from exc
        while True:
            raw = self._agi.stdin.readline()
            if isinstance(raw, str):
                raw = raw.encode("utf-8", errors="surrogateescape")
            if not raw:
                raise ChannelHungUp("stdin closed")
            reply = self._replies.feed(decode_line(raw))
            if reply is not None:
                return reply


def request_from_env(env: dict[str, str]) -> tuple[str, AgiRequest]:
    """Classic AGI passes the route as the first argument; shift it off."""
    full = build_request(env.items())
    route = full.args[0] if full.args else ""
    return route, AgiRequest(env=full.env, args=full.args[1:])


def open_agi():
    """pyst2's AGI object on this process's stdin/stdout (it reads the header
    block and installs its SIGHUP handler)."""
    from asterisk.agi import AGI

    # Caller names are raw bytes from the trunk: keep invalid UTF-8 readable
    # whatever the locale Asterisk runs us under (strict under en_US.UTF-8).
    sys.stdin.reconfigure(encoding="utf-8", errors="surrogateescape")
    sys.stdout.reconfigure(encoding="utf-8")
    # stderr goes to Asterisk's verbose log; pyst2 narrates every line there.
    return AGI(stdin=sys.stdin, stdout=sys.stdout, stderr=io.StringIO())


async def run_session(agi, route: str, request: AgiRequest, handler: SessionHandler) -> int:
    """Run one session through ``handler``; returns the process exit code."""
    session = handler.describe(route, request)
    channel = AgiChannel(request, PystTransport(agi))
    try:
        result = await handler.handle(channel, session)
        log.info("route=%s ext=%s status=%s reason=%s (classic)", route, session.extension or "-",
                 result.status, result.reason or "-")
    except ChannelHungUp:
        log.info("route=%s status=HANGUP (classic)", route)
    except CommandRejected as exc:
        log.error("route=%s: %s (classic)", route, exc)
        return 1
    except ProtocolError as exc:
        log.error("route=%s: protocol error: %s (classic)", route, exc)
        return 1
    return 0
