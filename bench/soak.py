"""Soak: many mixed FastAGI sessions against ``telefeatures serve`` with Redis
killed and restarted in between; reports errors, outcomes and memory.

    python bench/soak.py                      # 100,000 sessions, 4 Redis restarts
    python bench/soak.py --sessions 20000 --restarts 2 --concurrency 200

Every session plays Asterisk (tests/support/asterisk_peer.py) on one of the
routes, in turn: outbound (blocked and not), *67, cidblock on/off/status,
inbound, callreturn. Redis (Debian redis-server, AOF fsync always) is SIGKILLed
and restarted ``--restarts`` times, evenly spread, each outage ``--outage``
seconds long. A session is an *error* if it did not end the way its route
promises even in an outage: outbound must always get TF_DIAL and a
presentation, every route must get a TF_STATUS, and nothing may hang. Sessions
answered with ``TF_STATUS=ERROR`` / ``state-error`` during an outage are the
designed behaviour and are counted as *degraded*, not as errors.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from telefeatures.state.schema import CIDBLOCK_ON, KeySchema, last_caller_hash  # noqa: E402
from tests.support.asterisk_peer import Script, call  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.redis_server import RedisProcess  # noqa: E402
from tests.testbed.services import KEY_PREFIX, FeatureServer  # noqa: E402

OUTSIDE = "5552345678"
MIX = [
    ("outbound", ["1000", OUTSIDE], None),  # not blocked
    ("outbound", ["2000", OUTSIDE], None),  # blocked (persisted before the first restart)
    ("outbound", ["1000", "*67" + OUTSIDE], None),
    ("cidblock/on", ["3000"], None),
    ("cidblock/off", ["3000"], None),
    ("cidblock/status", ["2000"], None),
    ("inbound", ["4000"], None),
    ("callreturn", ["4000"], Script(wait_digit="1")),
]


def verdict(route: str, args: list[str], result) -> str:
    """'ok', 'degraded' (designed outage answer) or an error description."""
    v = result.variables
    status = v.get("TF_STATUS")
    if status is None:
        return "error: no TF_STATUS"
    if route == "outbound":
        if v.get("TF_DIAL") != OUTSIDE:
            return "error: outbound without TF_DIAL"
        if v.get("CALLERID(pres)") not in ("prohib", "allowed"):
            return "error: outbound without a presentation"
        if status == "OK":
            withheld = args[0] == "2000" or args[1].startswith("*67")
            expected = "prohib" if withheld else "allowed"
            return "ok" if v["CALLERID(pres)"] == expected else f"error: pres {v['CALLERID(pres)']} != {expected}"
    if status == "ERROR" and v.get("TF_REASON") == "state-error":
        return "degraded"
    if status in ("OK", "REFUSED"):
        return "ok"
    return f"error: {status} {v.get('TF_REASON')}"


async def soak(opts) -> int:
    work = Path(tempfile.mkdtemp(prefix="tf-soak-"))
    redis_server = RedisProcess(work / "redis", port=free_port(), aof=True).start()
    setup = redis_server.client()
    keys = KeySchema(KEY_PREFIX)
    setup.set(keys.cidblock("2000"), CIDBLOCK_ON)
    setup.hset(keys.last_caller("4000"), mapping=last_caller_hash(
        number="5551234567", name="Pat", presentation=0, time=1, withheld=False))
    setup.close()
    server = FeatureServer(work / "server", redis_server.url, args=["--event-loop", opts.event_loop])
    server.start()
    counts: collections.Counter = collections.Counter()
    errors: collections.Counter = collections.Counter()
    next_session = 0
    done = 0
    outages = []
    try:
        # warm-up, then the memory baseline
        for i in range(200):
            route, args, script = MIX[i % len(MIX)]
            await call("127.0.0.1", server.port, route, args, script, timeout=10)
        rss0, fds0 = server.rss_bytes(), server.open_fds()
        started = time.monotonic()
        restart_at = [opts.sessions * (k + 1) // (opts.restarts + 1) for k in range(opts.restarts)]

        async def worker():
            nonlocal next_session, done
            while next_session < opts.sessions:
                i = next_session
                next_session += 1
                route, args, script = MIX[i % len(MIX)]
                try:
                    result = await call("127.0.0.1", server.port, route, args, script, timeout=opts.timeout)
                    outcome = verdict(route, args, result)
                except Exception as exc:  # noqa: BLE001 - a hang or a broken session is what we count
                    outcome = f"error: {type(exc).__name__}"
                if outcome.startswith("error"):
                    errors[f"{route}: {outcome}"] += 1
                counts[(route, outcome.split(":")[0])] += 1
                done += 1

        async def chaos():
            for at in restart_at:
                while done < at:
                    await asyncio.sleep(0.05)
                t0 = time.monotonic()
                await asyncio.to_thread(redis_server.kill)
                await asyncio.sleep(opts.outage)
                await asyncio.to_thread(redis_server.start)
                outages.append(time.monotonic() - t0)

        await asyncio.gather(chaos(), *(worker() for _ in range(opts.concurrency)))
        elapsed = time.monotonic() - started
        rss1, fds1 = server.rss_bytes(), server.open_fds()
        alive = server.process.poll() is None
        tracebacks = server.log_text().count("Traceback")
        persisted = redis_server.client().get(keys.cidblock("2000")) == CIDBLOCK_ON
    finally:
        server.stop()
        redis_server.stop()

    total_errors = sum(errors.values())
    degraded = sum(n for (_, kind), n in counts.items() if kind == "degraded")
    print(f"soak: {opts.sessions} mixed sessions, concurrency {opts.concurrency}, "
          f"{len(outages)} Redis SIGKILL+restart(s) of {opts.outage:.1f}s, {elapsed:.1f}s "
          f"({opts.sessions / elapsed:.0f} sessions/s)")
    print()
    print("| route | ok | degraded (state-error, designed) | errors |")
    print("|---|---:|---:|---:|")
    for route in dict.fromkeys(r for r, _, _ in MIX):
        print(f"| {route} | {counts[(route, 'ok')]} | {counts[(route, 'degraded')]} | {counts[(route, 'error')]} |")
    print()
    print(f"errors: {total_errors}; degraded during outages: {degraded}")
    for what, n in errors.most_common(10):
        print(f"  {n} x {what}")
    print(f"server RSS {rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MiB (+{(rss1 - rss0) / 2**20:.1f}); "
          f"open fds {fds0} -> {fds1}; alive: {alive}; tracebacks in its log: {tracebacks}")
    print(f"blocked extension still blocked after {len(outages)} SIGKILL(s) (AOF): {persisted}")
    return 0 if total_errors == 0 and alive and tracebacks == 0 and persisted else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=100_000)
    p.add_argument("--restarts", type=int, default=4)
    p.add_argument("--outage", type=float, default=1.0, help="seconds Redis stays down each time")
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument("--timeout", type=float, default=10.0, help="a session longer than this is an error (a hang)")
    p.add_argument("--event-loop", choices=["asyncio", "uvloop"], default="uvloop")
    return asyncio.run(soak(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
