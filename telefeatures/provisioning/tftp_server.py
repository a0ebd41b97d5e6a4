"""A small read-only TFTP server for phone configuration files (asyncio, UDP).

Written here instead of using tftpy's server, which accepts uploads by
default, accepts absolute paths that start with the root, and resolves names
with abspath (so a symlink inside the root can point anywhere).

What it does, and nothing else:

* RRQ only, octet and netascii modes (RFC 1350); WRQ gets error 2;
* options blksize (8..65464), tsize and timeout (RFC 2347/2348/2349);
* every transfer on its own ephemeral socket connected to the client, with a
  retransmit timeout and a retry cap; a bounded number of transfers at once;
* names are relative paths of printable ASCII: no NUL, no backslash, no
  leading ``/``, no empty, ``.`` or ``..`` component and no hidden (dot)
  names; the real path (symlinks resolved) must lie inside the real root, and
  the opened file is checked again through /proc so a swapped symlink cannot
  slip in between; only regular files are served (no directories, FIFOs,
  devices), with exact-case names;
* one log line per request.

The request parsing is plain functions over bytes (``parse_request``,
``resolve_request_path``); the asyncio part only moves packets and keeps time.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import stat
import struct
import time
from dataclasses import dataclass, field
from typing import BinaryIO

log = logging.getLogger("telefeatures.tftp")

OP_RRQ, OP_WRQ, OP_DATA, OP_ACK, OP_ERROR, OP_OACK = 1, 2, 3, 4, 5, 6

ERR_UNDEFINED = 0
ERR_NOT_FOUND = 1
ERR_ACCESS = 2
ERR_ILLEGAL = 4
ERR_OPTION = 8

DEFAULT_BLKSIZE = 512
MIN_BLKSIZE, MAX_BLKSIZE = 8, 65464
MAX_REQUEST = 1024
MAX_NAME = 255
MAX_OPTIONS = 8


class TftpError(Exception):
    """A request that must be answered with a TFTP ERROR packet."""

    def __init__(self, code: int, message: str):
        self.code = code
        self.message = message
        super().__init__(f"error {code}: {message}")


@dataclass(frozen=True)
class Request:
    opcode: int
    filename: str
    mode: str
    options: dict[str, str] = field(default_factory=dict)


def error_packet(code: int, message: str) -> bytes:
    return struct.pack("!HH", OP_ERROR, code) + message.encode("ascii", "replace")[:200] + b"\0"


def data_packet(block: int, payload: bytes) -> bytes:
    return struct.pack("!HH", OP_DATA, block) + payload


def oack_packet(options: dict[str, str]) -> bytes:
    body = b"".join(name.encode() + b"\0" + value.encode() + b"\0" for name, value in options.items())
    return struct.pack("!H", OP_OACK) + body


def parse_request(packet: bytes) -> Request:
    """Parse an RRQ or WRQ; raise TftpError for anything malformed."""
    if len(packet) > MAX_REQUEST:
        raise TftpError(ERR_ILLEGAL, "request too long")
    if len(packet) < 4:
        raise TftpError(ERR_ILLEGAL, "malformed request")
    opcode = struct.unpack("!H", packet[:2])[0]
    if opcode not in (OP_RRQ, OP_WRQ):
        raise TftpError(ERR_ILLEGAL, "expected a read request")
    if not packet.endswith(b"\0"):
        raise TftpError(ERR_ILLEGAL, "malformed request")
    fields = packet[2:-1].split(b"\0")
    if len(fields) < 2 or len(fields) % 2:
        raise TftpError(ERR_ILLEGAL, "malformed request")
    try:
        name, mode, *rest = (item.decode("ascii") for item in fields)
    except UnicodeDecodeError:
        raise TftpError(ERR_ACCESS, "file names are ASCII") from None
    mode = mode.lower()
    if mode not in ("octet", "netascii"):
        raise TftpError(ERR_ILLEGAL, f"unsupported transfer mode {mode[:20]!r}")
    options: dict[str, str] = {}
    for key, value in zip(rest[::2], rest[1::2]):
        key = key.lower()
        if not key or key in options or len(options) >= MAX_OPTIONS:
            raise TftpError(ERR_ILLEGAL, "malformed options")
        options[key] = value
    return Request(opcode, name, mode, options)


def check_name(name: str) -> None:
    """Reject every name that is not a plain relative path inside the root."""
    if not name:
        raise TftpError(ERR_NOT_FOUND, "empty file name")
    if len(name) > MAX_NAME:
        raise TftpError(ERR_ACCESS, "file name too long")
    if not all(" " <= char <= "~" for char in name):
        raise TftpError(ERR_ACCESS, "file names are printable ASCII")
    if "\\" in name:
        raise TftpError(ERR_ACCESS, "backslash in file name")
    if name.startswith("/"):
        raise TftpError(ERR_ACCESS, "absolute paths are not served")
    for part in name.split("/"):
        if part in ("", ".", ".."):
            raise TftpError(ERR_ACCESS, "empty, '.' or '..' path component")
        if part.startswith("."):
            raise TftpError(ERR_ACCESS, "hidden files are not served")


def resolve_request_path(real_root: str, name: str) -> str:
    """The real path of ``name`` under ``real_root`` (already realpath'd)."""
    check_name(name)
    real = os.path.realpath(os.path.join(real_root, name))
    if not real.startswith(real_root.rstrip("/") + "/"):
        raise TftpError(ERR_ACCESS, "outside the TFTP root")
    return real


def open_request_file(real_root: str, name: str) -> tuple[BinaryIO, int]:
    """Open a regular file under the root for reading: (file, size)."""
    path = resolve_request_path(real_root, name)
    try:
        # O_NONBLOCK: opening a FIFO must not hang the server; O_NOFOLLOW: the
        # last component may not have become a symlink since the check above.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise TftpError(ERR_NOT_FOUND, "file not found") from None
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.ELOOP):
            raise TftpError(ERR_ACCESS, "access violation") from None
        if exc.errno == errno.ENOTDIR:
            raise TftpError(ERR_NOT_FOUND, "file not found") from None
        raise TftpError(ERR_UNDEFINED, "cannot open file") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TftpError(ERR_NOT_FOUND, "not a file")
        proc = f"/proc/self/fd/{fd}"
        if os.path.exists(proc):
            opened = os.readlink(proc)
            if not opened.startswith(real_root.rstrip("/") + "/"):
                raise TftpError(ERR_ACCESS, "outside the TFTP root")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), info.st_size
    except BaseException:
        os.close(fd)
        raise


