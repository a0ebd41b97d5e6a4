"""FastAGI load generator: plays Asterisk against telefeatures and comparison servers.

    python bench/agi_bench.py                 # the whole comparison (a few minutes)
    python bench/agi_bench.py --quick         # a few hundred sessions per run (CI smoke)
    python bench/agi_bench.py --servers tf-uvloop,floor-asyncio --sessions 20000 --concurrency 100

Everything runs on 127.0.0.1: a Debian ``redis-server`` on a free port, each
server as its own process, and this process as Asterisk. Every session sends the
header block Asterisk 22 sends and answers each command as res_agi.c would
(``200 result=1`` for SET VARIABLE, ``200 result=0 endpos=N`` for STREAM FILE,
the key's ASCII code for WAIT FOR DIGIT...). A session counts as an error unless
the server set exactly the expected variables and closed the connection.

Servers (``--servers``):

- ``tf-asyncio`` / ``tf-uvloop``: ``telefeatures --redis-url ... serve`` exactly
  as shipped (logging to a file, metrics, limits and checks on), with
  ``--event-loop asyncio`` / ``uvloop``;
- ``floor-asyncio`` / ``floor-uvloop``: bench/servers/floor.py, the least an
  asyncio server can do for the outbound policy (same Redis client, same GET,
  same three commands);
- ``panoramisk``: panoramisk's ``fast_agi.Application`` (bench/servers/panoramisk_server.py);
- ``threaded``: socketserver.ThreadingTCPServer with synchronous redis-py
  (bench/servers/threaded.py), the thread-per-call model; ``threaded-pyst2``
  the same with pyst2's AGI class doing the protocol, as pyst-derived servers do.

Phases: (1) every route on the telefeatures servers; (2) the outbound policy on
every server, in interleaved rounds; (3) ``--high-concurrency`` sessions at once
on every server, and a soak of ``--soak`` sessions at that concurrency on the
telefeatures servers, for errors and RSS growth. Server CPU per session comes from
the server process's own utime+stime (/proc/<pid>/stat), read before and after
each measured batch, after a warm-up batch. Exit status 1 if any session on a
telefeatures server failed (comparison servers' failures are reported only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
SERVERS_DIR = Path(__file__).resolve().parent / "servers"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from telefeatures.agi.protocol import unquote_args  # noqa: E402
from telefeatures.state.schema import CIDBLOCK_ON, KeySchema, last_caller_hash  # noqa: E402
from tests.support.asterisk_peer import header_bytes  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

ALL_SERVERS = ("tf-asyncio", "tf-uvloop", "floor-asyncio", "floor-uvloop", "panoramisk", "threaded",
               "threaded-pyst2")
TF_SERVERS = ("tf-asyncio", "tf-uvloop")
ROUTE_GROUPS = ("outbound-allowed", "outbound-blocked", "cidblock/on", "inbound", "callreturn")
KEY_PREFIX = "tf:"
SESSION_TIMEOUT = 20.0

# ----------------------------------------------------------------------------- Asterisk's side

UNIQUEID_MARK = "\x00UNIQUEID\x00"
HEADER_WRITES = "asterisk"  # set from --header-writes


@dataclass
class Scenario:
    """One kind of session: what Asterisk sends and what the server must set."""

    route: str
    args: tuple[str, ...]
    expect_sets: tuple[tuple[str, str], ...]
    expect_commands: int
    channel: str = "PJSIP/1000-0000001a"
    callerid: str = "1000"
    calleridname: str = "Alice"
    callingpres: str = "0"
    context: str = "tf-phones"
    wait_digit: str | None = None  # key pressed at WAIT FOR DIGIT (None: timeout)
    head: bytes = b""
    tail: bytes = b""
    answers: dict = field(default_factory=dict)

    def build(self, port: int) -> Scenario:
        # The header as Asterisk 22 sends it (tests/support/asterisk_peer.py),
        # cut at the uniqueid so every session can carry its own cheaply.
        text = header_bytes(self.route, self.args, host=f"127.0.0.1:{port}", channel=self.channel,
                            uniqueid=UNIQUEID_MARK, callerid=self.callerid, calleridname=self.calleridname,
                            callingpres=self.callingpres, context=self.context, priority="2")
        self.head, _, self.tail = text.partition(UNIQUEID_MARK.encode())
        self.answers = {}
        return self

    def header(self, n: int) -> bytes:
        return self.head + b"%d.%d" % (1763700000 + n // 100000, n % 100000) + self.tail

    def header_writes(self, n: int) -> list[bytes]:
        """The header as Asterisk writes it: res_agi.c sends one write per
        line; the first goes out alone and Nagle's algorithm gathers the rest
        while it is unacknowledged (seen on the wire: 17, 404, 138 bytes).
        HEADER_WRITES picks: "asterisk" (first line, then the rest), "block"
        (one write) or "lines" (one write per line)."""
        data = self.header(n)
        if HEADER_WRITES == "block":
            return [data]
        if HEADER_WRITES == "lines":
            return [line + b"\n" for line in data.split(b"\n")[:-1]]
        first = data.index(b"\n") + 1
        return [data[:first], data[first:]]

    def answer(self, line: bytes) -> tuple[bytes, tuple[str, str] | None]:
        """What res_agi.c answers to one command line (cached per distinct line)."""
        hit = self.answers.get(line)
        if hit is not None:
            return hit
        words = unquote_args(line.decode("utf-8", "replace").rstrip("\r"))
        upper = [w.upper() for w in words]
        pair = None
        if upper[:2] == ["SET", "VARIABLE"] and len(words) == 4:
            reply, pair = "200 result=1", (words[2], words[3])
        elif upper[:2] == ["GET", "VARIABLE"] and len(words) == 3:
            reply = "200 result=0"
        elif upper[:2] == ["STREAM", "FILE"] and len(words) in (4, 5):
            reply = "200 result=0 endpos=16000"
        elif upper[:2] == ["SAY", "DIGITS"] and len(words) == 4:
            reply = "200 result=0"
        elif upper[:3] == ["WAIT", "FOR", "DIGIT"] and len(words) == 4:
            reply = f"200 result={ord(self.wait_digit)}" if self.wait_digit else "200 result=0"
        elif upper[:1] in (["ANSWER"], ["NOOP"], ["VERBOSE"]):
            reply = "200 result=1"
        else:
            reply = "510 Invalid or unknown command"
        hit = ((reply + "\n").encode(), pair)
        if len(self.answers) < 10000:
            self.answers[line] = hit
        return hit


def scenarios(group: str, port: int) -> list[Scenario]:
    """The sessions of one row; a row cycles through its list."""
    allowed = Scenario("outbound", ("1000", "5552345678"),
                       (("CALLERID(pres)", "allowed"), ("TF_DIAL", "5552345678"), ("TF_STATUS", "OK")), 3)
    blocked = Scenario("outbound", ("2000", "5552345678"), (("CALLERID(pres)", "prohib"),
                       ("TF_DIAL", "5552345678"), ("TF_STATUS", "OK")), 3, channel="PJSIP/2000-0000001b",
                       callerid="2000")
    table = {
        "outbound": [allowed, blocked],
        "outbound-allowed": [allowed],
        "outbound-blocked": [blocked],
        "cidblock/on": [Scenario("cidblock/on", ("3000",), (("TF_STATUS", "OK"),), 2,
                                 channel="PJSIP/3000-0000001c", callerid="3000")],
        "inbound": [Scenario("inbound", ("4000",), (("TF_INBOUND", "RING"), ("TF_STATUS", "OK")), 2,
                             channel="PJSIP/trunk-0000001d",
                             callerid="5551234567", calleridname="Bob", context="tf-from-trunk")],
        # announce, number, confirm prompts, then "1" at WAIT FOR DIGIT: every command *69 has
        "callreturn": [Scenario("callreturn", ("5000",), (("TF_DIAL", "15559876543"), ("TF_STATUS", "OK")), 9,
                                channel="PJSIP/5000-0000001e", callerid="5000", wait_digit="1")],
    }
    return [s.build(port) for s in table[group]]


def seed(client: redis.Redis) -> None:
    keys = KeySchema(KEY_PREFIX)
    client.delete(keys.cidblock("1000"))
    client.set(keys.cidblock("2000"), CIDBLOCK_ON)
    client.hset(keys.last_caller("5000"), mapping=last_caller_hash(
        number="5559876543", name="Carol", presentation=0, time=time.time(), withheld=False))


class AgiPeer(asyncio.Protocol):
    """Asterisk's side of one FastAGI session."""

    __slots__ = ("scenario", "done", "transport", "buf", "sets", "commands", "timed_out", "uid")

    def __init__(self, scenario: Scenario, uid: int, done: asyncio.Future):
        self.scenario = scenario
        self.uid = uid
        self.done = done
        self.transport = None
        self.buf = b""
        self.sets: list = []
        self.commands = 0
        self.timed_out = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        for chunk in self.scenario.header_writes(self.uid):
            transport.write(chunk)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        answer = self.scenario.answer
        while True:
            i = buf.find(b"\n")
            if i < 0:
                break
            reply, pair = answer(buf[:i])
            buf = buf[i + 1:]
            self.commands += 1
            if pair is not None:
                self.sets.append(pair)
            self.transport.write(reply)
        self.buf = buf

    def eof_received(self) -> bool:
        return False  # the server closed: close our side too

    def connection_lost(self, exc) -> None:
        if not self.done.done():
            self.done.set_result(exc)

    def expire(self) -> None:
        self.timed_out = True
        self.transport.abort()


