"""DHCP from the inventory: reservations validated against the [dhcp] section,
and the three formats carrying the same facts (the daemons' own checks are in
tests/integration/test_dhcp_daemons.py)."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from telefeatures.cli import cli
from telefeatures.provisioning.dhcp import render_dhcp
from telefeatures.provisioning.inventory import InventoryError, parse_inventory

from .conftest import SITE

DHCP = """
[dhcp]
subnet = "10.20.0.0/24"
range = ["10.20.0.100", "10.20.0.199"]
router = "10.20.0.1"
dns_servers = ["10.20.0.2"]
ntp_servers = ["10.20.0.3"]
tftp_servers = ["10.20.0.5", "10.20.0.6"]
lease_time = 7200
"""


def phone(n: int, ip: str | None, label: str | None = None) -> str:
    text = f'\n[[phones]]\nmac = "0019E8F490{n:02X}"\nmodel = "7961"\n'
    if label:
        text += f'label = "{label}"\n'
    if ip:
        text += f'ip = "{ip}"\n'
    return text + f'[[phones.lines]]\nextension = "{1000 + n}"\ndisplay_name = "User {n}"\n'


def errors_of(text: str) -> list[str]:
    with pytest.raises(InventoryError) as info:
        parse_inventory(text)
    return info.value.errors


def test_reservations_render_in_all_three_formats():
    inv = parse_inventory(SITE + DHCP + phone(1, "10.20.0.11", "Desk") + phone(2, "10.20.0.12") + phone(3, None))
    isc = render_dhcp(inv, "isc").decode()
    assert "option cisco-tftp code 150 = array of ip-address;" in isc
    assert "option cisco-tftp 10.20.0.5, 10.20.0.6;" in isc
    assert 'option tftp-server-name "10.20.0.5";' in isc
    assert re.search(r"host SEP0019E8F49001 \{  # Desk\n  hardware ethernet 00:19:e8:f4:90:01;\n"
                     r"  fixed-address 10.20.0.11;\n\}", isc)
    assert isc.count("host SEP") == 2  # the phone without an ip gets a dynamic address
    assert "range 10.20.0.100 10.20.0.199;" in isc and "max-lease-time 7200;" in isc

    dnsmasq = render_dhcp(inv, "dnsmasq").decode().splitlines()
    assert "dhcp-host=00:19:e8:f4:90:02,10.20.0.12,SEP0019E8F49002,7200" in dnsmasq
    assert "dhcp-option=150,10.20.0.5,10.20.0.6" in dnsmasq
    assert 'dhcp-option=66,"10.20.0.5"' in dnsmasq
    assert "dhcp-option=option:ntp-server,10.20.0.3" in dnsmasq

    kea_text = render_dhcp(inv, "kea").decode()
    kea = json.loads("\n".join(line for line in kea_text.splitlines() if not line.strip().startswith("//")))["Dhcp4"]
    subnet = kea["subnet4"][0]
    assert subnet["subnet"] == "10.20.0.0/24" and subnet["pools"] == [{"pool": "10.20.0.100 - 10.20.0.199"}]
    assert [(r["hw-address"], r["ip-address"]) for r in subnet["reservations"]] == [
        ("00:19:e8:f4:90:01", "10.20.0.11"), ("00:19:e8:f4:90:02", "10.20.0.12")]
    options = {o["code"] if "code" in o else o["name"]: o["data"] for o in subnet["option-data"]}
    assert options[150] == "10.20.0.5, 10.20.0.6" and options[66] == "10.20.0.5"
    assert kea["option-def"][0]["code"] == 150 and kea["valid-lifetime"] == 7200


def test_reservations_only_subnet_has_a_static_dnsmasq_range():
    inv = parse_inventory(SITE + DHCP.replace('range = ["10.20.0.100", "10.20.0.199"]\n', "") + phone(1, "10.20.0.150"))
    assert "dhcp-range=10.20.0.0,static,255.255.255.0,7200" in render_dhcp(inv, "dnsmasq").decode()
    assert "range " not in render_dhcp(inv, "isc").decode().split("subnet", 1)[1].split("}")[0].replace(
        "option", "")


def test_ip_outside_the_subnet_is_rejected_naming_the_phone():
    [error] = errors_of(SITE + DHCP + phone(1, "10.21.0.11", "Lobby"))
    assert error.startswith("phone #1 (mac 00:19:e8:f4:90:01, label Lobby), ip: 10.21.0.11 is outside")


def test_two_phones_on_one_address_are_rejected_naming_both():
    [error] = errors_of(SITE + DHCP + phone(1, "10.20.0.11") + phone(2, "10.20.0.11"))
    assert error.startswith("phone #2 (mac 00:19:e8:f4:90:02), ip: 10.20.0.11 is already reserved for phone #1")


def test_reservation_inside_the_dynamic_range_is_rejected():
    [error] = errors_of(SITE + DHCP + phone(1, "10.20.0.11") + phone(2, "10.20.0.150"))
    assert error.startswith("phone #2 (mac 00:19:e8:f4:90:02), ip: 10.20.0.150 is inside the dynamic range")


@pytest.mark.parametrize("ip, why", [("10.20.0.255", "broadcast"), ("10.20.0.0", "network"),
                                     ("10.20.0.1", "router"), ("10.20.0.5", "TFTP server")])
def test_reservation_on_a_special_address_is_rejected(ip, why):
    [error] = errors_of(SITE + DHCP + phone(1, ip))
    assert error.startswith("phone #1") and why in error


def test_duplicate_ip_is_rejected_even_without_a_dhcp_section():
    [error] = errors_of(SITE + phone(1, "10.20.0.11") + phone(2, "10.20.0.11"))
    assert "already reserved" in error


@pytest.mark.parametrize("field, value, message", [
    ("subnet", '"10.20.0.1/24"', "not an IPv4 network"),
    ("range", '["10.20.0.199", "10.20.0.100"]', "first address is after the last"),
    ("range", '["10.20.0.100", "10.30.0.199"]', "range end 10.30.0.199 is not a host address"),
    ("router", '"10.30.0.1"', "router 10.30.0.1 is not a host address"),
    ("tftp_servers", '["10.20.0.150"]', "inside the dynamic range"),
    ("tftp_servers", "[]", "at least 1"),
    ("lease_time", "10", "greater than or equal to 60"),
])
def test_bad_dhcp_section_is_named(field, value, message):
    text = re.sub(rf"^{field} = .*$", f"{field} = {value}", DHCP, flags=re.MULTILINE)
    [error] = errors_of(SITE + text + phone(1, None))
    assert error.startswith("dhcp") and message in error, error


def test_bad_ip_is_named():
    [error] = errors_of(SITE + DHCP + phone(1, "10.20.0.300"))
    assert error.startswith("phone #1 (mac 0019E8F49001), ip: '10.20.0.300' is not an IPv4 address")


def test_cli_writes_atomically_and_refuses_an_inventory_without_dhcp(tmp_path):
    inventory = tmp_path / "phones.toml"
    inventory.write_text(SITE + DHCP + phone(1, "10.20.0.11"))
    out = tmp_path / "dhcpd.conf"
    out.write_text("old")
    result = CliRunner().invoke(cli, ["provision", "dhcp", str(inventory), "--format", "isc", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "fixed-address 10.20.0.11;" in out.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dhcpd.conf", "phones.toml"]  # no temporary left

    inventory.write_text(SITE + phone(1, "10.20.0.11"))
    result = CliRunner().invoke(cli, ["provision", "dhcp", str(inventory), "--format", "kea", "--output", str(out)])
    assert result.exit_code == 1 and "no [dhcp] section" in result.output
    assert "fixed-address 10.20.0.11;" in out.read_text()  # the old file is kept

    inventory.write_text(SITE + DHCP + phone(1, "10.20.0.150"))
    result = CliRunner().invoke(cli, ["provision", "dhcp", str(inventory), "--format", "dnsmasq"])
    assert result.exit_code == 1 and "inside the dynamic range" in result.output
