"""provision doctor and the firmware check: the TFTP server's fetch record,
AMI contacts and the TFTP root combined per phone (the real servers' side is in
tests/integration/test_phone_boot.py)."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from click.testing import CliRunner

from telefeatures.cli import cli
from telefeatures.provisioning.doctor import Contact, contacts_from_events, diagnose
from telefeatures.provisioning.fetch_record import Fetch, FetchRecord, load_fetches
from telefeatures.provisioning.firmware import check_load, missing_firmware
from telefeatures.provisioning.inventory import parse_inventory

from .conftest import SITE
from .test_dhcp import DHCP, phone

LOAD = "SIP41.9-4-2SR3-1S"  # the 7961's and 7941's firmware in conftest.SITE
IMAGES = ["apps41.9-4-2ES26.sbn", "cnu41.9-4-2ES26.sbn", "cvm41sip.9-4-2ES26.sbn", "dsp41.9-4-2ES26.sbn",
          "jar41sip.9-4-2ES26.sbn"]


def install_firmware(root: Path, load: str = LOAD, images: list[str] = IMAGES) -> None:
    # A .loads file is signed text: a binary header, then the image names.
    (root / f"{load}.loads").write_bytes(b"\x00\x01\xfeSIG\x00" + f"{load}.loads\n".encode()
                                         + "".join(f"{name}\n" for name in images).encode())
    for name in images:
        (root / name).write_bytes(b"image")


def test_firmware_check_names_the_missing_loads_file_or_image(tmp_path):
    assert check_load(tmp_path, LOAD).missing == (f"{LOAD}.loads",)
    install_firmware(tmp_path)
    check = check_load(tmp_path, LOAD)
    assert check.ok and check.images == tuple(IMAGES)
    (tmp_path / IMAGES[3]).unlink()
    assert check_load(tmp_path, LOAD).missing == (IMAGES[3],)
    problems = missing_firmware({"7961": LOAD, "7941": LOAD, "7911": "SIP11.9-4-2SR3-1S"}, tmp_path)
    assert sorted(problems) == ["7911", "7941", "7961"]
    assert problems["7911"].describe() == "SIP11.9-4-2SR3-1S: missing SIP11.9-4-2SR3-1S.loads"


def test_check_and_build_warn_when_a_models_firmware_is_missing(tmp_path):
    inventory = tmp_path / "phones.toml"
    inventory.write_text(SITE + phone(1, None))
    root = tmp_path / "tftp"
    root.mkdir()
    install_firmware(root)
    checked = CliRunner().invoke(cli, ["provision", "check", str(inventory), "--tftp-root", str(root)])
    assert checked.exit_code == 0
    assert "warning: firmware for the 7911" in checked.output and "7961" not in checked.output.split("ok,")[1]
    built = CliRunner().invoke(cli, ["provision", "build", str(inventory), "--tftp-root", str(root)])
    assert built.exit_code == 0
    assert "warning: firmware for the 7911 in" in built.output and "SIP11.9-4-2SR3-1S.loads" in built.output


def fleet(tmp_path):
    inventory = tmp_path / "phones.toml"
    inventory.write_text(SITE + DHCP + phone(1, "10.20.0.11", "Desk") + phone(2, "10.20.0.12") + phone(3, None))
    root = tmp_path / "tftp"
    root.mkdir()
    install_firmware(root)
    built = CliRunner().invoke(cli, ["provision", "build", str(inventory), "--tftp-root", str(root)])
    assert built.exit_code == 0, built.output
    return inventory, root


def test_diagnose_reports_each_way_a_phone_can_be_wrong(tmp_path):
    inventory, root = fleet(tmp_path)
    inv = parse_inventory(inventory.read_text())
    state = tmp_path / "state"
    record = FetchRecord(state, str(root))
    record.note("SEP0019E8F49001.cnf.xml", "ok", "10.20.0.11", bytes=3000)
    # From the wrong address, two minutes before the refusal below (so the report's time of the refusal is
    # told apart from the fetch's); inventory and files are older still.
    record.files["SEP0019E8F49002.cnf.xml"] = {"ok": Fetch("10.20.0.99", datetime.now(timezone.utc)
                                                           - timedelta(minutes=2), 3000).to_json()}
    earlier = time.time() - 600
    for path in (inventory, *root.glob("SEP*")):
        os.utime(path, (earlier, earlier))
    record.note("SEP0019E8F49002.cnf.xml", "refused", "10.20.0.150", reason="not the phone's address")
    record.write()
    contacts = [Contact("1001", "sip:1001@10.20.0.11:5060", "10.20.0.11:5060", "Cisco-CP7961G/9.4", "Reachable"),
                Contact("1002", "sip:1002@10.20.0.66:5060", "10.20.0.66:5060", "sipp", "Reachable")]
    reports = diagnose(inv, inventory.stat().st_mtime, root, load_fetches(state), contacts)
    good, wrong, silent = reports
    refused_at = load_fetches(state)["SEP0019E8F49002.cnf.xml"].refused.at.astimezone(timezone.utc)
    assert good.ok, good.problems
    assert good.fetched.endswith("from 10.20.0.11") and good.registered == "1001 from 10.20.0.11 (Cisco-CP7961G/9.4)"
    assert good.firmware == LOAD
    assert wrong.problems == [
        "fetched its file from 10.20.0.99, not its address 10.20.0.12",
        f"its file was asked for from 10.20.0.150 at {refused_at:%Y-%m-%d %H:%M:%S}Z and refused",
        "line 1002 registered from 10.20.0.66, not its address 10.20.0.12",
    ]
    assert silent.problems == ["never fetched its file", "line 1003 is not registered"]

    # A newer inventory, a file changed after the fetch, and a firmware image gone.
    later = time.time() + 60
    os.utime(inventory, (later, later))
    os.utime(root / "SEP0019E8F49001.cnf.xml", (later - 30, later - 30))
    (root / IMAGES[0]).unlink()
    good = diagnose(inv, inventory.stat().st_mtime, root, load_fetches(state), contacts)[0]
    assert good.problems == ["SEP0019E8F49001.cnf.xml is older than the inventory (run provision build)",
                             "has not fetched its current file (re-sync it: provision notify)",
                             f"firmware {LOAD}: missing {IMAGES[0]}"]
    assert good.firmware == f"{LOAD} INCOMPLETE"

    # A phone file gone from the TFTP root.
    (root / "SEP0019E8F49003.cnf.xml").unlink()
    silent = diagnose(inv, inventory.stat().st_mtime, root, load_fetches(state), contacts)[2]
    assert silent.config == "missing"
    assert silent.problems[0] == "SEP0019E8F49003.cnf.xml is not in the TFTP root (run provision build)"


def test_contacts_from_ami_events():
    events = [{"Event": "ContactList", "Endpoint": "2101", "Uri": "sip:2101@10.99.0.11:5062", "ViaAddr": "10.99.0.11",
               "UserAgent": "sipp", "Status": "NonQualified"},
              {"Event": "ContactListComplete", "ListItems": "1"},
              {"Event": "ContactList", "Endpoint": "2102", "Uri": "sip:2102@10.99.0.12:5062;transport=udp",
               "ViaAddr": "", "UserAgent": "", "Status": "Unknown"}]
    first, second = contacts_from_events(events)
    assert (first.endpoint, first.via_address, first.user_agent) == ("2101", "10.99.0.11", "sipp")
    assert second.via_address == "10.99.0.12"


def test_doctor_command_prints_a_table_and_exits_1_when_something_is_wrong(tmp_path):
    inventory, root = fleet(tmp_path)
    state = tmp_path / "state"
    record = FetchRecord(state, str(root))
    for n in (1, 2, 3):
        record.note(f"SEP0019E8F490{n:02X}.cnf.xml", "ok", f"10.20.0.{10 + n}")
    record.write()
    args = ["provision", "doctor", str(inventory), "--tftp-root", str(root), "--state-dir", str(state), "--no-ami"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()[:4]
    assert header.split()[:3] == ["PHONE", "LABEL", "FILE"]
    assert rows[0].startswith("00:19:e8:f4:90:01  Desk") and rows[0].endswith("ok")
    assert "3 phone(s), 3 ok, 0 with problems" in result.output

    (root / f"{LOAD}.loads").unlink()
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert f"00:19:e8:f4:90:01: firmware {LOAD}: missing {LOAD}.loads" in result.output
    assert "3 phone(s), 0 ok, 3 with problems" in result.output