class _NetasciiReader:
    """Reads a file as netascii: LF -> CR LF, CR -> CR NUL."""

    def __init__(self, handle: BinaryIO):
        self.handle = handle
        self.buffer = b""
        self.eof = False

    def read(self, size: int) -> bytes:
        while len(self.buffer) < size and not self.eof:
            chunk = self.handle.read(65536)
            if not chunk:
                self.eof = True
                break
            self.buffer += to_netascii(chunk)
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out


def to_netascii(data: bytes) -> bytes:
    return data.replace(b"\r", b"\r\0").replace(b"\n", b"\r\n")


def netascii_size(handle: BinaryIO) -> int:
    total = 0
    while chunk := handle.read(65536):
        total += len(chunk) + chunk.count(b"\r") + chunk.count(b"\n")
    handle.seek(0)
    return total


def negotiate(options: dict[str, str], size: int, default_timeout: float) -> tuple[dict[str, str], int, float]:
    """RFC 2347 negotiation: (OACK options, block size, retransmit timeout)."""
    accepted: dict[str, str] = {}
    blksize, timeout = DEFAULT_BLKSIZE, default_timeout
    if "blksize" in options:
        value = options["blksize"]
        if not value.isdigit() or int(value) < MIN_BLKSIZE:
            raise TftpError(ERR_OPTION, f"blksize must be {MIN_BLKSIZE}..{MAX_BLKSIZE}")
        blksize = min(int(value), MAX_BLKSIZE)  # RFC 2348: the server may answer smaller
        accepted["blksize"] = str(blksize)
    if "timeout" in options:
        value = options["timeout"]
        if not value.isdigit() or not 1 <= int(value) <= 255:
            raise TftpError(ERR_OPTION, "timeout must be 1..255 seconds")
        timeout = float(int(value))
        accepted["timeout"] = value.lstrip("0") or "0"
    if "tsize" in options:
        if not options["tsize"].isdigit():
            raise TftpError(ERR_OPTION, "tsize must be a number")
        accepted["tsize"] = str(size)
    return accepted, blksize, timeout


class _TransferEndpoint(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=64)

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if not self.packets.full():
            self.packets.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the client is gone.
        if not self.packets.full():
            self.packets.put_nowait(None)


class _ClientGone(Exception):
    pass