@dataclass
class Batch:
    sessions: int = 0
    errors: Counter = field(default_factory=Counter)
    latencies: list = field(default_factory=list)
    wall: float = 0.0


async def run_batch(port: int, group: list[Scenario], sessions: int, concurrency: int, first_uid: int) -> Batch:
    loop = asyncio.get_running_loop()
    result = Batch()
    latencies = result.latencies
    errors = result.errors
    nxt = 0

    async def worker() -> None:
        nonlocal nxt
        while nxt < sessions:
            n = nxt
            nxt += 1
            scenario = group[n % len(group)]
            done = loop.create_future()
            started = time.perf_counter()
            try:
                transport, peer = await loop.create_connection(
                    lambda: AgiPeer(scenario, first_uid + n, done), "127.0.0.1", port)
            except OSError as exc:
                errors[f"connect: {type(exc).__name__}"] += 1
                continue
            timer = loop.call_later(SESSION_TIMEOUT, peer.expire)
            exc = await done
            timer.cancel()
            latencies.append(time.perf_counter() - started)
            if peer.timed_out:
                errors["timeout"] += 1
            elif exc is not None:
                errors[f"lost: {type(exc).__name__}"] += 1
            elif peer.buf:
                errors["unterminated line"] += 1
            elif tuple(peer.sets) != scenario.expect_sets:
                errors[f"sets {peer.sets[-3:]!r}"] += 1
            elif peer.commands != scenario.expect_commands:
                errors[f"{peer.commands} commands"] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, sessions)))))
    result.wall = time.perf_counter() - started
    result.sessions = sessions
    return result


