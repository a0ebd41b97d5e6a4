"""The FastAGI server over real TCP on 127.0.0.1, with the scripted Asterisk and a real Redis."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket

import pytest

from telefeatures.agi.protocol import MAX_HEADER_BYTES, MAX_LINE_BYTES
from telefeatures.agi.server import peer_allowed
from tests.support.asterisk_peer import (
    TRYING,
    USAGE_ONE_LINE,
    Script,
    call,
    header_bytes,
    read_until_closed,
    usage_block,
)

SESSION_LINE = re.compile(
    r"route=(?P<route>\S+) ext=(?P<ext>\S+) status=(?P<status>\S+) reason=(?P<reason>\S+) ms=(?P<ms>[0-9.]+) "
    r"peer=(?P<peer>\S+) uniqueid=(?P<uniqueid>\S+) tenant=(?P<tenant>\S+)"
)
ERROR_PROMPTS = ["sorry", "please-try-call-later"]


async def until(predicate, timeout: float = 5.0, step: float = 0.005) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(step)


class Sessions:
    """The server's one-line-per-session log, parsed."""

    def __init__(self, caplog):
        self.caplog = caplog
        caplog.set_level(logging.INFO, logger="telefeatures.session")
        caplog.set_level(logging.INFO, logger="telefeatures.server")

    @property
    def lines(self) -> list[dict]:
        out = []
        for rec in self.caplog.records:
            if rec.name == "telefeatures.session":
                m = SESSION_LINE.fullmatch(rec.getMessage())
                assert m, rec.getMessage()
                out.append(m.groupdict())
        return out

    async def wait(self, count: int) -> list[dict]:
        await until(lambda: len(self.lines) >= count)
        return self.lines

    @property
    def last(self) -> dict:
        return self.lines[-1]

    def warnings(self) -> list[str]:
        return [r.getMessage() for r in self.caplog.records if r.levelno >= logging.WARNING]


@pytest.fixture
def sessions(caplog) -> Sessions:
    return Sessions(caplog)


@pytest.fixture
def app(backend, make_app):
    return make_app(backend.repository)


@pytest.fixture
async def server(app, start_server):
    return await start_server(app, header_timeout=0.5, session_timeout=3.0, max_sessions=50)


async def healthy(server, ext: str = "1000") -> None:
    """A normal session still completes, and nothing is left running."""
    result = await call("127.0.0.1", server.port, "outbound", [ext, "5551234567"], timeout=5)
    assert result.closed_by_server
    assert result.variables["TF_STATUS"] == "OK"
    assert result.variables["TF_DIAL"] == "5551234567"
    await until(lambda: server.active_sessions == 0)


async def raw_connect(server, local_addr=None):
    return await asyncio.open_connection("127.0.0.1", server.port, local_addr=local_addr)


# --------------------------------------------------------------------------- routes end to end


async def test_tenant_in_state_log_and_metrics(server, backend, sessions):
    from prometheus_client import REGISTRY

    def count(tenant: str) -> float:
        return REGISTRY.get_sample_value(
            "telefeatures_sessions_total", {"tenant": tenant, "route": "outbound", "status": "OK"}) or 0.0

    before = count("acme")
    await backend.repository.set_blocked("1000", True, tenant="acme")
    result = await call("127.0.0.1", server.port, "outbound?tenant=acme", ["1000", "5551234567"])
    assert ("CALLERID(pres)", "prohib") in result.sets
    result = await call("127.0.0.1", server.port, "outbound", ["1000", "5551234567"])
    assert ("CALLERID(pres)", "allowed") in result.sets
    lines = await sessions.wait(2)
    assert [(line["tenant"], line["ext"]) for line in lines[-2:]] == [("acme", "1000"), ("-", "1000")]
    assert count("acme") == before + 1


async def test_outbound(server, backend, sessions):
    await backend.repository.set_blocked("1000", True)
    result = await call("127.0.0.1", server.port, "outbound", ["1000", "*675551234567"])
    assert result.closed_by_server and not result.trailing
    assert result.sets == [("CALLERID(pres)", "prohib"), ("TF_DIAL", "5551234567"), ("TF_STATUS", "OK")]
    assert [c.line for c in result.commands][0] == 'SET VARIABLE "CALLERID(pres)" "prohib"'
    line = (await sessions.wait(1))[-1]
    assert (line["route"], line["ext"], line["status"], line["reason"]) == ("outbound", "1000", "OK", "-")
    assert line["peer"] == "127.0.0.1" and line["uniqueid"] == "1763700000.42"


