"""``telefeatures state`` for the reject list, anonymous rejection and the last refused call."""

from __future__ import annotations

import json

import pytest

from tests.support.callerids import HOSTILE_NUMBERS
from tests.support.redis_server import TF_KEYS
from tests.unit.test_cli import run_cli


def test_block_unblock_anonreject_show(redis_url, redis_sync):
    result = run_cli("state", "set", "1000", "--anonreject", "on", "--block", "5551234567", "--block",
                     "+442071234567", redis_url=redis_url)
    assert result.exit_code == 0, result.output
    assert redis_sync.get(TF_KEYS.anon_reject("1000")) == "1"
    assert redis_sync.zrange(TF_KEYS.reject_list("1000"), 0, -1) == ["5551234567", "+442071234567"]

    shown = run_cli("state", "show", "1000", redis_url=redis_url).stdout.splitlines()
    assert shown[0] == "1000: cidblock=off last_caller=none anonreject=on reject_list=2"
    assert shown[1].startswith("  blocked 5551234567 since ")
    data = json.loads(run_cli("state", "show", "1000", "--json", redis_url=redis_url).stdout)
    assert data["anonreject"] is True
    assert [e["number"] for e in data["reject_list"]] == ["5551234567", "+442071234567"]
    assert all(e["added"] for e in data["reject_list"]) and data["last_rejected"] is None

    assert run_cli("state", "set", "1000", "--unblock", "5551234567", "--anonreject", "off",
                   redis_url=redis_url).exit_code == 0
    assert redis_sync.zrange(TF_KEYS.reject_list("1000"), 0, -1) == ["+442071234567"]
    assert redis_sync.exists(TF_KEYS.anon_reject("1000")) == 0
    assert run_cli("state", "set", "1000", "--clear-blocked", redis_url=redis_url).exit_code == 0
    assert redis_sync.keys("*") == []


def test_show_last_refused_call(redis_url, redis_sync):
    redis_sync.hset(TF_KEYS.last_rejected("1000"), mapping={"number": "5551234567", "name": "Pest", "pres": "0",
                                                         "time": "1700000000.0", "reason": "blocked-caller"})
    output = run_cli("state", "show", "1000", redis_url=redis_url).stdout
    assert "last refused call: 5551234567 (blocked-caller) at 2023-" in output
    data = json.loads(run_cli("state", "show", "--json", redis_url=redis_url).stdout)
    assert data[0]["last_rejected"]["reason"] == "blocked-caller"


def test_clear_removes_every_kind(redis_url, redis_sync):
    run_cli("state", "set", "1000", "--cidblock", "on", "--anonreject", "on", "--block", "5551234567",
            redis_url=redis_url)
    result = run_cli("state", "clear", "1000", redis_url=redis_url)
    assert result.stdout == "1000: removed 3 key(s)\n"
    assert redis_sync.keys("*") == []


@pytest.mark.parametrize("number", [n for n in HOSTILE_NUMBERS if "\x00" not in n])
def test_hostile_numbers_are_never_listed(redis_url, redis_sync, number):
    result = run_cli("state", "set", "1000", "--block", number, "--anonreject", "on", redis_url=redis_url)
    assert result.exit_code == 2
    assert "--block" in result.output and "not a dialable number" in result.output
    assert redis_sync.keys("*") == []  # nothing of the command happened


def test_block_respects_the_size_limit(redis_url, redis_sync):
    env = {"TELEFEATURES_FEATURES__CALLBLOCK_MAX_ENTRIES": "2"}
    for number in ("5550000001", "5550000002", "5550000003"):
        assert run_cli("state", "set", "1000", "--block", number, redis_url=redis_url, env=env).exit_code == 0
    assert redis_sync.zrange(TF_KEYS.reject_list("1000"), 0, -1) == ["5550000002", "5550000003"]