# ----------------------------------------------------------------------------- processes


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} while starting")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout}s")


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """utime + stime of a process (all its threads, finished ones included), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15 of proc(5)


def proc_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def child_pid(pid: int) -> int | None:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                return int(stat.parent.name)
    return None


class Process:
    def __init__(self, name: str, cmd: list[str], port: int, workdir: Path):
        self.name, self.cmd, self.port = name, cmd, port
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None  # the process measured

    def start(self) -> Process:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         cwd=ROOT, start_new_session=True)
        self.pid = self.proc.pid
        try:
            wait_port(self.port, self.proc, self.name)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"{self.name} did not start:\n{self.log_path.read_text()[-2000:]}") from None
        if self.cmd[0].endswith("py-spy"):
            self.pid = child_pid(self.proc.pid) or self.proc.pid  # the profiled server, not the profiler
        return self

    def cpu(self) -> float:
        return proc_cpu(self.pid)

    def rss(self) -> int:
        return proc_rss(self.pid)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if self.pid != self.proc.pid:
                with contextlib.suppress(OSError):
                    os.kill(self.pid, signal.SIGTERM)  # the profiled server; py-spy then writes its file
            else:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None


def start_redis(workdir: Path) -> tuple[Process, str]:
    exe = shutil.which("redis-server", path="/usr/bin:/usr/local/bin") or shutil.which("redis-server")
    if not exe:
        raise SystemExit("redis-server not found (apt-get install redis-server)")
    port = free_port()
    cmd = [exe, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
           "--dir", str(workdir), "--loglevel", "warning"]
    return Process("redis", cmd, port, workdir).start(), f"redis://127.0.0.1:{port}/0"


def server_command(name: str, port: int, redis_url: str) -> list[str]:
    py = sys.executable
    if name in TF_SERVERS:
        exe = Path(py).with_name("telefeatures")
        cli = [str(exe)] if exe.exists() else [py, "-m", "telefeatures.cli.root"]
        return [*cli, "--redis-url", redis_url, "serve", "--host", "127.0.0.1", "--port", str(port),
                "--event-loop", name.split("-", 1)[1]]
    if name.startswith("floor-"):
        return [py, str(SERVERS_DIR / "floor.py"), "--port", str(port), "--redis-url", redis_url,
                "--loop", name.split("-", 1)[1]]
    if name == "panoramisk":
        return [py, str(SERVERS_DIR / "panoramisk_server.py"), "--port", str(port), "--redis-url", redis_url]
    if name.startswith("threaded"):
        return [py, str(SERVERS_DIR / "threaded.py"), "--port", str(port), "--redis-url", redis_url,
                "--agi", "pyst2" if name == "threaded-pyst2" else "plain"]
    raise ValueError(name)


# ----------------------------------------------------------------------------- measuring


@dataclass
class Row:
    phase: str
    server: str
    route: str
    sessions: int
    concurrency: int
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float
    rss_before_mb: float
    rss_after_mb: float
    redis_cpu_us: float
    client_cpu_us: float
    error_kinds: dict
    cpu_us_rounds: list = field(default_factory=list)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class Bench:
    def __init__(self, opts: argparse.Namespace, workdir: Path):
        self.opts = opts
        self.workdir = workdir
        self.servers: dict[str, Process] = {}
        self.redis: Process | None = None
        self.uid = 0
        self.sent: Counter = Counter()  # sessions started per server, warm-up included
        self.rows: list[Row] = []

    async def batch(self, server: str, group: list[Scenario], sessions: int, concurrency: int) -> Batch:
        result = await run_batch(self.servers[server].port, group, sessions, concurrency, self.uid)
        self.uid += sessions
        self.sent[server] += sessions
        return result

    async def measure(self, server: str, group_name: str, sessions: int, concurrency: int, phase: str,
                      warmup: int, rounds: int = 1, rss_before: int | None = None) -> Row:
        proc = self.servers[server]
        group = scenarios(group_name, proc.port)
        errors: Counter = Counter()
        if warmup:
            errors.update((await self.batch(server, group, warmup, concurrency)).errors)
        rss0 = proc.rss() if rss_before is None else rss_before
        total = Batch()
        cpu = redis_cpu = client_cpu = 0.0
        per_round = []
        for _ in range(rounds):
            c0, r0, k0 = proc.cpu(), self.redis.cpu(), time.process_time()
            b = await self.batch(server, group, sessions, concurrency)
            c1, r1, k1 = proc.cpu(), self.redis.cpu(), time.process_time()
            cpu += c1 - c0
            redis_cpu += r1 - r0
            client_cpu += k1 - k0
            per_round.append((c1 - c0) / sessions * 1e6)
            total.sessions += b.sessions
            total.wall += b.wall
            total.latencies += b.latencies
            total.errors.update(b.errors)
        errors.update(total.errors)
        n = total.sessions
        row = Row(phase, server, group_name, n, concurrency, n / total.wall, pct(total.latencies, 0.5) * 1e3,
                  pct(total.latencies, 0.99) * 1e3, sum(errors.values()), cpu / n * 1e6, rss0 / 2**20,
                  proc.rss() / 2**20, redis_cpu / n * 1e6, client_cpu / n * 1e6, dict(errors), per_round)
        self.rows.append(row)
        return row

    async def run(self) -> None:
        o = self.opts
        for name in o.servers:
            port = free_port()
            cmd = server_command(name, port, self.redis_url)
            if o.py_spy:
                out = Path(o.py_spy) / f"{name}.txt"
                cmd = [shutil.which("py-spy") or "py-spy", "record", "--rate", "250",
                       "--format", "raw", "-o", str(out), "--", *cmd]
            self.servers[name] = Process(name, cmd, port, self.workdir).start()
        ours = [s for s in o.servers if s in TF_SERVERS]
        # (1) every route on our servers
        for server in ours:
            for group in o.routes:
                row = await self.measure(server, group, o.sessions, o.concurrency, "routes", o.warmup)
                progress(row)
        # (2) the outbound policy everywhere, rounds interleaved so drift hits every server alike
        for server in o.servers:
            await self.batch(server, scenarios("outbound", self.servers[server].port), o.warmup, o.concurrency)
        partial: dict[str, list[Row]] = {s: [] for s in o.servers}
        for _ in range(o.rounds):
            for server in o.servers:
                partial[server].append(await self.measure(server, "outbound", o.sessions, o.concurrency,
                                                          "compare", 0))
                self.rows.pop()
        for server in o.servers:
            row = merge(partial[server])
            self.rows.append(row)
            progress(row)
        # (3) many sessions at once; the soak on our servers
        for server in o.servers:
            if server in ours and o.soak:
                await self.batch(server, scenarios("outbound", self.servers[server].port), o.warmup,
                                 o.high_concurrency)
                row = await self.measure(server, "outbound", o.soak, o.high_concurrency, "soak", 0)
            else:
                row = await self.measure(server, "outbound", o.high_sessions, o.high_concurrency, "high",
                                         o.warmup)
            progress(row)
        for server in ours:
            proc = self.servers[server]
            lines = proc.log_path.read_text(errors="replace").count(" telefeatures.session: route=")
            # +1: the connect-and-close probe that saw the server listening
            print(f"# {server}: {lines} session log lines for {self.sent[server] + 1} connections",
                  file=sys.stderr)


def merge(rows: list[Row]) -> Row:
    n = sum(r.sessions for r in rows)
    first = rows[0]
    wall = sum(r.sessions / r.rate for r in rows)
    errors: Counter = Counter()
    for r in rows:
        errors.update(r.error_kinds)
    return Row("compare", first.server, first.route, n, first.concurrency, n / wall,
               statistics.median(r.p50_ms for r in rows), max(r.p99_ms for r in rows), sum(errors.values()),
               sum(r.cpu_us * r.sessions for r in rows) / n, first.rss_before_mb, rows[-1].rss_after_mb,
               sum(r.redis_cpu_us * r.sessions for r in rows) / n,
               sum(r.client_cpu_us * r.sessions for r in rows) / n, dict(errors),
               [round(r.cpu_us, 1) for r in rows])


def progress(row: Row) -> None:
    print(f"# {row.phase:8} {row.server:14} {row.route:17} {row.sessions:>7} @{row.concurrency:<5} "
          f"{row.rate:8.0f}/s  cpu {row.cpu_us:6.1f} us  client {row.client_cpu_us:6.1f} us  errors {row.errors}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- report


def table(rows: list[Row], title: str) -> str:
    out = [f"### {title}", "",
           "| server | route | sessions | conc | sessions/s | p50 ms | p99 ms | errors | server CPU us/session "
           "| redis CPU us/session | RSS MB before -> after |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        spread = ""
        if len(r.cpu_us_rounds) > 1:
            spread = f" ({min(r.cpu_us_rounds):.0f}-{max(r.cpu_us_rounds):.0f})"
        out.append(f"| {r.server} | {r.route} | {r.sessions} | {r.concurrency} | {r.rate:.0f} | {r.p50_ms:.2f} "
                   f"| {r.p99_ms:.2f} | {r.errors} | {r.cpu_us:.1f}{spread} | {r.redis_cpu_us:.1f} "
                   f"| {r.rss_before_mb:.1f} -> {r.rss_after_mb:.1f} |")
    return "\n".join(out)


def verdicts(rows: list[Row], opts) -> list[str]:
    cmp = {r.server: r for r in rows if r.phase == "compare"}
    high = {r.server: r for r in rows if r.phase in ("high", "soak")}
    out = []

    def ratio(a: str, b: str, attr: str) -> float | None:
        if a in cmp and b in cmp:
            return getattr(cmp[a], attr) / getattr(cmp[b], attr)
        return None

    for ours in TF_SERVERS:
        if ours not in cmp:
            continue
        loop = ours.split("-", 1)[1]
        for floor in ("floor-asyncio", f"floor-{loop}"):
            r = ratio(ours, floor, "cpu_us")
            if r is not None:
                out.append(f"{ours} CPU/session = {r:.2f}x {floor} (target <= 1.10): {'met' if r <= 1.10 else 'MISSED'}")
                if floor == f"floor-{loop}":
                    break
        r = ratio(ours, "panoramisk", "cpu_us")
        if r is not None:
            out.append(f"{ours} CPU/session = {r:.2f}x panoramisk (target < 1): {'met' if r < 1 else 'MISSED'}")
        for threaded in ("threaded", "threaded-pyst2"):
            r = ratio(ours, threaded, "rate")
            if r is not None:
                out.append(f"{ours} sessions/s = {r:.1f}x {threaded} (target >= 5): {'met' if r >= 5 else 'MISSED'}")
        if ours in high:
            h = high[ours]
            out.append(f"{ours} errors at {h.concurrency} concurrent: {h.errors} (target 0, at 1000): "
                       + ("met" if h.errors == 0 and h.concurrency >= 1000 else
                          "MISSED" if h.errors else "not tested at 1000"))
            if h.phase == "soak":
                growth = h.rss_after_mb - h.rss_before_mb
                verdict = ("met" if growth < 20 else "MISSED") if h.sessions >= 100000 else "too few sessions to judge"
                out.append(f"{ours} RSS growth over {h.sessions} sessions: {growth:+.1f} MB (target < 20 MB "
                           f"over 100,000): {verdict}")
    return out


def machine() -> str:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = []
    for mod in ("uvloop", "redis", "hiredis", "panoramisk"):
        with contextlib.suppress(Exception):
            versions.append(f"{mod} {__import__(mod).__version__}")
    mem_kb = 0
    with contextlib.suppress(OSError, IndexError, ValueError):
        mem_kb = int(Path("/proc/meminfo").read_text().split("MemTotal:", 1)[1].split()[0])
    return (f"{os.cpu_count()} CPUs ({model}), {mem_kb / 2**20:.0f} GiB, "
            f"Linux {platform.release()}, Python {platform.python_version()}, " + ", ".join(versions))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="FastAGI benchmark: telefeatures against comparison servers.")
    p.add_argument("--quick", action="store_true", help="a few hundred sessions per run (smoke test)")
    p.add_argument("--servers", default=",".join(ALL_SERVERS), help=f"comma list of {', '.join(ALL_SERVERS)}")
    p.add_argument("--routes", default=",".join(ROUTE_GROUPS), help="route rows for the telefeatures servers")
    p.add_argument("--sessions", type=int, help="measured sessions per row and round (default 5000)")
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--warmup", type=int, help="unmeasured sessions before each measurement (default 1000)")
    p.add_argument("--rounds", type=int, help="interleaved rounds of the outbound comparison (default 3)")
    p.add_argument("--high-concurrency", type=int, help="sessions at once in phase 3 (default 1000)")
    p.add_argument("--high-sessions", type=int, help="phase-3 sessions for comparison servers (default 10000)")
    p.add_argument("--soak", type=int, help="phase-3 sessions for telefeatures servers (default 100000)")
    p.add_argument("--client-loop", choices=["uvloop", "asyncio"], default="uvloop")
    p.add_argument("--header-writes", choices=["asterisk", "block", "lines"], default="asterisk",
                   help="how the header block is written: as Asterisk does (first line alone, then the "
                   "rest; default), in one write, or one write per line")
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.add_argument("--py-spy", metavar="DIR", help="run each server under py-spy record (collapsed stacks to "
                   "DIR/<server>.txt; CPU figures then include its sampling cost)")
    opts = p.parse_args(argv)
    quick = {"sessions": 300, "warmup": 100, "rounds": 1, "high_concurrency": 200, "high_sessions": 300,
             "soak": 0}
    full = {"sessions": 5000, "warmup": 1000, "rounds": 3, "high_concurrency": 1000, "high_sessions": 10000,
            "soak": 100000}
    for key, value in (quick if opts.quick else full).items():
        if getattr(opts, key) is None:
            setattr(opts, key, value)
    opts.servers = [s for s in opts.servers.split(",") if s]
    opts.routes = [r for r in opts.routes.split(",") if r]
    for s in opts.servers:
        if s not in ALL_SERVERS:
            p.error(f"unknown server {s!r}")
    for r in opts.routes:
        if r not in ROUTE_GROUPS:
            p.error(f"unknown route row {r!r}")
    return opts


def main(argv: list[str] | None = None) -> int:
    global HEADER_WRITES
    opts = parse_args(argv)
    HEADER_WRITES = opts.header_writes
    with contextlib.suppress(ValueError, OSError):
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 65536)), hard))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="agi-bench-") as tmp:
        workdir = Path(tmp)
        bench = Bench(opts, workdir)
        redis_proc, bench.redis_url = start_redis(workdir)
        bench.redis = redis_proc
        try:
            with redis.Redis.from_url(bench.redis_url) as client:
                seed(client)
            if opts.client_loop == "uvloop":
                try:
                    import uvloop
                except ImportError:
                    asyncio.run(bench.run())
                else:
                    uvloop.run(bench.run())
            else:
                asyncio.run(bench.run())
        finally:
            for proc in bench.servers.values():
                proc.stop()
            redis_proc.stop()
    rows = bench.rows
    print(f"Machine: {machine()}")
    print("Load average (1 min) before/after the run: "
          f"{load_before[0]:.2f} / {os.getloadavg()[0]:.2f} (this run's own load included)")
    print(f"Sessions per row {opts.sessions} (x{opts.rounds} rounds in the comparison), concurrency "
          f"{opts.concurrency}, warm-up {opts.warmup}; client loop {opts.client_loop}, header written "
          f"{opts.header_writes}.\n")
    route_rows = [r for r in rows if r.phase == "routes"]
    if route_rows:
        print(table(route_rows, "Routes (telefeatures serve)") + "\n")
    print(table([r for r in rows if r.phase == "compare"],
                "Outbound policy, every server (CPU: all rounds, per-round range in brackets)") + "\n")
    print(table([r for r in rows if r.phase in ("high", "soak")],
                f"Outbound policy at {opts.high_concurrency} concurrent sessions") + "\n")
    cmp = {r.server: r for r in rows if r.phase == "compare"}
    if cmp:
        base = cmp.get("floor-asyncio") or next(iter(cmp.values()))
        print(f"Ratios to {base.server} (CPU/session, sessions/s):")
        for r in cmp.values():
            print(f"  {r.server:14} CPU {r.cpu_us / base.cpu_us:5.2f}x   rate {r.rate / base.rate:5.2f}x")
        print()
    print("Targets" + (" (quick run: too small to judge)" if opts.quick else "") + ":")
    for line in verdicts(rows, opts):
        print(f"  {line}")
    for r in rows:
        if r.error_kinds:
            print(f"errors {r.phase}/{r.server}/{r.route}: {r.error_kinds}")
    if opts.json:
        Path(opts.json).write_text(json.dumps({"machine": machine(), "options": vars(opts),
                                               "rows": [asdict(r) for r in rows]}, indent=1))
    # the comparison servers' failures are findings; ours are failures of the run
    return 1 if any(r.errors for r in rows if r.server in TF_SERVERS) else 0


if __name__ == "__main__":
    sys.exit(main())