async def test_inbound_then_callreturn(server, backend):
    result = await call("127.0.0.1", server.port, "inbound", ["1000"], callerid="2125551234",
                        calleridname="Bob, Smith")
    assert result.variables == {"TF_INBOUND": "RING", "TF_STATUS": "OK"}
    rec = await backend.repository.last_caller("1000")
    assert (rec.number, rec.name) == ("2125551234", "Bob, Smith")

    result = await call("127.0.0.1", server.port, "callreturn", ["1000"], Script(press={"vm-press": "1"}))
    assert result.variables["TF_DIAL"] == "12125551234"
    assert result.variables["TF_STATUS"] == "OK"
    assert result.said == ["2125551234"]
    assert result.prompts == ["info-about-last-call", "telephone-number", "to-call-this-number", "vm-press"]


async def test_callreturn_declined_and_withheld(server):
    result = await call("127.0.0.1", server.port, "callreturn", ["1000"])
    assert result.variables == {"TF_STATUS": "REFUSED", "TF_REASON": "no-record"}
    await call("127.0.0.1", server.port, "inbound", ["1000"], callerid="anonymous")
    result = await call("127.0.0.1", server.port, "callreturn", ["1000"], Script(wait_digit="1"))
    assert result.variables == {"TF_STATUS": "REFUSED", "TF_REASON": "withheld"}


async def test_cidblock_routes(server, backend, sessions):
    result = await call("127.0.0.1", server.port, "cidblock/on", ["1000"])
    assert result.prompts == ["activated"] and result.status == "OK"
    result = await call("127.0.0.1", server.port, "cidblock/status", ["1000"])
    assert result.variables == {"TF_CIDBLOCK": "on", "TF_STATUS": "OK"}
    assert result.prompts == ["enabled"]
    result = await call("127.0.0.1", server.port, "cidblock/off", ["1000"])
    assert result.prompts == ["de-activated"]
    result = await call("127.0.0.1", server.port, "cidblock/status", ["1000"])
    assert result.variables["TF_CIDBLOCK"] == "off" and result.prompts == ["disabled"]
    assert [(s["route"], s["status"]) for s in await sessions.wait(4)] == [
        ("cidblock/on", "OK"), ("cidblock/status", "OK"), ("cidblock/off", "OK"), ("cidblock/status", "OK")]


async def test_extension_from_channel_over_tcp(server, backend):
    result = await call("127.0.0.1", server.port, "cidblock/on", [], channel="PJSIP/1001-0000002b",
                        callerid="1000")
    assert result.status == "OK"
    assert await backend.repository.is_blocked("1001")
    assert not await backend.repository.is_blocked("1000")


async def test_route_with_query_string(server):
    result = await call("127.0.0.1", server.port, "outbound?trunk=x", ["1000", "5551234567"])
    assert result.status == "OK"


async def test_unknown_route_closes(server, sessions):
    result = await call("127.0.0.1", server.port, "nosuch", ["1000"])
    assert result.closed_by_server
    assert result.variables == {"TF_STATUS": "ERROR", "TF_REASON": "unknown-route"}
    line = (await sessions.wait(1))[-1]
    assert (line["route"], line["status"], line["reason"]) == ("nosuch", "ERROR", "unknown-route")
    await healthy(server)


async def test_redis_down_over_tcp(down_backend, make_app, start_server, sessions):
    server = await start_server(make_app(down_backend.repository), header_timeout=0.5, session_timeout=3)
    result = await call("127.0.0.1", server.port, "outbound", ["1000", "5551234567"])
    assert result.variables == {"CALLERID(pres)": "prohib", "TF_DIAL": "5551234567", "TF_REASON": "state-error",
                                "TF_STATUS": "ERROR"}
    result = await call("127.0.0.1", server.port, "cidblock/on", ["1000"])
    assert result.prompts == ERROR_PROMPTS
    assert result.variables == {"TF_REASON": "state-error", "TF_STATUS": "ERROR"}
    assert [s["reason"] for s in await sessions.wait(2)] == ["state-error", "state-error"]


