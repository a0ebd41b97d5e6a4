"""Lock-down: PJSIP endpoint ACLs from the reservations, and password rotation
(files and AMI order against the scripted AMI peer; the real Asterisk proof is
in tests/integration/test_phone_boot.py)."""

from __future__ import annotations

import json

from click.testing import CliRunner
from lxml import etree

from telefeatures.cli import cli
from telefeatures.provisioning.inventory import parse_inventory
from telefeatures.provisioning.render import ConfigRenderer

from .conftest import SITE
from .fake_ami import FakeAmi
from .test_ami import env
from .test_dhcp import DHCP, phone
from .test_render import parse_pjsip


def endpoints(text: str) -> dict[str, dict[str, str]]:
    return {name: opts for name, opts in parse_pjsip(text) if opts["type"] == "endpoint"}


def render(inventory_text: str) -> dict[str, dict[str, str]]:
    inv = parse_inventory(inventory_text)
    passwords = {line.extension: "p" * 20 for p in inv.phones for line in p.lines}
    return endpoints(ConfigRenderer().render_pjsip(inv, passwords).decode())


def test_endpoint_accepts_only_its_reserved_address_or_the_phone_networks():
    eps = render(SITE + DHCP + phone(1, "10.20.0.11") + phone(2, None))
    assert eps["1001"]["deny"] == "0.0.0.0/0.0.0.0" and eps["1001"]["permit"] == "10.20.0.11/32"
    assert eps["1001"]["contact_deny"] == "0.0.0.0/0.0.0.0" and eps["1001"]["contact_permit"] == "10.20.0.11/32"
    assert eps["1002"]["permit"] == eps["1002"]["contact_permit"] == "10.20.0.0/24"  # the DHCP subnet


def test_site_phone_networks_win_over_the_dhcp_subnet():
    site = SITE.replace("[site.firmware]", 'phone_networks = ["10.30.0.0/24", "10.31.0.0/23"]\n[site.firmware]')
    eps = render(site + DHCP + phone(1, "10.20.0.11") + phone(2, None))
    assert eps["1001"]["permit"] == "10.20.0.11/32"
    assert eps["1002"]["permit"] == "10.30.0.0/24,10.31.0.0/23"


def test_no_reservation_and_no_network_means_no_acl():
    eps = render(SITE + phone(1, None))
    assert not {"deny", "permit", "contact_deny", "contact_permit"} & set(eps["1001"])


def write_site(tmp_path, text):
    inventory = tmp_path / "phones.toml"
    inventory.write_text(text)
    root = tmp_path / "tftp"
    root.mkdir()
    return inventory, root, tmp_path / "phones-pjsip.conf"


def line_password(root, n: int) -> str:
    return etree.parse(str(root / f"SEP0019E8F490{n:02X}.cnf.xml")).findtext(".//line[@button='1']/authPassword")


def test_rotate_passwords_rewrites_files_reloads_then_tells_only_the_chosen_phones(tmp_path):
    text = SITE + DHCP + phone(1, "10.20.0.11") + phone(2, "10.20.0.12") + phone(3, None)
    inventory, root, pjsip = write_site(tmp_path, text)
    built = CliRunner().invoke(cli, ["provision", "build", str(inventory), "--tftp-root", str(root),
                                     "--pjsip", str(pjsip)])
    assert built.exit_code == 0, built.output
    before = {n: line_password(root, n) for n in (1, 2, 3)}
    secrets = tmp_path / "tftp.secrets.json"
    with FakeAmi(endpoints={"1001", "1002", "1003"}) as ami:
        result = CliRunner().invoke(cli, ["provision", "rotate-passwords", str(inventory), "--tftp-root", str(root),
                                          "--pjsip", str(pjsip), "--phones", "00:19:e8:f4:90:02"], env=env(ami))
    assert result.exit_code == 0, result.output
    after = {n: line_password(root, n) for n in (1, 2, 3)}
    assert after[2] != before[2] and after[1] == before[1] and after[3] == before[3]
    assert json.loads(secrets.read_text())["passwords"]["1002"] == after[2]
    assert f"password = {after[2]}" in pjsip.read_text() and before[2] not in pjsip.read_text()
    # Asterisk reloads PJSIP first, then the phone is told: it then fetches a password Asterisk knows.
    kinds = [dict(a)["Action"] for a in ami.actions if dict(a)["Action"] != "Login"]
    assert kinds == ["Reload", "PJSIPShowContacts", "PJSIPNotify"]  # reload first; only registered phones told
    assert dict(ami.actions_named("PJSIPNotify")[0])["Endpoint"] == "1002"
    assert "rotated  1 password(s) on 1 phone(s)" in result.output
    assert "reload it in Asterisk" not in result.output  # it reloads Asterisk itself


def test_rotate_leaves_inventory_passwords_alone_and_fails_when_asterisk_is_not_reloaded(tmp_path):
    text = SITE + DHCP + phone(1, "10.20.0.11").replace('display_name = "User 1"\n',
                                                         'display_name = "User 1"\npassword = "written-in-f"\n')
    text += phone(2, "10.20.0.12")
    inventory, root, pjsip = write_site(tmp_path, text)
    with FakeAmi(endpoints={"1001", "1002"}, reload_ok=False) as ami:
        result = CliRunner().invoke(cli, ["provision", "rotate-passwords", str(inventory), "--tftp-root", str(root),
                                          "--pjsip", str(pjsip)], env=env(ami))
        assert not ami.actions_named("PJSIPNotify")  # nobody told to fetch what Asterisk does not know
    assert result.exit_code == 1
    assert "skipped  00:19:e8:f4:90:01 extension 1001: its password is written in the inventory" in result.output
    assert line_password(root, 1) == "written-in-f"
    assert "reload res_pjsip.so" in result.output
