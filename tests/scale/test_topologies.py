"""The state backend on a real Sentinel set and a real Redis Cluster: every
repository operation, the pipelined path finding a new master after a
switch-over (READONLY from the old one), migrate-keys, and an unreachable
Sentinel set or cluster behaving like an unreachable Redis."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.crc import key_slot

from telefeatures.state.backend import BoundedClient, StateBackend
from telefeatures.state.migrate import migrate_keys
from telefeatures.state.redis_pipeline import PipelinedRedis
from telefeatures.state.repository import CallerRecord, RejectedCall, StateUnavailable
from telefeatures.state.schema import KeySchema
from tests.scale.failover import Load
from tests.support.redis_topologies import SERVICE, ClusterSet, SentinelSet
from tests.testbed.services import FeatureServer

REC = CallerRecord(number="2125551234", name="Bob", presentation=0, time=1700000000.125, withheld=False)


@pytest.fixture(scope="module")
def sentinel_set(tmp_path_factory):
    topology = SentinelSet(tmp_path_factory.mktemp("sentinel")).start()
    yield topology
    topology.stop()


@pytest.fixture(scope="module")
def cluster_set(tmp_path_factory):
    topology = ClusterSet(tmp_path_factory.mktemp("cluster")).start()
    yield topology
    topology.stop()


async def exercise(backend: StateBackend) -> None:
    """Every repository operation, with and without a tenant."""
    repo = backend.repository
    for tenant in (None, "acme"):
        assert await repo.clear("100", tenant) >= 0
        await repo.set_blocked("100", True, tenant)
        await repo.record_caller("100", REC, tenant)
        assert await repo.is_blocked("100", tenant)
        assert await repo.last_caller("100", tenant) == REC
        assert await repo.has_state("100", tenant)
        snap = await repo.snapshot("100", tenant)  # a MULTI over one hash tag: one slot
        assert (snap.cidblock, snap.last_caller) == (True, REC)
        assert "100" in await repo.extensions(tenant)
        # reject list, anonymous rejection, last refused call: the same slot
        await repo.set_anon_reject("100", True, tenant)
        assert await repo.add_rejected_number("100", "5551234567", 1.0, 5, tenant)
        await repo.record_rejected("100", RejectedCall("5551234567", "", 0, 2.0, "blocked-caller"), tenant)
        screening = await repo.screening("100", "5551234567", tenant)
        assert screening.listed and screening.anon_reject
        snap = await repo.snapshot("100", tenant)
        assert snap.anon_reject and snap.reject_list == (("5551234567", 1.0),)
        assert snap.last_rejected.reason == "blocked-caller"
        assert await repo.reject_list("100", tenant) == [("5551234567", 1.0)]
        assert await repo.remove_rejected_number("100", "5551234567", tenant)
        assert await repo.clear_reject_list("100", tenant) == 0
        await repo.set_anon_reject("100", False, tenant)
        await repo.set_blocked("100", False, tenant)
        assert not await repo.is_blocked("100", tenant)
        assert await repo.clear("100", tenant) == 2
    assert await backend.ping()


@pytest.mark.parametrize("pipelining", [True, False])
async def test_sentinel_backend(sentinel_set, tmp_path, pipelining):
    backend = StateBackend.open(sentinel_set.url, tmp_path, pipelining=pipelining)
    try:
        assert isinstance(backend.client, PipelinedRedis if pipelining else BoundedClient)
        assert backend.description == f"Sentinel service {SERVICE!r} via " + ",".join(
            f"127.0.0.1:{s.port}" for s in sentinel_set.sentinels) + " (db 0)"
        await exercise(backend)
        assert await backend.check_schema() and not backend.repository.legacy_reads
    finally:
        await backend.close()


@pytest.mark.parametrize("pipelining", [True, False])
async def test_cluster_backend(cluster_set, tmp_path, pipelining):
    backend = StateBackend.open(cluster_set.url, tmp_path, pipelining=pipelining)
    try:
        assert isinstance(backend.client, BoundedClient)
        await exercise(backend)
        # extensions() scans every master, not one node
        exts = [str(200 + n) for n in range(60)]
        for ext in exts:
            await backend.repository.set_blocked(ext, True)
        masters = {cluster_set.master_of(KeySchema().cidblock(ext)).port for ext in exts}
        assert len(masters) == 3
        assert set(exts) <= set(await backend.repository.extensions())
    finally:
        await backend.close()


async def test_cluster_migrate_keys(cluster_set, tmp_path):
    """Old keys of one extension sit in different slots; migrate-keys still
    moves each to its hash-tagged name (one key per script: old and new name
    are in different slots, so the cluster cannot run it atomically; the
    client copies and deletes key by key)."""
    keys = KeySchema("mig:")
    backend = StateBackend.open(cluster_set.url, tmp_path, key_prefix="mig:")
    try:
        admin = backend.admin
        assert key_slot(keys.legacy_key("cidblock", "100").encode()) != key_slot(
            keys.legacy_key("lastcaller", "100").encode())
        await admin.set(keys.legacy_key("cidblock", "100"), "1")
        await admin.hset(keys.legacy_key("lastcaller", "100"), mapping=REC.to_fields())
        report = await migrate_keys(admin, keys)
        assert (report.moved, report.failed) == (2, 0), report
        backend.repository.legacy_reads = False
        assert await backend.repository.is_blocked("100")
        assert await backend.repository.last_caller("100") == REC
        assert await admin.exists(keys.legacy_key("cidblock", "100")) == 0
        again = await migrate_keys(admin, keys)
        assert (again.moved, again.superseded, again.failed) == (0, 0, 0)
    finally:
        await backend.close()


async def test_pipelined_connection_follows_a_switch_over(sentinel_set, tmp_path):
    """SENTINEL FAILOVER demotes the master while our pipelined connection is
    open on it: the next write gets READONLY (or the connection closes), which
    counts as a dropped connection; the retry asks Sentinel and lands on the
    new master. No call sees an error."""
    backend = StateBackend.open(sentinel_set.url, tmp_path)
    try:
        repo = backend.repository
        await repo.set_blocked("300", True)
        old = sentinel_set.master()
        with sentinel_set.sentinels[0].client() as c:
            c.execute_command("SENTINEL", "FAILOVER", SERVICE)
        new = sentinel_set.wait_for_new_master(old)

        def demoted() -> bool:
            return old.info("replication")["role"] == "slave"
        deadline = time.monotonic() + 20
        while not demoted() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert demoted()
        await repo.set_blocked("301", True)  # would be READONLY on the old master
        with new.client() as c:
            assert c.get(KeySchema().cidblock("301")) == "1"
            assert c.get(KeySchema().cidblock("300")) == "1"
    finally:
        await backend.close()


# ---------------------------------------------------------------- unreachable, then there


async def outbound_load(port: int, seconds: float) -> Load:
    load = Load("127.0.0.1", port, workers=2, pause=0.05)
    await load.run(seconds=seconds)
    return load


@pytest.mark.parametrize("kind", ["sentinel", "cluster"])
async def test_unreachable_topology_then_reachable(tmp_path, kind):
    """Nothing listening yet: calls get the privacy default at once, the log
    says why, and the server picks the topology up by itself once it starts."""
    topology = SentinelSet(tmp_path / "topo") if kind == "sentinel" else ClusterSet(tmp_path / "topo")
    server = FeatureServer(tmp_path / "server", topology.url, env={"TELEFEATURES_REDIS_TIMEOUT": "0.5"})
    try:
        server.start()
        before = await outbound_load(server.port, 1.0)
        outbound = [r for r in before.records if r.route == "outbound"]
        assert outbound and all(r.status == "ERROR" and r.presentation == "prohib" for r in outbound)
        assert max(r.seconds for r in before.records) <= 1.0
        log = server.log_text()
        assert "is not reachable yet at" in log and "serving with on_state_error=withhold" in log
        assert ("Sentinel service" if kind == "sentinel" else "Redis Cluster via") in log
        topology.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            after = await outbound_load(server.port, 0.5)
            if after.acked_writes() and all(r.status == "OK" for r in after.records[-4:]):
                break
        else:
            raise AssertionError("the server never used the topology once it was up")
    finally:
        server.stop()
        topology.stop()


async def test_readonly_counts_as_a_dropped_connection(tmp_path):
    """Behind Sentinel, a write that meets a replica (a demoted master answers
    READONLY) is retried on a fresh connection to wherever Sentinel now points;
    the caller sees no error. On a plain redis:// URL READONLY stays an error."""
    import redis.asyncio as aioredis
    from redis.exceptions import ResponseError

    from tests.support.ports import free_port
    from tests.support.redis_topologies import Node

    master = Node(tmp_path / "master", free_port(), ['save ""']).start()
    replica = Node(tmp_path / "replica", free_port(), ['save ""', f"replicaof 127.0.0.1 {master.port}"]).start()
    asked: list[int] = []

    async def locate() -> tuple[str, int]:
        # Sentinel's answer: stale (the replica) the first time, then the master
        port = replica.port if not asked else master.port
        asked.append(port)
        return "127.0.0.1", port

    full = aioredis.Redis(port=master.port)
    client = PipelinedRedis.for_sentinel(full, locate, None, None, 0, timeout=1.0)
    plain = PipelinedRedis.wrap(aioredis.Redis(port=replica.port), f"redis://127.0.0.1:{replica.port}/0", 1.0)
    try:
        assert await client.set("k", "v") is True
        assert asked == [replica.port, master.port]
        with master.client() as c:
            assert c.get("k") == "v"
        with pytest.raises(ResponseError, match="READONLY"):
            await plain.set("k", "w")
    finally:
        await client.aclose()
        await plain.aclose()
        replica.stop()
        master.stop()


async def test_cluster_pipeline_follows_moved(cluster_set, tmp_path):
    """A stale slot map sends a command to the wrong master; its MOVED reply
    makes the client re-read the map and retry there: the call sees no error."""
    from telefeatures.state.cluster_pipeline import PipelinedCluster

    backend = StateBackend.open(cluster_set.url, tmp_path)
    try:
        assert isinstance(backend.client._full, PipelinedCluster)  # noqa: SLF001 - which path is under test
        key = KeySchema().cidblock("777")
        await backend.repository.set_blocked("777", True)
        full = backend.admin
        slot = full.keyslot(key)
        right = full.nodes_manager.slots_cache[slot][0]
        wrong = next(n for n in full.nodes_manager.startup_nodes.values()
                     if n.port != right.port and n.server_type != "replica")
        full.nodes_manager.slots_cache[slot] = [wrong]
        assert full.get_node_from_key(key).port == wrong.port
        assert await backend.repository.is_blocked("777")  # MOVED, refresh, retry
        assert full.get_node_from_key(key).port == right.port
    finally:
        await backend.close()
