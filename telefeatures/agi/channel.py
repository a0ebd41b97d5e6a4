"""The small channel interface features are written against.

Features never see sockets or AGI text: they call ``get_variable``,
``set_variable``, ``stream_file``, ``say_digits`` and ``wait_for_digit`` on a
:class:`Channel`. :class:`AgiChannel` implements that over any transport that can
send one encoded command and return its :class:`~telefeatures.agi.protocol.Reply`
(the FastAGI socket or classic AGI's stdin/stdout), so both share every feature.
"""

from __future__ import annotations

import logging
from typing import Protocol

from .protocol import AgiRequest, Reply, digit_from_result, encode_command

log = logging.getLogger("telefeatures.agi")


class ChannelHungUp(Exception):
    """The channel is gone (``511``, or the transport closed)."""


class CommandRejected(Exception):
    """Asterisk answered ``510`` or ``520``: a bug on our side, never the caller's."""

    def __init__(self, command: bytes, reply: Reply):
        super().__init__(f"{command.decode(errors='replace').strip()!r} -> {reply.code} {reply.text}")
        self.reply = reply


class Transport(Protocol):
    """Sends one command line and returns the one reply to it."""

    async def execute(self, command: bytes) -> Reply: ...

    @property
    def hung_up(self) -> bool: ...


class Channel(Protocol):
    request: AgiRequest

    @property
    def hung_up(self) -> bool: ...

    async def get_variable(self, name: str) -> str | None: ...

    async def set_variable(self, name: str, value: str) -> None: ...

    async def stream_file(self, prompt: str, escape_digits: str = "") -> str | None: ...

    async def say_digits(self, digits: str, escape_digits: str = "") -> str | None: ...

    async def wait_for_digit(self, timeout_ms: int) -> str | None: ...


class AgiChannel:
    """:class:`Channel` over an AGI transport."""

    __slots__ = ("request", "_transport")

    def __init__(self, request: AgiRequest, transport: Transport):
        self.request = request
        self._transport = transport

    @property
    def hung_up(self) -> bool:
        return self._transport.hung_up

    async def _run(self, verb: str, *args: object) -> Reply:
        command = encode_command(verb, *args)
        reply = await self._transport.execute(command)
        if reply.code == 200:
            return reply
        if reply.code == 511:
            raise ChannelHungUp(reply.text)
        raise CommandRejected(command, reply)

    async def get_variable(self, name: str) -> str | None:
        reply = await self._run("GET VARIABLE", name)
        return reply.data if reply.result == "1" else None

    async def set_variable(self, name: str, value: str) -> None:
        await self._run("SET VARIABLE", name, value)

    async def stream_file(self, prompt: str, escape_digits: str = "") -> str | None:
        reply = await self._run("STREAM FILE", prompt, escape_digits)
        if reply.result_int == -1:
            # A missing sound file answers -1 as well as a failed channel; the
            # former must not end the feature, the latter shows up on the next
            # command as 511.
            log.warning("prompt %r could not be played (missing file or channel error)", prompt)
            return None
        return digit_from_result(reply)

    async def say_digits(self, digits: str, escape_digits: str = "") -> str | None:
        reply = await self._run("SAY DIGITS", digits, escape_digits)
        return digit_from_result(reply)

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        reply = await self._run("WAIT FOR DIGIT", int(timeout_ms))
        if reply.result_int == -1:
            raise ChannelHungUp("WAIT FOR DIGIT failed")
        return digit_from_result(reply)


async def play(channel: Channel, prompts: list[str] | tuple[str, ...], escape_digits: str = "") -> str | None:
    """Play prompts in order; stop at the first escape digit and return it."""
    for prompt in prompts:
        digit = await channel.stream_file(prompt, escape_digits)
        if digit:
            return digit
    return None
