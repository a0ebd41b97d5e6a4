"""The AGI wire protocol, sans I/O: pure functions over text and one
:class:`AgiSession` that turns received bytes into events.

Nothing here touches a socket, a file or a clock: the FastAGI server and the
classic (stdin/stdout) path both hand the bytes they receive to an
:class:`AgiSession` and send the bytes :func:`encode_command` makes, so both
share one grammar, one line framing and one set of limits. That keeps the
protocol testable on its own, exhaustively.

Facts this follows (Asterisk res_agi.c, 20-22):
- The session opens with ``agi_<name>: <value>`` lines and ends the block with an
  empty line. Values are not escaped; an empty value may come as ``agi_x:`` with
  no space.
- Each command gets exactly one reply: ``200 result=N [(data)] [endpos=M]``,
  ``510 ...``, ``511 ...``, a single ``520 ...`` line or a block ``520-...`` ended
  by a line starting ``520 ``. ``100 result=0 Trying...`` precedes a later reply.
  ``HANGUP`` may arrive on its own line at any time and is not a reply.
- Arguments are split on unquoted blanks; ``"`` toggles quoting and ``\\``
  escapes the next character. CR, LF and NUL cannot be carried at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

# Asterisk reads AGI lines into an 8 KB buffer; a longer line is never legitimate.
MAX_LINE_BYTES = 8192
# Asterisk sends ~25 variables plus at most 127 arguments.
MAX_HEADER_LINES = 256
MAX_HEADER_BYTES = 64 * 1024
# A 520 usage text is a few dozen lines; anything much longer is not Asterisk.
MAX_USAGE_LINES = 200
# A line may be this long with its line ending (StreamReader.readuntil's rule:
# the newline may sit at most this far in).
LINE_LIMIT = MAX_LINE_BYTES + 2

_HEADER_LINE = re.compile(r"(agi_[a-z0-9_]{1,64}):(?: ?)(.*)", re.ASCII | re.DOTALL)
_ARG_KEY = re.compile(r"agi_arg_([1-9][0-9]{0,2})", re.ASCII)
_VERB = re.compile(r"[A-Z]+(?: [A-Z]+)*", re.ASCII)
_REPLY_200 = re.compile(
    r"200 result=(?P<result>\S*)(?: \((?P<data>.*)\))?(?: endpos=(?P<endpos>-?[0-9]{1,19}))?[ \t]*",
    re.ASCII | re.DOTALL,
)
_REPLY_CODE = re.compile(r"(?P<code>[1-5][0-9]{2})(?P<sep>[ -])(?P<text>.*)", re.ASCII | re.DOTALL)
_FORBIDDEN_IN_ARGS = ("\r", "\n", "\x00")
# A script that urlsplit() would return unchanged as its path.
_PLAIN_SCRIPT = re.compile(r"(?!//)[A-Za-z0-9_./-]*", re.ASCII)


class ProtocolError(ValueError):
    """The peer sent something that is not AGI."""


class UnsafeArgument(ValueError):
    """An argument cannot be carried by the AGI grammar (CR, LF or NUL)."""


def decode_line(raw: bytes) -> str:
    """Turn one received line into text without its line ending.

    Asterisk passes caller names through as raw bytes, so invalid UTF-8 is
    possible; it becomes U+FFFD rather than an exception, and the result can
    never validate as a dialable number.
    """
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return raw.decode("utf-8", errors="replace")


# --------------------------------------------------------------------------- headers


@dataclass(frozen=True, slots=True)
class AgiRequest:
    """What Asterisk said about the call when the AGI session opened."""

    env: Mapping[str, str]
    args: tuple[str, ...] = ()

    def get(self, name: str, default: str = "") -> str:
        return self.env.get(name, default)

    @property
    def network_script(self) -> str:
        return self.env.get("agi_network_script", "")

    @property
    def route(self) -> str:
        """The route name: the script path of ``agi://host/route?query`` without
        its query and slashes. For classic AGI the adapter supplies it."""
        return split_script(self.network_script)[0]

    @property
    def query(self) -> dict[str, str]:
        return split_script(self.network_script)[1]

    @property
    def channel(self) -> str:
        return self.env.get("agi_channel", "")

    @property
    def uniqueid(self) -> str:
        return self.env.get("agi_uniqueid", "")

    def arg(self, index: int) -> str:
        """1-based AGI argument, '' when absent."""
        return self.args[index - 1] if 0 < index <= len(self.args) else ""


def split_script(script: str) -> tuple[str, dict[str, str]]:
    """``"outbound?x=1"`` -> ``("outbound", {"x": "1"})``."""
    if _PLAIN_SCRIPT.fullmatch(script):
        return script.strip("/"), {}
    parts = urlsplit(script)
    route = parts.path.strip("/")
    return route, dict(parse_qsl(parts.query, keep_blank_values=True))


def parse_header_line(line: str) -> tuple[str, str]:
    """Parse one ``agi_name: value`` line.

    The value keeps everything after the single separating space, including
    further colons and spaces; Asterisk does not escape it.
    """
    m = _HEADER_LINE.fullmatch(line)
    if m is None:
        raise ProtocolError(f"not an AGI header line: {line[:80]!r}")
    return m.group(1, 2)


def build_request(pairs: Iterable[tuple[str, str]]) -> AgiRequest:
    """Assemble the header pairs of one session into an :class:`AgiRequest`.

    ``agi_arg_N`` become positional arguments; a gap in the numbering is an
    error (Asterisk always numbers them 1..N). An empty block is an error too:
    Asterisk always sends some twenty lines, so a bare blank line is not Asterisk.
    """
    env: dict[str, str] = {}
    numbered: dict[int, str] = {}
    for key, value in pairs:
        if key.startswith("agi_arg_"):
            m = _ARG_KEY.fullmatch(key)
            if m:
                numbered[int(m.group(1))] = value
        env[key] = value
    if not env:
        raise ProtocolError("empty header block")
    if numbered and sorted(numbered) != list(range(1, len(numbered) + 1)):
        raise ProtocolError("AGI arguments are not numbered 1..N")
    args = tuple(numbered[i] for i in range(1, len(numbered) + 1))
    return AgiRequest(env=env, args=args)


class HeaderParser:
    """The header block, fed one line at a time (without its line ending).

    :meth:`feed` returns the :class:`AgiRequest` at the blank line that ends the
    block, None before that. The size limits are checked as lines arrive, so a
    header that never ends costs at most the limits.
    """

    __slots__ = ("_pairs", "_size")

    def __init__(self) -> None:
        self._pairs: list[tuple[str, str]] = []
        self._size = 0

    def feed(self, line: str) -> AgiRequest | None:
        if line == "":
            return build_request(self._pairs)
        self._size += len(line) + 1
        if len(self._pairs) >= MAX_HEADER_LINES or self._size > MAX_HEADER_BYTES:
            raise ProtocolError("header block too large")
        self._pairs.append(parse_header_line(line))
        return None


def parse_header_block(lines: Iterable[str]) -> AgiRequest:
    """Parse a whole header block (lines without endings, up to the blank line)."""
    parser = HeaderParser()
    for line in lines:
        request = parser.feed(line)
        if request is not None:
            return request
    raise ProtocolError("header block ended before the blank line")


# --------------------------------------------------------------------------- commands


def quote(arg: object) -> str:
    """Quote one command argument so Asterisk's parse_args() gives it back
    unchanged: wrapped in double quotes, with ``\\`` and ``"`` escaped.

    CR, LF and NUL cannot be represented and are refused outright: they would
    end the command early and let the rest be read as a second command.
    """
    text = str(arg)
    for bad in _FORBIDDEN_IN_ARGS:
        if bad in text:
            raise UnsafeArgument(f"argument contains {bad!r}: {text[:40]!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_command(verb: str, *args: object) -> bytes:
    """Encode one AGI command line, e.g. ``encode_command("SET VARIABLE", "A", "b")``.

    The verb must be plain upper-case words; every argument goes through
    :func:`quote`. This is the only way telefeatures builds a command.
    """
    if not _VERB.fullmatch(verb):
        raise UnsafeArgument(f"not an AGI command verb: {verb[:40]!r}")
    line = verb
    for arg in args:
        line += " " + quote(arg)
    data = (line + "\n").encode("utf-8")
    if len(data) > MAX_LINE_BYTES:
        raise UnsafeArgument("command longer than Asterisk's 8 KB line buffer")
    return data


def unquote_args(line: str) -> list[str]:
    """Split a command line the way Asterisk's parse_args() does.

    Used by tests and by the scripted Asterisk peer to check what Asterisk
    would see for an encoded command.
    """
    argv: list[str] = []
    quoted = escaped = False
    whitespace = True
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                argv.append("")  # an opening quote starts a word, even an empty one
                whitespace = False
            continue
        if ch in " \t" and not quoted and not escaped:
            whitespace = True
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            argv.append("")
            whitespace = False
        argv[-1] += ch
        escaped = False
    return argv


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True, slots=True)
class Reply:
    """One complete reply to one command."""

    code: int
    result: str = ""
    data: str | None = None
    endpos: int | None = None
    text: str = ""
    usage: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def result_int(self) -> int | None:
        try:
            return int(self.result)
        except ValueError:
            return None


# Replies are immutable, and a few lines ("200 result=1", "200 result=0
# endpos=16000"...) make up nearly all of them: short ones are parsed once.
_REPLY_CACHE: dict[str, Reply] = {}
_REPLY_CACHE_SIZE = 256
_REPLY_CACHE_LINE = 48


def parse_reply_line(line: str) -> Reply:
    """Parse a single-line reply (200, 510, 511, or a one-line 520)."""
    reply = _REPLY_CACHE.get(line)
    if reply is not None:
        return reply
    reply = _parse_reply_line(line)
    if len(line) <= _REPLY_CACHE_LINE and len(_REPLY_CACHE) < _REPLY_CACHE_SIZE:
        _REPLY_CACHE[line] = reply
    return reply


def _parse_reply_line(line: str) -> Reply:
    if line.startswith("200 "):
        m = _REPLY_200.fullmatch(line)
        if not m:
            raise ProtocolError(f"malformed 200 reply: {line[:80]!r}")
        endpos = m.group("endpos")
        return Reply(
            code=200,
            result=m.group("result"),
            data=m.group("data"),
            endpos=int(endpos) if endpos is not None else None,
            text=line,
        )
    m = _REPLY_CODE.fullmatch(line)
    if not m or m.group("sep") != " " or m.group("code") not in ("510", "511", "520"):
        raise ProtocolError(f"not an AGI reply: {line[:80]!r}")
    return Reply(code=int(m.group("code")), text=m.group("text"))


class ReplyReader:
    """Assembles the reply to the one outstanding command from received lines.

    Feed it lines; it returns ``None`` until the reply is complete. ``HANGUP``
    lines and ``100 Trying`` lines are absorbed (``hung_up`` records the former),
    and a ``520-`` usage block is collected up to its closing ``520 `` line.
    """

    __slots__ = ("hung_up", "_usage")

    def __init__(self) -> None:
        self.hung_up = False
        self._usage: list[str] | None = None

    @property
    def in_block(self) -> bool:
        return self._usage is not None

    def feed(self, line: str) -> Reply | None:
        usage = self._usage
        if usage is not None:
            if line.startswith("520 "):
                self._usage = None
                return Reply(code=520, text=line[4:], usage=tuple(usage))
            if len(usage) >= MAX_USAGE_LINES:
                raise ProtocolError("520 usage block does not end")
            usage.append(line)
            return None
        if line == "HANGUP":
            self.hung_up = True
            return None
        if line.startswith("520-"):
            self._usage = [line[4:]]
            return None
        if line.startswith("100 "):
            return None
        return parse_reply_line(line)


def digit_from_result(reply: Reply) -> str | None:
    """The DTMF digit of a STREAM FILE / SAY DIGITS / WAIT FOR DIGIT reply.

    ``result`` is the ASCII code of the key pressed, 0 for none.
    """
    code = reply.result_int
    if code is None or code <= 0:
        return None
    ch = chr(code) if code < 128 else ""
    return ch if ch and ch in "0123456789*#ABCD" else None


# --------------------------------------------------------------------------- the session


class _Event:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


# Events of :meth:`AgiSession.next_event` besides an AgiRequest or a Reply.
NEED_DATA = _Event("NEED_DATA")  # nothing complete yet: receive more bytes
HANGUP = _Event("HANGUP")  # Asterisk sent a HANGUP line (the channel hung up)
CLOSED = _Event("CLOSED")  # the input ended before anything more was complete


class AgiSession:
    """One AGI session: bytes in, events out.

    Feed it what arrives (:meth:`receive_data`, :meth:`receive_eof`); ask
    :meth:`next_event` for what it means: first the :class:`AgiRequest` when
    the header block is complete, then, for each command sent, any
    :data:`HANGUP` lines and the command's :class:`Reply`. :data:`NEED_DATA`
    means wait for more bytes, :data:`CLOSED` that the input ended first.
    Bytes that are not AGI raise :class:`ProtocolError`.

    Every limit lives here: lines are capped like Asterisk's own 8 KB buffer
    (:data:`LINE_LIMIT`), the header block by :data:`MAX_HEADER_LINES` and
    :data:`MAX_HEADER_BYTES`, a 520 usage block by :data:`MAX_USAGE_LINES`.

    Fast path: a header block that arrived whole (the usual case, one read of
    ~600 bytes) is decoded in one go, with the same limits and in the same
    order as reading it line by line.
    """

    __slots__ = ("_buffer", "_header", "_replies", "_eof")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._header: HeaderParser | None = HeaderParser()  # None once the block is read
        self._replies = ReplyReader()
        self._eof = False

    def receive_data(self, data: bytes) -> None:
        self._buffer += data

    def receive_eof(self) -> None:
        self._eof = True

    @property
    def buffered(self) -> int:
        """Bytes received and not yet turned into events (for flow control)."""
        return len(self._buffer)

    @property
    def header_read(self) -> bool:
        return self._header is None

    @property
    def hung_up(self) -> bool:
        """A HANGUP line has arrived."""
        return self._replies.hung_up

    def next_event(self):
        """The next :class:`AgiRequest` / :class:`Reply` / :data:`HANGUP`, or
        :data:`NEED_DATA` / :data:`CLOSED`."""
        if self._header is not None:
            return self._next_header_event()
        replies = self._replies
        while True:
            line = self._take_line()
            if line is None:
                return CLOSED if self._eof else NEED_DATA
            if line == "HANGUP" and not replies.in_block:
                replies.hung_up = True
                return HANGUP
            reply = replies.feed(line)
            if reply is not None:
                return reply

    def _next_header_event(self):
        header = self._header
        block = self._take_header_block()
        lines = iter(block + [""]) if block is not None else iter(self._take_line, None)
        for line in lines:
            request = header.feed(line)
            if request is not None:
                self._header = None
                return request
        return CLOSED if self._eof else NEED_DATA

    def _take_line(self) -> str | None:
        """The next complete line, or None until one has arrived."""
        buffer = self._buffer
        end = buffer.find(b"\n")
        if end < 0:
            if len(buffer) > LINE_LIMIT:
                raise ProtocolError(f"line longer than {MAX_LINE_BYTES} bytes")
            return None
        if end > LINE_LIMIT:
            raise ProtocolError(f"line longer than {MAX_LINE_BYTES} bytes")
        line = decode_line(buffer[:end])
        del buffer[:end + 1]
        return line

    def _take_header_block(self) -> list[str] | None:
        """The lines up to the blank line that ends the header block, decoded
        in one go, when all of it has arrived and it is no longer than one line
        may be. None otherwise."""
        buffer = self._buffer
        end = buffer.find(b"\n\n")
        crlf = buffer.find(b"\n\r\n")
        if crlf >= 0 and (end < 0 or crlf < end):
            end, skip = crlf + 1, 2
        elif end >= 0:
            end, skip = end + 1, 1
        else:
            return None
        if end > LINE_LIMIT:
            return None
        text = buffer[:end].decode("utf-8", errors="replace")
        del buffer[:end + skip]
        lines = text.split("\n")
        lines.pop()  # after the last line's newline
        if "\r" in text:
            lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        return lines
