"""Real Redis topologies on 127.0.0.1 for tests and benchmarks: a Sentinel set
(1 master + 2 replicas + 3 sentinels) and a 6-node Redis Cluster (3 masters,
3 replicas), all Debian redis-server processes, with failover timers of about
a second so a test can kill -9 a master and watch the failover.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path
from typing import Self

import redis

from .ports import free_port
from .processes import stop_process
from .redis_server import REDIS_SERVER

REDIS_CLI = shutil.which("redis-cli", path="/usr/bin:/usr/local/bin") or shutil.which("redis-cli")
SERVICE = "tf"
DOWN_AFTER_MS = 1000


def _wait(predicate, timeout: float, what: str, step: float = 0.05):
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (redis.RedisError, OSError) as exc:
            last = exc
        time.sleep(step)
    raise RuntimeError(f"timed out waiting for {what}" + (f" (last error: {last})" if last else ""))


class Node:
    """One redis-server process (data node or sentinel) with its own config file."""

    def __init__(self, workdir: Path, port: int, lines: list[str], sentinel: bool = False):
        self.workdir = workdir
        self.port = port
        self.sentinel = sentinel
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / ("sentinel.conf" if sentinel else "redis.conf")
        self.conf.write_text("\n".join([
            "bind 127.0.0.1", f"port {port}", f"dir {workdir}", "loglevel warning",
            f"logfile {workdir / 'log.txt'}", "protected-mode no", *lines]) + "\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> Node:
        args = [REDIS_SERVER, str(self.conf)] + (["--sentinel"] if self.sentinel else [])
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: self.client().ping(), 10, f"redis-server on port {self.port}")
        return self

    def client(self, **kw) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True, socket_timeout=2,
                           socket_connect_timeout=1, **kw)

    def info(self, section: str) -> dict:
        with self.client() as c:
            return c.info(section)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no goodbye to replicas, sentinels or cluster peers."""
        if self.alive:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None


def _data_node_lines(aof: bool, extra: list[str]) -> list[str]:
    return [
        'save ""',
        # A replica killed before its first sync refuses to fail over: sync at once.
        "repl-diskless-sync-delay 0",
        *(["appendonly yes", "appendfsync everysec"] if aof else ["appendonly no"]),
        *extra,
    ]


class _Topology:
    """Several redis-server processes that come up together or not at all."""

    def start(self) -> Self:
        try:
            return self._start()
        except BaseException:
            self.stop()  # no process left behind when the topology cannot come up
            raise


class SentinelSet(_Topology):
    """1 master + 2 replicas + 3 sentinels (quorum 2) on 127.0.0.1."""

    def __init__(self, workdir: Path, *, down_after_ms: int = DOWN_AFTER_MS, aof: bool = False,
                 master_lines: list[str] | None = None):
        self.workdir = Path(workdir)
        self.down_after_ms = down_after_ms
        ports = [free_port() for _ in range(6)]
        extra = master_lines or []
        self.data = [Node(self.workdir / f"redis-{p}", p, _data_node_lines(aof, extra)) for p in ports[:3]]
        self.sentinels = [
            Node(self.workdir / f"sentinel-{p}", p, [
                f"sentinel monitor {SERVICE} 127.0.0.1 {ports[0]} 2",
                f"sentinel down-after-milliseconds {SERVICE} {down_after_ms}",
                f"sentinel failover-timeout {SERVICE} {max(3 * down_after_ms, 3000)}",
                f"sentinel parallel-syncs {SERVICE} 2",
            ], sentinel=True)
            for p in ports[3:]
        ]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}"

    def _start(self) -> SentinelSet:
        master = self.data[0].start()
        for replica in self.data[1:]:
            replica.start()
            with replica.client() as c:
                c.replicaof("127.0.0.1", master.port)
        for replica in self.data[1:]:
            _wait(lambda r=replica: r.info("replication").get("master_link_status") == "up", 20,
                  f"replica {replica.port} in sync")
        for sentinel in self.sentinels:
            sentinel.start()
        # Every sentinel knows the others and both replicas before a test may kill anything.
        for sentinel in self.sentinels:
            def ready(s=sentinel) -> bool:
                with s.client() as c:
                    master = c.sentinel_master(SERVICE)
                    return int(master["num-other-sentinels"]) == 2 and int(master["num-slaves"]) == 2
            _wait(ready, 30, f"sentinel {sentinel.port} to see its peers and replicas")
        return self

    def master(self) -> Node:
        """The node the sentinels currently name as master."""
        for sentinel in self.sentinels:
            if not sentinel.alive:
                continue
            with contextlib.suppress(redis.RedisError, OSError), sentinel.client() as c:
                _, port = c.sentinel_get_master_addr_by_name(SERVICE)
                return next(n for n in self.data if n.port == int(port))
        raise RuntimeError("no sentinel answers")

    def wait_for_new_master(self, old: Node, timeout: float = 20) -> Node:
        def promoted():
            node = self.master()
            if node is old or not node.alive:
                return None
            return node if node.info("replication")["role"] == "master" else None
        try:
            return _wait(promoted, timeout, "a replica to be promoted")
        except RuntimeError as exc:
            # Sentinel stops acting for 30 s when its timer runs late (an overloaded machine)
            tilts = [line for s in self.sentinels for line in (s.workdir / "log.txt").read_text().splitlines()
                     if "tilt" in line]
            raise RuntimeError(f"{exc}; sentinel TILT events: {tilts or 'none'}") from None

    def stop(self) -> None:
        for node in self.sentinels + self.data:
            node.stop()


