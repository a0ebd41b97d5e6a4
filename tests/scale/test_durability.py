"""What can be lost in which failure, with the Redis settings the README
recommends, on real redis-server processes:

- ``appendonly yes`` + ``appendfsync everysec``: Redis write()s the AOF before
  it answers, so a killed Redis process (kill -9) loses no acknowledged write;
  only the machine itself dying can take the last second not yet fsync'ed.
- ``min-replicas-to-write 1`` + ``min-replicas-max-lag 1`` on a Sentinel
  master: once no replica has acknowledged for a second (a partition, or
  replicas down), the master refuses writes (NOREPLICAS), so *81 answers with
  the error prompt instead of an acknowledgement a failover could lose; reads,
  and so the outbound policy, keep working.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from telefeatures.state.backend import StateBackend
from telefeatures.state.repository import StateUnavailable
from tests.support.ports import free_port
from tests.support.redis_topologies import Node, SentinelSet


async def test_aof_everysec_keeps_every_acknowledged_write_across_kill_9(tmp_path, figures):
    port = free_port()
    lines = ['save ""', "appendonly yes", "appendfsync everysec"]
    node = Node(tmp_path / "redis", port, lines).start()
    backend = StateBackend.open(f"redis://127.0.0.1:{port}/0", tmp_path)
    acked = []
    try:
        for n in range(2000):  # back to back, then kill at once: the last ones are < 1 s old
            await backend.repository.set_blocked(str(10000 + n), True)
            acked.append(str(10000 + n))
        node.kill()
        node = Node(tmp_path / "redis", port, lines).start()
        lost = [ext for ext in acked if not await backend.repository.is_blocked(ext)]
        figures(f"[aof everysec] acknowledged={len(acked)} lost after kill -9 and restart={len(lost)}")
        assert lost == []
    finally:
        await backend.close()
        node.stop()


@pytest.fixture
def guarded_sentinel_set(tmp_path):
    topology = SentinelSet(tmp_path / "sentinel",
                           master_lines=["min-replicas-to-write 1", "min-replicas-max-lag 1"]).start()
    yield topology
    topology.stop()


async def test_min_replicas_to_write_refuses_writes_no_replica_has(guarded_sentinel_set, tmp_path, figures):
    topology = guarded_sentinel_set
    backend = StateBackend.open(topology.url, tmp_path)
    repo = backend.repository
    try:
        await repo.set_blocked("1000", True)  # replicas there: acknowledged
        replicas = [n for n in topology.data if n is not topology.master()]
        for replica in replicas:
            replica.stop()
        deadline = time.monotonic() + 15
        refused = None
        while time.monotonic() < deadline:
            try:
                await repo.set_blocked("1001", True)
            except StateUnavailable as exc:
                refused = str(exc)
                break
            await asyncio.sleep(0.2)
        figures(f"[min-replicas-to-write] write without replicas refused: {refused}")
        assert refused is not None and "NOREPLICAS" in refused
        assert await repo.is_blocked("1000")  # reads go on: outbound calls keep their presentation
        for replica in replicas:
            replica.start()
        deadline = time.monotonic() + 20
        while True:
            try:
                await repo.set_blocked("1002", True)
                break
            except StateUnavailable:
                assert time.monotonic() < deadline, "writes did not come back with the replicas"
                await asyncio.sleep(0.2)
    finally:
        await backend.close()
