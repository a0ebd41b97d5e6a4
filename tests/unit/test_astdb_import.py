"""``telefeatures state import-astdb``: AstDB CIDBlock / LastCIDNum into Redis."""

from __future__ import annotations

import hashlib
import os
import sqlite3

import pytest
from click.testing import CliRunner

from telefeatures.cli import cli
from telefeatures.features.numbers import NumberRules
from telefeatures.astdb_import import plan_import, read_astdb
from tests.support.callerids import HOSTILE_NUMBERS
from telefeatures.state.schema import CIDBLOCK_ON, KeySchema
from tests.support.redis_server import TF_KEYS

ROWS = [
    ("/CIDBlock/1000", "1"),
    ("/CIDBlock/1001", "0"),
    ("/CIDBlock/1002", "yes"),
    ("/CIDBlock/1003", "maybe"),
    ("/CIDBlock/10 00", "1"),
    ("/CIDBlock/1004/extra", "1"),
    ("/CIDBlock/*", "1"),
    ("/CIDBlock", "1"),
    ("/cidblock/1005", "1"),  # families are case-sensitive, like AstDB
    ("/LastCIDNum/1000", "2125551234"),
    ("/LastCIDNum/1001", "5551234&PJSIP/evil"),
    ("/LastCIDNum/1002", "anonymous"),
    ("/LastCIDNum/1003", ""),
    ("/LastCIDNum/1006", " 3125550000 "),
    ("/LastCIDNum/bad:ext", "2125551234"),
    ("/SIP/Registry/1000", "10.0.0.5:5060"),
    ("/Other/1000", "x"),
]
MTIME = 1_700_000_000


def make_astdb(path, rows=ROWS, *, null_value_key: str | None = None):
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE astdb(key VARCHAR(256), value VARCHAR(256), PRIMARY KEY(key))")
    db.executemany("INSERT INTO astdb(key, value) VALUES (?, ?)", rows)
    if null_value_key:
        db.execute("INSERT INTO astdb(key, value) VALUES (?, NULL)", (null_value_key,))
    db.commit()
    db.close()
    os.utime(path, (MTIME, MTIME))
    return path


@pytest.fixture
def astdb(tmp_path):
    return make_astdb(tmp_path / "astdb.sqlite3")


def run_cli(*args, redis_url: str | None = None):
    base = ["--redis-url", redis_url] if redis_url else []
    return CliRunner().invoke(cli, [*base, *args], catch_exceptions=False)


def skipped(output: str) -> dict[str, str]:
    out = {}
    for line in output.splitlines():
        if line.startswith("skipped "):
            key, _, rest = line[len("skipped "):].partition(" = ")
            out[key] = rest.rsplit(": ", 1)[1] if ": " in rest else rest
    return out


EXPECTED_SKIPS = {
    "/CIDBlock/1003": "not an on/off value",
    "/CIDBlock/10 00": "invalid extension",
    "/CIDBlock/1004/extra": "invalid extension",
    "/CIDBlock/*": "invalid extension",
    "/LastCIDNum/1001": "not a dialable number (invalid-number)",
    "/LastCIDNum/1002": "not a dialable number (anonymous)",
    "/LastCIDNum/1003": "not a dialable number (anonymous)",
    "/LastCIDNum/bad:ext": "invalid extension",
}


def test_dry_run_reports_and_writes_nothing(astdb, redis_url, redis_sync):
    result = run_cli("state", "import-astdb", str(astdb), "--dry-run", redis_url=redis_url)
    assert result.exit_code == 0, result.output
    assert "would import 3 CIDBlock value(s) and 2 LastCIDNum value(s)" in result.output
    assert skipped(result.output) == EXPECTED_SKIPS
    assert redis_sync.keys("*") == []


def test_dry_run_reads_redis_so_it_fails_like_the_real_run_when_redis_is_down(astdb, closed_port):
    # (it used to report counts without looking at Redis, which the real run then did not import)
    for extra in (["--dry-run"], []):
        result = run_cli("state", "import-astdb", str(astdb), *extra, redis_url=closed_port.url)
        assert result.exit_code == 1
        assert "Redis is not reachable" in result.output
        assert "import" not in result.stdout


def test_import(astdb, redis_url, redis_sync):
    result = run_cli("state", "import-astdb", str(astdb), redis_url=redis_url)
    assert result.exit_code == 0, result.output
    assert "imported 3 CIDBlock value(s) and 2 LastCIDNum value(s)" in result.output
    assert skipped(result.output) == EXPECTED_SKIPS
    assert sorted(redis_sync.keys("*")) == sorted([TF_KEYS.cidblock("1000"), TF_KEYS.last_caller("1000"),
                                                   TF_KEYS.cidblock("1002"), TF_KEYS.last_caller("1006"),
                                                   TF_KEYS.astdb_imports()])
    rec = redis_sync.hgetall(TF_KEYS.last_caller("1000"))
    assert rec["number"] == "2125551234" and rec["withheld"] == "0"
    assert float(rec["time"]) == MTIME  # when the AstDB was last written, not now
    assert redis_sync.hget(TF_KEYS.last_caller("1006"), "number") == "3125550000"


