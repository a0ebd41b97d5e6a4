"""The TFTP fetch record that ``provision doctor`` reads: written atomically
per worker, merged newest-first, bounded to real files, robust to junk."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from telefeatures.provisioning.fetch_record import FetchRecord, load_fetches, record_dir


def test_round_trip_and_merge_across_workers(tmp_path):
    first, second = FetchRecord(tmp_path, "/srv/tftp", worker=0), FetchRecord(tmp_path, "/srv/tftp", worker=1)
    first.note("SEP0019E8F490AD.cnf.xml", "ok", "10.0.10.21", bytes=4312)
    first.note("SEP0019E8F490AD.cnf.xml", "refused", "10.0.10.99", reason="not the phone's address")
    time.sleep(0.01)
    second.note("SEP0019E8F490AD.cnf.xml", "ok", "10.0.10.22", bytes=4312)  # later, other worker
    second.note("dialplan.xml", "failed", "10.0.10.21", reason="timed out at block 3")
    first.write()
    second.write()
    assert sorted(p.name for p in record_dir(tmp_path).iterdir()) == ["fetches-0.json", "fetches-1.json"]
    fetches = load_fetches(tmp_path)
    sep = fetches["SEP0019E8F490AD.cnf.xml"]
    assert (sep.ok.peer, sep.ok.bytes) == ("10.0.10.22", 4312)
    assert (sep.refused.peer, sep.refused.reason) == ("10.0.10.99", "not the phone's address")
    assert sep.failed is None
    assert fetches["dialplan.xml"].failed.reason == "timed out at block 3" and fetches["dialplan.xml"].ok is None
    assert sep.ok.at.utcoffset() == timedelta(0)


def test_written_only_when_changed_and_kept_across_restarts(tmp_path):
    record = FetchRecord(tmp_path, "/srv/tftp")
    record.write()
    assert not record.path.exists()  # nothing to say yet
    record.note("dialplan.xml", "ok", "127.0.0.5", bytes=10)
    record.write()
    document = json.loads(record.path.read_text())
    assert document["version"] == 1 and document["root"] == "/srv/tftp"
    assert document["files"]["dialplan.xml"]["ok"]["peer"] == "127.0.0.5"
    again = FetchRecord(tmp_path, "/srv/tftp")  # a restarted server keeps the history
    again.note("other.xml", "ok", "127.0.0.6", bytes=1)
    again.write()
    assert set(load_fetches(tmp_path)) == {"dialplan.xml", "other.xml"}
    assert [p.name for p in record_dir(tmp_path).iterdir()] == ["fetches-0.json"]  # no temporary left


def test_missing_or_junk_records_are_skipped(tmp_path):
    assert load_fetches(tmp_path / "nowhere") == {}
    record_dir(tmp_path).mkdir(parents=True)
    (record_dir(tmp_path) / "fetches-0.json").write_text("{not json")
    # Another version's record is ignored even when its entries read well.
    (record_dir(tmp_path) / "fetches-1.json").write_text(json.dumps(
        {"version": 99, "files": {"a": {"ok": {"peer": "127.0.0.9", "at": "2026-11-29T08:00:00.000+00:00"}}}}))
    (record_dir(tmp_path) / "fetches-2.json").write_text(json.dumps({"version": 1, "files": {"a": {"ok": {"peer": "x"}}}}))
    good = FetchRecord(tmp_path, "/r", worker=3)
    good.note("b.xml", "ok", "127.0.0.1", bytes=1)
    good.write()
    assert set(load_fetches(tmp_path)) == {"b.xml"}
