"""Hostile peers and hostile data over real TCP. After every attack the
server is still there and an ordinary session completes promptly."""

from __future__ import annotations

import asyncio
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hardening.checks import normal_session, run
from tests.support.asterisk_peer import Script, call, header_bytes, read_until_closed, usage_block
from tests.support.callerids import HOSTILE_NUMBERS, WITHHELD_NUMBERS
from tests.testbed.services import KEYS

HEADER = header_bytes("outbound", ["1000", "5552345678"])


async def send_and_close(port: int, data: bytes, half_close: bool = True, timeout: float = 3.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        if half_close:
            writer.write_eof()
    except OSError:  # the server may close (or reset) before we finish writing: that is the point
        pass
    try:
        return await read_until_closed(reader, timeout)
    finally:
        writer.close()


def assert_alive(server):
    assert server.process.poll() is None, server.log_text()[-3000:]
    assert "Traceback" not in server.log_text()
    run(normal_session(server.port))


def test_early_eof_at_every_byte_of_the_header(serve):
    server = serve()

    async def attack():
        sem = asyncio.Semaphore(20)

        async def one(i):
            async with sem:
                return await send_and_close(server.port, HEADER[:i])

        return await asyncio.gather(*(one(i) for i in range(len(HEADER))))

    replies = run(attack())
    assert len(replies) == len(HEADER) > 500
    # Nothing is ever sent back for an incomplete header: no command, no variable.
    assert all(r == b"" for r in replies)
    assert_alive(server)


def test_a_header_that_never_ends_is_cut_off(serve):
    server = serve(env={"TELEFEATURES_HEADER_TIMEOUT": "1"})

    async def slowloris():
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        loop = asyncio.get_running_loop()
        started = loop.time()
        lines = HEADER.split(b"\n")[:5]
        try:
            for i in range(40):  # a line every 0.2 s, never the blank one
                writer.write(lines[i % len(lines)] + b"\n")
                await writer.drain()
                await asyncio.sleep(0.2)
                if reader.at_eof():
                    break
        except (ConnectionResetError, BrokenPipeError):
            pass
        await read_until_closed(reader, 5)
        writer.close()
        return loop.time() - started

    elapsed = run(slowloris())
    assert elapsed < 4, f"the server held a never-ending header for {elapsed:.1f}s"
    assert_alive(server)


@pytest.mark.parametrize("attack", ["1 MB header", "9 KB line", "garbage", "invalid utf-8", "no agi_ prefix",
                                    "empty header", "garbage after a blank line"])
def test_oversized_and_malformed_headers_are_refused(serve, attack):
    server = serve()
    data = {
        "1 MB header": b"".join(b"agi_x%d: %s\n" % (i, b"v" * 100) for i in range(10_000)) + b"\n",
        "9 KB line": b"agi_callerid: " + b"5" * 9000 + b"\n\n",
        "garbage": os.urandom(4096),
        "invalid utf-8": b"agi_network: yes\nagi_channel: \xff\xfe\xc3(\n\n",
        "no agi_ prefix": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "empty header": b"\n",
        "garbage after a blank line": b"\n" + os.urandom(4096),
    }[attack]
    reply = run(send_and_close(server.port, data, timeout=5))
    if attack != "invalid utf-8":
        assert b"TF_DIAL" not in reply and b"SET VARIABLE" not in reply
    assert_alive(server)


def test_crlf_line_endings_work(serve):
    server = serve()

    async def session():
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(HEADER.replace(b"\n", b"\r\n"))
        sent = []
        while True:
            line = await asyncio.wait_for(reader.readline(), 3)
            if not line:
                break
            sent.append(line.decode().strip())
            writer.write(b"200 result=1\r\n")
        writer.close()
        return sent

    sent = run(session())
    assert sent[-1] == 'SET VARIABLE "TF_STATUS" "OK"'
    assert 'SET VARIABLE "TF_DIAL" "5552345678"' in sent


@pytest.mark.parametrize("script", [
    Script(replies={1: ["999 something else"]}),
    Script(replies={1: ["200 result=1 (unterminated"]}),
    Script(replies={1: usage_block("SET VARIABLE")}),
    Script(replies={1: ["510 Invalid or unknown command"]}),
    Script(before={1: ["HANGUP", "100 result=0 Trying..."]}),
    Script(hangup_before=1),
    Script(hangup_after=1),
    Script(close_at=1),
], ids=["unknown-code", "bad-200", "520-block", "510", "hangup+trying-before", "hangup-before-511",
        "hangup-after", "eof"])
def test_unexpected_replies_end_the_session_cleanly(serve, script):
    server = serve()
    result = run(call("127.0.0.1", server.port, "cidblock/status", ["1000"], script, timeout=5))
    assert "TF_DIAL" not in result.variables
    assert_alive(server)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000))
def test_fuzzed_bytes_never_hang_or_crash_the_server(serve_once, data):
    reply = run(send_and_close(serve_once.port, data, timeout=6))
    assert b"TF_DIAL" not in reply
    assert serve_once.process.poll() is None, "the server died on this input"


@pytest.fixture(scope="module")
def serve_once(tmp_path_factory, redis_server):
    from tests.testbed.services import FeatureServer

    server = FeatureServer(tmp_path_factory.mktemp("fuzz"), redis_server.url,
                           env={"TELEFEATURES_HEADER_TIMEOUT": "1"})
    server.start()
    yield server
    assert_alive(server)
    server.stop()


# ----------------------------------------------------------------------------- hostile data


# A header line cannot carry CR or LF, so those variants cannot arrive over
# FastAGI at all (the protocol unit tests cover them).
OVER_THE_WIRE = [n for n in HOSTILE_NUMBERS if "\n" not in n and "\r" not in n]


@pytest.mark.parametrize("number", OVER_THE_WIRE + WITHHELD_NUMBERS)
def test_hostile_caller_ids_are_recorded_withheld_and_never_dialed(serve_once, redis_state, number):
    """inbound with the caller ID, then *69: never a TF_DIAL, never an AGI
    command carrying the caller's data."""
    callerid = number
    port = serve_once.port

    async def sessions():
        inbound = await call("127.0.0.1", port, "inbound", ["1001"], callerid=callerid,
                             calleridname=callerid[:40] or "x", timeout=5)
        back = await call("127.0.0.1", port, "callreturn", ["1001"], Script(wait_digit="1"), timeout=10)
        return inbound, back

    inbound, back = run(sessions())
    assert inbound.status == "OK"
    record = redis_state.hgetall(KEYS.last_caller("1001"))
    assert record["withheld"] == "1" and record["number"] == ""
    assert back.status == "REFUSED" and "TF_DIAL" not in back.variables
    assert back.said == []
    if number in HOSTILE_NUMBERS and len(callerid.strip()) > 3:
        for command in inbound.commands + back.commands:
            assert callerid.strip() not in command.line


@pytest.mark.parametrize("dialed", [n for n in OVER_THE_WIRE if not n.startswith("*67")]
                         + ["5552345678,1000", "*67", "*67*67", "*67+", "5552345678&5552345679"])
def test_hostile_dialed_digits_are_refused(serve_once, dialed):
    result = run(call("127.0.0.1", serve_once.port, "outbound", ["1000", dialed], timeout=5))
    assert result.status == "REFUSED" and "TF_DIAL" not in result.variables
    assert all(name != "CALLERID(pres)" for name, _ in result.sets)
    if len(dialed) > 3:
        assert all(dialed not in c.line for c in result.commands)