async def test_many_concurrent_sessions(server, backend):
    await backend.repository.set_blocked("1007", True)
    exts = [str(1000 + i) for i in range(40)]
    results = await asyncio.gather(*(call("127.0.0.1", server.port, "outbound", [e, f"55512{i:05d}"])
                                     for i, e in enumerate(exts)))
    for i, (ext, result) in enumerate(zip(exts, results)):
        assert result.variables["TF_DIAL"] == f"55512{i:05d}"
        assert result.variables["CALLERID(pres)"] == ("prohib" if ext == "1007" else "allowed")
    await until(lambda: server.active_sessions == 0)


# --------------------------------------------------------------------------- header attacks


async def test_header_timeout(server, sessions):
    reader, writer = await raw_connect(server)
    writer.write(b"agi_network: yes\nagi_network_script: outbound\n")  # never the blank line
    await writer.drain()
    data = await read_until_closed(reader, timeout=5)
    assert data == b""  # not a single command was sent
    writer.close()
    line = (await sessions.wait(1))[-1]
    assert (line["route"], line["status"], line["reason"]) == ("-", "ERROR", "header-timeout")
    await healthy(server)


async def test_header_timeout_while_another_session_is_in_its_long_session_limit(app, start_server):
    """One timer serves all sessions; a session that already read its header
    leaves it set at its (late) session deadline. A new connection that never
    sends a header must still be cut off at its own header deadline."""
    server = await start_server(app, header_timeout=0.3, session_timeout=30)
    busy = asyncio.create_task(call("127.0.0.1", server.port, "callreturn", ["1000"], Script(stall_at=1),
                                    timeout=40))
    await asyncio.sleep(0.5)  # busy has read its header; its next deadline is 30 s away
    reader, writer = await raw_connect(server)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await read_until_closed(reader, timeout=10) == b""
    writer.close()
    assert loop.time() - started < 2.0, "the header deadline waited for another session's session deadline"
    busy.cancel()


async def test_silent_client_times_out(server, sessions):
    reader, writer = await raw_connect(server)
    assert await read_until_closed(reader, timeout=5) == b""
    writer.close()
    assert (await sessions.wait(1))[-1]["reason"] == "header-timeout"
    await healthy(server)


async def test_slow_header_within_time_limit_is_fine(app, start_server):
    server = await start_server(app, header_timeout=5)
    reader, writer = await raw_connect(server)
    for line in header_bytes("outbound", ["1000", "5551234567"]).splitlines(keepends=True):
        writer.write(line)
        await writer.drain()
        await asyncio.sleep(0.01)
    out = await read_until_closed_answering(reader, writer)
    assert b'SET VARIABLE "TF_STATUS" "OK"' in out


async def read_until_closed_answering(reader, writer) -> bytes:
    """Answer every command with 200 result=1 until the server closes."""
    data = bytearray()
    async with asyncio.timeout(5):
        while True:
            line = await reader.readline()
            if not line:
                writer.close()
                return bytes(data)
            data += line
            writer.write(b"200 result=1\n")
            await writer.drain()


