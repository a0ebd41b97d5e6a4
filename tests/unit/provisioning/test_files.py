"""write_many_atomic: each file replaced whole, an admin's chmod kept, no temporary file left behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from telefeatures.provisioning import files as files_module
from telefeatures.provisioning.files import write_many_atomic


def test_writes_every_file_with_its_mode_and_keeps_an_admins_chmod(tmp_path: Path):
    kept = tmp_path / "kept.xml"
    kept.write_bytes(b"old")
    kept.chmod(0o600)
    big = os.urandom(3 * 1024 * 1024)  # more than one write(2) may take
    write_many_atomic([(tmp_path / "new.xml", b"new", 0o644), (kept, b"replaced", 0o644),
                       (tmp_path / "big.bin", big, 0o640)])
    assert (tmp_path / "new.xml").read_bytes() == b"new"
    assert stat.S_IMODE((tmp_path / "new.xml").stat().st_mode) == 0o644
    assert kept.read_bytes() == b"replaced" and stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert (tmp_path / "big.bin").read_bytes() == big and stat.S_IMODE((tmp_path / "big.bin").stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.bin", "kept.xml", "new.xml"]


def test_a_temporary_name_taken_already_is_left_alone(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(files_module.secrets, "token_hex", lambda n: "fixed")
    taken = tmp_path / f".a.xml.{os.getpid()}-fixed.tmp"
    taken.write_bytes(b"someone else's")
    write_many_atomic([(tmp_path / "a.xml", b"A", 0o644), (tmp_path / "b.xml", b"B", 0o644)])
    assert taken.read_bytes() == b"someone else's"
    assert (tmp_path / "a.xml").read_bytes() == b"A" and (tmp_path / "b.xml").read_bytes() == b"B"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([taken.name, "a.xml", "b.xml"])


def test_a_failure_replaces_nothing_and_leaves_no_temporary_file(tmp_path: Path):
    (tmp_path / "a.xml").write_bytes(b"old")
    with pytest.raises(FileNotFoundError):
        write_many_atomic([(tmp_path / "a.xml", b"new", 0o644), (tmp_path / "missing" / "b.xml", b"B", 0o644)])
    assert (tmp_path / "a.xml").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.xml"]
