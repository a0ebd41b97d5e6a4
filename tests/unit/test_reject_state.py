"""The reject list, anonymous rejection and last refused call in Redis: key
schema and repository, on a real Redis."""

from __future__ import annotations

import pytest

from telefeatures.state.repository import RejectedCall, StateUnavailable
from telefeatures.state.schema import KeySchema


def test_new_key_names():
    keys = KeySchema()
    assert keys.reject_list("1000") == "tf:{1000}:rejectlist"
    assert keys.anon_reject("1000") == "tf:{1000}:anonreject"
    assert keys.last_rejected("1000", "acme") == "tf:{acme:1000}:lastrejected"
    for key in keys.extension_keys("alice-desk"):
        assert keys.extension_of(key) == "alice-desk"
    assert len(keys.extension_keys("1000")) == 5
    with pytest.raises(ValueError):
        keys.reject_list("10 00")


@pytest.fixture
def repo(backend):
    return backend.repository


async def test_reject_list_oldest_first_with_times(repo, redis_sync):
    assert await repo.add_rejected_number("1000", "5550000002", 200.0, 5)
    assert await repo.add_rejected_number("1000", "5550000001", 100.0, 5)
    assert not await repo.add_rejected_number("1000", "5550000001", 300.0, 5)  # already there: first time kept
    assert await repo.reject_list("1000") == [("5550000001", 100.0), ("5550000002", 200.0)]
    assert redis_sync.type(KeySchema().reject_list("1000")) == "zset"


async def test_reject_list_size_limit(repo):
    for i in range(7):
        await repo.add_rejected_number("1000", f"555000000{i}", 100.0 + i, 4)
    assert [n for n, _ in await repo.reject_list("1000")] == [f"555000000{i}" for i in (3, 4, 5, 6)]


async def test_screening(repo):
    assert (await repo.screening("1000", "5551234567")) == (await repo.screening("1000", ""))
    await repo.add_rejected_number("1000", "5551234567", 1.0, 5)
    await repo.set_anon_reject("1000", True)
    found = await repo.screening("1000", "5551234567")
    assert found.listed and found.anon_reject
    assert not (await repo.screening("1000", "")).listed
    assert not (await repo.screening("1001", "5551234567")).listed


async def test_remove_and_clear(repo):
    await repo.add_rejected_number("1000", "5551234567", 1.0, 5)
    await repo.add_rejected_number("1000", "5559876543", 2.0, 5)
    assert await repo.remove_rejected_number("1000", "5551234567")
    assert not await repo.remove_rejected_number("1000", "5551234567")
    assert await repo.clear_reject_list("1000") == 1
    assert await repo.clear_reject_list("1000") == 0


async def test_snapshot_and_clear_know_every_kind(repo, redis_sync):
    await repo.set_blocked("1000", True)
    await repo.set_anon_reject("1000", True)
    await repo.add_rejected_number("1000", "5551234567", 5.0, 5)
    await repo.record_rejected("1000", RejectedCall("5551234567", "Pest", 0, 6.0, "blocked-caller"))
    st = await repo.snapshot("1000")
    assert st.cidblock and st.anon_reject and st.reject_list == (("5551234567", 5.0),)
    assert st.last_rejected == RejectedCall("5551234567", "Pest", 0, 6.0, "blocked-caller")
    assert await repo.extensions() == ["1000"]
    assert await repo.has_state("1000")
    assert await repo.clear("1000") == 4
    assert redis_sync.keys("*") == []


async def test_redis_down(down_backend):
    repo = down_backend.repository
    for call in (repo.screening("1000", "1"), repo.add_rejected_number("1000", "5551234567", 1.0, 5),
                 repo.set_anon_reject("1000", True), repo.clear_reject_list("1000"), repo.reject_list("1000")):
        with pytest.raises(StateUnavailable):
            await call
