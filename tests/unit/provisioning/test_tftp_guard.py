"""Who the TFTP server answers: --allow, per-peer limits, the inventory binding
of phone configs, the enumeration block, and bad input (option abuse,
vanishing clients, floods). The server runs in-process on 127.0.0.1; each
"peer" is a raw UDP socket bound to its own 127.x address, and real phones
are Debian's tftp-hpa client (from 127.0.0.1)."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from pathlib import Path

import pytest

from telefeatures.provisioning.fetch_record import FetchRecord, load_fetches
from telefeatures.provisioning.tftp_policy import Limits, PeerPolicy, PhoneBinding
from telefeatures.provisioning.tftp_server import TftpServer

from .conftest import SITE
from .test_tftp import error_of, tftp_hpa

BOUND, FREE, STALE = "0019E8000001", "0019E8000002", "0019E8000099"
PHONE_IP = "127.0.0.21"
CONFIG = b'<?xml version="1.0"?>\n<device><authPassword>s3cret-password</authPassword></device>\n'


def inventory_text() -> str:
    line = '[[phones.lines]]\nextension = "{ext}"\ndisplay_name = "User {ext}"\n'
    return (SITE + f'\n[[phones]]\nmac = "{BOUND}"\nmodel = "7961"\nip = "{PHONE_IP}"\n' + line.format(ext=1001)
            + f'\n[[phones]]\nmac = "{FREE}"\nmodel = "7961"\n' + line.format(ext=1002))


class Peer:
    """A UDP client with its own source address."""

    def __init__(self, address: str):
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 0))
        self.sock.setblocking(False)

    def close(self) -> None:
        self.sock.close()

    def rrq(self, port: int, name: str, **options: str) -> None:
        packet = b"\0\1" + name.encode() + b"\0octet\0"
        packet += b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in options.items())
        self.sock.sendto(packet, ("127.0.0.1", port))

    async def recv(self, timeout: float = 2.0) -> tuple[bytes, tuple]:
        return await asyncio.wait_for(asyncio.get_running_loop().sock_recvfrom(self.sock, 70000), timeout)

    async def silent(self, timeout: float = 0.4) -> bool:
        try:
            await self.recv(timeout)
        except asyncio.TimeoutError:
            return True
        return False

    async def fetch(self, port: int, name: str) -> bytes:
        """A whole transfer, 512-byte blocks; an ERROR packet raises."""
        self.rrq(port, name)
        chunks = []
        while True:
            packet, tid = await self.recv()
            opcode, number = struct.unpack("!HH", packet[:4])
            if opcode == 5:
                raise LookupError(error_of(packet))
            chunks.append(packet[4:])
            self.sock.sendto(struct.pack("!HH", 4, number), tid)
            if len(packet) - 4 < 512:
                return b"".join(chunks)


@pytest.fixture
def peers():
    made: list[Peer] = []

    def make(address: str) -> Peer:
        made.append(Peer(address))
        return made[-1]
    yield make
    for peer in made:
        peer.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "tftpboot"
    root.mkdir()
    for mac in (BOUND, FREE, STALE):
        (root / f"SEP{mac}.cnf.xml").write_bytes(CONFIG.replace(b"s3cret", mac.encode()))
    (root / "sub").mkdir()
    (root / "sub" / f"SEP{BOUND}.cnf.xml").write_bytes(CONFIG)
    (root / "dialplan.xml").write_bytes(b"<DIALTEMPLATE/>\n")
    (root / "big.bin").write_bytes(bytes(range(256)) * 40)
    return root


@pytest.fixture
async def start(root, tmp_path):
    servers: list[TftpServer] = []

    async def start(**kwargs) -> TftpServer:
        policy = PeerPolicy(kwargs.pop("limits", Limits()), kwargs.pop("allow", None), kwargs.pop("binding", None),
                            kwargs.pop("allow_from_inventory", False))
        server = TftpServer(root, "127.0.0.1", 0, policy=policy, **{"timeout": 0.5, "retries": 2, **kwargs})
        await server.start()
        servers.append(server)
        return server
    yield start
    for server in servers:
        await server.close()


def messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "telefeatures.tftp"]


# --- --allow -----------------------------------------------------------------------------------

async def test_peers_outside_allow_get_no_answer_and_one_log_line(start, peers, caplog):
    caplog.set_level(logging.INFO, "telefeatures.tftp")
    server = await start(allow=["127.0.0.1/32", "127.0.5.0/24"])
    outsider = peers("127.0.0.9")
    for _ in range(5):
        outsider.rrq(server.port, "dialplan.xml")
        outsider.sock.sendto(b"\0\1junk", ("127.0.0.1", server.port))
    assert await outsider.silent()
    assert await peers("127.0.5.7").fetch(server.port, "dialplan.xml") == b"<DIALTEMPLATE/>\n"
    refused = [m for m in messages(caplog) if "127.0.0.9" in m]
    assert refused == ["tftp peer 127.0.0.9 refused: not in the allowed networks (--allow), no answer given"]


# --- per-peer limits ---------------------------------------------------------------------------

async def test_silent_requests_from_one_peer_cannot_lock_out_the_phones(start, peers, root, tmp_path):
    """The old server gave 32 transfers to whoever asked first: 32 silent RRQs
    locked every phone out for ~11 s. Now one address holds at most
    per_peer_transfers, whatever the global room."""
    server = await start(max_transfers=64, limits=Limits(per_peer_transfers=4))
    attacker = [peers("127.0.0.66") for _ in range(40)]
    for sock in attacker:
        sock.rrq(server.port, "big.bin")  # and never ACK anything
    replies = [error_of(p) if p[:2] == b"\0\5" else "DATA" for p, _ in
               [await sock.recv() for sock in attacker]]
    assert replies.count("DATA") == 4
    assert replies.count((0, "too many transfers from your address")) == 36
    assert sum(t.peer.address == "127.0.0.66" for t in server._active.values()) == 4
    out = await tftp_hpa(server.port, "get", f"SEP{FREE}.cnf.xml", str(tmp_path / "got"))
    assert "Error" not in out and (tmp_path / "got").read_bytes() == (root / f"SEP{FREE}.cnf.xml").read_bytes()


async def test_a_request_flood_is_rate_limited_and_logged_once(start, peers, caplog):
    caplog.set_level(logging.INFO, "telefeatures.tftp")
    server = await start(limits=Limits(requests_per_second=10, request_burst=20))
    flood = peers("127.0.0.77")
    for n in range(300):
        flood.rrq(server.port, f"missing-{n}.bin")
    answers = 0
    while not await flood.silent(0.3):
        answers += 1
    assert 20 <= answers <= 40  # the burst, and what refilled meanwhile (300 were sent)
    lines = [m for m in messages(caplog) if "127.0.0.77" in m]
    assert len(lines) <= 3, lines  # one "file not found", one "over 10 requests/s"
    assert any("over 10 requests/s: requests dropped" in m for m in lines)
    assert await peers("127.0.0.78").fetch(server.port, "dialplan.xml") == b"<DIALTEMPLATE/>\n"


# --- --inventory: a phone's config only to its address ------------------------------------------

async def test_phone_config_only_to_its_own_address(start, peers, root, tmp_path, write_inventory):
    record = FetchRecord(tmp_path / "state", str(root))
    server = await start(binding=PhoneBinding(write_inventory(inventory_text())), record=record)
    bound_name = f"SEP{BOUND}.cnf.xml"
    assert await peers(PHONE_IP).fetch(server.port, bound_name) == (root / bound_name).read_bytes()
    stranger = peers("127.0.0.22")
    with pytest.raises(LookupError) as refused:
        await stranger.fetch(server.port, bound_name)
    with pytest.raises(LookupError) as missing:
        await stranger.fetch(server.port, "SEP0019E8ABCDEF.cnf.xml")
    assert refused.value.args == missing.value.args == ((1, "file not found"),)
    with pytest.raises(LookupError, match="file not found"):  # a file of a phone no longer in the inventory
        await stranger.fetch(server.port, f"SEP{STALE}.cnf.xml")
    with pytest.raises(LookupError, match="file not found"):  # nor in a subdirectory
        await stranger.fetch(server.port, f"sub/SEP{BOUND}.cnf.xml")
    escaping = f"../{root.name}/SEP{BOUND}.cnf.xml"  # the same file, named by a path the server never serves
    with pytest.raises(LookupError, match="file not found"):
        await stranger.fetch(server.port, escaping)
    # A phone without an address, and files that are no phone's, go to anyone allowed.
    assert await stranger.fetch(server.port, f"SEP{FREE}.cnf.xml") == (root / f"SEP{FREE}.cnf.xml").read_bytes()
    assert await stranger.fetch(server.port, "dialplan.xml") == b"<DIALTEMPLATE/>\n"
    for _ in range(40):  # written within about a second, while the server runs
        fetches = load_fetches(tmp_path / "state")
        if bound_name in fetches and fetches[bound_name].refused:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the refusal was not written to the fetch record while the server ran")
    await server.close()
    fetches = load_fetches(tmp_path / "state")
    assert fetches[bound_name].ok.peer == PHONE_IP
    assert (fetches[bound_name].refused.peer, fetches[bound_name].refused.reason) == (
        "127.0.0.22", "not the phone's address")
    assert "SEP0019E8ABCDEF.cnf.xml" not in fetches  # names that do not exist are never recorded
    assert escaping not in fetches  # nor names that leave the root


async def test_tftp_hpa_from_the_wrong_address_sees_a_missing_file(start, write_inventory, tmp_path):
    server = await start(binding=PhoneBinding(write_inventory(inventory_text())))
    out = await tftp_hpa(server.port, "get", f"SEP{BOUND}.cnf.xml", str(tmp_path / "got"))
    assert "Error code 1: file not found" in out


async def test_inventory_edits_are_picked_up(start, peers, write_inventory, monkeypatch):
    path = write_inventory(inventory_text())
    binding = PhoneBinding(path)
    monkeypatch.setattr(PhoneBinding, "RECHECK", 0.0)
    server = await start(binding=binding)
    other = peers("127.0.0.23")
    with pytest.raises(LookupError):
        await other.fetch(server.port, f"SEP{BOUND}.cnf.xml")
    path.write_text(inventory_text().replace(PHONE_IP, "127.0.0.23"))
    assert b"authPassword" in await other.fetch(server.port, f"SEP{BOUND}.cnf.xml")
    path.write_text("[site]\nbroken = ")  # a broken edit keeps the last good inventory
    assert b"authPassword" in await other.fetch(server.port, f"SEP{BOUND}.cnf.xml")


# --- enumeration block -------------------------------------------------------------------------

async def test_enumeration_is_blocked_after_k_unknown_macs(start, peers, write_inventory, caplog):
    caplog.set_level(logging.INFO, "telefeatures.tftp")
    server = await start(binding=PhoneBinding(write_inventory(inventory_text())),
                         limits=Limits(enumeration_limit=5, enumeration_window=30, enumeration_block=3))
    askers = []
    for n in range(16):  # plausible Cisco names, each a different MAC, and the real phone's
        asker = peers("127.0.0.66")  # a port of its own: which request got an answer is then plain
        asker.rrq(server.port, f"SEP0019E81{n:05X}.cnf.xml" if n != 8 else f"SEP{BOUND}.cnf.xml")
        askers.append(asker)
    silent = await asyncio.gather(*(asker.silent(0.5) for asker in askers))
    assert silent == [False] * 4 + [True] * 12  # the fifth unknown MAC blocks, unanswered
    attacker = askers[0]
    attacker.rrq(server.port, "dialplan.xml")
    assert await attacker.silent()  # blocked means no answer to anything
    assert await peers("127.0.0.67").fetch(server.port, "dialplan.xml")  # everyone else is served
    blocks = [m for m in messages(caplog) if "enumeration blocked" in m]
    assert blocks == ["tftp enumeration blocked: peer 127.0.0.66 asked for 5 unknown phone config names "
                      "within 30 s; no answers for 3 s"]
    await asyncio.sleep(3)
    assert await attacker.fetch(server.port, "dialplan.xml") == b"<DIALTEMPLATE/>\n"  # the block ends


async def test_a_booting_phone_is_never_blocked(start, peers, write_inventory):
    """A 7961 asks for CTL/ITL files and the signed config first: all about its
    own MAC, so they count once."""
    server = await start(binding=PhoneBinding(write_inventory(inventory_text())),
                         limits=Limits(enumeration_limit=2))
    phone = peers(PHONE_IP)
    for _ in range(3):
        for name in (f"CTLSEP{BOUND}.tlv", f"ITLSEP{BOUND}.tlv", f"SEP{BOUND}.cnf.xml.sgn"):
            with pytest.raises(LookupError, match="file not found"):
                await phone.fetch(server.port, name)
        assert b"authPassword" in await phone.fetch(server.port, f"SEP{BOUND}.cnf.xml")


# --- bad input ---------------------------------------------------------------------------------

async def test_option_abuse(start, peers, root):
    server = await start()
    size = (root / "big.bin").stat().st_size
    client = peers("127.0.0.30")
    # A lying tsize gets the truth; a 255 s timeout is declined (not in the OACK).
    client.rrq(server.port, "big.bin", tsize="999999999", timeout="255", blksize="99999999999999999999")
    oack, tid = await client.recv()
    assert oack == b"\0\6blksize\x0065464\0tsize\0" + str(size).encode() + b"\0"
    client.sock.sendto(struct.pack("!HH", 4, 0), tid)
    data, _ = await client.recv()
    assert data == b"\0\3\0\1" + (root / "big.bin").read_bytes()
    client.sock.sendto(struct.pack("!HH", 4, 1), tid)
    for options in ({"timeout": "0"}, {"blksize": "7"}, {"tsize": "x"}):
        other = peers("127.0.0.31")
        other.rrq(server.port, "big.bin", **options)
        assert error_of((await other.recv())[0])[0] == 8
    await asyncio.sleep(0.05)
    assert not server._active


async def test_duplicate_acks_never_duplicate_data(start, peers):
    server = await start()
    client = peers("127.0.0.32")
    client.rrq(server.port, "big.bin")
    first, tid = await client.recv()
    for _ in range(20):
        client.sock.sendto(struct.pack("!HH", 4, 1), tid)
    second, _ = await client.recv()
    assert second[:4] == b"\0\3\0\2"
    assert await client.silent(0.3)  # twenty ACKs for block 1: one block 2, nothing more
    client.sock.sendto(b"\0\5\0\0stop\0", tid)


async def test_a_client_that_vanishes_frees_its_transfer_at_once(start, peers):
    server = await start(timeout=5)
    client = peers("127.0.0.33")
    client.rrq(server.port, "big.bin")
    _, tid = await client.recv()
    client.sock.sendto(struct.pack("!HH", 4, 1), tid)
    client.close()  # gone: block 2 draws an ICMP port unreachable
    for _ in range(50):
        if not server._active:
            break
        await asyncio.sleep(0.02)
    assert not server._active  # long before the 5 s timeout


async def test_next_file_from_the_same_port_is_served(start, peers):
    """Some clients ask for the next file from the port they used for the last
    one; the request can arrive before the final ACK of the previous file is
    read."""
    server = await start()
    client = peers("127.0.0.34")
    client.rrq(server.port, "dialplan.xml")
    data, tid = await client.recv()
    client.sock.sendto(struct.pack("!HH", 4, 1), tid)
    client.rrq(server.port, f"SEP{FREE}.cnf.xml")
    data, _ = await client.recv()
    assert data.startswith(b"\0\3\0\1<?xml")


async def test_malformed_packets_do_not_disturb_a_transfer(start, peers, root):
    server = await start()
    junk = peers("127.0.0.35")
    for packet in (b"", b"\0", b"\0\1", b"\0\1\0\0\0", b"\xff" * 1500, b"\0\1" + b"a" * 2000 + b"\0octet\0",
                   b"\0\1x\0octet\0blksize\0", b"\0\3\0\1data", b"\0\4\0\1"):
        junk.sock.sendto(packet, ("127.0.0.1", server.port))
    assert await peers("127.0.0.36").fetch(server.port, "big.bin") == (root / "big.bin").read_bytes()


async def test_a_refusal_alone_reaches_the_fetch_record(start, peers, root, tmp_path, write_inventory):
    """No transfer runs afterwards to wake the writer: the refusal must still be
    written while the server runs, for `provision doctor` to see."""
    server = await start(binding=PhoneBinding(write_inventory(inventory_text())),
                         record=FetchRecord(tmp_path / "state", str(root)))
    with pytest.raises(LookupError):
        await peers("127.0.0.24").fetch(server.port, f"SEP{BOUND}.cnf.xml")
    for _ in range(30):
        refused = load_fetches(tmp_path / "state").get(f"SEP{BOUND}.cnf.xml")
        if refused is not None:
            break
        await asyncio.sleep(0.1)
    assert refused is not None and refused.refused.peer == "127.0.0.24" and refused.ok is None


async def test_silent_transfers_from_many_addresses_make_room_for_a_phone(start, peers, root, caplog):
    """Per-address limits do not stop requests from many (spoofed) addresses
    filling every slot; a transfer whose first packet went unanswered even
    after a resend gives its slot to a new request."""
    caplog.set_level(logging.INFO, "telefeatures.tftp")
    server = await start(max_transfers=4, timeout=0.3)
    silent = [peers(f"127.0.0.{81 + n}") for n in range(4)]
    for peer in silent:
        peer.rrq(server.port, "big.bin")
    phone = peers("127.0.0.90")
    phone.rrq(server.port, "dialplan.xml")
    assert error_of((await phone.recv())[0]) == (0, "server busy, try again")  # all four just started
    await asyncio.sleep(0.5)  # each has sent its first block twice, unanswered
    assert await phone.fetch(server.port, "dialplan.xml") == b"<DIALTEMPLATE/>\n"
    assert any("127.0.0.81" in m and "never answered, ended to make room" in m for m in messages(caplog))


def test_without_allow_the_inventory_says_who_may_ask(write_inventory, monkeypatch, caplog):
    """No --allow with --inventory: loopback, the phones' networks and their
    addresses; a phone added to the inventory is let in without a restart.
    (The policy alone: the addresses involved are not loopback ones.)"""
    caplog.set_level(logging.INFO, "telefeatures.tftp")
    monkeypatch.setattr(PhoneBinding, "RECHECK", 0.0)
    path = write_inventory(inventory_text().replace(PHONE_IP, "198.51.100.7"))
    policy = PeerPolicy(binding=PhoneBinding(path), allow_from_inventory=True)
    assert policy.allowed("127.0.0.1", 1.0) and policy.allowed("::1", 1.0)
    assert policy.allowed("198.51.100.7", 1.0)
    assert not policy.allowed("198.51.100.8", 1.0) and not policy.allowed("198.51.100.8", 2.0)
    assert [m for m in messages(caplog) if "refused" in m] == [
        "tftp peer 198.51.100.8 refused: not in the allowed networks (--allow), no answer given"]
    path.write_text(inventory_text().replace(PHONE_IP, "198.51.100.8"))  # the new phone's reservation
    assert policy.allowed("198.51.100.8", 3.0)
    assert not PeerPolicy(allow=["10.0.0.0/8"], binding=PhoneBinding(path), allow_from_inventory=True) \
        .allowed("198.51.100.8", 1.0)  # an explicit allow list wins


def test_unknown_names_older_than_the_window_do_not_count():
    """The enumeration limit counts unknown phone names within the window only:
    a peer that asks for one now and then (a phone replaced, a typo in a
    provisioning script) is never blocked; the same names asked for in a burst are."""
    policy = PeerPolicy(Limits(enumeration_limit=3, enumeration_window=60, enumeration_block=600))
    names = [f"SEP0019E81{n:05X}.cnf.xml" for n in range(6)]
    peer = policy.peer("127.0.0.70", 0.0)
    assert [policy.note_unknown(peer, name, 100.0 * n) for n, name in enumerate(names)] == [False] * 6
    assert policy.peer("127.0.0.70", 600.0) is peer  # still answered
    burst = [policy.note_unknown(peer, name, 700.0 + n) for n, name in enumerate(names[:3])]
    assert burst == [False, False, True]
    assert policy.peer("127.0.0.70", 703.0) is None  # blocked: no answer at all
