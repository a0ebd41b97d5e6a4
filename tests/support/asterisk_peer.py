"""A scripted Asterisk for AGI: sends the session header the way Asterisk 22
does and answers commands the way res_agi.c does, recording what it received.

Three ways to use it:

* :func:`call` - connect to a FastAGI server over TCP and run one session::

      result = await call("127.0.0.1", port, "outbound", ["1000", "5551234"])
      assert result.variables["TF_STATUS"] == "OK"

* :func:`converse` - run a session over any asyncio stream pair (e.g. the
  stdin/stdout of a classic ``AGI()`` subprocess).
* :class:`ScriptedTransport` - no I/O at all: an ``AgiChannel`` transport that
  answers from the same script, for fast feature tests.

What the peer does is described by a :class:`Script`; commands are numbered
from 1 in the order they arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from telefeatures.agi.channel import AgiChannel, ChannelHungUp
from telefeatures.agi.protocol import (
    AgiRequest,
    Reply,
    ReplyReader,
    decode_line,
    parse_header_block,
    unquote_args,
)

ASTERISK_VERSION = "22.5.2"

# The order in which res_agi.c's launch_netscript()/setup_env() send the header.
HEADER_FIELDS = (
    "network",
    "network_script",
    "request",
    "channel",
    "language",
    "type",
    "uniqueid",
    "version",
    "callerid",
    "calleridname",
    "callingpres",
    "callingani2",
    "callington",
    "callingtns",
    "dnid",
    "rdnis",
    "context",
    "extension",
    "priority",
    "enhanced",
    "accountcode",
    "threadid",
)

# Verbs res_agi.c knows, longest first so "GET FULL VARIABLE" wins over "GET".
KNOWN_VERBS = (
    "GET FULL VARIABLE",
    "WAIT FOR DIGIT",
    "SET VARIABLE",
    "GET VARIABLE",
    "STREAM FILE",
    "SAY DIGITS",
    "SAY NUMBER",
    "DATABASE GET",
    "CHANNEL STATUS",
    "ANSWER",
    "HANGUP",
    "VERBOSE",
    "NOOP",
    "EXEC",
)
# (min, max) argument counts; outside them Asterisk answers a 520 usage block.
ARG_COUNTS = {
    "GET FULL VARIABLE": (1, 2),
    "WAIT FOR DIGIT": (1, 1),
    "SET VARIABLE": (2, 2),
    "GET VARIABLE": (1, 1),
    "STREAM FILE": (2, 3),
    "SAY DIGITS": (2, 2),
    "SAY NUMBER": (2, 3),
    "DATABASE GET": (2, 2),
    "CHANNEL STATUS": (0, 1),
    "ANSWER": (0, 0),
    "HANGUP": (0, 1),
    "VERBOSE": (1, 2),
    "NOOP": (0, 99),
    "EXEC": (1, 2),
}
# Commands res_agi.c still runs on a hung-up channel; the rest answer 511.
DEAD_OK = frozenset({"GET FULL VARIABLE", "SET VARIABLE", "GET VARIABLE", "DATABASE GET", "VERBOSE", "NOOP",
                     "CHANNEL STATUS", "HANGUP"})

REPLY_510 = "510 Invalid or unknown command"
REPLY_511 = "511 Command Not Permitted on a dead channel or intercept routine"
TRYING = "100 result=0 Trying..."


def usage_block(verb: str) -> list[str]:
    """The multi-line 520 reply Asterisk gives for a known verb used wrongly."""
    return [
        "520-Invalid command syntax.  Proper usage follows:",
        f" Usage: {verb} <arguments>",
        "        Does something with its arguments.",
        "",
        "520 End of proper usage.",
    ]


USAGE_ONE_LINE = "520 Invalid command syntax.  Proper usage not available."


def header_lines(
    route: str,
    args: Sequence[str | bytes] = (),
    *,
    host: str = "127.0.0.1",
    **fields: str | bytes,
) -> list[str | bytes]:
    """The header lines of one session (without the blank line).

    ``fields`` override the defaults by short name (``callerid="5551234"``,
    ``channel="PJSIP/1001-00000002"``); a value of ``None`` leaves that line
    out. Values may be bytes, to send exactly those bytes (e.g. invalid UTF-8).
    An empty ``accountcode`` is sent as ``agi_accountcode:`` with no space after
    the colon, as Asterisk does.
    """
    values: dict[str, str | bytes | None] = {
        "network": "yes",
        "network_script": route,
        "request": f"agi://{host}/{route}",
        "channel": "PJSIP/1000-0000001a",
        "language": "en",
        "type": "PJSIP",
        "uniqueid": "1763700000.42",
        "version": ASTERISK_VERSION,
        "callerid": "1000",
        "calleridname": "Alice",
        "callingpres": "0",
        "callingani2": "0",
        "callington": "0",
        "callingtns": "0",
        "dnid": "unknown",
        "rdnis": "unknown",
        "context": "phones",
        "extension": "s",
        "priority": "1",
        "enhanced": "0.0",
        "accountcode": "",
        "threadid": "140234567890432",
    }
    for name, value in fields.items():
        if name not in values:
            raise TypeError(f"unknown AGI header field {name!r}")
        values[name] = value
    lines: list[str | bytes] = []
    for name in HEADER_FIELDS:
        value = values[name]
        if value is None:
            continue
        if name == "accountcode" and value in ("", b""):
            lines.append("agi_accountcode:")
        elif isinstance(value, bytes):
            lines.append(b"agi_" + name.encode() + b": " + value)
        else:
            lines.append(f"agi_{name}: {value}")
    for n, arg in enumerate(args, start=1):
        lines.append(b"agi_arg_%d: " % n + arg if isinstance(arg, bytes) else f"agi_arg_{n}: {arg}")
    return lines


def header_bytes(route: str, args: Sequence[str | bytes] = (), **fields: str | bytes) -> bytes:
    """The whole header block as Asterisk writes it, blank line included."""
    out = bytearray()
    for line in header_lines(route, args, **fields):
        out += line if isinstance(line, bytes) else line.encode("utf-8")
        out += b"\n"
    out += b"\n"
    return bytes(out)


def request_for(route: str, args: Sequence[str] = (), **fields: str) -> AgiRequest:
    """The :class:`AgiRequest` the server would build from this header."""
    lines = header_bytes(route, args, **fields).split(b"\n")
    return parse_header_block(decode_line(line) for line in lines)


@dataclass
class Script:
    """How the scripted Asterisk behaves. Command numbers start at 1."""

    variables: Mapping[str, str] = field(default_factory=dict)  # answers to GET VARIABLE
    press: Mapping[str, str] = field(default_factory=dict)  # prompt -> key pressed while it plays
    say_press: str | None = None  # key pressed during SAY DIGITS
    wait_digit: str | None = None  # key pressed during WAIT FOR DIGIT (None: timeout)
    missing_prompts: Iterable[str] = ()  # STREAM FILE answers result=-1 for these
    hangup_before: int | None = None  # HANGUP line before the reply to command N; dead from N on
    hangup_after: int | None = None  # HANGUP line right after the reply to command N; dead after N
    before: Mapping[int, Sequence[str]] = field(default_factory=dict)  # extra lines before reply N
    replies: Mapping[int, Sequence[str]] = field(default_factory=dict)  # lines replacing reply N
    delay: Mapping[int, float] = field(default_factory=dict)  # seconds to wait before replying to N
    close_at: int | None = None  # close the connection instead of answering command N
    stall_at: int | None = None  # never answer command N (wait for the server to give up)


@dataclass(frozen=True)
class Command:
    line: str  # as received, without the line ending
    verb: str  # e.g. "SET VARIABLE"
    args: tuple[str, ...]  # as Asterisk's parse_args() splits them


def parse_command(line: str) -> Command:
    words = unquote_args(line)
    upper = line.upper()
    for verb in KNOWN_VERBS:
        n = verb.count(" ") + 1
        if upper.startswith(verb) and [w.upper() for w in words[:n]] == verb.split():
            return Command(line, verb, tuple(words[n:]))
    return Command(line, words[0].upper() if words else "", tuple(words[1:]))


class ScriptedAsterisk:
    """The answering side of one AGI session, independent of any I/O.

    :meth:`respond` takes one received command line and returns the lines to
    send back (``None``: close the connection; ``[]``: send nothing).
    """

    def __init__(self, script: Script | None = None):
        self.script = script or Script()
        self._missing = frozenset(self.script.missing_prompts)
        self.commands: list[Command] = []
        self.sets: list[tuple[str, str]] = []  # SET VARIABLE in order
        self.prompts: list[str] = []  # STREAM FILE names in order
        self.said: list[str] = []  # SAY DIGITS in order
        self.dead = False  # the channel has hung up

    # -- what was received ------------------------------------------------

    @property
    def variables(self) -> dict[str, str]:
        """Variables set by the session (last value wins)."""
        return dict(self.sets)

    @property
    def verbs(self) -> list[str]:
        return [c.verb for c in self.commands]

    # -- answering ----------------------------------------------------------

    def respond(self, line: str) -> list[str] | None:
        script = self.script
        cmd = parse_command(line)
        self.commands.append(cmd)
        n = len(self.commands)
        if script.close_at == n:
            return None
        out: list[str] = list(script.before.get(n, ()))
        if script.hangup_before == n:
            out.append("HANGUP")
            self.dead = True
        if n in script.replies:
            out.extend(script.replies[n])
        else:
            out.extend(self._answer(cmd))
        if script.hangup_after == n:
            out.append("HANGUP")
            self.dead = True
        return out

    def _answer(self, cmd: Command) -> list[str]:
        verb, args = cmd.verb, cmd.args
        if verb not in ARG_COUNTS:
            return [REPLY_510]
        lo, hi = ARG_COUNTS[verb]
        if not lo <= len(args) <= hi:
            return usage_block(verb)
        if self.dead and verb not in DEAD_OK:
            return [REPLY_511]
        script = self.script
        if verb == "SET VARIABLE":
            self.sets.append((args[0], args[1]))
            return ["200 result=1"]
        if verb in ("GET VARIABLE", "GET FULL VARIABLE"):
            name = args[0]
            if verb == "GET FULL VARIABLE" and name.startswith("${") and name.endswith("}"):
                name = name[2:-1]
            if name in script.variables:
                return [f"200 result=1 ({script.variables[name]})"]
            return ["200 result=0"]
        if verb == "STREAM FILE":
            prompt, escape = args[0], args[1]
            self.prompts.append(prompt)
            if prompt in self._missing:
                return ["200 result=-1 endpos=0"]
            key = script.press.get(prompt)
            if key and key in escape:
                return [f"200 result={ord(key)} endpos=4160"]
            return ["200 result=0 endpos=16000"]
        if verb == "SAY DIGITS":
            self.said.append(args[0])
            key = script.say_press
            if key and key in args[1]:
                return [f"200 result={ord(key)}"]
            return ["200 result=0"]
        if verb == "WAIT FOR DIGIT":
            key = script.wait_digit
            return [f"200 result={ord(key)}" if key else "200 result=0"]
        if verb == "HANGUP":
            self.dead = True
            return ["200 result=1"]
        if verb == "VERBOSE":
            return ["200 result=1"]
        if verb == "CHANNEL STATUS":
            return ["200 result=6"]
        return ["200 result=0"]


@dataclass
class CallResult:
    """What one session over a stream looked like from Asterisk's side."""

    asterisk: ScriptedAsterisk
    closed_by_server: bool = False  # the server closed the connection (EOF)
    reset: bool = False  # the connection was reset (or refused mid-way)
    closed_by_peer: bool = False  # the script closed it (close_at)
    trailing: bytes = b""  # bytes of an unterminated last line

    @property
    def commands(self) -> list[Command]:
        return self.asterisk.commands

    @property
    def verbs(self) -> list[str]:
        return self.asterisk.verbs

    @property
    def variables(self) -> dict[str, str]:
        return self.asterisk.variables

    @property
    def sets(self) -> list[tuple[str, str]]:
        return self.asterisk.sets

    @property
    def prompts(self) -> list[str]:
        return self.asterisk.prompts

    @property
    def said(self) -> list[str]:
        return self.asterisk.said

    @property
    def status(self) -> str | None:
        return self.variables.get("TF_STATUS")


