"""The dialplan, example settings, inventory and systemd units are in the wheel
(bug 10: a pip-installed user had none of them), and the commands that install
or print them give back exactly the checkout's files."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from telefeatures.cli import cli

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = {
    "telefeatures/share/dialplan/telefeatures.conf": ROOT / "dialplan" / "telefeatures.conf",
    "telefeatures/share/dialplan/telefeatures-globals.conf": ROOT / "dialplan" / "telefeatures-globals.conf",
    "telefeatures/share/dialplan/telefeatures-codes.conf": ROOT / "dialplan" / "telefeatures-codes.conf",
    "telefeatures/share/telefeatures.example.toml": ROOT / "contrib" / "telefeatures.example.toml",
    "telefeatures/share/inventory.example.toml": ROOT / "provisioning" / "inventory.example.toml",
    "telefeatures/share/systemd/telefeatures.service": ROOT / "contrib" / "systemd" / "telefeatures.service",
    "telefeatures/share/systemd/telefeatures-tftp.service": ROOT / "contrib" / "systemd" / "telefeatures-tftp.service",
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(out)],
                   check=True, capture_output=True, timeout=300)
    return next(out.glob("telefeatures-*.whl"))


def test_the_wheel_carries_the_shipped_files(wheel):
    with zipfile.ZipFile(wheel) as whl:
        for member, source in SHIPPED.items():
            assert whl.read(member) == source.read_bytes(), member


def test_every_dialplan_file_is_shipped():
    shipped = {Path(m).name for m in SHIPPED if "/dialplan/" in m}
    assert shipped == {p.name for p in (ROOT / "dialplan").glob("*.conf")}


def test_dialplan_install(tmp_path):
    dest = tmp_path / "etc" / "asterisk" / "telefeatures"
    result = CliRunner().invoke(cli, ["dialplan", "install", str(dest)])
    assert result.exit_code == 0, result.output
    for source in (ROOT / "dialplan").glob("*.conf"):
        assert (dest / source.name).read_bytes() == source.read_bytes()
        assert f"{dest / source.name}: installed" in result.output
        assert (dest / source.name).stat().st_mode & 0o777 == 0o644
    again = CliRunner().invoke(cli, ["dialplan", "install", str(dest)])
    assert again.exit_code == 0 and again.output.count(": unchanged") == len(list(dest.iterdir()))

    (dest / "telefeatures.conf").write_text("; my local change\n")
    kept = CliRunner().invoke(cli, ["dialplan", "install", str(dest)])
    assert kept.exit_code == 1 and "telefeatures.conf: kept" in kept.output
    assert (dest / "telefeatures.conf").read_text() == "; my local change\n"
    forced = CliRunner().invoke(cli, ["dialplan", "install", str(dest), "--force"])
    assert forced.exit_code == 0 and "telefeatures.conf: replaced" in forced.output
    assert (dest / "telefeatures.conf").read_bytes() == (ROOT / "dialplan" / "telefeatures.conf").read_bytes()


@pytest.mark.parametrize(("what", "source"), [("config", "contrib/telefeatures.example.toml"),
                                              ("inventory", "provisioning/inventory.example.toml"),
                                              ("systemd", "contrib/systemd/telefeatures.service")])
def test_example_prints_the_shipped_file(what, source):
    result = CliRunner().invoke(cli, ["example", what])
    assert result.exit_code == 0
    assert result.output == (ROOT / source).read_text()


def test_the_systemd_unit_says_how_it_is_really_installed():
    unit = (ROOT / "contrib" / "systemd" / "telefeatures.service").read_text()
    assert "pip install telefeatures\n" not in unit  # not published on PyPI
    assert "telefeatures example systemd" in unit