def test_imported_state_drives_the_features(astdb, redis_url):
    run_cli("state", "import-astdb", str(astdb), redis_url=redis_url)
    shown = run_cli("state", "show", redis_url=redis_url)
    assert "1000: cidblock=on last_caller=2125551234" in shown.output
    assert "1002: cidblock=on last_caller=none" in shown.output


def test_existing_records_win_without_overwrite(astdb, redis_url, redis_sync):
    # 1000 received a call since the switch: its last caller is kept, but its
    # *81 from AstDB is still imported (each kind of state judged on its own)
    run_cli("state", "set", "1000", "--last-caller", "3125559999", redis_url=redis_url)
    dry = run_cli("state", "import-astdb", str(astdb), "--dry-run", redis_url=redis_url)
    assert "would import 3 CIDBlock value(s) and 1 LastCIDNum value(s)" in dry.output
    result = run_cli("state", "import-astdb", str(astdb), redis_url=redis_url)
    assert "imported 3 CIDBlock value(s) and 1 LastCIDNum value(s)" in result.output
    assert skipped(dry.stdout) == skipped(result.stdout)  # the dry run said exactly this
    why = "Redis already has a last caller for this extension (use --overwrite)"
    assert skipped(result.output)["/LastCIDNum/1000"] == why
    assert "/CIDBlock/1000" not in skipped(result.output)
    assert redis_sync.hget(TF_KEYS.last_caller("1000"), "number") == "3125559999"
    assert redis_sync.get(TF_KEYS.cidblock("1000")) == CIDBLOCK_ON

    result = run_cli("state", "import-astdb", str(astdb), "--overwrite", redis_url=redis_url)
    assert "imported 3 CIDBlock value(s) and 2 LastCIDNum value(s)" in result.output
    assert "/LastCIDNum/1000" not in skipped(result.output)
    assert redis_sync.hget(TF_KEYS.last_caller("1000"), "number") == "2125551234"


def test_a_second_import_does_not_undo_changes_made_since(astdb, redis_url, redis_sync):
    """After the move, 1000 dialled *82 and 1001 dialled *81; importing the same
    AstDB again must not put the old values back."""
    run_cli("state", "import-astdb", str(astdb), redis_url=redis_url)
    redis_sync.delete(TF_KEYS.cidblock("1000"))
    redis_sync.set(TF_KEYS.cidblock("1001"), CIDBLOCK_ON)
    result = run_cli("state", "import-astdb", str(astdb), redis_url=redis_url)
    assert result.exit_code == 0, result.output
    assert redis_sync.get(TF_KEYS.cidblock("1000")) is None
    assert redis_sync.get(TF_KEYS.cidblock("1001")) == "1"
    result = run_cli("state", "import-astdb", str(astdb), "--overwrite", redis_url=redis_url)
    assert redis_sync.get(TF_KEYS.cidblock("1000")) == "1" and redis_sync.get(TF_KEYS.cidblock("1001")) is None


def test_hostile_numbers_are_skipped(tmp_path, redis_url, redis_sync):
    rows = [(f"/LastCIDNum/{2000 + i}", n) for i, n in enumerate(HOSTILE_NUMBERS)]
    path = make_astdb(tmp_path / "astdb.sqlite3", rows)
    result = run_cli("state", "import-astdb", str(path), redis_url=redis_url)
    assert result.exit_code == 0
    imported = {k: redis_sync.hget(k, "number") for k in redis_sync.keys("*")}
    # only the ones that are plain digits once trimmed of blanks/line ends survive
    assert all(v.isascii() and v.isdigit() for v in imported.values())
    assert set(imported.values()) <= {"5551234"}
    assert len(skipped(result.output)) == len(rows) - len(imported)


def test_null_value(tmp_path, redis_url):
    path = make_astdb(tmp_path / "astdb.sqlite3", [], null_value_key="/CIDBlock/1000")
    result = run_cli("state", "import-astdb", str(path), "--dry-run", redis_url=redis_url)
    assert "would import 1 CIDBlock value(s)" in result.output  # NULL reads as "", i.e. off


def test_custom_families(tmp_path, redis_url, redis_sync):
    path = make_astdb(tmp_path / "astdb.sqlite3", [("/Block/1000", "1"), ("/Last/1000", "2125551234"),
                                                   ("/CIDBlock/1001", "1")])
    result = run_cli("state", "import-astdb", str(path), "--block-family", "Block", "--lastcall-family", "Last",
                     redis_url=redis_url)
    assert "imported 1 Block value(s) and 1 Last value(s)" in result.output
    assert sorted(redis_sync.keys("*")) == sorted([TF_KEYS.cidblock("1000"), TF_KEYS.last_caller("1000"),
                                                   TF_KEYS.astdb_imports()])


def test_key_prefix_is_used(astdb, redis_url, redis_sync):
    result = CliRunner().invoke(cli, ["--redis-url", redis_url, "--key-prefix", "site1:", "state", "import-astdb",
                                      str(astdb)])
    assert result.exit_code == 0
    assert all(k.startswith("site1:{") or k == KeySchema("site1:").astdb_imports() for k in redis_sync.keys("*"))