def _encode_lines(lines: Sequence[str]) -> bytes:
    return "".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape")


async def converse(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    header: bytes,
    script: Script | None = None,
    *,
    timeout: float = 10.0,
) -> CallResult:
    """Send ``header``, then answer commands until the other side closes.

    ``timeout`` bounds the whole conversation (TimeoutError when exceeded).
    The writer is closed on return.
    """
    asterisk = ScriptedAsterisk(script)
    result = CallResult(asterisk)
    stall = asterisk.script.stall_at
    try:
        async with asyncio.timeout(timeout):
            try:
                writer.write(header)
                await writer.drain()
            except (ConnectionResetError, BrokenPipeError):
                result.reset = True
                return result
            while True:
                try:
                    raw = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError as exc:
                    result.trailing = exc.partial
                    result.closed_by_server = True
                    return result
                except ConnectionResetError:
                    result.reset = True
                    return result
                lines = asterisk.respond(decode_line(raw))
                n = len(asterisk.commands)
                if lines is None:
                    result.closed_by_peer = True
                    return result
                if n == stall:
                    continue
                pause = asterisk.script.delay.get(n)
                if pause:
                    await asyncio.sleep(pause)
                if lines:
                    try:
                        writer.write(_encode_lines(lines))
                        await writer.drain()
                    except (ConnectionResetError, BrokenPipeError):
                        result.reset = True
                        return result
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def call(
    host: str,
    port: int,
    route: str,
    args: Sequence[str | bytes] = (),
    script: Script | None = None,
    *,
    local_addr: tuple[str, int] | None = None,
    timeout: float = 10.0,
    **fields: str | bytes,
) -> CallResult:
    """Connect to a FastAGI server and run one session of ``route``."""
    reader, writer = await asyncio.open_connection(host, port, local_addr=local_addr)
    return await converse(reader, writer, header_bytes(route, args, host=host, **fields), script,
                          timeout=timeout)


