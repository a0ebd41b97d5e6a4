"""``telefeatures state import-astdb``: a FreePBX-style blacklist into the
per-extension reject lists and anonymous call rejection."""

from __future__ import annotations

import pytest

from tests.support.callerids import HOSTILE_NUMBERS
from tests.support.redis_server import TF_KEYS
from tests.unit.test_astdb_import import MTIME, make_astdb, run_cli, skipped

ROWS = [
    ("/blacklist/5551234567", "telemarketer"),
    ("/blacklist/+442071234567", ""),
    ("/blacklist/blocked", "1"),
    ("/blacklist/1002/5559990000", "per extension"),
    ("/blacklist/bad ext/5559990000", ""),
    ("/blacklist/5551234&PJSIP/evil", ""),  # splits into 2 parts: refused as a bad extension
    ("/blacklist/٥٥٥١٢٣٤٥٦٧", ""),
    ("/blacklist/" + "5" * 1024, ""),
    ("/CIDBlock/1000", "1"),
]


@pytest.fixture
def astdb(tmp_path):
    return make_astdb(tmp_path / "astdb.sqlite3", ROWS)


def test_pbx_wide_blacklist_needs_named_extensions(astdb, redis_url, redis_sync):
    result = run_cli("state", "import-astdb", str(astdb), redis_url=redis_url)
    skips = skipped(result.stdout)
    assert skips["/blacklist/5551234567"].startswith("a PBX-wide blacklist")
    assert skips["/blacklist/blocked"].startswith("a PBX-wide blacklist")
    # the per-extension entry needs no naming
    assert redis_sync.zrange(TF_KEYS.reject_list("1002"), 0, -1, withscores=True) == [("5559990000", MTIME)]
    assert redis_sync.exists(TF_KEYS.reject_list("1000"), TF_KEYS.anon_reject("1000")) == 0


def test_blacklist_for_named_extensions(astdb, redis_url, redis_sync):
    result = run_cli("state", "import-astdb", str(astdb), "--blacklist-for", "1000", "--blacklist-for", "1001",
                     redis_url=redis_url)
    assert "imported 5 blacklist number(s) into the reject lists of 3 extension(s); " \
           "anonymous call rejection on for: 1000, 1001" in result.stdout, result.stdout
    for ext in ("1000", "1001"):
        assert sorted(redis_sync.zrange(TF_KEYS.reject_list(ext), 0, -1)) == ["+442071234567", "5551234567"]
        assert redis_sync.get(TF_KEYS.anon_reject(ext)) == "1"
    assert redis_sync.get(TF_KEYS.cidblock("1000")) == "1"
    skips = skipped(result.stdout)
    assert skips["/blacklist/bad ext/5559990000"] == "invalid extension"
    assert skips["/blacklist/5551234&PJSIP/evil"] == "invalid extension"
    assert skips["/blacklist/٥٥٥١٢٣٤٥٦٧"] == "not a dialable number"
    assert skips["/blacklist/" + "5" * 1024] == "not a dialable number"
    stored = [n for ext in ("1000", "1001", "1002") for n in redis_sync.zrange(TF_KEYS.reject_list(ext), 0, -1)]
    assert all(n.lstrip("+").isascii() and n.lstrip("+").isdigit() and len(n) <= 21 for n in stored)


def test_dry_run_writes_nothing(astdb, redis_url, redis_sync):
    result = run_cli("state", "import-astdb", str(astdb), "--dry-run", "--blacklist-for", "1000",
                     redis_url=redis_url)
    assert "would import 3 blacklist number(s) into the reject lists of 2 extension(s)" in result.stdout
    assert redis_sync.keys("*") == []


def test_a_second_import_does_not_undo_a_star80(astdb, redis_url, redis_sync):
    run_cli("state", "import-astdb", str(astdb), "--blacklist-for", "1001", redis_url=redis_url)
    assert redis_sync.zcard(TF_KEYS.reject_list("1001")) == 2
    redis_sync.delete(TF_KEYS.reject_list("1001"))  # the user pressed *80
    result = run_cli("state", "import-astdb", str(astdb), "--blacklist-for", "1001", redis_url=redis_url)
    assert "a *80 since is not undone" in skipped(result.stdout)["/blacklist/5551234567"]
    assert redis_sync.exists(TF_KEYS.reject_list("1001")) == 0
    run_cli("state", "import-astdb", str(astdb), "--blacklist-for", "1001", "--overwrite", redis_url=redis_url)
    assert redis_sync.zcard(TF_KEYS.reject_list("1001")) == 2


def test_numbers_join_what_a_list_holds(astdb, redis_url, redis_sync):
    redis_sync.zadd(TF_KEYS.reject_list("1001"), {"5550001111": 5.0})
    run_cli("state", "import-astdb", str(astdb), "--blacklist-for", "1001", redis_url=redis_url)
    assert sorted(redis_sync.zrange(TF_KEYS.reject_list("1001"), 0, -1)) == ["+442071234567", "5550001111",
                                                                             "5551234567"]


def test_anonymous_rejection_already_on_is_left_alone(astdb, redis_url, redis_sync):
    redis_sync.set(TF_KEYS.anon_reject("1001"), "1")
    result = run_cli("state", "import-astdb", str(astdb), "--blacklist-for", "1001", redis_url=redis_url)
    assert "use --overwrite" in skipped(result.stdout)["/blacklist/blocked"]


def test_size_limit_applies(tmp_path, redis_url, redis_sync, monkeypatch):
    monkeypatch.setenv("TELEFEATURES_FEATURES__CALLBLOCK_MAX_ENTRIES", "2")
    rows = [(f"/blacklist/1000/555000000{i}", "") for i in range(4)]
    result = run_cli("state", "import-astdb", str(make_astdb(tmp_path / "a.sqlite3", rows)), redis_url=redis_url)
    assert redis_sync.zcard(TF_KEYS.reject_list("1000")) == 2
    assert sum("reject list of 1000 full" in why for why in skipped(result.stdout).values()) == 2


@pytest.mark.parametrize("number", [n for n in HOSTILE_NUMBERS if "/" not in n and "\x00" not in n])
def test_hostile_blacklist_numbers_are_skipped(tmp_path, redis_url, redis_sync, number):
    db = make_astdb(tmp_path / "h.sqlite3", [(f"/blacklist/1000/{number}", "")])
    run_cli("state", "import-astdb", str(db), redis_url=redis_url)
    assert redis_sync.keys("*") == []


def test_bad_blacklist_for_extension(astdb, redis_url):
    result = run_cli("state", "import-astdb", str(astdb), "--blacklist-for", "10 00", redis_url=redis_url)
    assert result.exit_code == 2 and "not a valid extension" in result.output
