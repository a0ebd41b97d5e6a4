"""The read-only TFTP server, in-process on 127.0.0.1, against real clients:
Debian's tftp-hpa (/usr/bin/tftp), tftpy's client (RFC 2347 options) and a raw
UDP socket for exact protocol checks."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
from pathlib import Path

import pytest
import tftpy

from telefeatures.provisioning.tftp_server import TftpServer, parse_bind, parse_request, to_netascii

SMALL = b'<?xml version="1.0"?>\n<device><deviceProtocol>SIP</deviceProtocol></device>\n'
NAME = "SEP0019E8F490AD.cnf.xml"


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    root, outside = tmp_path / "tftpboot", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"TOP SECRET\n")
    (root / NAME).write_bytes(SMALL)
    (root / "multi.bin").write_bytes(os.urandom(512 * 20 + 123))
    (root / "exact.bin").write_bytes(os.urandom(1024))  # ends with an empty DATA block
    (root / "big.bin").write_bytes(os.urandom(300_000))
    (root / "text.txt").write_bytes(b"line one\nline two\r\nbare\rcr\n")
    (root / "sub").mkdir()
    (root / "sub" / "nested.xml").write_bytes(b"<nested/>\n")
    (root / ".hidden").write_bytes(b"hidden\n")
    (root / "link-out.txt").symlink_to(outside / "secret.txt")
    (root / "dir-out").symlink_to(outside)
    (root / "link-in.xml").symlink_to(root / NAME)
    os.mkfifo(root / "fifo")
    return {"root": root, "outside": outside, "tmp": tmp_path}


@pytest.fixture
async def server(tree):
    srv = TftpServer(tree["root"], "127.0.0.1", 0, timeout=0.5, retries=2, max_transfers=4)
    await srv.start()
    yield srv
    await srv.close()


async def tftp_hpa(port: int, *command: str, mode: str = "binary") -> str:
    proc = await asyncio.create_subprocess_exec(
        "/usr/bin/tftp", "-m", mode, "127.0.0.1", str(port), "-c", *command,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    return out.decode()


# --- a raw client ------------------------------------------------------------------------------

class RawClient:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)

    def close(self) -> None:
        self.sock.close()

    def send(self, packet: bytes, addr: tuple) -> None:
        self.sock.sendto(packet, addr)

    async def recv(self, timeout: float = 2.0) -> tuple[bytes, tuple]:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.sock_recvfrom(self.sock, 70000), timeout)

    async def request(self, port: int, name: bytes, mode: bytes = b"octet", **options: str) -> tuple[bytes, tuple]:
        packet = struct.pack("!H", 1) + name + b"\0" + mode + b"\0"
        packet += b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in options.items())
        self.send(packet, ("127.0.0.1", port))
        return await self.recv()


@pytest.fixture
def raw():
    client = RawClient()
    yield client
    client.close()


def error_of(packet: bytes) -> tuple[int, str]:
    opcode, code = struct.unpack("!HH", packet[:4])
    assert opcode == 5, packet
    return code, packet[4:-1].decode()


# --- fetching with tftp-hpa --------------------------------------------------------------------

@pytest.mark.parametrize("name", [NAME, "multi.bin", "exact.bin", "big.bin", "sub/nested.xml", "link-in.xml"])
async def test_tftp_hpa_fetches_byte_exact(server, tree, name):
    local = tree["tmp"] / "got"
    output = await tftp_hpa(server.port, "get", name, str(local))
    assert "Error" not in output, output
    assert local.read_bytes() == (tree["root"] / name).read_bytes()


async def test_tftp_hpa_netascii_round_trips(server, tree):
    local = tree["tmp"] / "got.txt"
    output = await tftp_hpa(server.port, "get", "text.txt", str(local), mode="netascii")
    assert "Error" not in output, output
    assert local.read_bytes() == (tree["root"] / "text.txt").read_bytes()


async def test_tftp_hpa_upload_is_refused(server, tree):
    upload = tree["tmp"] / "upload.xml"
    upload.write_bytes(b"<evil/>")
    output = await tftp_hpa(server.port, "put", str(upload), "evil.xml")
    assert "Error code 2: read-only server" in output
    assert not (tree["root"] / "evil.xml").exists()
    output = await tftp_hpa(server.port, "put", str(upload), NAME)
    assert "Error code 2" in output and (tree["root"] / NAME).read_bytes() == SMALL


@pytest.mark.parametrize(("name", "code"), [
    ("../outside/secret.txt", 2),
    ("sub/../../outside/secret.txt", 2),
    ("link-out.txt", 2),           # symlink pointing out of the root
    ("dir-out/secret.txt", 2),     # symlinked directory pointing out
    ("/etc/passwd", 2),
    ("..\\outside\\secret.txt", 2),
    (".hidden", 2),
    ("sub", 1),                    # a directory: no listings, no reads
    ("missing.xml", 1),
    ("sep0019e8f490ad.cnf.xml", 1),  # names are exact-case
])
async def test_tftp_hpa_cannot_escape_or_list(server, tree, name, code):
    local = tree["tmp"] / "got"
    output = await tftp_hpa(server.port, "get", name, str(local))
    assert f"Error code {code}" in output, output
    assert not local.exists() or local.read_bytes() == b""


async def test_absolute_path_inside_root_is_refused(server, tree, raw):
    reply, _ = await raw.request(server.port, str(tree["root"] / NAME).encode())
    assert error_of(reply) == (2, "absolute paths are not served")


# --- options with tftpy's client ---------------------------------------------------------------

@pytest.mark.parametrize("options", [{}, {"blksize": 1428}, {"blksize": 8}, {"blksize": 65464, "tsize": 0}])
async def test_tftpy_client_with_options(server, tree, options):
    local = tree["tmp"] / "got.bin"
    client = tftpy.TftpClient("127.0.0.1", server.port, options=dict(options))
    name = "big.bin" if options.get("blksize", 512) >= 512 else "multi.bin"
    await asyncio.to_thread(client.download, name, str(local), timeout=5)
    assert local.read_bytes() == (tree["root"] / name).read_bytes()


async def test_tftpy_client_sees_errors(server, tree):
    client = tftpy.TftpClient("127.0.0.1", server.port)
    with pytest.raises(tftpy.TftpException, match="errorcode = 2"):
        await asyncio.to_thread(client.download, "link-out.txt", str(tree["tmp"] / "x"), timeout=5)


async def test_option_acknowledgement(server, tree, raw):
    size = (tree["root"] / "multi.bin").stat().st_size
    reply, tid = await raw.request(server.port, b"multi.bin", blksize="1024", tsize="0", timeout="3", foo="bar")
    assert tid[1] != server.port  # every transfer runs on its own port
    assert reply == struct.pack("!H", 6) + b"blksize\x001024\x00timeout\x003\x00tsize\x00" + str(size).encode() + b"\0"
    raw.send(struct.pack("!HH", 4, 0), tid)
    data, _ = await raw.recv()
    assert data[:4] == struct.pack("!HH", 3, 1) and len(data) == 4 + 1024
    raw.send(struct.pack("!HH", 5, 0) + b"enough\0", tid)  # client aborts


async def test_tsize_in_netascii_counts_converted_bytes(server, tree, raw):
    reply, tid = await raw.request(server.port, b"text.txt", b"netascii", tsize="0")
    expected = len(to_netascii((tree["root"] / "text.txt").read_bytes()))
    assert reply == struct.pack("!H", 6) + b"tsize\0" + str(expected).encode() + b"\0"
    raw.send(struct.pack("!HH", 5, 0) + b"\0", tid)


async def test_blksize_is_capped_and_validated(server, raw):
    reply, tid = await raw.request(server.port, b"multi.bin", blksize="70000")
    assert reply == struct.pack("!H", 6) + b"blksize\x0065464\x00"
    raw.send(struct.pack("!HH", 5, 0) + b"\0", tid)
    for options in ({"blksize": "4"}, {"blksize": "big"}, {"timeout": "0"}, {"tsize": "-1"}):
        client = RawClient()  # a new port per request, as real clients do
        try:
            reply, _ = await client.request(server.port, b"multi.bin", **options)
        finally:
            client.close()
        assert error_of(reply)[0] == 8, options


@pytest.mark.parametrize(("packet", "code"), [
    (struct.pack("!H", 1) + f"{NAME}\0../outside/secret.txt\0octet\0".encode(), 4),  # NUL smuggling
    (struct.pack("!H", 1) + f"{NAME}\0mail\0".encode(), 4),
    (struct.pack("!H", 1) + f"{NAME}\0octet".encode(), 4),  # unterminated
    (struct.pack("!H", 1) + b"caf\xc3\xa9.xml\0octet\0", 2),
    (struct.pack("!H", 1) + b"\0octet\0", 1),
    (struct.pack("!H", 1) + b"a//b\0octet\0", 2),
    (struct.pack("!H", 2) + f"{NAME}\0octet\0".encode(), 2),  # WRQ
])
async def test_malformed_and_write_requests(server, raw, packet, code):
    raw.send(packet, ("127.0.0.1", server.port))
    reply, _ = await raw.recv()
    assert error_of(reply)[0] == code


async def test_fifo_is_refused_without_hanging(server, raw):
    reply, _ = await raw.request(server.port, b"fifo")
    assert error_of(reply) == (1, "not a file")


async def test_stray_packets_at_the_server_port_are_ignored(server, raw):
    raw.send(struct.pack("!HH", 4, 1), ("127.0.0.1", server.port))
    with pytest.raises(asyncio.TimeoutError):
        await raw.recv(timeout=0.3)


# --- timing: retransmission, retry cap, concurrency --------------------------------------------

async def test_retransmits_until_acked_then_continues(server, raw):
    first, tid = await raw.request(server.port, b"multi.bin")
    assert first[:4] == struct.pack("!HH", 3, 1)
    again, _ = await raw.recv(timeout=1.5)  # no ACK sent: the block comes again after the timeout
    assert again == first
    raw.send(struct.pack("!HH", 4, 1), tid)
    raw.send(struct.pack("!HH", 4, 1), tid)  # a duplicate ACK must not trigger a duplicate block
    second, _ = await raw.recv()
    assert second[:4] == struct.pack("!HH", 3, 2)
    with pytest.raises(asyncio.TimeoutError):
        await raw.recv(timeout=0.3)
    raw.send(struct.pack("!HH", 5, 0) + b"\0", tid)


async def test_retry_cap_ends_a_dead_transfer(server, raw, caplog):
    caplog.set_level(logging.INFO, "telefeatures.tftp")
    await raw.request(server.port, b"multi.bin")
    copies = 1
    while True:
        try:
            await raw.recv(timeout=1.0)
        except asyncio.TimeoutError:
            break
        copies += 1
    assert copies == 1 + server.retries
    await asyncio.sleep(0.1)
    assert not server._active
    assert any("'multi.bin' octet -> timed out at block 1" in r.getMessage() for r in caplog.records)


async def test_transfers_are_bounded(tree):
    srv = TftpServer(tree["root"], "127.0.0.1", 0, timeout=2, retries=1, max_transfers=1)
    await srv.start()
    first, second = RawClient(), RawClient()
    try:
        data, _ = await first.request(srv.port, b"multi.bin")
        assert data[:2] == struct.pack("!H", 3)
        reply, _ = await second.request(srv.port, NAME.encode())
        assert error_of(reply) == (0, "server busy, try again")
    finally:
        first.close()
        second.close()
        await srv.close()


async def test_one_log_line_per_transfer(server, tree, caplog):
    caplog.set_level(logging.INFO, "telefeatures.tftp")
    await tftp_hpa(server.port, "get", NAME, str(tree["tmp"] / "a"))
    await tftp_hpa(server.port, "get", "../outside/secret.txt", str(tree["tmp"] / "b"))
    lines = [r.getMessage() for r in caplog.records if "RRQ" in r.getMessage()]
    assert len(lines) == 2
    assert f"RRQ '{NAME}' octet -> ok, {len(SMALL)} bytes in 1 blocks" in lines[0]
    assert "RRQ '../outside/secret.txt' octet -> error 2" in lines[1]


# --- pure parts --------------------------------------------------------------------------------

def test_parse_request_and_bind():
    request = parse_request(struct.pack("!H", 1) + b"a.xml\0NetASCII\0BLKSIZE\0" + b"1024\0")
    assert (request.filename, request.mode, request.options) == ("a.xml", "netascii", {"blksize": "1024"})
    assert parse_bind("127.0.0.1:6969") == ("127.0.0.1", 6969)
    assert parse_bind("[::1]:69") == ("::1", 69)
    assert parse_bind("0.0.0.0") == ("0.0.0.0", 69)
    with pytest.raises(ValueError):
        parse_bind("127.0.0.1:99999")


def test_root_must_be_a_directory(tmp_path):
    with pytest.raises(ValueError, match="not a directory"):
        TftpServer(tmp_path / "nope")


def test_second_line_of_defence_after_open(tree, monkeypatch):
    """Even if the name check were bypassed (say, a symlink swapped in between
    the check and the open), the opened file is refused unless it lies inside
    the root: O_NOFOLLOW for the last component, /proc/self/fd for the rest."""
    from telefeatures.provisioning import tftp_server as tftp

    monkeypatch.setattr(tftp, "resolve_request_path", lambda root, name: os.path.join(root, name))
    real_root = os.path.realpath(tree["root"])
    for name in ("dir-out/secret.txt", "link-out.txt"):
        with pytest.raises(tftp.TftpError) as info:
            tftp.open_request_file(real_root, name)
        assert info.value.code == 2, name
    handle, info = tftp.open_request_file(real_root, NAME)
    with handle:
        assert handle.read() == SMALL and info.st_size == len(SMALL)


async def test_client_text_cannot_forge_log_lines(server, raw, caplog):
    caplog.set_level(logging.INFO, "telefeatures.tftp")
    reply, tid = await raw.request(server.port, b"multi.bin", **{"x\nFAKE ok": "1\r\n"})
    raw.send(struct.pack("!HH", 5, 0) + b"\0", tid)  # no options acknowledged: first DATA; abort
    assert reply[:2] == struct.pack("!H", 3)
    other = RawClient()
    try:
        reply, _ = await other.request(server.port, b"evil\nFAKE line.xml")
    finally:
        other.close()
    assert error_of(reply)[0] == 2
    await asyncio.sleep(0.1)
    messages = [r.getMessage() for r in caplog.records]
    assert messages and not any("\n" in m or "\r" in m for m in messages)
