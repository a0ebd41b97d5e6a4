"""``telefeatures-agi``: the classic (stdin/stdout) AGI entry point as a real process."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.support.asterisk_peer import TRYING, CallResult, Script, converse, header_bytes, usage_block
from telefeatures.state.schema import CIDBLOCK_ON
from tests.support.redis_server import TF_KEYS

TELEFEATURES_AGI = str(Path(sys.executable).parent / "telefeatures-agi")


def classic_header(route: str, args=(), **fields) -> bytes:
    """The header Asterisk gives an AGI() script: no agi_network lines, the
    script name as agi_request, the route and extension as arguments."""
    return header_bytes(route, [route, *args], network=None, network_script=None,
                        request="telefeatures-agi", **fields)


async def run_classic(route: str, args=(), script: Script | None = None, *, redis_url: str,
                      env: dict | None = None, **fields) -> tuple[CallResult, int, str]:
    full_env = {**os.environ, "TELEFEATURES_REDIS_URL": redis_url, **(env or {})}
    proc = await asyncio.create_subprocess_exec(
        TELEFEATURES_AGI, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=full_env,
    )
    try:
        result = await converse(proc.stdout, proc.stdin, classic_header(route, args, **fields), script, timeout=20)
        async with asyncio.timeout(20):
            err = await proc.stderr.read()
            code = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return result, code, err.decode(errors="replace")


async def test_cidblock_on_then_outbound_withholds(redis_url, redis_sync):
    result, code, err = await run_classic("cidblock/on", ["1000"], redis_url=redis_url)
    assert code == 0, err
    assert result.prompts == ["activated"]
    assert result.variables == {"TF_STATUS": "OK"}
    assert redis_sync.get(TF_KEYS.cidblock("1000")) == "1"
    assert "route=cidblock/on ext=1000 status=OK" in err

    result, code, err = await run_classic("outbound", ["1000", "5551234567"], redis_url=redis_url)
    assert code == 0, err
    assert result.sets == [("CALLERID(pres)", "prohib"), ("TF_DIAL", "5551234567"), ("TF_STATUS", "OK")]
    # exactly the four words Asterisk needs for SET VARIABLE
    assert result.commands[0].line == 'SET VARIABLE "CALLERID(pres)" "prohib"'

    result, code, _ = await run_classic("cidblock/off", ["1000"], redis_url=redis_url)
    result, code, _ = await run_classic("outbound", ["1000", "*675551234567"], redis_url=redis_url)
    assert result.variables["CALLERID(pres)"] == "prohib"
    assert result.variables["TF_DIAL"] == "5551234567"
    result, code, _ = await run_classic("outbound", ["1000", "5551234567"], redis_url=redis_url)
    assert result.variables["CALLERID(pres)"] == "allowed"


async def test_inbound_and_callreturn(redis_url):
    result, code, err = await run_classic("inbound", ["1000"], redis_url=redis_url, callerid="2125551234")
    assert code == 0 and result.variables == {"TF_INBOUND": "RING", "TF_STATUS": "OK"}, err
    result, code, err = await run_classic("callreturn", ["1000"], Script(wait_digit="1"), redis_url=redis_url)
    assert code == 0, err
    assert result.variables["TF_DIAL"] == "12125551234"
    assert result.said == ["2125551234"]


async def test_extension_from_channel_name(redis_url, redis_sync):
    result, code, _ = await run_classic("cidblock/on", [], redis_url=redis_url, channel="PJSIP/1001-0000001a")
    assert code == 0 and result.status == "OK"
    assert redis_sync.get(TF_KEYS.cidblock("1001")) == "1"


async def test_usage_block_does_not_desync(redis_url):
    result, code, err = await run_classic("outbound", ["1000", "5551234567"],
                                          Script(replies={1: usage_block("SET VARIABLE")}), redis_url=redis_url)
    assert len(result.commands) == 1  # nothing sent after the rejection
    assert result.closed_by_server
    assert code == 1
    assert "520" in err and "SET VARIABLE" in err
    assert "ProtocolError" not in err and "Traceback" not in err


async def test_hangup_and_trying_lines_do_not_desync(redis_url):
    script = Script(before={1: ["HANGUP"], 2: [TRYING, "HANGUP"], 3: [TRYING]})
    result, code, err = await run_classic("outbound", ["1000", "5551234567"], script, redis_url=redis_url)
    assert code == 0, err
    assert result.sets == [("CALLERID(pres)", "allowed"), ("TF_DIAL", "5551234567"), ("TF_STATUS", "OK")]


async def test_hangup_then_511(redis_url, redis_sync):
    redis_sync.set(TF_KEYS.cidblock("1000"), CIDBLOCK_ON)
    result, code, err = await run_classic("cidblock/status", ["1000"], Script(hangup_after=1), redis_url=redis_url)
    assert code == 0, err
    assert result.verbs == ["SET VARIABLE", "STREAM FILE"]
    assert "status=HANGUP" in err


async def test_stdin_closed_mid_session(redis_url):
    result, code, err = await run_classic("callreturn", ["1000"], Script(close_at=1), redis_url=redis_url)
    assert result.closed_by_peer
    assert code == 0, err
    assert "status=HANGUP" in err


async def test_unknown_route(redis_url):
    result, code, _ = await run_classic("nosuch", ["1000"], redis_url=redis_url)
    assert code == 0
    assert result.variables == {"TF_REASON": "unknown-route", "TF_STATUS": "ERROR"}


async def test_redis_down(closed_port):
    result, code, err = await run_classic("outbound", ["1000", "5551234567"], redis_url=closed_port.url)
    assert code == 0, err
    assert result.variables == {"CALLERID(pres)": "prohib", "TF_DIAL": "5551234567", "TF_REASON": "state-error",
                                "TF_STATUS": "ERROR"}


async def test_bad_settings(redis_url):
    result, code, err = await run_classic("outbound", ["1000", "5551234567"], redis_url="http://127.0.0.1:1")
    assert code == 1
    assert "redis_url" in err
    assert result.commands == []


@pytest.mark.parametrize("locale", ["C", "C.UTF-8"])
async def test_invalid_utf8_in_caller_name(redis_url, redis_sync, locale):
    env = {"LC_ALL": locale, "LANG": locale}
    env.pop("PYTHONIOENCODING", None)
    result, code, err = await run_classic("inbound", ["1000"], redis_url=redis_url, env=env,
                                          callerid="2125551234", calleridname=b"\xff\xfeBob")
    assert code == 0, err
    assert result.variables == {"TF_INBOUND": "RING", "TF_STATUS": "OK"}
    assert redis_sync.hget(TF_KEYS.last_caller("1000"), "number") == "2125551234"


async def test_invalid_utf8_with_a_strict_utf8_locale(redis_url, redis_sync):
    # e.g. Asterisk started with LANG=en_US.UTF-8: Python's stdin is then strict
    env = {"PYTHONIOENCODING": "utf-8:strict"}
    result, code, err = await run_classic("inbound", ["1000"], redis_url=redis_url, env=env,
                                          callerid="2125551234", calleridname=b"\xff\xfeBob")
    assert code == 0, err
    assert result.variables == {"TF_INBOUND": "RING", "TF_STATUS": "OK"}
    assert redis_sync.hget(TF_KEYS.last_caller("1000"), "number") == "2125551234"
    # and an invalid reply line does not kill it either
    result, code, err = await run_classic("outbound", ["1000", "5551234567"],
                                          Script(replies={1: ["200 result=1 (\udcff)"]}), redis_url=redis_url,
                                          env=env)
    assert code == 0, err


@pytest.mark.parametrize("garbage", ["garbage", "200 result=1 junk", "agi_network: yes"])
async def test_garbage_reply_ends_cleanly(redis_url, garbage):
    result, code, err = await run_classic("outbound", ["1000", "5551234567"], Script(replies={1: [garbage]}),
                                          redis_url=redis_url)
    assert len(result.commands) == 1
    assert code == 1
    assert "Traceback" not in err
    assert "protocol error" in err.lower()


# --------------------------------------------------------------------------- usage (bug 9) and one grammar (move 2)


async def run_agi_process(*args: str, stdin=None, timeout: float = 20) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        TELEFEATURES_AGI, *args, stdin=stdin if stdin is not None else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode, out.decode(), err.decode()


async def test_help_prints_usage():
    code, out, err = await run_agi_process("--help")
    assert code == 0, err
    assert out.startswith("usage: AGI(telefeatures-agi,<route>")
    assert "outbound" in out and "cidblock/status" in out
    assert "protocol error" not in err


async def test_run_on_a_terminal_prints_usage():
    import pty

    controller, terminal = pty.openpty()
    try:
        code, out, err = await run_agi_process(stdin=terminal, timeout=10)
    finally:
        os.close(terminal)
        os.close(controller)
    assert code == 2
    assert err.startswith("usage: AGI(telefeatures-agi,<route>")


async def test_header_limits_are_those_of_fastagi(redis_url, redis_sync):
    # A header line longer than Asterisk's 8 KB buffer is not Asterisk: refused
    # as the FastAGI server refuses it, before any command or Redis write.
    result, code, err = await run_classic("inbound", ["1000"], redis_url=redis_url, callerid="5" * 9000)
    assert code == 1
    assert "protocol error in the AGI header: line longer than 8192 bytes" in err
    assert result.commands == []
    assert redis_sync.keys("*") == []


async def test_header_values_are_kept_as_sent(redis_url, redis_sync):
    # FastAGI keeps everything after the separating space; so does classic now
    # (pyst2's reader stripped it): a number with a trailing blank is not dialable.
    result, code, err = await run_classic("inbound", ["1000"], redis_url=redis_url, callerid="2125551234 ")
    assert code == 0, err
    assert redis_sync.hget(TF_KEYS.last_caller("1000"), "withheld") == "1"


async def test_tenant_from_the_route_argument(redis_url, redis_sync):
    """The dialplan passes ``<route>?tenant=${TF_TENANT}`` as the first argument."""
    result, code, err = await run_classic("cidblock/on?tenant=acme", ["1000"], redis_url=redis_url)
    assert code == 0 and result.variables == {"TF_STATUS": "OK"}, err
    assert redis_sync.get(TF_KEYS.cidblock("1000", "acme")) == "1"
    assert "route=cidblock/on ext=1000 status=OK reason=- tenant=acme (classic)" in err
    assert redis_sync.get(TF_KEYS.cidblock("1000")) is None
    result, code, _ = await run_classic("outbound?tenant=", ["1000", "5551234567"], redis_url=redis_url)
    assert code == 0 and result.variables["CALLERID(pres)"] == "allowed"  # empty: no tenant
    result, code, _ = await run_classic("outbound?tenant=acme", ["1000", "5551234567"], redis_url=redis_url)
    assert code == 0 and result.variables["CALLERID(pres)"] == "prohib"