async def test_one_megabyte_header_is_cut_off(server, sessions):
    reader, writer = await raw_connect(server)
    line = b"agi_x: " + b"a" * 1000 + b"\n"
    blob = line * (1024 * 1024 // len(line))
    writer.write(b"agi_network: yes\n" + blob)
    try:
        await writer.drain()
    except ConnectionError:
        pass  # the server stopped reading and closed: that is the point
    assert await read_until_closed(reader, timeout=3) == b""
    writer.close()
    entry = (await sessions.wait(1))[-1]
    assert (entry["status"], entry["reason"]) == ("ERROR", "protocol-error")
    await healthy(server)


async def test_header_just_under_the_size_limit_is_accepted(server):
    filler = []
    size = 0
    while size + 1100 < MAX_HEADER_BYTES - 2000:
        item = f"agi_x{len(filler)}: " + "a" * 1000
        filler.append(item)
        size += len(item) + 1
    raw = header_bytes("outbound", ["1000", "5551234567"])
    raw = raw[:-1] + "".join(f"{x}\n" for x in filler).encode() + b"\n"
    reader, writer = await raw_connect(server)
    writer.write(raw)
    await writer.drain()
    out = await read_until_closed_answering(reader, writer)
    assert b'"TF_STATUS" "OK"' in out


async def test_one_megabyte_single_line(server, sessions):
    reader, writer = await raw_connect(server)
    writer.write(b"agi_network: yes\nagi_calleridname: " + b"x" * (1024 * 1024))
    try:
        await writer.drain()
    except ConnectionError:
        pass
    assert await read_until_closed(reader, timeout=3) == b""
    writer.close()
    assert (await sessions.wait(1))[-1]["reason"] == "protocol-error"
    await healthy(server)


@pytest.mark.parametrize(("length", "accepted"), [(MAX_LINE_BYTES - 100, True), (MAX_LINE_BYTES + 100, False)])
async def test_header_line_length_limit(server, sessions, length, accepted):
    name = "N" * (length - len("agi_calleridname: "))
    result = await call("127.0.0.1", server.port, "inbound", ["1000"], callerid="2125551234", calleridname=name)
    entry = (await sessions.wait(1))[-1]
    if accepted:
        assert result.status == "OK" and entry["status"] == "OK"
    else:
        assert result.commands == []
        assert entry["reason"] == "protocol-error"
    await healthy(server)


async def test_reply_line_over_8k(server, sessions):
    script = Script(replies={1: ["200 result=1 (" + "x" * (MAX_LINE_BYTES + 10) + ")"]})
    result = await call("127.0.0.1", server.port, "outbound", ["1000", "5551234567"], script)
    assert result.closed_by_server
    assert len(result.commands) == 1
    assert (await sessions.wait(1))[-1]["reason"] == "protocol-error"
    await healthy(server)


async def test_non_agi_header_line(server, sessions):
    reader, writer = await raw_connect(server)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    assert await read_until_closed(reader, timeout=3) == b""
    writer.close()
    assert (await sessions.wait(1))[-1]["reason"] == "protocol-error"
    await healthy(server)


async def test_argument_numbering_gap_in_header(server, sessions):
    raw = header_bytes("outbound").replace(b"\n\n", b"\nagi_arg_2: 5551234567\n\n")
    reader, writer = await raw_connect(server)
    writer.write(raw)
    await writer.drain()
    assert await read_until_closed(reader, timeout=3) == b""
    writer.close()
    assert (await sessions.wait(1))[-1]["reason"] == "protocol-error"


HEADER = header_bytes("outbound", ["1000", "5551234567"])


@pytest.mark.parametrize("offset", [0, 1, 9, 17, len(HEADER) // 2, len(HEADER) - 2, len(HEADER) - 1])
async def test_early_eof_in_header(server, sessions, offset):
    reader, writer = await raw_connect(server)
    writer.write(HEADER[:offset])
    writer.write_eof()
    await writer.drain()
    assert await read_until_closed(reader, timeout=3) == b""
    writer.close()
    entry = (await sessions.wait(1))[-1]
    assert (entry["route"], entry["status"]) == ("-", "HANGUP")
    await until(lambda: server.active_sessions == 0)
    await healthy(server)


async def test_eof_in_the_middle_of_a_session(server, sessions):
    result = await call("127.0.0.1", server.port, "callreturn", ["1000"], Script(close_at=1))
    assert result.closed_by_peer
    entry = (await sessions.wait(1))[-1]
    assert (entry["route"], entry["ext"], entry["status"]) == ("callreturn", "1000", "HANGUP")
    await healthy(server)


async def test_eof_in_the_middle_of_a_reply_line(server, sessions):
    reader, writer = await raw_connect(server)
    writer.write(HEADER)
    await writer.drain()
    await reader.readline()
    writer.write(b"200 resu")
    writer.write_eof()
    assert await read_until_closed(reader, timeout=3) == b""
    writer.close()
    assert (await sessions.wait(1))[-1]["status"] == "HANGUP"
    await healthy(server)


async def test_invalid_utf8_in_caller_name(server, backend, sessions):
    result = await call("127.0.0.1", server.port, "inbound", ["1000"], callerid="2125551234",
                        calleridname=b"\xff\xfeBob\xc3")
    assert result.status == "OK"
    rec = await backend.repository.last_caller("1000")
    assert rec.number == "2125551234"
    assert rec.name == "\ufffd\ufffdBob\ufffd"


async def test_invalid_utf8_in_caller_number_is_withheld(server, backend):
    result = await call("127.0.0.1", server.port, "inbound", ["1000"], callerid=b"212555\xff1234")
    assert result.variables["TF_REASON"] == "withheld-invalid-number"
    assert (await backend.repository.last_caller("1000")).withheld


# --------------------------------------------------------------------------- reply stream oddities


async def test_hangup_line_before_reply(server, sessions):
    # SET VARIABLE still works on a hung-up channel, so the session completes.
    script = Script(hangup_before=1)
    result = await call("127.0.0.1", server.port, "outbound", ["1000", "5551234567"], script)
    assert result.sets == [("CALLERID(pres)", "allowed"), ("TF_DIAL", "5551234567"), ("TF_STATUS", "OK")]
    assert (await sessions.wait(1))[-1]["status"] == "OK"


async def test_hangup_line_after_reply_then_511(server, sessions, backend):
    await backend.repository.set_blocked("1000", True)
    # cidblock/status: SET VARIABLE TF_CIDBLOCK, then HANGUP, then STREAM FILE -> 511
    script = Script(hangup_after=1)
    result = await call("127.0.0.1", server.port, "cidblock/status", ["1000"], script)
    assert result.verbs == ["SET VARIABLE", "STREAM FILE"]
    assert result.closed_by_server
    entry = (await sessions.wait(1))[-1]
    assert (entry["route"], entry["status"], entry["reason"]) == ("cidblock/status", "HANGUP", "hangup")
    await healthy(server)


async def test_511_without_hangup_line(server, sessions):
    script = Script(replies={1: ["511 Command Not Permitted on a dead channel or intercept routine"]})
    result = await call("127.0.0.1", server.port, "cidblock/on", ["1000"], script)
    assert result.verbs == ["STREAM FILE"]
    assert (await sessions.wait(1))[-1]["status"] == "HANGUP"


async def test_trying_lines_are_skipped(server):
    script = Script(before={1: [TRYING], 2: [TRYING, TRYING, "HANGUP"], 3: [TRYING]})
    result = await call("127.0.0.1", server.port, "outbound", ["1000", "5551234567"], script)
    assert result.sets == [("CALLERID(pres)", "allowed"), ("TF_DIAL", "5551234567"), ("TF_STATUS", "OK")]


@pytest.mark.parametrize("reply", [usage_block("SET VARIABLE"), [USAGE_ONE_LINE], ["510 Invalid or unknown command"]])
async def test_rejected_command_ends_session_cleanly(server, sessions, reply):
    result = await call("127.0.0.1", server.port, "outbound", ["1000", "5551234567"], Script(replies={1: reply}))
    assert result.closed_by_server
    assert len(result.commands) == 1  # nothing more was sent after the rejection
    entry = (await sessions.wait(1))[-1]
    # a block read line by line would be a protocol error on "Usage: ..." lines
    assert (entry["status"], entry["reason"]) == ("ERROR", "command-rejected")
    await healthy(server)


async def test_usage_block_split_across_writes(server, sessions):
    reader, writer = await raw_connect(server)
    writer.write(HEADER)
    await writer.drain()
    assert (await reader.readline()).startswith(b"SET VARIABLE")
    for line in usage_block("SET VARIABLE"):
        writer.write(line.encode() + b"\n")
        await writer.drain()
        await asyncio.sleep(0.01)
    assert await read_until_closed(reader, timeout=3) == b""
    writer.close()
    assert (await sessions.wait(1))[-1]["reason"] == "command-rejected"


@pytest.mark.parametrize("garbage", ["hello", "200", "HTTP/1.1 200 OK", "agi_network: yes", "", "\x00\x01"])
async def test_garbage_reply(server, sessions, garbage):
    result = await call("127.0.0.1", server.port, "outbound", ["1000", "5551234567"], Script(replies={1: [garbage]}))
    assert result.closed_by_server
    assert len(result.commands) == 1
    assert (await sessions.wait(1))[-1]["reason"] == "protocol-error"
    await healthy(server)


async def test_crlf_replies(server):
    reader, writer = await raw_connect(server)
    writer.write(HEADER.replace(b"\n", b"\r\n"))
    await writer.drain()
    commands = []
    async with asyncio.timeout(5):
        while line := await reader.readline():
            commands.append(line)
            writer.write(b"200 result=1\r\n")
            await writer.drain()
    writer.close()
    assert commands[-1] == b'SET VARIABLE "TF_STATUS" "OK"\n'


# --------------------------------------------------------------------------- time and capacity limits


async def test_session_time_limit(app, start_server, sessions):
    server = await start_server(app, header_timeout=0.5, session_timeout=0.5)
    result = await call("127.0.0.1", server.port, "callreturn", ["1000"], Script(stall_at=1), timeout=5)
    assert result.closed_by_server
    assert result.verbs == ["STREAM FILE"]
    entry = (await sessions.wait(1))[-1]
    assert (entry["route"], entry["status"], entry["reason"]) == ("callreturn", "ERROR", "session-timeout")
    await healthy(server)


async def test_slow_replies_within_time_limit(app, start_server):
    server = await start_server(app, header_timeout=0.5, session_timeout=3)
    script = Script(delay={1: 0.2, 2: 0.2})
    result = await call("127.0.0.1", server.port, "outbound", ["1000", "5551234567"], script)
    assert result.status == "OK"


async def test_session_cap(app, start_server, sessions):
    server = await start_server(app, header_timeout=1, session_timeout=10, max_sessions=2)
    stalled = [asyncio.create_task(call("127.0.0.1", server.port, "outbound", ["1000", "5551234567"],
                                        Script(stall_at=1), timeout=10)) for _ in range(2)]
    await until(lambda: server.active_sessions == 2)
    over = await call("127.0.0.1", server.port, "outbound", ["1000", "5551234567"], timeout=2)
    assert over.commands == []
    assert over.reset or over.closed_by_server
    assert any("refused connection" in w and "2 sessions active" in w for w in sessions.warnings())
    for task in stalled:
        task.cancel()
    await asyncio.gather(*stalled, return_exceptions=True)
    await until(lambda: server.active_sessions == 0)
    await healthy(server)


async def test_allow_list(app, start_server, sessions):
    server = await start_server(app, allow_peers=[ipaddress.ip_network("127.0.0.1/32")], header_timeout=1)
    refused = await call("127.0.0.1", server.port, "outbound", ["1000", "5551234567"],
                         local_addr=("127.0.0.2", 0), timeout=2)
    assert refused.commands == []
    assert refused.reset or refused.closed_by_server
    assert any("refused connection from 127.0.0.2" in w for w in sessions.warnings())
    assert sessions.lines == []  # refused before it became a session
    allowed = await call("127.0.0.1", server.port, "outbound", ["1000", "5551234567"],
                         local_addr=("127.0.0.1", 0))
    assert allowed.status == "OK"
    assert (await sessions.wait(1))[-1]["peer"] == "127.0.0.1"


async def test_allow_list_of_a_whole_network(app, start_server):
    server = await start_server(app, allow_peers=[ipaddress.ip_network("127.0.0.0/30")])
    for source in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
        result = await call("127.0.0.1", server.port, "outbound", ["1000", "5551234567"], local_addr=(source, 0))
        assert result.status == "OK", source
    result = await call("127.0.0.1", server.port, "outbound", ["1000", "5551234567"],
                        local_addr=("127.0.0.4", 0), timeout=2)
    assert result.commands == []


async def test_empty_allow_list_refuses_everyone(app, start_server):
    server = await start_server(app, allow_peers=[])
    result = await call("127.0.0.1", server.port, "outbound", ["1000", "5551234567"], timeout=2)
    assert result.commands == []


@pytest.mark.parametrize(
    ("peer", "nets", "allowed"),
    [
        (("127.0.0.1", 1234), ["127.0.0.0/8"], True),
        (("10.0.0.1", 1234), ["127.0.0.0/8"], False),
        (("::ffff:127.0.0.1", 1234, 0, 0), ["127.0.0.1/32"], True),  # IPv4-mapped IPv6
        (("::1", 1234, 0, 0), ["127.0.0.0/8"], False),
        (("::1", 1234, 0, 0), ["::1/128"], True),
        (("fe80::1%lo", 1234, 0, 1), ["fe80::/64"], True),
        ("/run/agi.sock", ["127.0.0.0/8"], False),
        (None, ["127.0.0.0/8"], False),
        ((), ["127.0.0.0/8"], False),
        (("not-an-ip", 1), ["127.0.0.0/8"], False),
    ],
)
def test_peer_allowed(peer, nets, allowed):
    assert peer_allowed(peer, [ipaddress.ip_network(n) for n in nets]) is allowed


# --------------------------------------------------------------------------- graceful stop


async def test_graceful_stop(app, start_server, sessions):
    server = await start_server(app, header_timeout=1, session_timeout=10)
    port = server.port
    in_flight = asyncio.create_task(call("127.0.0.1", port, "outbound", ["1000", "5551234567"],
                                         Script(delay={1: 0.4})))
    await until(lambda: server.active_sessions == 1)
    stopping = asyncio.create_task(server.stop(grace=5))
    await until(lambda: not server.health.accepting)
    await asyncio.sleep(0.05)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    result = await in_flight
    assert result.status == "OK"
    assert result.sets[-1] == ("TF_STATUS", "OK")
    assert await asyncio.wait_for(stopping, 5) == 0
    assert server.active_sessions == 0
    assert [s["status"] for s in await sessions.wait(1)] == ["OK"]


async def test_stop_cancels_after_grace(app, start_server, sessions):
    server = await start_server(app, header_timeout=1, session_timeout=30)
    stuck = asyncio.create_task(call("127.0.0.1", server.port, "callreturn", ["1000"], Script(stall_at=1),
                                     timeout=10))
    await until(lambda: server.active_sessions == 1)
    assert await asyncio.wait_for(server.stop(grace=0.2), 5) == 1
    result = await stuck
    assert result.closed_by_server
    entry = (await sessions.wait(1))[-1]
    assert (entry["route"], entry["reason"]) == ("callreturn", "shutdown")


async def test_stop_with_nothing_running(app, start_server):
    server = await start_server(app)
    assert await server.stop(grace=1) == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


# --------------------------------------------------------------------------- the session log


async def test_one_log_line_per_session(server, backend, sessions):
    await backend.repository.set_blocked("1001", True)
    runs = [
        ("outbound", ["1000", "5551234567"], None, ("outbound", "1000", "OK", "-")),
        ("outbound", ["1000", "*69"], None, ("outbound", "1000", "REFUSED", "invalid-number")),
        ("cidblock/status", ["1001"], None, ("cidblock/status", "1001", "OK", "-")),
        ("callreturn", ["1002"], None, ("callreturn", "1002", "REFUSED", "no-record")),
        ("inbound", ["1003"], None, ("inbound", "1003", "OK", "-")),
        ("callreturn", ["bad ext"], None, ("callreturn", "-", "ERROR", "bad-extension")),
        ("zzz", [], None, ("zzz", "-", "ERROR", "unknown-route")),
        ("cidblock/on", ["1004"], Script(hangup_before=1), ("cidblock/on", "1004", "HANGUP", "hangup")),
    ]
    for route, args, script, _ in runs:
        await call("127.0.0.1", server.port, route, args, script)
    lines = await sessions.wait(len(runs))
    assert len(lines) == len(runs)
    assert [(x["route"], x["ext"], x["status"], x["reason"]) for x in lines] == [r[3] for r in runs]
    assert all(float(x["ms"]) >= 0 for x in lines)
    records = [r for r in sessions.caplog.records if r.name == "telefeatures.session"]
    assert records[0].route == "outbound" and records[0].extension == "1000" and records[0].status == "OK"
    assert isinstance(records[0].ms, float)


async def test_hostile_route_name_is_bounded_in_log(server, sessions):
    route = "x" * 500
    result = await call("127.0.0.1", server.port, route, [])
    assert result.status == "ERROR"
    entry = (await sessions.wait(1))[-1]
    assert entry["route"] == "x" * 64
