"""A real DNS server for tests: Debian's dnsmasq on a 127.0.0.x address, port 53
(resolv.conf cannot name another port), answering only the records the test
gives it (no upstream, no /etc/hosts)."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

DNSMASQ = shutil.which("dnsmasq", path="/usr/sbin:/usr/bin:/sbin") or shutil.which("dnsmasq")


def _free_loopback_address() -> str:
    """A 127.0.0.x where nothing listens on UDP or TCP port 53."""
    for _ in range(200):
        address = f"127.0.{random.randint(1, 254)}.{random.randint(2, 254)}"
        try:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind((address, 53))
            return address
        except OSError:
            continue
    raise RuntimeError("no free 127.0.x.y:53")


def _query_srv(server: str, name: str) -> bool:
    """One raw DNS query (SRV) to ``server``: True when it answers NOERROR with records."""
    qname = b"".join(bytes([len(part)]) + part.encode() for part in name.split(".")) + b"\0"
    packet = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + qname + b"\x00\x21\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        s.sendto(packet, (server, 53))
        try:
            reply = s.recv(4096)
        except OSError:
            return False
    return reply[:2] == b"\x12\x34" and reply[3] & 0x0F == 0 and int.from_bytes(reply[6:8], "big") > 0


class DnsServer:
    """dnsmasq serving ``srv`` records (name, target, port, priority, weight)
    and ``hosts`` (name -> IPv4) on its own 127.0.x.y."""

    def __init__(self, workdir: Path, srv: list[tuple[str, str, int, int, int]], hosts: dict[str, str]):
        if DNSMASQ is None:
            raise RuntimeError("dnsmasq is not installed")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.address = _free_loopback_address()
        self.srv = srv
        self.hosts = hosts
        self.log_path = self.workdir / "dnsmasq.log"
        self.proc: subprocess.Popen | None = None

    def resolv_conf(self) -> Path:
        """A resolv.conf naming this server only."""
        path = self.workdir / "resolv.conf"
        path.write_text(f"nameserver {self.address}\noptions timeout:1 attempts:1\n")
        return path

    def start(self) -> DnsServer:
        args = [DNSMASQ, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll", "--bind-interfaces",
                f"--listen-address={self.address}", "--port=53", "--pid-file", "--user=root", "--group=root",
                "--log-queries", f"--log-facility={self.log_path}", "--cache-size=0", "--local-ttl=0"]
        args += [f"--srv-host={name},{target},{port},{prio},{weight}" for name, target, port, prio, weight in self.srv]
        args += [f"--host-record={name},{ip}" for name, ip in self.hosts.items()]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not _query_srv(self.address, self.srv[0][0]):
            if self.proc.poll() is not None:
                error = self.proc.stderr.read().decode(errors="replace")
                self.stop()
                raise RuntimeError(f"dnsmasq exited: {error}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("dnsmasq did not answer")
            time.sleep(0.05)
        return self

    def queries(self) -> list[str]:
        return [line for line in self.log_path.read_text(errors="replace").splitlines() if "query[" in line]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None
