"""Faults: Redis dying under load, Asterisk hanging up mid-session again and
again, SIGTERM under load. Each test prints what it measured."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import urllib.request

from tests.hardening.checks import normal_session, run
from tests.support.asterisk_peer import Script, call, header_bytes, read_until_closed
from tests.support.ports import free_port
from tests.testbed.services import KEYS, wait_for
from telefeatures.state.schema import CIDBLOCK_ON

OUTSIDE = "5552345678"


def test_redis_killed_under_load_and_restarted(serve, redis_server, redis_state):
    """Sessions keep completing through the outage with the on_state_error
    presentation, feature codes answer with the error prompt, the server
    reconnects by itself, and persisted state (AOF) survives a SIGKILL.

    Each phase lasts until enough sessions have run in it, however slow the
    machine; a session belongs to the phase it started and ended in."""
    redis_state.set(KEYS.cidblock("2000"), CIDBLOCK_ON)
    server = serve()
    results: list[tuple[float, float, str, object]] = []  # (started, ended, extension, result)
    phases = {}
    enough = 21  # sessions in each phase

    async def worker(ext: str, stop: asyncio.Event):
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            r = await call("127.0.0.1", server.port, "outbound", [ext, OUTSIDE], timeout=5)
            results.append((started, loop.time(), ext, r))

    def within(after: float, before: float = float("inf")) -> list[tuple[str, object]]:
        return [(ext, r) for started, ended, ext, r in results if after < started and ended < before]

    async def until(predicate, what: str, timeout: float = 60.0):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            assert loop.time() < deadline, f"timed out after {timeout}s waiting for {what}"
            await asyncio.sleep(0.05)

    async def scenario():
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        workers = [asyncio.create_task(worker(ext, stop)) for ext in ("1000", "2000") * 10]
        try:
            await until(lambda: len(results) >= enough, "sessions before the outage")
            await asyncio.to_thread(redis_server.kill)
            phases["killed"] = loop.time()  # redis-server is gone: every session from now on meets the outage
            phases["feature"] = await call("127.0.0.1", server.port, "cidblock/on", ["3000"], timeout=5)
            await until(lambda: len(within(phases["killed"])) >= enough, "sessions during the outage")
            phases["restarting"] = loop.time()
            await asyncio.to_thread(redis_server.start)
            phases["restarted"] = loop.time()
            await until(lambda: len(within(phases["restarted"] + 1.0)) >= enough, "sessions after the restart")
        finally:
            stop.set()
            await asyncio.gather(*workers)

    run(scenario())
    outage = [r for _, r in within(phases["killed"], phases["restarting"])]
    after = within(phases["restarted"] + 1.0)
    print(f"\nsessions: {len(results)} total, {len(outage)} during the outage, {len(after)} after restart")
    # Every session completed with a number to dial and a presentation.
    for _, _, _, r in results:
        assert r.variables.get("TF_DIAL") == OUTSIDE, r.sets
        assert r.variables.get("CALLERID(pres)") in ("prohib", "allowed")
    assert len(outage) > 20
    for r in outage:  # withhold: privacy first
        assert r.status == "ERROR" and r.variables["TF_REASON"] == "state-error"
        assert r.variables["CALLERID(pres)"] == "prohib"
    assert phases["feature"].status == "ERROR" and phases["feature"].prompts[:1] == ["sorry"]
    # Reconnected without a restart, and the blocked extension is still blocked.
    assert len(after) > 20
    for ext, r in after:
        assert r.status == "OK"
        assert r.variables["CALLERID(pres)"] == ("prohib" if ext == "2000" else "allowed")
    assert server.process.poll() is None and "Traceback" not in server.log_text()


def _metric(port: int, name: str) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics")


def test_ten_thousand_hangups_mid_session_leak_nothing(serve):
    metrics_port = free_port()
    server = serve("--metrics", "--metrics-port", str(metrics_port))
    header = header_bytes("cidblock/status", ["1000"])
    scripts = [Script(close_at=1), Script(hangup_before=1), Script(hangup_after=1), Script(close_at=2),
               Script(hangup_before=2)]

    async def eof_after_header():
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(header)
        await writer.drain()
        writer.close()

    async def burst(n: int):
        sem = asyncio.Semaphore(50)

        async def one(i: int):
            async with sem:
                if i % 6 == 5:
                    await eof_after_header()
                else:
                    await call("127.0.0.1", server.port, "cidblock/status", ["1000"], scripts[i % 6], timeout=5)

        await asyncio.gather(*(one(i) for i in range(n)))

    run(burst(500))  # warm-up: imports, pools, allocator
    wait_for(lambda: _metric(metrics_port, "telefeatures_active_sessions") == 0, what="idle server")
    fds, rss = server.open_fds(), server.rss_bytes()
    started = time.monotonic()
    run(burst(10_000))
    elapsed = time.monotonic() - started
    wait_for(lambda: _metric(metrics_port, "telefeatures_active_sessions") == 0, timeout=10,
             what="every session to end")
    fds_after, rss_after = server.open_fds(), server.rss_bytes()
    print(f"\n10,000 hangups in {elapsed:.1f}s; fds {fds} -> {fds_after}; "
          f"RSS {rss / 2**20:.1f} -> {rss_after / 2**20:.1f} MiB")
    assert fds_after <= fds + 3
    assert rss_after - rss < 20 * 2**20
    run(normal_session(server.port))
    assert "Traceback" not in server.log_text()


def test_sigterm_under_load_finishes_in_flight_sessions(serve):
    metrics_port = free_port()
    server = serve("--metrics", "--metrics-port", str(metrics_port), env={"TELEFEATURES_SHUTDOWN_GRACE": "10"})
    slow = Script(delay={1: 3.0})  # Asterisk takes 3 s to answer the first command

    async def scenario():
        sessions = [asyncio.create_task(call("127.0.0.1", server.port, "outbound", ["1000", OUTSIDE], slow,
                                             timeout=15)) for _ in range(100)]
        # SIGTERM only once all 100 are in flight, waiting for Asterisk
        async with asyncio.timeout(2.5):
            while await asyncio.to_thread(_metric, metrics_port, "telefeatures_active_sessions") < 100:
                await asyncio.sleep(0.02)
        sent = time.monotonic()
        os.kill(server.process.pid, signal.SIGTERM)
        await asyncio.sleep(0.3)
        refused = False
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            refused = await read_until_closed(reader, 3) == b""
            writer.close()
        except OSError:
            refused = True
        results = await asyncio.gather(*sessions)
        return sent, refused, results

    sent, refused, results = run(scenario())
    code = server.process.wait(timeout=15)
    took = time.monotonic() - sent
    print(f"\nSIGTERM with 100 sessions in flight: exit {code} after {took:.1f}s")
    assert refused, "a new connection was served after SIGTERM"
    assert [r.status for r in results] == ["OK"] * 100
    assert all(r.variables["TF_DIAL"] == OUTSIDE for r in results)
    assert code == 0 and took < 10
