"""A phone network made of Linux network namespaces, for the boot tests.

One server namespace holds a bridge (``br0``, the server's address on it) and
one veth end per host; each virtual phone (or attacker) is a namespace of its
own whose ``eth0`` carries the MAC it is given. No interface or address ever
appears in the test machine's own namespace, and :meth:`PhoneNetwork.destroy`
kills every process left in these namespaces and deletes them, whatever
happened before.

Processes are put into a namespace two ways: ``ip netns exec NS cmd`` for a
command line (:meth:`PhoneNetwork.command`), or :meth:`PhoneNetwork.entered`,
which moves the calling thread into the namespace for a ``with`` block, so
helpers that start their own subprocesses and probe loopback ports (the test
bed's Asterisk, ``telefeatures serve``) run there unchanged.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


@dataclass
class Host:
    """A machine on the phone network: its namespace and its MAC."""

    netns: str
    mac: str
    ip: str | None = None  # set once it has one (DHCP, or given)


@dataclass
class PhoneNetwork:
    prefix: str  # namespaces are named <prefix>-srv, <prefix>-<host>
    server_ip: str = "10.99.0.1"
    prefix_len: int = 24
    hosts: dict[str, Host] = field(default_factory=dict)

    @property
    def server(self) -> str:
        return f"{self.prefix}-srv"

    def create(self) -> PhoneNetwork:
        _ip("netns", "add", self.server)
        _ip("-n", self.server, "link", "set", "lo", "up")
        _ip("-n", self.server, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.server, "addr", "add", f"{self.server_ip}/{self.prefix_len}", "dev", "br0")
        _ip("-n", self.server, "link", "set", "br0", "up")
        return self

    def add_host(self, name: str, mac: str, ip: str | None = None) -> Host:
        """A namespace ``<prefix>-<name>`` cabled to the bridge; ``ip`` is
        configured at once if given (otherwise DHCP assigns one)."""
        netns = f"{self.prefix}-{name}"
        port = f"v{len(self.hosts)}"
        _ip("netns", "add", netns)
        self.hosts[name] = host = Host(netns, mac)
        _ip("-n", netns, "link", "set", "lo", "up")
        # Made inside the server namespace, with the far end moved straight into
        # the host's: nothing passes through the machine's own namespace.
        _ip("-n", self.server, "link", "add", port, "type", "veth", "peer", "name", "eth0",
            "address", mac, "netns", netns)
        _ip("-n", self.server, "link", "set", port, "master", "br0")
        _ip("-n", self.server, "link", "set", port, "up")
        _ip("-n", netns, "link", "set", "eth0", "up")
        if ip:
            self.add_address(name, ip)
        return host

    def add_address(self, name: str, ip: str) -> None:
        host = self.hosts[name]
        _ip("-n", host.netns, "addr", "add", f"{ip}/{self.prefix_len}", "dev", "eth0")
        host.ip = ip

    def command(self, netns: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", netns, *argv]

    @contextlib.contextmanager
    def entered(self, netns: str) -> Iterator[None]:
        """Run the calling thread inside ``netns`` for the block (sockets it
        opens and processes it starts stay there)."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(home)
        finally:
            os.close(target)
            os.close(home)

    def pids(self, netns: str) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, timeout=30).stdout
        # Never this test process, even if one of its threads is inside.
        return [int(pid) for pid in out.split() if int(pid) != os.getpid()]

    @classmethod
    def remove_orphans(cls, stem: str) -> None:
        """Delete ``<stem><pid>-*`` namespaces left by a test process that died
        before its clean-up ran (killed, machine reset); never a live run's."""
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30).stdout.split()
        owners: dict[int, list[str]] = {}
        for name in names:
            match = re.fullmatch(rf"{re.escape(stem)}(\d+)-\S+", name)
            if match:
                owners.setdefault(int(match.group(1)), []).append(name)
        for pid, netnses in owners.items():
            if pid != os.getpid() and not os.path.exists(f"/proc/{pid}"):
                orphan = cls(f"{stem}{pid}")
                orphan.hosts = {n: Host(n, "") for n in netnses if not n.endswith("-srv")}
                orphan.destroy()

    def destroy(self) -> list[str]:
        """Kill what still runs in the namespaces, delete them; returns problems."""
        problems = []
        names = [host.netns for host in self.hosts.values()] + [self.server]
        for netns in names:
            if not os.path.exists(f"/run/netns/{netns}"):
                continue
            for sig in (signal.SIGTERM, signal.SIGKILL):
                pids = self.pids(netns)
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, sig)
                deadline = time.monotonic() + 3
                while pids and time.monotonic() < deadline:
                    pids = self.pids(netns)
                    time.sleep(0.05)
                if not pids:
                    break
            result = subprocess.run(["ip", "netns", "del", netns], capture_output=True, text=True, timeout=30)
            if result.returncode != 0:
                problems.append(f"{netns}: {result.stderr.strip()}")
        return problems
