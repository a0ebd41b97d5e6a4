"""The manager user provisioning/README.md tells admins to create (``read =``,
``write = system``) is enough for ``provision doctor`` and ``provision notify``:
real Asterisk with only that user, a phone registered with sipp, and both
commands see its contact (PJSIPShowContacts) and notify sends (PJSIPNotify)."""

from __future__ import annotations

import re
import socket

import pytest

from tests.support.cli import run_cli
from tests.support.ports import free_port
from tests.testbed.asterisk import prepare
from tests.testbed.sipp import SippRunner

INVENTORY = """
[site]
asterisk_address = "127.0.0.1"
time_zone = "America/New_York"
ntp_server = "127.0.0.1"

[[phones]]
mac = "0019E8F4AA01"
model = "7961"
[[phones.lines]]
extension = "1001"
display_name = "Registered"

[[phones]]
mac = "0019E8F4AA02"
model = "7961"
[[phones.lines]]
extension = "1002"
display_name = "Never plugged in"
"""


@pytest.fixture(scope="module")
def least_privileged_asterisk(tmp_path_factory):
    ast = prepare(agi_port=free_port(), quiet=True)
    manager = ast.run_dir / "etc" / "manager.conf"
    text, count = re.subn(r"^read = all\nwrite = all$", "read =\nwrite = system", manager.read_text(), flags=re.M)
    assert count == 1, "the test bed's manager.conf changed: this test must give its user write = system only"
    manager.write_text(text)
    ast.start()
    try:
        yield ast
    finally:
        ast.stop()


def test_doctor_and_notify_need_only_write_system(least_privileged_asterisk, tmp_path):
    ast = least_privileged_asterisk
    registered = SippRunner(ast, tmp_path / "sipp").register("1001", free_port(socket.SOCK_DGRAM))
    assert registered.returncode == 0 and registered.received("200"), registered.output
    inventory = tmp_path / "phones.toml"
    inventory.write_text(INVENTORY)
    (tmp_path / "tftp").mkdir()
    env = dict(TELEFEATURES_AMI_HOST="127.0.0.1", TELEFEATURES_AMI_PORT=str(ast.ports.ami),
               TELEFEATURES_AMI_USERNAME=ast.ami_user, TELEFEATURES_AMI_SECRET=ast.ami_secret)

    doctor = run_cli("provision", "doctor", str(inventory), "--tftp-root", str(tmp_path / "tftp"),
                     "--state-dir", str(tmp_path / "state"), env=env, timeout=60)
    assert "1001 from 127.0.0.1 (telefeatures-testbed-phone)" in doctor.stdout, doctor.stdout + doctor.stderr
    assert "00:19:e8:f4:aa:02: line 1002 is not registered" in doctor.stdout

    notify = run_cli("provision", "notify", str(inventory), env=env, timeout=60)
    assert "told     00:19:e8:f4:aa:01 (endpoint 1001): check-sync" in notify.stdout, notify.stdout + notify.stderr
    assert "notify check-sync: 1 phone(s) told, 0 failed, 1 not told (not registered)" in notify.stdout
    assert notify.returncode == 1  # the phone that is not registered was not told, and the exit code says so