async def read_until_closed(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (reset counts
    as closed). TimeoutError if it stays open longer than ``timeout``."""
    data = bytearray()
    async with asyncio.timeout(timeout):
        while True:
            try:
                chunk = await reader.read(65536)
            except ConnectionResetError:
                return bytes(data)
            if not chunk:
                return bytes(data)
            data += chunk


class ScriptedTransport:
    """An ``AgiChannel`` transport answered by a :class:`ScriptedAsterisk`,
    through the same :class:`ReplyReader` a socket transport uses."""

    def __init__(self, asterisk: ScriptedAsterisk):
        self.asterisk = asterisk
        self._replies = ReplyReader()
        self._pending: deque[str] = deque()  # lines "sent" but not yet read
        self.closed = False

    @property
    def hung_up(self) -> bool:
        return self._replies.hung_up

    async def execute(self, command: bytes) -> Reply:
        if self.closed:
            raise ChannelHungUp("connection closed")
        lines = self.asterisk.respond(decode_line(command))
        n = len(self.asterisk.commands)
        if lines is None or n == self.asterisk.script.stall_at:
            self.closed = True
            raise ChannelHungUp("connection closed")
        self._pending.extend(lines)
        while self._pending:
            reply = self._replies.feed(self._pending.popleft())
            if reply is not None:
                return reply
        self.closed = True
        raise ChannelHungUp("connection closed")


def scripted_channel(
    route: str,
    args: Sequence[str] = (),
    script: Script | None = None,
    **fields: str,
) -> tuple[AgiChannel, ScriptedAsterisk]:
    """An ``AgiChannel`` for ``route`` whose commands the script answers."""
    asterisk = ScriptedAsterisk(script)
    return AgiChannel(request_for(route, args, **fields), ScriptedTransport(asterisk)), asterisk
