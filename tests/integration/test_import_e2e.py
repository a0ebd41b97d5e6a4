"""A site migrated with ``provision import`` keeps working: a real phone file
from ../shared/cisco-corpus/ (pointed at the test bed's Asterisk) is imported,
built into the TFTP root and the PJSIP include, and the phone registers with
real Asterisk using exactly the credentials of its *original* file."""

from __future__ import annotations

import socket

import pytest
from lxml import etree

from tests.support.cli import run_cli
from tests.support.corpus import corpus_dir
from tests.support.ports import free_port
from tests.testbed.services import wait_for

# A 7961 on a FRITZ!Box: line 623 authenticating as 624, two speed dials.
CORPUS_FILE = "sep/mkirbst__cisco7960fritzbox__configs_cisco7961__SEP0012345678DE.cnf.xml"


@pytest.fixture(scope="module")
def migrated(asterisk, tmp_path_factory):
    """The admin's file as it would be at this site (its PBX is the test bed's Asterisk), imported and built."""
    work = tmp_path_factory.mktemp("import")
    original = (corpus_dir() / CORPUS_FILE).read_text()
    original = original.replace("192.168.1.80", "127.0.0.1").replace(">5060<", f">{asterisk.ports.sip}<")
    source = work / "old-tftp" / "SEP0012345678DE.cnf.xml"
    source.parent.mkdir()
    source.write_text(original)
    inventory, secrets = work / "phones.toml", work / "phones.secrets.json"
    imported = run_cli("provision", "import", str(source.parent), "-o", str(inventory), "--secrets", str(secrets))
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "'1234'" not in imported.stdout + imported.stderr  # the password is never shown
    tftp_root = work / "tftp"
    tftp_root.mkdir()
    built = run_cli("provision", "build", str(inventory), "--tftp-root", str(tftp_root), "--secrets", str(secrets),
                    "--pjsip", str(asterisk.run_dir / "etc" / "telefeatures-phones.conf"))
    assert built.returncode == 0, built.stdout + built.stderr
    offset = asterisk.log_offset()
    asterisk.cli("module reload res_pjsip.so")
    wait_for(lambda: "623" in asterisk.cli("pjsip show endpoints"), what="the imported endpoint")
    assert "ERROR" not in asterisk.log_since(offset), asterisk.log_since(offset)[-2000:]
    return etree.fromstring(original.encode()), tftp_root


def test_the_phone_registers_with_the_credentials_of_its_original_file(migrated, sipp):
    original, tftp_root = migrated
    line = original.find(".//line[@button='1']")
    name, user, password = line.findtext("name"), line.findtext("authName"), line.findtext("authPassword")
    assert (name, user) == ("623", "624")
    contact = free_port(socket.SOCK_DGRAM)
    result = sipp.register(name, contact, auth_user=user, password=password)
    assert result.returncode == 0 and result.received("200"), result.output
    wrong = sipp.register(name, contact, auth_user=user, password=password + "x", timeout=8)
    assert not wrong.received("200")
    # The rebuilt file the phone will fetch carries the same credentials and keys.
    rebuilt = etree.parse(str(tftp_root / "SEP0012345678DE.cnf.xml")).getroot()
    new_line = rebuilt.find(".//line[@button='1']")
    assert (new_line.findtext("name"), new_line.findtext("authName"), new_line.findtext("authPassword")) == (
        name, user, password)
    assert [k.findtext("speedDialNumber") for k in rebuilt.iter("line") if k.findtext("featureID") == "2"] == [
        "**622", "**621"]
