"""A small read-only TFTP server for phone configuration files (asyncio, UDP).

Written here instead of using tftpy's server, which accepts uploads by
default, accepts absolute paths that start with the root, and resolves names
with abspath (so a symlink inside the root can point anywhere).

What it does, and nothing else:

* RRQ only, octet and netascii modes (RFC 1350); WRQ gets error 2;
* options blksize (8..65464), tsize and timeout (RFC 2347/2348/2349; a
  timeout above 10 s is declined);
* every transfer on its own ephemeral socket connected to the client, with a
  retransmit timeout and a retry cap; a bounded number of transfers at once,
  in all and per peer address (tftp_policy.py: allow list, request rate,
  inventory binding of phone configs, enumeration block);
* duplicate ACKs are ignored (no Sorcerer's Apprentice); an ICMP error or a
  client ERROR ends a transfer at once;
* names are relative paths of printable ASCII: no NUL, no backslash, no
  leading ``/``, no empty, ``.`` or ``..`` component and no hidden (dot)
  names; the real path (symlinks resolved) must lie inside the real root, and
  the opened file is checked again through /proc so a swapped symlink cannot
  slip in between; only regular files are served (no directories, FIFOs,
  devices), with exact-case names;
* one log line per transfer; a refusal is logged once per peer and kind a
  minute (with a count of the ones not logged).

The request parsing is plain functions over bytes (``parse_request``,
``resolve_request_path``). The rest runs on the event loop without a task per
transfer: a reader callback per transfer socket answers each ACK with the next
block at once, and a timer wheel (one loop timer for all transfers) resends
what was not acknowledged in time. File contents are read once per file
version and shared. ``tftp_workers.py`` runs several of these processes on
one port.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import stat
import struct
import time
from dataclasses import dataclass, field
from typing import BinaryIO

from .fetch_record import FetchRecord
from .tftp_policy import Peer, PeerPolicy, peer_log

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
MAX_CLIENT_TIMEOUT = 10          # seconds; a longer requested timeout is declined
TICK = 0.05                      # resolution of the retransmission timer wheel, seconds
RECORD_EVERY = 1.0               # seconds between writes of the fetch record
RECEIVE_BUFFER = 4 * 1024 * 1024
CACHE_BYTES = 256 * 1024 * 1024  # file contents kept in memory across transfers
MAX_FILE = 256 * 1024 * 1024
_DATA_HEADER = struct.Struct("!HH")
_ACK = struct.Struct("!HH")


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


def open_request_file(real_root: str, name: str) -> tuple[BinaryIO, os.stat_result]:
    """Open a regular file under the root for reading: (file, its fstat)."""
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
        return os.fdopen(fd, "rb"), info
    except BaseException:
        os.close(fd)
        raise


def to_netascii(data: bytes) -> bytes:
    return data.replace(b"\r", b"\r\0").replace(b"\n", b"\r\n")


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
        if int(value) <= MAX_CLIENT_TIMEOUT:
            timeout = float(int(value))
            accepted["timeout"] = value.lstrip("0")
        # Longer ones are declined (left out of the OACK, RFC 2347): a peer asking
        # for 255 s and vanishing would hold its transfer for half an hour.
    if "tsize" in options:
        if not options["tsize"].isdigit():
            raise TftpError(ERR_OPTION, "tsize must be a number")
        accepted["tsize"] = str(size)
    return accepted, blksize, timeout


class _Contents:
    """File contents by identity (device, inode, size, mtime), so a boot storm
    reads each file once instead of once per block per phone. A rebuilt file
    is a new inode (builds rename into place), so it is read afresh; transfers
    already under way keep the bytes they started with."""

    def __init__(self, budget: int = CACHE_BYTES):
        self.budget = budget
        self.used = 0
        self.entries: dict[tuple, bytes] = {}

    def get(self, handle: BinaryIO, info: os.stat_result, mode: str) -> bytes:
        key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, mode)
        data = self.entries.get(key)
        if data is not None:
            self.entries[key] = self.entries.pop(key)  # most recently used last
            return data
        if info.st_size > MAX_FILE:
            raise TftpError(ERR_UNDEFINED, "file too large")
        data = handle.read()
        if mode == "netascii":
            data = to_netascii(data)
        self.used += len(data)
        self.entries[key] = data
        while self.used > self.budget and len(self.entries) > 1:
            oldest = next(iter(self.entries))
            self.used -= len(self.entries.pop(oldest))
        return data


class _Transfer:
    """One RRQ being answered, on its own connected socket (the RFC 1350
    transfer ID). ``block`` is the block waiting for its ACK (0: the OACK)."""

    __slots__ = ("sock", "fd", "addr", "peer", "name", "what", "options", "data", "blksize", "last",
                 "block", "packet", "sent_at", "timeout", "tries", "started", "slot")

    def __init__(self, sock: socket.socket, addr: tuple, peer: Peer, request: Request, what: str,
                 data: bytes, blksize: int, timeout: float):
        self.sock = sock
        self.fd = sock.fileno()
        self.addr = addr
        self.peer = peer
        self.name = request.filename
        self.what = what
        self.options = request.options
        self.data = data
        self.blksize = blksize
        self.last = len(data) // blksize + 1  # the final block is shorter than blksize, maybe empty
        self.block = 1
        self.packet = b""
        self.sent_at = 0.0
        self.timeout = timeout
        self.tries = 0
        self.started = time.monotonic()
        self.slot = 0

    def data_packet(self) -> bytes:
        start = (self.block - 1) * self.blksize
        # Block numbers wrap past 65535 to 0, as common clients expect.
        return _DATA_HEADER.pack(OP_DATA, self.block & 0xFFFF) + self.data[start:start + self.blksize]


class TftpServer:
    """The server on one UDP socket. Transfers are driven by reader callbacks
    on their own sockets and one timer wheel for retransmissions: no task,
    future or timer per block."""

    def __init__(self, root: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 6969, *,
                 max_transfers: int = 2048, timeout: float = 2.0, retries: int = 5,
                 policy: PeerPolicy | None = None, record: FetchRecord | None = None,
                 sock: socket.socket | None = None):
        self.real_root = os.path.realpath(root)
        if not os.path.isdir(self.real_root):
            raise ValueError(f"TFTP root {str(root)!r} is not a directory")
        self.host = host
        self.port = port
        self.max_transfers = max_transfers
        self.timeout = timeout
        self.retries = retries
        self.policy = policy or PeerPolicy()
        self.record = record
        self._sock = sock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._active: dict[tuple, _Transfer] = {}
        self._contents = _Contents()
        self._tick = min(TICK, timeout / 4)
        self._wheel: dict[int, list[_Transfer]] = {}
        self._ticker: asyncio.TimerHandle | None = None
        self._record_written = 0.0

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._sock is None:
            self._sock = listening_socket(self.host, self.port)
        self._family = self._sock.family
        self.port = self._sock.getsockname()[1]
        self._loop.add_reader(self._sock.fileno(), self._on_request_ready)
        log.info("serving %s on %s port %d (read-only)", self.real_root, self.host, self.port)

    async def close(self) -> None:
        if self._sock is not None and self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        for transfer in list(self._active.values()):
            self._finish(transfer, "cancelled")
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self.record is not None:
            self.record.write()

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    # -- requests ----------------------------------------------------------

    def _on_request_ready(self) -> None:
        sock = self._sock
        for _ in range(64):  # drain a burst, but let transfers run between bursts
            try:
                data, addr = sock.recvfrom(MAX_REQUEST + 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. ICMP for an error reply sent earlier: nothing to do
                continue
            try:
                self._on_request(data, addr)
            except Exception:  # one bad request must never stop the server
                log.exception("tftp request from %s failed", _peer(addr))

    def _reply_error(self, addr: tuple, code: int, message: str) -> None:
        try:
            self._sock.sendto(error_packet(code, message), addr)
        except OSError:
            pass

    def _refuse(self, peer: Peer, addr: tuple, what: str, code: int, message: str, now: float) -> None:
        self._reply_error(addr, code, message)
        peer_log(peer, f"{code} {message}", now, logging.INFO, "%s %s -> error %d %s", _peer(addr), what, code,
                 message)

    def _on_request(self, data: bytes, addr: tuple) -> None:
        if len(data) < 2 or data[0] != 0 or data[1] not in (OP_RRQ, OP_WRQ):
            return  # stray DATA/ACK/ERROR at the server port: not ours to answer
        transfer = self._active.get(addr)
        if transfer is not None:
            if transfer.block != transfer.last or transfer.block == 0:
                return  # the client re-sent its RRQ; the transfer is already under way
            # The client has the last block and asks for its next file from the same
            # port before its final ACK was read: that transfer is complete.
            self._finish(transfer, "ok")
        now = time.monotonic()
        peer = self.policy.peer(addr[0], now)
        if peer is None:
            return  # not allowed, blocked or over its rate: no answer (logged by the policy)
        try:
            request = parse_request(data)
        except TftpError as exc:
            self._refuse(peer, addr, "request", exc.code, exc.message, now)
            return
        what = f"{'RRQ' if request.opcode == OP_RRQ else 'WRQ'} {_printable(request.filename, 80)!r} {request.mode}"
        if request.opcode == OP_WRQ:
            self._refuse(peer, addr, what, ERR_ACCESS, "read-only server, uploads are refused", now)
            return
        if peer.active >= self.policy.limits.per_peer_transfers:
            self._refuse(peer, addr, what, ERR_UNDEFINED, "too many transfers from your address", now)
            return
        if len(self._active) >= self.max_transfers and not self._evict_silent():
            self._refuse(peer, addr, what, ERR_UNDEFINED, "server busy, try again", now)
            return
        binding = self.policy.binding
        try:
            if binding is not None and not binding.serves(request.filename, addr[0], now):
                if self.record is not None and self._servable(request.filename):
                    self.record.note(request.filename, "refused", addr[0], reason="not the phone's address")
                    self._wake()
                raise TftpError(ERR_NOT_FOUND, "file not found")  # exactly what a missing name gets
            handle, info = open_request_file(self.real_root, request.filename)
            with handle:
                content = self._contents.get(handle, info, request.mode)
            accepted, blksize, timeout = negotiate(request.options, len(content), self.timeout)
        except TftpError as exc:
            if exc.code == ERR_NOT_FOUND and self.policy.note_unknown(peer, request.filename, now):
                return
            self._refuse(peer, addr, what, exc.code, exc.message, now)
            return
        except OSError as exc:
            self._refuse(peer, addr, what, ERR_UNDEFINED, f"cannot read file ({exc.strerror or exc})", now)
            return
        try:
            sock = socket.socket(self._family, socket.SOCK_DGRAM)
        except OSError as exc:  # out of file descriptors: like busy
            self._refuse(peer, addr, what, ERR_UNDEFINED, f"server busy, try again ({exc.strerror or exc})", now)
            return
        try:
            sock.setblocking(False)
            sock.bind((self.host, 0))
            sock.connect(addr)
        except OSError as exc:
            sock.close()
            self._refuse(peer, addr, what, ERR_UNDEFINED, f"cannot open a transfer socket ({exc.strerror})", now)
            return
        transfer = _Transfer(sock, addr, peer, request, what, content, blksize, timeout)
        self._active[addr] = transfer
        peer.active += 1
        self._loop.add_reader(transfer.fd, self._on_packet, transfer)
        if accepted:
            transfer.block = 0
            transfer.packet = oack_packet(accepted)
        else:
            transfer.packet = transfer.data_packet()
        self._send(transfer, now)
        self._schedule(transfer)

    def _servable(self, name: str) -> bool:
        """Would ``name`` be served to the right peer? Checked like a request, so
        a name that leaves the root is never looked up (nor recorded)."""
        try:
            return os.path.isfile(resolve_request_path(self.real_root, name))
        except TftpError:
            return False

    def _evict_silent(self) -> bool:
        """All slots taken: end the oldest transfer whose first packet went
        unanswered even after a resend (a request from a spoofed or vanished
        address, most likely), so a real phone gets the slot."""
        for transfer in self._active.values():  # oldest first
            if transfer.block <= 1 and transfer.tries > 0:
                self._finish(transfer, "never answered, ended to make room")
                return True
        return False

    # -- transfers ---------------------------------------------------------

    def _send(self, transfer: _Transfer, now: float) -> None:
        transfer.sent_at = now
        try:
            transfer.sock.send(transfer.packet)
        except (BlockingIOError, InterruptedError):
            pass  # the socket buffer is full: the timer wheel sends it again
        except OSError as exc:
            self._finish(transfer, f"client gone: {exc.strerror or exc}")

    def _on_packet(self, transfer: _Transfer) -> None:
        try:
            reply = transfer.sock.recv(MAX_REQUEST)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # ICMP port unreachable and the like: the client is gone
            self._finish(transfer, f"client gone: {exc.strerror or exc}")
            return
        if len(reply) < 4:
            return
        opcode, number = _ACK.unpack_from(reply)
        if opcode == OP_ACK:
            if number != transfer.block & 0xFFFF:
                # A duplicate or old ACK: resending on it is the Sorcerer's Apprentice bug.
                return
            if transfer.block == transfer.last:
                self._finish(transfer, "ok")
                return
            transfer.block += 1
            transfer.tries = 0
            transfer.packet = transfer.data_packet()
            self._send(transfer, time.monotonic())
        elif opcode == OP_ERROR:
            message = reply[4:-1].decode("ascii", "replace")
            self._finish(transfer, f"client aborted: error {number} {_printable(message, 80)}")

    def _schedule(self, transfer: _Transfer) -> None:
        slot = int((transfer.sent_at + transfer.timeout) / self._tick) + 1
        transfer.slot = slot
        bucket = self._wheel.get(slot)
        if bucket is None:
            self._wheel[slot] = [transfer]
        else:
            bucket.append(transfer)
        self._wake()

    def _wake(self) -> None:
        """Run the tick (resends, record writes) while there is work for it."""
        if self._ticker is None:
            self._ticker = self._loop.call_later(self._tick, self._on_tick)

    def _on_tick(self) -> None:
        """Send again what was not acknowledged in time; end transfers past the
        retry cap. A transfer sits in one slot of the wheel and moves on only
        when its slot comes round, not at every block."""
        self._ticker = None
        now = time.monotonic()
        current = int(now / self._tick)
        for slot in sorted(s for s in self._wheel if s <= current):
            for transfer in self._wheel.pop(slot):
                if transfer.slot != slot or transfer.addr not in self._active:
                    continue  # finished, or moved to another slot
                if now - transfer.sent_at >= transfer.timeout:
                    if transfer.tries >= self.retries:
                        what = "no ACK for OACK" if transfer.block == 0 else f"timed out at block {transfer.block}"
                        self._finish(transfer, what)
                        continue
                    transfer.tries += 1
                    self._send(transfer, now)
                    if transfer.addr not in self._active:
                        continue
                self._schedule(transfer)
        if self.record is not None and now - self._record_written >= RECORD_EVERY:
            self._record_written = now
            self.record.write()
        if self._ticker is None and (self._wheel or (self.record is not None and self.record.dirty)):
            self._ticker = self._loop.call_later(self._tick, self._on_tick)

    def _finish(self, transfer: _Transfer, outcome: str) -> None:
        if self._active.pop(transfer.addr, None) is None:
            return
        transfer.peer.active -= 1
        self._loop.remove_reader(transfer.fd)
        transfer.sock.close()
        transfer.slot = -1
        block = transfer.block
        if outcome == "ok":
            sent, blocks = len(transfer.data), transfer.last
        else:
            blocks = max(block - 1, 0)
            sent = min(blocks * transfer.blksize, len(transfer.data))
        if self.record is not None:
            if outcome == "ok":
                self.record.note(transfer.name, "ok", transfer.addr[0], bytes=sent)
            else:
                self.record.note(transfer.name, "failed", transfer.addr[0], reason=outcome)
            self._wake()
        opts = " ".join(f"{_printable(k)}={_printable(v)}" for k, v in transfer.options.items())
        log.info("%s %s%s -> %s, %d bytes in %d blocks, %.3f s", _peer(transfer.addr), transfer.what,
                 f" [{opts}]" if opts else "", outcome, sent, blocks, time.monotonic() - transfer.started)


def listening_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """The server's UDP socket, non-blocking, with a receive buffer that holds
    a boot storm's burst of requests (4 MB; beyond net.core.rmem_max only with
    CAP_NET_ADMIN, else as large as the system allows)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
            if option is None:
                continue
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, RECEIVE_BUFFER)
                break
            except PermissionError:
                continue
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _printable(text: str, limit: int = 40) -> str:
    """Client-supplied text made safe for a log line."""
    return "".join(char if " " < char <= "~" else "?" for char in text[:limit])


def _peer(addr: tuple) -> str:
    host, port = addr[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_bind(value: str, default_port: int = 69) -> tuple[str, int]:
    """``127.0.0.1:6969`` / ``[::1]:69`` / ``0.0.0.0`` (``default_port``) -> (host, port)."""
    text = value.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":") if rest else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    port = int(port_text) if port_text else default_port
    if not host or not 0 <= port <= 65535:
        raise ValueError(f"bad address {value!r}: use HOST:PORT")
    return host, port
