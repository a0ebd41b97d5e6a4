"""`telefeatures state migrate-keys`: version-1 keys moved to the hash-tagged
layout on a real Redis, idempotent, counted, and safe while a server writes."""

from __future__ import annotations

import asyncio

from click.testing import CliRunner

from telefeatures.cli import cli
from telefeatures.state.backend import StateBackend
from telefeatures.state.migrate import migrate_keys, needs_legacy_reads
from telefeatures.state.repository import CallerRecord
from telefeatures.state.schema import KeySchema

REC = CallerRecord(number="2125551234", name="Bob", presentation=0, time=1700000000.125, withheld=False)
NEWER = CallerRecord(number="3125550000", name="Newer", presentation=0, time=1700000500.0, withheld=False)


def _old_layout(redis_sync, count: int) -> None:
    for n in range(count):
        redis_sync.set(f"tf:ext:{1000 + n}:cidblock", "1")
        redis_sync.hset(f"tf:ext:{1000 + n}:lastcaller", mapping=REC.to_fields())


def test_cli_dry_run_then_migrate_then_nothing_left(redis_url, redis_sync):
    _old_layout(redis_sync, 3)
    redis_sync.set("tf:ext:9:unrelated", "x")  # not ours: left alone
    redis_sync.set("other:ext:5:cidblock", "1")  # another prefix: not even seen

    dry = CliRunner().invoke(cli, ["--redis-url", redis_url, "state", "migrate-keys", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would move 6 key(s)" in dry.output and "left alone 1 key(s)" in dry.output
    assert redis_sync.exists("tf:ext:1000:cidblock") and not redis_sync.exists("tf:{1000}:cidblock")
    assert redis_sync.get("tf:schema") is None

    result = CliRunner().invoke(cli, ["--redis-url", redis_url, "state", "migrate-keys"])
    assert result.exit_code == 0, result.output
    assert "moved 6 key(s)" in result.output
    assert sorted(redis_sync.keys("tf:*")) == [
        "tf:ext:9:unrelated", "tf:schema",
        "tf:{1000}:cidblock", "tf:{1000}:lastcaller", "tf:{1001}:cidblock", "tf:{1001}:lastcaller",
        "tf:{1002}:cidblock", "tf:{1002}:lastcaller"]
    assert redis_sync.hgetall("tf:{1001}:lastcaller") == REC.to_fields()
    assert redis_sync.get("tf:schema") == "2"
    assert redis_sync.get("other:ext:5:cidblock") == "1"

    again = CliRunner().invoke(cli, ["--redis-url", redis_url, "state", "migrate-keys"])
    assert again.exit_code == 0 and "moved 0 key(s)" in again.output
    assert "schema version before: 2" in again.output

    shown = CliRunner().invoke(cli, ["--redis-url", redis_url, "state", "show"])
    assert [line.split(":")[0] for line in shown.stdout.splitlines()] == ["1000", "1001", "1002"]


async def test_newer_value_written_before_the_migration_wins(backend, redis_sync):
    redis_sync.hset("tf:ext:1000:lastcaller", mapping=REC.to_fields())
    redis_sync.set("tf:ext:1001:cidblock", "1")
    repo = backend.repository
    await repo.record_caller("1000", NEWER)  # the upgraded server took a call first
    await repo.set_blocked("1001", False)  # and the user pressed *82: both layouts gone
    report = await migrate_keys(backend.admin, backend.keys)
    assert (report.moved, report.superseded) == (0, 1)
    repo.legacy_reads = False
    assert await repo.last_caller("1000") == NEWER
    assert not await repo.is_blocked("1001")
    assert redis_sync.keys("tf:ext:*") == []


async def test_migration_while_serving_loses_nothing(redis_url, redis_sync, tmp_path):
    """A server keeps flipping *81/*82 and recording callers while the migration
    runs: afterwards every extension holds exactly the server's last write."""
    count = 400
    _old_layout(redis_sync, count)
    server = StateBackend.open(redis_url, tmp_path)
    migrator = StateBackend.open(redis_url, tmp_path, pipelining=False)
    assert server.repository.legacy_reads  # until the schema check says otherwise
    last: dict[str, bool] = {}

    async def serve() -> None:
        for round_ in range(3):
            for n in range(0, count, 3):
                ext = str(1000 + n)
                blocked = round_ % 2 == 1
                await server.repository.set_blocked(ext, blocked)
                await server.repository.record_caller(ext, NEWER)
                last[ext] = blocked
                assert await server.repository.is_blocked(ext) is blocked
            await asyncio.sleep(0)

    try:
        report, _ = await asyncio.gather(migrate_keys(migrator.admin, migrator.keys), serve())
        assert report.failed == 0 and count <= report.moved + report.superseded <= 2 * count
        server.repository.legacy_reads = False
        assert redis_sync.keys("tf:ext:*") == []
        for n in range(count):
            ext = str(1000 + n)
            expected = last.get(ext, True)  # untouched extensions keep their old "blocked"
            assert await server.repository.is_blocked(ext) is expected, ext
            expected_caller = NEWER if ext in last else REC
            assert await server.repository.last_caller(ext) == expected_caller, ext
    finally:
        await server.close()
        await migrator.close()


async def test_schema_check(backend, redis_sync):
    keys = KeySchema()
    redis_sync.set("tf:ext:1000:cidblock", "1")
    assert await needs_legacy_reads(backend.client, keys) is True
    assert await needs_legacy_reads(backend.client, keys, scan=False) is True
    redis_sync.delete("tf:ext:1000:cidblock")
    assert await needs_legacy_reads(backend.client, keys, scan=False) is True
    # nothing old left: a scan records version 2, and from then on it is one GET
    assert await needs_legacy_reads(backend.client, keys) is False
    assert redis_sync.get("tf:schema") == "2"
    assert await needs_legacy_reads(backend.client, keys, scan=False) is False
    assert await backend.check_schema() is True and backend.repository.legacy_reads is False
