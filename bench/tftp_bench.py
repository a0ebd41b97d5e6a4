#!/usr/bin/env python3
"""Boot storm: `telefeatures tftp` against Debian's tftpd-hpa, in the same run.

Every phone of a row starts at once (a power cut), each from its own
127.x.y.z address and a new source port per file, as phones do: config rows
fetch SEP<MAC>.cnf.xml and dialplan.xml, firmware rows the six files of a
7961 SIP load (about 6 MB). Each row runs plain (512-byte blocks, no options)
and with blksize 1428 + tsize. Every fetched file is compared byte for byte
with what is on disk.

Measured per row and server: wall time from the first request to the last
byte, MB/s, server CPU (its own cgroup's cpuacct.usage when cgroups v1 or v2
are writable, so tftpd-hpa's forked children count; else utime+stime of the
process and its reaped children from /proc), CPU per data block, requests
that had to be sent again because no answer came within 1 s ("dropped"),
TFTP errors received, fetches that failed after 5 tries, and per-fetch
latency (p50/p99). As root the whole run happens in a fresh network namespace
(`unshare --net`), so other traffic on the machine cannot disturb it and the
kernel's UDP receive-buffer error counter is this run's alone.

    python bench/tftp_bench.py                  # the full table, a few minutes on 2 cores
    python bench/tftp_bench.py --quick          # small rows (what CI runs)
    python bench/tftp_bench.py --rows config-1000 --servers telefeatures

The machine is shared: absolute numbers are noisy, compare the servers within
one run. The load generator runs in --generators processes (default 2) on the
same cores as the servers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from statistics import median
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
TELEFEATURES = Path(sys.executable).with_name("telefeatures")
IN_TFTPD = shutil.which("in.tftpd") or "/usr/sbin/in.tftpd"

FIRMWARE = {  # a 7961 SIP 9.4(2) load: names as Cisco ships them, sizes close to the real ones
    "term61.default.loads": 0,
    "jar41sip.9-4-2-13.sbn": 2_240_000,
    "apps41.9-4-2-13.sbn": 1_520_000,
    "cvm41sip.9-4-2-13.sbn": 1_630_000,
    "cnu41.9-4-2-13.sbn": 610_000,
    "dsp41.9-4-2-13.sbn": 190_000,
}
ROWS = {  # name -> (kind, phones)
    "config-50": ("config", 50), "config-200": ("config", 200), "config-1000": ("config", 1000),
    "firmware-50": ("firmware", 50), "firmware-200": ("firmware", 200),
}
QUICK_ROWS = {"config-20": ("config", 20), "firmware-4": ("firmware", 4)}
OPTIONS = {"plain": {}, "blksize1428+tsize": {"blksize": "1428", "tsize": "0"}}
RETRY_AFTER = 1.0
TRIES = 5


# --- the files ---------------------------------------------------------------------------------

def mac_of(index: int) -> str:
    return f"0019E8{index:06X}"


def phone_address(index: int) -> str:
    return f"127.{10 + index // 60000}.{(index // 250) % 240 + 1}.{index % 250 + 1}"


def make_root(root: Path, phones: int, quick: bool) -> None:
    """SEP files of about the size `provision build` writes (4-5 KB, text),
    one dial plan, and a firmware set of random bytes."""
    root.mkdir(parents=True, exist_ok=True)
    line = "<line button=\"{n}\"><featureLabel>{n}</featureLabel><name>{n}</name><authPassword>{p}</authPassword></line>\n"
    for i in range(phones):
        mac = mac_of(i)
        body = "<?xml version=\"1.0\"?>\n<device><deviceProtocol>SIP</deviceProtocol>\n" + "".join(
            line.format(n=1000 + i * 4 + k, p=hashlib.sha256(f"{mac}{k}".encode()).hexdigest()) for k in range(4))
        body += "<!-- padding to a realistic size -->\n" * 100 + "</device>\n"
        (root / f"SEP{mac}.cnf.xml").write_text(body)
    (root / "dialplan.xml").write_text("<DIALTEMPLATE>\n" + "".join(
        f'<TEMPLATE MATCH="{p}" Timeout="0"/>\n' for p in ["*69", "*81", "*82", "*83", "*67*", "1...", "9911"] * 6)
        + "</DIALTEMPLATE>\n")
    scale = 10 if quick else 1
    rng = hashlib.sha256(b"firmware")
    for name, size in FIRMWARE.items():
        if size == 0:
            data = "\n".join(n.removesuffix(".sbn") for n in FIRMWARE if n.endswith(".sbn")).encode() + b"\n"
        else:
            data = os.urandom(size // scale)
        (root / name).write_bytes(data)
        rng.update(data)
    os.chmod(root, 0o755)
    for path in root.iterdir():
        os.chmod(path, 0o644)


# --- the load generator: one process drives many phones with epoll ------------------------------

@dataclass
class Fetch:
    name: str
    expected: bytes


class Phone:
    __slots__ = ("address", "fetches", "index", "sock", "server", "chunks", "block", "last_sent", "sent_at",
                 "tries", "started", "blksize", "got_first")

    def __init__(self, address: str, fetches: list[Fetch]):
        self.address = address
        self.fetches = fetches
        self.index = -1
        self.sock: socket.socket | None = None


def run_phones(port: int, phone_indexes: list[int], files: dict[str, bytes], kind: str, options: dict[str, str],
               start_at: float, out: multiprocessing.Queue) -> None:
    names = (lambda i: [f"SEP{mac_of(i)}.cnf.xml", "dialplan.xml"]) if kind == "config" else \
        (lambda i: list(FIRMWARE))
    option_bytes = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in options.items())
    blksize = int(options.get("blksize", 512))
    epoll = select.epoll()
    by_fd: dict[int, Phone] = {}
    stats = {"fetches": 0, "ok": 0, "corrupt": 0, "errors": 0, "failed": 0, "rrq_resent": 0, "ack_resent": 0,
             "blocks": 0, "bytes": 0, "latencies": [], "error_messages": {}}
    phones = [Phone(phone_address(i), [Fetch(n, files[n]) for n in names(i)]) for i in phone_indexes]
    active = set()

    def next_file(phone: Phone, now: float) -> None:
        if phone.sock is not None:
            epoll.unregister(phone.sock.fileno())
            del by_fd[phone.sock.fileno()]
            phone.sock.close()
            phone.sock = None
        phone.index += 1
        if phone.index >= len(phone.fetches):
            active.discard(phone)
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((phone.address, 0))  # a new port (transfer ID) per file
        sock.setblocking(False)
        phone.sock = sock
        by_fd[sock.fileno()] = phone
        epoll.register(sock.fileno(), select.EPOLLIN)
        phone.server = ("127.0.0.1", port)
        phone.chunks = []
        phone.block = 0
        phone.blksize = 512
        phone.got_first = False
        phone.tries = 0
        phone.started = now
        name = phone.fetches[phone.index].name
        phone.last_sent = b"\0\1" + name.encode() + b"\0octet\0" + option_bytes
        send(phone, now)
        stats["fetches"] += 1

    def send(phone: Phone, now: float) -> None:
        phone.sent_at = now
        phone.sock.sendto(phone.last_sent, phone.server)

    def done(phone: Phone, now: float, outcome: str) -> None:
        if outcome == "ok":
            data = b"".join(phone.chunks)
            if data == phone.fetches[phone.index].expected:
                stats["ok"] += 1
                stats["latencies"].append(now - phone.started)
            else:
                stats["corrupt"] += 1
        else:
            stats[outcome] += 1
        next_file(phone, now)

    while time.time() < start_at:
        time.sleep(0.001)
    now = time.monotonic()
    for phone in phones:
        active.add(phone)
        next_file(phone, now)
    last_scan = now
    while active:
        events = epoll.poll(0.05)
        now = time.monotonic()
        for fd, _ in events:
            phone = by_fd.get(fd)
            if phone is None:
                continue
            try:
                packet, addr = phone.sock.recvfrom(70000)
            except BlockingIOError:
                continue
            except OSError:
                continue
            if len(packet) < 4:
                continue
            opcode, number = struct.unpack_from("!HH", packet)
            if not phone.got_first:
                phone.server = addr
                phone.got_first = True
            elif addr != phone.server:
                continue
            if opcode == 6:  # OACK
                if phone.block == 0:
                    fields = packet[2:-1].split(b"\0")
                    acked = dict(zip(fields[::2], fields[1::2]))
                    phone.blksize = int(acked.get(b"blksize", b"512"))
                    if b"tsize" in acked and int(acked[b"tsize"]) != len(phone.fetches[phone.index].expected):
                        stats["corrupt"] += 1
                    phone.last_sent = struct.pack("!HH", 4, 0)
                    send(phone, now)
            elif opcode == 3:
                if number == (phone.block + 1) & 0xFFFF:
                    phone.block += 1
                    payload = packet[4:]
                    phone.chunks.append(payload)
                    stats["blocks"] += 1
                    stats["bytes"] += len(payload)
                    phone.tries = 0
                    phone.last_sent = struct.pack("!HH", 4, number)
                    send(phone, now)
                    if len(payload) < phone.blksize:
                        done(phone, now, "ok")
                elif number == phone.block & 0xFFFF:
                    pass  # our ACK was lost or late: the server sends again; its timer, not us, decides
            elif opcode == 5:
                message = packet[4:-1].decode("ascii", "replace")
                stats["error_messages"][message] = stats["error_messages"].get(message, 0) + 1
                done(phone, now, "errors")
        if now - last_scan >= 0.05:
            last_scan = now
            for phone in list(active):
                if phone.sock is not None and now - phone.sent_at >= RETRY_AFTER:
                    if phone.tries >= TRIES:
                        done(phone, now, "failed")
                        continue
                    phone.tries += 1
                    stats["rrq_resent" if not phone.got_first else "ack_resent"] += 1
                    send(phone, now)
    out.put(stats)


# --- servers -----------------------------------------------------------------------------------

class CpuMeter:
    """CPU seconds of a server and everything it forks: its own cgroup (v1
    cpuacct or v2 cpu.stat) when one can be made, else /proc."""

    def __init__(self, label: str):
        self.cgroup: Path | None = None
        name = f"tftp-bench-{os.getpid()}-{label}"
        for base, kind in ((Path("/sys/fs/cgroup/cpuacct"), "v1"), (Path("/sys/fs/cgroup"), "v2")):
            if kind == "v2" and not (base / "cgroup.controllers").exists():
                continue
            try:
                path = base / name
                path.mkdir()
                self.cgroup, self.kind = path, kind
                break
            except OSError:
                continue
        self.pid: int | None = None

    @property
    def how(self) -> str:
        return f"cgroup {self.kind}" if self.cgroup else "/proc"

    def preexec(self) -> None:  # in the child before exec: join the cgroup, so all its children do too
        if self.cgroup is not None:
            (self.cgroup / "cgroup.procs").write_text(str(os.getpid()))

    def proc_seconds(self) -> float:
        """utime+stime of the process and its reaped children (fields 14-17 of /proc/PID/stat)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")

    def seconds(self) -> float:
        if self.cgroup is not None:
            if self.kind == "v1":
                return int((self.cgroup / "cpuacct.usage").read_text()) / 1e9
            for line in (self.cgroup / "cpu.stat").read_text().splitlines():
                if line.startswith("usage_usec"):
                    return int(line.split()[1]) / 1e6
        return self.proc_seconds()

    def remove(self) -> None:
        """Remove the cgroup once the server's last child has exited."""
        if self.cgroup is None:
            return
        for _ in range(50):
            try:
                self.cgroup.rmdir()
                return
            except OSError:
                time.sleep(0.1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_udp_bound(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on UDP port {port}")


class Server:
    def __init__(self, name: str, root: Path, work: Path, workers: int):
        self.name, self.root, self.work, self.workers = name, root, work, workers
        self.port = free_port()
        self.meter = CpuMeter(name)
        self.log = open(work / f"{name}.log", "wb")
        if name == "tftpd-hpa":
            # -L: stand-alone, in the foreground; -s: chroot to the root; it forks a child per request.
            command = [IN_TFTPD, "-L", "-s", "-u", "nobody", "-a", f"127.0.0.1:{self.port}", str(root)]
        else:
            command = [str(TELEFEATURES), "--state-dir", str(work / "state"), "tftp", "--root", str(root),
                       "--bind", f"127.0.0.1:{self.port}"] + (["--workers", str(workers)] if workers is not None else [])
        self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=self.meter.preexec)
        self.meter.pid = self.proc.pid
        try:
            wait_udp_bound(self.port)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        self.meter.remove()


def udp_receive_errors() -> int:
    lines = Path("/proc/net/snmp").read_text().splitlines()
    header, values = [line.split() for line in lines if line.startswith("Udp:")][:2]
    return int(values[header.index("RcvbufErrors")])


def run_row(server: Server, kind: str, phones: int, options: dict[str, str], files: dict[str, bytes],
            generators: int) -> dict:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    start_at = time.time() + 0.3
    parts = [list(range(phones))[g::generators] for g in range(generators)]
    procs = [multiprocessing.Process(target=run_phones,
                                     args=(server.port, part, files, kind, options, start_at, queue))
             for part in parts if part]
    cpu_before, rcv_before = server.meter.seconds(), udp_receive_errors()
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=900) for _ in procs]
    wall_end = time.time()
    for proc in procs:
        proc.join()
    cpu = server.meter.seconds() - cpu_before
    total: dict = {"latencies": [], "error_messages": {}}
    for result in results:
        for key, value in result.items():
            if key == "latencies":
                total[key] += value
            elif key == "error_messages":
                for message, count in value.items():
                    total[key][message] = total[key].get(message, 0) + count
            else:
                total[key] = total.get(key, 0) + value
    latencies = sorted(total.pop("latencies"))
    wall = wall_end - start_at
    return {**total, "wall": wall, "cpu": cpu, "mb_per_s": total["bytes"] / wall / 1e6,
            "cpu_us_per_block": cpu / max(total["blocks"], 1) * 1e6,
            "kernel_drops": udp_receive_errors() - rcv_before,
            "p50": latencies[len(latencies) // 2] if latencies else 0.0,
            "p99": latencies[int(len(latencies) * 0.99)] if latencies else 0.0}


# --- main --------------------------------------------------------------------------------------

def in_own_netns() -> None:
    """Re-run in a new network namespace (as root) with loopback up, and one
    veth pair holding a TEST-NET address: tftpd-hpa resolves its -a address
    with AI_ADDRCONFIG, which finds nothing when loopback is all there is."""
    if os.environ.get("TFTP_BENCH_NETNS") or os.geteuid() != 0 or not shutil.which("unshare"):
        return
    env = {**os.environ, "TFTP_BENCH_NETNS": "1"}
    script = ("ip link set lo up && ip link add tfb0 type veth peer name tfb1 && ip addr add 192.0.2.1/24 dev tfb0 "
              '&& ip link set tfb0 up && ip link set tfb1 up && exec "$0" "$@"')
    os.execvpe("unshare", ["unshare", "--net", "sh", "-c", script, sys.executable, *sys.argv], env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small rows, for CI")
    parser.add_argument("--rows", help="comma-separated row names (default: all)")
    parser.add_argument("--options", default=",".join(OPTIONS), help="plain and/or blksize1428+tsize")
    parser.add_argument("--servers", default="telefeatures,tftpd-hpa")
    parser.add_argument("--workers", type=int, help="telefeatures tftp --workers (default: its own default)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every row this many times, servers in turns; the ratios use the medians")
    parser.add_argument("--generators", type=int, default=2, help="load generator processes")
    parser.add_argument("--json", help="write the results here too")
    parser.add_argument("--no-netns", action="store_true", help="stay in the current network namespace")
    args = parser.parse_args()
    if not args.no_netns:
        in_own_netns()
    rows = QUICK_ROWS if args.quick else ROWS
    if args.rows:
        rows = {name: {**ROWS, **QUICK_ROWS}[name] for name in args.rows.split(",")}
    servers = args.servers.split(",")
    option_sets = args.options.split(",")
    work = Path(tempfile.mkdtemp(prefix="tftp-bench-"))
    try:
        root = work / "root"
        make_root(root, max(phones for _, phones in rows.values()), args.quick)
        os.chmod(work, 0o755)
        files = {p.name: p.read_bytes() for p in root.iterdir()}
        running: dict[str, Server] = {}
        results = []
        try:
            for name in servers:  # inside the try: a server that fails to start stops the others
                running[name] = Server(name, root, work, args.workers)
            print(f"# tftp boot storm, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, "
                  f"network namespace: {'own' if os.environ.get('TFTP_BENCH_NETNS') else 'shared'}, "
                  f"CPU from {', '.join(f'{n}: {s.meter.how}' for n, s in running.items())}, "
                  f"{args.generators} generator processes", flush=True)
            for row, (kind, phones) in rows.items():
                for option_name in option_sets:
                    for round_ in range(args.rounds):
                        for name in servers if round_ % 2 == 0 else servers[::-1]:
                            result = run_row(running[name], kind, phones, OPTIONS[option_name], files,
                                             args.generators)
                            result.update(row=row, options=option_name, server=name, round=round_ + 1)
                            results.append(result)
                            print(f"#   {row} {option_name} {name}: {result['wall']:.2f} s, "
                                  f"{result['cpu_us_per_block']:.1f} us/block", file=sys.stderr, flush=True)
        finally:
            for server in running.values():
                server.stop()
        print_table(results, servers)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
        bad = [r for r in results if r["server"] == "telefeatures" and (r["failed"] or r["corrupt"] or r["errors"])]
        return 1 if bad else 0
    finally:
        if os.environ.get("TFTP_BENCH_KEEP"):
            print(f"# kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def print_table(results: list[dict], servers: list[str]) -> None:
    print("\n| row | options | server | round | fetches ok | wall s | MB/s | server CPU s | CPU us/block "
          "| RRQs resent | errors | failed | corrupt | kernel drops | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['row']} | {r['options']} | {r['server']} | {r['round']} | {r['ok']}/{r['fetches']} | {r['wall']:.2f} "
              f"| {r['mb_per_s']:.1f} | {r['cpu']:.2f} | {r['cpu_us_per_block']:.1f} | {r['rrq_resent']} "
              f"| {r['errors']} | {r['failed']} | {r['corrupt']} | {r['kernel_drops']} | {r['p50'] * 1000:.0f} "
              f"| {r['p99'] * 1000:.0f} |")
    errors = {m: c for r in results for m, c in r["error_messages"].items()}
    if errors:
        print(f"\nTFTP errors received: {errors}")
    if "telefeatures" in servers and "tftpd-hpa" in servers:
        print("\n| row | options | throughput tf/hpa (goal >= 1) | CPU per block tf/hpa (goal <= 2) | verdict |")
        print("|---|---|---|---|---|")
        pairs: dict[tuple, dict] = {}
        for r in results:
            pairs.setdefault((r["row"], r["options"]), {}).setdefault(r["server"], []).append(r)
        for (row, options), pair in pairs.items():
            tf, hpa = pair["telefeatures"], pair["tftpd-hpa"]
            speed = median([r["wall"] for r in hpa]) / median([r["wall"] for r in tf])
            cpu = median([r["cpu_us_per_block"] for r in tf]) / max(median([r["cpu_us_per_block"] for r in hpa]), 1e-9)
            clean = not any(r["failed"] or r["errors"] or r["corrupt"] or r["rrq_resent"] for r in tf)
            verdict = "met" if speed >= 1 and cpu <= 2 and clean else "MISSED"
            print(f"| {row} | {options} | {speed:.2f} | {cpu:.2f} | {verdict} |")


if __name__ == "__main__":
    sys.exit(main())
