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
    reconnects by itself, and persisted state (AOF) survives a SIGKILL."""
    redis_state.set(KEYS.cidblock("2000"), CIDBLOCK_ON)
    server = serve()
    results: list[tuple[float, str, object]] = []
    phases = {}

    async def worker(ext: str, stop_at: float):
        loop = asyncio.get_running_loop()
        while loop.time() < stop_at:
            r = await call("127.0.0.1", server.port, "outbound", [ext, OUTSIDE], timeout=5)
            results.append((loop.time(), ext, r))

    async def feature_code_during_outage():
        r = await call("127.0.0.1", server.port, "cidblock/on", ["3000"], timeout=5)
        phases["feature"] = r

    async def scenario():
        loop = asyncio.get_running_loop()
        start = loop.time()
        stop_at = start + 6.0
        workers = [asyncio.create_task(worker(ext, stop_at)) for ext in ("1000", "2000") * 10]
        await asyncio.sleep(1.5)
        phases["killed"] = loop.time()
        await asyncio.to_thread(redis_server.kill)
        await asyncio.sleep(0.5)
        await feature_code_during_outage()
        await asyncio.sleep(1.0)
        phases["restarting"] = loop.time()
        await asyncio.to_thread(redis_server.start)
        phases["restarted"] = loop.time()
        await asyncio.gather(*workers)

    run(scenario())
    outage = [r for t, _, r in results if phases["killed"] + 0.2 < t < phases["restarting"]]
    after = [(ext, r) for t, ext, r in results if t > phases["restarted"] + 1.0]
    print(f"\nsessions: {len(results)} total, {len(outage)} during the outage, {len(after)} after restart")
    # Every session completed with a number to dial and a presentation.
    for _, _, r in results:
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