def test_source_file_is_not_modified(astdb, redis_url):
    before = hashlib.sha256(astdb.read_bytes()).hexdigest()
    os.chmod(astdb, 0o444)
    run_cli("state", "import-astdb", str(astdb), redis_url=redis_url)
    assert hashlib.sha256(astdb.read_bytes()).hexdigest() == before
    assert os.stat(astdb).st_mtime == MTIME
    assert not (astdb.parent / "astdb.sqlite3-journal").exists()


def test_uncommitted_writes_are_not_imported(astdb):
    writer = sqlite3.connect(astdb)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO astdb VALUES ('/CIDBlock/1009', '1')")
        rows = dict(read_astdb(astdb))
        assert "/CIDBlock/1009" not in rows
        assert rows["/CIDBlock/1000"] == "1"
    finally:
        writer.rollback()
        writer.close()


def test_not_an_sqlite_file(tmp_path, redis_url):
    path = tmp_path / "astdb.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    result = run_cli("state", "import-astdb", str(path), redis_url=redis_url)
    assert result.exit_code == 1
    assert "not an AstDB sqlite3 file" in result.output


def test_sqlite_without_astdb_table(tmp_path, redis_url):
    path = tmp_path / "other.sqlite3"
    sqlite3.connect(path).execute("CREATE TABLE t(x)").connection.commit()
    result = run_cli("state", "import-astdb", str(path), redis_url=redis_url)
    assert result.exit_code == 1
    assert "no astdb table" in result.output


def test_missing_file(tmp_path, redis_url):
    result = run_cli("state", "import-astdb", str(tmp_path / "nope.sqlite3"), redis_url=redis_url)
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_import_with_redis_down(astdb, closed_port):
    result = run_cli("state", "import-astdb", str(astdb), redis_url=closed_port.url)
    assert result.exit_code == 1
    assert "Redis is not reachable" in result.output


def test_plan_import_directly():
    plan = plan_import([("/CIDBlock/1000", " ON "), ("/CIDBlock/1001", "off"), ("/LastCIDNum/1000", "+442071234567")],
                       "CIDBlock", "LastCIDNum", NumberRules(), 5.0)
    assert plan.blocks == {"1000": ("/CIDBlock/1000", True), "1001": ("/CIDBlock/1001", False)}
    key, rec = plan.callers["1000"]
    assert key == "/LastCIDNum/1000" and rec.number == "+442071234567" and rec.time == 5.0
    assert plan.skipped == []


def test_import_for_a_tenant(astdb, redis_url, redis_sync):
    result = CliRunner().invoke(cli, ["--redis-url", redis_url, "state", "import-astdb", "--tenant", "acme",
                                      str(astdb)])
    assert result.exit_code == 0, result.output
    keys = redis_sync.keys("tf:{*")
    assert keys and all(k.startswith("tf:{acme:") for k in keys)
    bad = CliRunner().invoke(cli, ["--redis-url", redis_url, "state", "import-astdb", "--tenant", "ac:me",
                                   str(astdb)])
    assert bad.exit_code == 2 and "'ac:me' is not a valid tenant name" in bad.output


def test_blocking_is_imported_for_an_extension_that_received_calls_since(astdb, redis_url, redis_sync):
    """Bug: a CIDBlock value was skipped whenever the extension had any state
    in Redis (one call received since the switch), so *81 was lost."""
    run_cli("state", "set", "1002", "--last-caller", "3125559999", redis_url=redis_url)  # a call since
    result = run_cli("state", "import-astdb", str(astdb), redis_url=redis_url)
    assert result.exit_code == 0, result.output
    assert redis_sync.get(TF_KEYS.cidblock("1002")) == CIDBLOCK_ON
    assert redis_sync.hget(TF_KEYS.last_caller("1002"), "number") == "3125559999"


def test_dry_run_reports_what_the_real_run_does(astdb, redis_url, redis_sync):
    """Bug: the dry run never looked at Redis and promised more than the real run imported."""
    run_cli("state", "set", "1000", "--last-caller", "3125559999", "--cidblock", "off", redis_url=redis_url)
    run_cli("state", "set", "1002", "--cidblock", "on", redis_url=redis_url)
    dry = run_cli("state", "import-astdb", str(astdb), "--dry-run", redis_url=redis_url)
    keys_before = sorted(redis_sync.keys("*"))
    real = run_cli("state", "import-astdb", str(astdb), redis_url=redis_url)
    assert dry.exit_code == real.exit_code == 0
    assert dry.stdout.replace("would import", "imported") == real.stdout
    assert keys_before == [TF_KEYS.last_caller("1000"), TF_KEYS.cidblock("1002")]  # the dry run wrote nothing


def test_overwrite_help_says_what_it_protects():
    result = CliRunner().invoke(cli, ["state", "import-astdb", "--help"])
    assert "blocking setting already in Redis" in result.output
    assert "recorded last caller" in result.output
