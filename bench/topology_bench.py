"""CPU per AGI session on each Redis topology, in the same run:

    python bench/topology_bench.py              # 3 rounds of 5,000 sessions per topology
    python bench/topology_bench.py --quick      # a few hundred (CI smoke)

Topologies, all real redis-server processes on 127.0.0.1: ``single`` (one
redis-server, redis://), ``sentinel`` (1 master + 2 replicas + 3 sentinels,
redis+sentinel://, pipelined connection to the master) and ``cluster``
(6 nodes, redis+cluster://, redis-py's cluster client). One ``telefeatures
serve`` per topology (``--event-loop asyncio``); this process plays Asterisk
with the scripted peer of the test suite. Rounds are interleaved so every
topology sees the same machine load; the sessions are a mix of the outbound
policy (most calls) and *81/*82.

Server CPU per session comes from the server process's utime+stime
(/proc/<pid>/stat) before and after each measured batch, after a warm-up
batch; the Redis side is the sum over that topology's redis-server processes
(replicas and sentinels included). Exit status 1 if any session failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.asterisk_peer import call  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.redis_server import RedisProcess  # noqa: E402
from tests.support.redis_topologies import ClusterSet, SentinelSet  # noqa: E402
from tests.testbed.services import FeatureServer  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TOPOLOGIES = ("single", "sentinel", "cluster")


def proc_cpu(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Topology:
    def __init__(self, name: str, workdir: Path):
        self.name = name
        if name == "single":
            self.redis = RedisProcess(workdir / name, port=free_port()).start()
            self.url = self.redis.url
            self.pids = [self.redis.proc.pid]
        else:
            self.redis = (SentinelSet if name == "sentinel" else ClusterSet)(workdir / name).start()
            self.url = self.redis.url
            nodes = self.redis.data + self.redis.sentinels if name == "sentinel" else self.redis.nodes
            self.pids = [n.proc.pid for n in nodes]
        self.server = FeatureServer(workdir / f"server-{name}", self.url,
                                    ["--event-loop", "asyncio", "--log-level", "WARNING"])
        self.server.start()

    def redis_cpu(self) -> float:
        return sum(proc_cpu(pid) for pid in self.pids)

    def stop(self) -> None:
        self.server.stop()
        self.redis.stop()


async def batch(port: int, sessions: int, concurrency: int, offset: int) -> int:
    """``sessions`` calls, ``concurrency`` at once; returns how many failed.
    Four in five are the outbound policy, the rest *81 and *82 in turn."""
    failed = 0
    queue = iter(range(sessions))

    async def worker() -> None:
        nonlocal failed
        for n in queue:
            ext = str(10000 + (offset + n) % 5000)
            if n % 5 == 4:
                route, args = ("cidblock/on" if n % 10 == 4 else "cidblock/off"), [ext]
            else:
                route, args = "outbound", [ext, "2125551234"]
            result = await call("127.0.0.1", port, route, args, timeout=10)
            if result.variables.get("TF_STATUS") != "OK":
                failed += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failed


async def measure(topologies: list[Topology], sessions: int, warmup: int, rounds: int,
                  concurrency: int) -> dict[str, dict]:
    results = {t.name: {"server": [], "redis": [], "rate": [], "errors": 0} for t in topologies}
    for t in topologies:
        results[t.name]["errors"] += await batch(t.server.port, warmup, concurrency, 0)
    for r in range(rounds):
        for t in topologies:
            pid = t.server.process.pid
            s0, r0, w0 = proc_cpu(pid), t.redis_cpu(), time.perf_counter()
            results[t.name]["errors"] += await batch(t.server.port, sessions, concurrency, (r + 1) * sessions)
            s1, r1, w1 = proc_cpu(pid), t.redis_cpu(), time.perf_counter()
            results[t.name]["server"].append((s1 - s0) / sessions * 1e6)
            results[t.name]["redis"].append((r1 - r0) / sessions * 1e6)
            results[t.name]["rate"].append(sessions / (w1 - w0))
            print(f"# round {r + 1} {t.name}: {results[t.name]['server'][-1]:.0f} us server CPU/session",
                  file=sys.stderr, flush=True)
    return results


def report(results: dict[str, dict], sessions: int, rounds: int, concurrency: int) -> None:
    base = statistics.median(results["single"]["server"]) if "single" in results else None
    print(f"### CPU per session by Redis topology ({rounds} x {sessions} sessions, {concurrency} at once, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})\n")
    print("| topology | sessions/s | server CPU us/session (median; rounds) | vs single | "
          "Redis-side CPU us/session | errors |")
    print("|---|---|---|---|---|---|")
    for name, row in results.items():
        server = statistics.median(row["server"])
        ratio = f"{server / base:.2f}x" if base else "-"
        rounds_text = ", ".join(f"{v:.0f}" for v in row["server"])
        print(f"| {name} | {statistics.median(row['rate']):.0f} | {server:.0f} ({rounds_text}) | {ratio} | "
              f"{statistics.median(row['redis']):.0f} | {row['errors']} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a few hundred sessions per round (smoke test)")
    p.add_argument("--topologies", default=",".join(TOPOLOGIES))
    p.add_argument("--sessions", type=int, help="measured sessions per topology and round (default 5000)")
    p.add_argument("--warmup", type=int, help="unmeasured sessions first (default 1000)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 3)")
    p.add_argument("--concurrency", type=int, default=50)
    args = p.parse_args(argv)
    sessions = args.sessions or (200 if args.quick else 5000)
    warmup = args.warmup if args.warmup is not None else (50 if args.quick else 1000)
    rounds = args.rounds or (1 if args.quick else 3)
    names = [n for n in args.topologies.split(",") if n]
    unknown = set(names) - set(TOPOLOGIES)
    if unknown:
        p.error(f"unknown topology {sorted(unknown)}; use {', '.join(TOPOLOGIES)}")
    with tempfile.TemporaryDirectory(prefix="tf-topology-bench-") as tmp:
        topologies: list[Topology] = []
        try:
            for name in names:
                topologies.append(Topology(name, Path(tmp)))
            results = asyncio.run(measure(topologies, sessions, warmup, rounds, args.concurrency))
        finally:
            for t in topologies:
                t.stop()
    report(results, sessions, rounds, args.concurrency)
    return 1 if any(row["errors"] for row in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