class TftpServer:
    def __init__(self, root: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 6969, *,
                 max_transfers: int = 32, timeout: float = 2.0, retries: int = 5):
        self.real_root = os.path.realpath(root)
        if not os.path.isdir(self.real_root):
            raise ValueError(f"TFTP root {str(root)!r} is not a directory")
        self.host = host
        self.port = port
        self.max_transfers = max_transfers
        self.timeout = timeout
        self.retries = retries
        self._transport: asyncio.DatagramTransport | None = None
        self._active: dict[tuple, asyncio.Task] = {}

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        server = self

        class _Listener(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple) -> None:
                server._on_request(data, addr)

        transport, _ = await loop.create_datagram_endpoint(_Listener, local_addr=(self.host, self.port))
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]
        log.info("serving %s on %s port %d (read-only)", self.real_root, self.host, self.port)

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        tasks = list(self._active.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    # -- requests ----------------------------------------------------------

    def _reply_error(self, addr: tuple, request: str, code: int, message: str) -> None:
        if self._transport is not None:
            self._transport.sendto(error_packet(code, message), addr)
        log.info("%s %s -> error %d %s", _peer(addr), request, code, message)

    def _on_request(self, data: bytes, addr: tuple) -> None:
        if len(data) < 2 or struct.unpack("!H", data[:2])[0] not in (OP_RRQ, OP_WRQ):
            return  # stray DATA/ACK/ERROR at the server port: not ours to answer
        try:
            request = parse_request(data)
        except TftpError as exc:
            self._reply_error(addr, "request", exc.code, exc.message)
            return
        what = f"{'RRQ' if request.opcode == OP_RRQ else 'WRQ'} {request.filename[:80]!r} {request.mode}"
        if request.opcode == OP_WRQ:
            self._reply_error(addr, what, ERR_ACCESS, "read-only server, uploads are refused")
            return
        if addr in self._active:
            return  # the client re-sent its RRQ; the transfer is already under way
        if len(self._active) >= self.max_transfers:
            self._reply_error(addr, what, ERR_UNDEFINED, "server busy, try again")
            return
        try:
            handle, size = open_request_file(self.real_root, request.filename)
        except TftpError as exc:
            self._reply_error(addr, what, exc.code, exc.message)
            return
        task = asyncio.get_running_loop().create_task(self._transfer(request, what, handle, size, addr))
        self._active[addr] = task
        task.add_done_callback(lambda _t: self._active.pop(addr, None))

    async def _transfer(self, request: Request, what: str, handle: BinaryIO, size: int, addr: tuple) -> None:
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        transport = None
        sent = blocks = 0
        outcome = "incomplete"
        try:
            with handle:
                if request.mode == "netascii":
                    if "tsize" in request.options:  # the size on the wire, known only by reading it all
                        size = netascii_size(handle)
                    source: _NetasciiReader | BinaryIO = _NetasciiReader(handle)
                else:
                    source = handle
                # A fresh socket per transfer (the RFC 1350 transfer ID), connected
                # so only the client's packets reach it.
                transport, endpoint = await loop.create_datagram_endpoint(
                    _TransferEndpoint, local_addr=(self.host, 0), remote_addr=addr[:2])
                try:
                    accepted, blksize, timeout = negotiate(request.options, size, self.timeout)
                except TftpError as exc:
                    transport.sendto(error_packet(exc.code, exc.message))
                    outcome = f"error {exc.code} {exc.message}"
                    return
                if accepted:
                    if not await self._exchange(transport, endpoint, oack_packet(accepted), 0, timeout):
                        outcome = "no ACK for OACK"
                        return
                block = 1
                while True:
                    payload = source.read(blksize)
                    if not await self._exchange(transport, endpoint, data_packet(block & 0xFFFF, payload),
                                                block & 0xFFFF, timeout):
                        outcome = f"timed out at block {block}"
                        return
                    sent += len(payload)
                    blocks += 1
                    if len(payload) < blksize:
                        break
                    block += 1  # wraps past 65535 to 0, as common clients expect
                outcome = "ok"
        except _ClientGone as exc:
            outcome = f"client aborted: {exc}"
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except OSError as exc:
            outcome = f"I/O error: {exc.strerror or exc}"
        finally:
            if transport is not None:
                transport.close()
            opts = " ".join(f"{_printable(k)}={_printable(v)}" for k, v in request.options.items())
            log.info("%s %s%s -> %s, %d bytes in %d blocks, %.3f s", _peer(addr), what,
                     f" [{opts}]" if opts else "", outcome, sent, blocks, time.monotonic() - started)

    async def _exchange(self, transport: asyncio.DatagramTransport, endpoint: _TransferEndpoint,
                        packet: bytes, block: int, timeout: float) -> bool:
        """Send ``packet`` until ACK ``block`` arrives; False after the retry cap."""
        for _attempt in range(self.retries + 1):
            transport.sendto(packet)
            deadline = time.monotonic() + timeout
            while (remaining := deadline - time.monotonic()) > 0:
                try:
                    reply = await asyncio.wait_for(endpoint.packets.get(), remaining)
                except asyncio.TimeoutError:
                    break
                if reply is None:
                    raise _ClientGone("destination unreachable")
                if len(reply) >= 4:
                    opcode, number = struct.unpack("!HH", reply[:4])
                    if opcode == OP_ACK and number == block:
                        return True
                    if opcode == OP_ERROR:
                        raise _ClientGone(f"error {number} {reply[4:-1].decode('ascii', 'replace')[:80]}")
                # Anything else (a duplicate or old ACK, garbage) is ignored: resending
                # on a duplicate ACK is the Sorcerer's Apprentice bug.
        return False


def _printable(text: str) -> str:
    """Client-supplied text made safe for a log line."""
    return "".join(char if " " < char <= "~" else "?" for char in text[:40])


def _peer(addr: tuple) -> str:
    host, port = addr[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_bind(value: str) -> tuple[str, int]:
    """``127.0.0.1:6969`` / ``[::1]:69`` / ``0.0.0.0`` (port 69) -> (host, port)."""
    text = value.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":") if rest else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    port = int(port_text) if port_text else 69
    if not host or not 0 <= port <= 65535:
        raise ValueError(f"bad address {value!r}: use HOST:PORT")
    return host, port
