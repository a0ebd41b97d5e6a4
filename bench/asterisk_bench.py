"""The outbound policy through a real Asterisk: FastAGI + Redis against the pure-dialplan AstDB recipe.

    python bench/asterisk_bench.py                  # 3 rounds x 2,000 calls per path
    python bench/asterisk_bench.py --calls 500 --rounds 1 --servers tf

Starts a Debian ``redis-server``, ``telefeatures serve`` (as shipped, its
session log to a file), the floor server (bench/servers/floor.py) and a
test-bed Asterisk 22 (tests/testbed/asterisk.py), then originates calls over
AMI: ``Local/5552345678@bench-outbound`` runs the shipped dialplan's tf-agi
subroutine, i.e. the outbound policy through a FastAGI server keyed by
CALLERID(num) (the TF_AGI global is pointed at each server in turn);
``Local/5552345678@legacy-outbound`` runs the old AstDB recipe. Caller IDs
alternate between 1000 (not blocked) and 2000 (blocked in Redis and AstDB).

Each call is a synchronous AMI Originate on one of ``--window`` AMI sessions
(events off), so at most that many calls are in progress; the Local channel
is never answered, so Originate answers "failed" once the dialplan has run
and hung up: that is the completion. Rounds alternate between the paths
after a warm-up of each. Reported per path: calls/s, the asterisk process's
CPU time (utime+stime from /proc) per call, and for FastAGI paths also the
server's and Redis's. telefeatures' session log must show one OK outbound
session per call it served. Asterisk is always stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for path in (str(ROOT), str(BENCH)):
    if path not in sys.path:
        sys.path.insert(0, path)

import redis  # noqa: E402

from agi_bench import KEY_PREFIX, Process, free_port, machine, proc_cpu, server_command, start_redis  # noqa: E402
from telefeatures.ami import AmiClient, AmiSettings  # noqa: E402
from telefeatures.state.schema import CIDBLOCK_ON, KeySchema  # noqa: E402

CALLERS = ("1000", "2000")  # 2000 has caller-ID blocking on
FASTAGI_CONTEXT = "bench-outbound"
DIALPLAN_CONTEXT = "legacy-outbound"
SERVER_NAMES = {"tf": "telefeatures serve", "floor": "bench/servers/floor.py"}


@dataclass
class Result:
    path: str  # "fastagi:tf", "fastagi:floor" or "dialplan"
    calls: int = 0
    wall: float = 0.0
    failed: int = 0
    asterisk_cpu: float = 0.0
    server_cpu: float = 0.0
    redis_cpu: float = 0.0
    messages: dict = field(default_factory=dict)

    @property
    def context(self) -> str:
        return DIALPLAN_CONTEXT if self.path == "dialplan" else FASTAGI_CONTEXT

    @property
    def server(self) -> str | None:
        return self.path.split(":", 1)[1] if self.path.startswith("fastagi:") else None


async def originate_many(clients: list[AmiClient], context: str, calls: int, number: str) -> tuple[int, dict]:
    """``calls`` synchronous originates spread over the AMI sessions; returns
    (failures, unexpected messages). "Originate failed" is the expected answer
    for a Local channel whose dialplan ran and hung up without answering."""
    nxt = 0
    failed = 0
    messages: dict[str, int] = {}

    async def worker(ami: AmiClient) -> None:
        nonlocal nxt, failed
        while nxt < calls:
            n = nxt
            nxt += 1
            result = await ami.send({
                "Action": "Originate", "Channel": f"Local/{number}@{context}",
                "CallerID": f'"Bench" <{CALLERS[n % len(CALLERS)]}>', "Application": "Wait", "Data": "0",
                "Async": "false", "Timeout": "10000",
            })
            if result.message != "Originate failed":
                failed += 1
                messages[result.message] = messages.get(result.message, 0) + 1

    await asyncio.gather(*(worker(c) for c in clients))
    return failed, messages


def session_lines(log_path: Path) -> int:
    text = log_path.read_text(errors="replace")
    return sum(1 for line in text.splitlines() if " route=outbound " in line and " status=OK " in line)


async def run(opts, ast, servers: dict[str, Process], redis_proc: Process) -> list[Result]:
    settings = AmiSettings(host="127.0.0.1", port=ast.ports.ami, username=ast.ami_user, secret=ast.ami_secret,
                           timeout=30)
    clients = [AmiClient(settings) for _ in range(opts.window)]
    for client in clients:
        await client.connect()
    asterisk = ast.process.pid
    paths = [f"fastagi:{name}" for name in servers] + (["dialplan"] if opts.dialplan else [])
    results = {path: Result(path) for path in paths}
    tf_calls = 0

    async def point_at(r: Result) -> None:
        # the shipped dialplan reaches the server through the TF_AGI global
        if r.server is not None:
            url = f"agi://127.0.0.1:{servers[r.server].port}"
            answer = await clients[0].send({"Action": "Setvar", "Variable": "TF_AGI", "Value": url})
            if not answer.ok:
                raise SystemExit(f"cannot set TF_AGI: {answer.message}")

    try:
        for r in results.values():  # warm-up
            await point_at(r)
            failed, messages = await originate_many(clients, r.context, opts.warmup, opts.number)
            if failed:
                raise SystemExit(f"warm-up of {r.path} failed: {messages}")
            tf_calls += opts.warmup if r.server == "tf" else 0
        for _ in range(opts.rounds):
            for r in results.values():
                await point_at(r)
                server = servers.get(r.server)
                a0, k0 = proc_cpu(asterisk), redis_proc.cpu()
                s0 = server.cpu() if server else 0.0
                started = time.perf_counter()
                failed, messages = await originate_many(clients, r.context, opts.calls, opts.number)
                wall = time.perf_counter() - started
                a1, k1 = proc_cpu(asterisk), redis_proc.cpu()
                s1 = server.cpu() if server else 0.0
                r.wall += wall
                r.calls += opts.calls
                r.failed += failed
                for key, count in messages.items():
                    r.messages[key] = r.messages.get(key, 0) + count
                r.asterisk_cpu += a1 - a0
                if server:
                    r.server_cpu += s1 - s0
                    r.redis_cpu += k1 - k0
                tf_calls += opts.calls if r.server == "tf" else 0
                print(f"# {r.path:14} {opts.calls} calls {opts.calls / wall:7.0f}/s "
                      f"asterisk {(a1 - a0) / opts.calls * 1e6:6.0f} us/call", file=sys.stderr, flush=True)
    finally:
        for client in clients:
            client.close()
    await asyncio.sleep(0.2)
    if "tf" in servers:
        seen = session_lines(servers["tf"].log_path)
        if seen != tf_calls:
            r = results["fastagi:tf"]
            r.messages[f"{seen} OK session log lines for {tf_calls} calls"] = abs(tf_calls - seen)
            r.failed += abs(tf_calls - seen)
    return list(results.values())


def report(results: list[Result], opts, info: str) -> str:
    out = [f"Machine: {machine()}", info, f"Load average (1 min) after the run: {os.getloadavg()[0]:.2f}",
           f"{opts.rounds} rounds x {opts.calls} calls per path (after {opts.warmup} warm-up), "
           f"{opts.window} calls in progress at most; Asterisk logs "
           + ("verbose(5) to a file (--verbose-log)." if opts.verbose_log else "notices and errors only, as in production."),
           "",
           "| path | calls | calls/s | failed | asterisk CPU us/call | FastAGI server CPU us/call "
           "| redis CPU us/call | total CPU us/call |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        n = max(r.calls, 1)
        total = r.asterisk_cpu + r.server_cpu + r.redis_cpu
        label = f"{r.context} via {SERVER_NAMES[r.server]}" if r.server else f"{r.context} (AstDB dialplan)"
        out.append(f"| {label} | {r.calls} | {r.calls / r.wall:.0f} | {r.failed} | {r.asterisk_cpu / n * 1e6:.0f} "
                   f"| {r.server_cpu / n * 1e6:.0f} | {r.redis_cpu / n * 1e6:.0f} | {total / n * 1e6:.0f} |")
    by = {r.path: r for r in results}
    d = by.get("dialplan")
    if d is not None:
        out.append("")
        for r in results:
            if r.server is None:
                continue
            rate = (r.calls / r.wall) / (d.calls / d.wall)
            verdict = f" (target >= 0.8: {'met' if rate >= 0.8 else 'MISSED'})" if r.server == "tf" else ""
            out.append(f"{SERVER_NAMES[r.server]} / pure dialplan: calls/s {rate:.2f}x{verdict}, Asterisk CPU "
                       f"per call {(r.asterisk_cpu / r.calls) / (d.asterisk_cpu / d.calls):.2f}x, total CPU per "
                       f"call {((r.asterisk_cpu + r.server_cpu + r.redis_cpu) / r.calls) / (d.asterisk_cpu / d.calls):.2f}x")
    for r in results:
        if r.messages:
            out.append(f"unexpected answers on {r.path}: {r.messages}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Outbound policy through a real Asterisk: FastAGI vs pure dialplan.")
    p.add_argument("--calls", type=int, default=2000, help="measured calls per path and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--window", type=int, default=16, help="calls in progress at most (one AMI session each)")
    p.add_argument("--number", default="5552345678", help="the dialed number")
    p.add_argument("--event-loop", choices=["asyncio", "uvloop"], default="uvloop",
                   help="the FastAGI servers' event loop")
    p.add_argument("--servers", default="tf,floor",
                   help="FastAGI servers to run the bench-outbound path through: tf (telefeatures serve) "
                   "and/or floor (bench/servers/floor.py)")
    p.add_argument("--no-dialplan", dest="dialplan", action="store_false", help="skip the legacy-outbound path")
    p.add_argument("--verbose-log", action="store_true",
                   help="keep the test bed's verbose(5) file log (every dialplan step): costs Asterisk CPU per step")
    p.add_argument("--py-spy", metavar="FILE", help="run telefeatures serve under py-spy record (collapsed "
                   "stacks to FILE; its CPU figures then include the sampling cost)")
    opts = p.parse_args(argv)
    names = [x for x in opts.servers.split(",") if x]
    for name in names:
        if name not in SERVER_NAMES:
            p.error(f"unknown server {name!r}")
    from tests.testbed.asterisk import prepare, remove_run_dir

    with tempfile.TemporaryDirectory(prefix="asterisk-bench-") as tmp:
        workdir = Path(tmp)
        redis_proc, url = start_redis(workdir)
        servers: dict[str, Process] = {}
        try:
            with redis.Redis.from_url(url) as client:
                client.set(KeySchema(KEY_PREFIX).cidblock("2000"), CIDBLOCK_ON)
            for name in names:
                port = free_port()
                cmd = server_command(f"{name}-{opts.event_loop}", port, url)
                if opts.py_spy and name == "tf":
                    cmd = [shutil.which("py-spy") or "py-spy", "record", "--rate", "250", "--format", "raw", "-o",
                           opts.py_spy, "--", *cmd]
                servers[name] = Process(f"{name}-{opts.event_loop}", cmd, port, workdir).start()
            first_port = next(iter(servers.values())).port if servers else free_port()
            ast = prepare(first_port, {}, quiet=not opts.verbose_log)
            try:
                ast.start()
                ast.cli("database put CIDBlock 2000 1")
                version = ast.cli("core show version").strip().split("\n")[0]
                info = f"{version} ({ast.source}); FastAGI servers on --event-loop {opts.event_loop}"
                results = asyncio.run(run(opts, ast, servers, redis_proc))
            finally:
                with contextlib.suppress(Exception):
                    ast.stop()
                remove_run_dir(ast)
        finally:
            for proc in servers.values():
                proc.stop()
            redis_proc.stop()
    print(report(results, opts, info))
    return 1 if any(r.failed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
