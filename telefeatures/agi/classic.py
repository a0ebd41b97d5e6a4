"""``telefeatures-agi``: the same features as classic AGI over stdin/stdout.

Dialplan: ``AGI(telefeatures-agi,<route>,<arg1>,<arg2>)``. pyst2's
``asterisk.agi.AGI`` reads the header block and owns stdin/stdout and SIGHUP;
commands are encoded and replies parsed by :mod:`telefeatures.agi.protocol`
(pyst2's own quoting does not escape and its reply reader stops after one line,
so 520 blocks and HANGUP lines would desynchronise it).
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys

from ..config import SettingsError, load_settings
from ..logsetup import configure_logging
from .channel import AgiChannel, ChannelHungUp, CommandRejected
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


async def run_session(agi, settings) -> int:
    from ..app import FeatureApp
    from ..state.backend import StateBackend

    try:
        route, request = request_from_env(agi.env)
    except ProtocolError as exc:
        log.error("protocol error in the AGI header: %s (classic)", exc)
        return 1
    backend = StateBackend.from_settings(settings)
    app = FeatureApp(settings.features, backend.repository)
    channel = AgiChannel(request, PystTransport(agi))
    try:
        extension, outcome = await app.handle(channel, route)
        log.info("route=%s ext=%s status=%s reason=%s (classic)", route, extension or "-",
                 outcome.status.value, outcome.reason or "-")
    except ChannelHungUp:
        log.info("route=%s status=HANGUP (classic)", route)
    except CommandRejected as exc:
        log.error("route=%s: %s (classic)", route, exc)
        return 1
    except ProtocolError as exc:
        log.error("route=%s: protocol error: %s (classic)", route, exc)
        return 1
    finally:
        await backend.close()
    return 0


def main() -> None:
    from asterisk.agi import AGI

    # Caller names are raw bytes from the trunk: keep invalid UTF-8 readable
    # whatever the locale Asterisk runs us under (strict under en_US.UTF-8).
    sys.stdin.reconfigure(encoding="utf-8", errors="surrogateescape")
    sys.stdout.reconfigure(encoding="utf-8")
    # stderr goes to Asterisk's verbose log; pyst2 narrates every line there.
    agi = AGI(stdin=sys.stdin, stdout=sys.stdout, stderr=io.StringIO())
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"telefeatures-agi: bad settings: {exc}", file=sys.stderr)
        sys.exit(1)
    configure_logging(settings.log_level, settings.log_format)
    sys.exit(asyncio.run(run_session(agi, settings)))