def _cluster_state(node: Node) -> str:
    with node.client() as c:
        raw = c.execute_command("CLUSTER", "INFO")
    if isinstance(raw, dict):
        return raw.get("cluster_state", "")
    text = raw.decode() if isinstance(raw, bytes) else raw
    return dict(line.split(":", 1) for line in text.split() if ":" in line).get("cluster_state", "")


def _slot_masters(node: Node, key: str) -> int | None:
    """The port of the master serving ``key``'s slot, as ``node`` sees it."""
    with node.client() as c:
        slot = int(c.execute_command("CLUSTER", "KEYSLOT", key))
        for start, end, master, *_ in c.execute_command("CLUSTER", "SLOTS"):
            if int(start) <= slot <= int(end):
                return int(master[1])
    return None


class ClusterSet(_Topology):
    """A 6-node Redis Cluster (3 masters, 3 replicas) on 127.0.0.1."""

    def __init__(self, workdir: Path, *, node_timeout_ms: int = DOWN_AFTER_MS, aof: bool = False):
        self.workdir = Path(workdir)
        ports = [free_port() for _ in range(6)]
        self.nodes = [
            Node(self.workdir / f"node-{p}", p, _data_node_lines(aof, [
                # the bus port is any free one, not port + 10000 (ports are picked at random)
                "cluster-enabled yes", f"cluster-port {free_port()}",
                f"cluster-config-file {self.workdir / f'node-{p}'}/nodes.conf",
                f"cluster-node-timeout {node_timeout_ms}",
                # Replicas of a failed master take over however stale: this is a test bed.
                "cluster-replica-validity-factor 0",
                "cluster-require-full-coverage no",
            ]))
            for p in ports
        ]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3])

    def _start(self) -> ClusterSet:
        for node in self.nodes:
            node.start()
        subprocess.run([REDIS_CLI, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes),
                        "--cluster-replicas", "1", "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        for node in self.nodes:
            _wait(lambda n=node: _cluster_state(n) == "ok", 30, f"cluster node {node.port} ok")
        # Every replica in sync, so a failover right away loses nothing acknowledged.
        for node in self.nodes:
            if node.info("replication")["role"] == "slave":
                _wait(lambda n=node: n.info("replication").get("master_link_status") == "up", 30,
                      f"cluster replica {node.port} in sync")
        return self

    def master_of(self, key: str) -> Node:
        port = _slot_masters(self.nodes[0], key)
        return next(n for n in self.nodes if n.port == port)

    def slots_of(self, master: Node) -> list[tuple[int, int]]:
        """The slot ranges ``master`` serves now."""
        with self.nodes[0].client() as c:
            return [(int(start), int(end)) for start, end, owner, *_ in c.execute_command("CLUSTER", "SLOTS")
                    if int(owner[1]) == master.port]

    def wait_for_new_master(self, key: str, old: Node, timeout: float = 20) -> Node:
        live = next(n for n in self.nodes if n.alive and n is not old)

        def promoted():
            port = _slot_masters(live, key)
            return next((n for n in self.nodes if n.port == port), None) if port != old.port else None
        return _wait(promoted, timeout, f"a new master for {key!r}")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
