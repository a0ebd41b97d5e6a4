"""The generated DHCP configurations pass their own daemons' configuration
checks (ISC dhcpd -t, dnsmasq --test, kea-dhcp4 -t), and a broken one does not,
so the check is worth something."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.unit.provisioning.conftest import SITE
from tests.unit.provisioning.test_dhcp import DHCP, phone

CHECKS = {
    "isc": lambda path: ["dhcpd", "-t", "-cf", str(path)],
    "dnsmasq": lambda path: ["dnsmasq", "--test", "-C", str(path)],
    "kea": lambda path: ["kea-dhcp4", "-t", str(path)],
}


def daemon_check(fmt: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(CHECKS[fmt](path), capture_output=True, text=True, timeout=60)


# Every optional key of [dhcp] once: domain_name and interface are written by some formats only.
EVERY_KEY = DHCP + 'domain_name = "phones.example.net"\ninterface = "lo"\n'  # kea -t wants a real interface


@pytest.mark.parametrize("fmt", sorted(CHECKS))
@pytest.mark.parametrize("dhcp", [EVERY_KEY, DHCP.replace('range = ["10.20.0.100", "10.20.0.199"]\n', "")],
                         ids=["every-key", "reservations-only"])
def test_generated_configuration_passes_the_daemons_own_check(fmt, dhcp, tmp_path):
    # Labels with what these formats treat specially (;, {}, #, ') end up in comments, harmlessly.
    inventory = tmp_path / "phones.toml"
    inventory.write_text(SITE + dhcp + "".join(phone(n, f"10.20.0.{10 + n}", f"P{n};{{}}#'") for n in range(1, 41))
                         + phone(50, None))
    out = tmp_path / f"phones.{fmt}"
    made = run_cli("provision", "dhcp", str(inventory), "--format", fmt, "--output", str(out), timeout=60)
    assert made.returncode == 0, made.stderr
    checked = daemon_check(fmt, out)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert out.read_text().count("10.20.0.50") == 1  # the 40th reservation, once

    # The same file with option 150's second address broken is refused by the
    # daemon: the check reads the option as addresses, as a phone does.
    text, count = re.subn(r"10\.20\.0\.6\b", "10.20.0.600", out.read_text())
    assert count == 1
    out.write_text(text)
    assert daemon_check(fmt, out).returncode != 0
