"""Provisioning end to end: one inventory -> files served by ``telefeatures tftp``
-> a "virtual 7961" that fetches its SEP file with a real TFTP client,
registers with exactly the credentials in it and dials *83 -> re-sync NOTIFYs
sent through Asterisk's AMI."""

from __future__ import annotations

import asyncio

import socket
import subprocess
from pathlib import Path

import pytest
from lxml import etree

from tests.support.cli import TELEFEATURES, run_cli
from tests.support.ports import free_port
from tests.support.ports import udp_bound
from tests.testbed.services import wait_for
from tests.testbed.sipp import AnsweringAgent

MAC = "00:19:e8:aa:bb:01"
SEP = "SEP0019E8AABB01.cnf.xml"

INVENTORY = """
[site]
asterisk_address = "127.0.0.1"
sip_port = {sip_port}
transport = "udp"
pjsip_transport = "transport-udp"
context = "tf-phones"
time_zone = "America/Chicago"
ntp_server = "127.0.0.1"

[site.dial_rules]
extension_patterns = ["2..."]
outside_patterns = [".........."]

[[phones]]
mac = "{mac}"
model = "7961"
label = "Lab"

  [[phones.lines]]
  extension = "2000"
  display_name = "Virtual 7961 & Co"

  [[phones.lines]]
  extension = "2001"
  display_name = "Second line"
  auth_user = "lab-2001"
"""


@pytest.fixture(scope="module")
def provisioned(asterisk, tmp_path_factory):
    """Build the inventory into a TFTP root and Asterisk's PJSIP include, and
    load the include into the running Asterisk the way an admin would."""
    work = tmp_path_factory.mktemp("provisioning")
    inventory = work / "phones.toml"
    inventory.write_text(INVENTORY.format(sip_port=asterisk.ports.sip, mac=MAC))
    tftp_root = work / "tftp"
    tftp_root.mkdir()
    pjsip_include = asterisk.run_dir / "etc" / "telefeatures-phones.conf"
    built = run_cli("provision", "build", str(inventory), "--tftp-root", str(tftp_root),
                    "--pjsip", str(pjsip_include))
    assert built.returncode == 0, built.stdout + built.stderr
    offset = asterisk.log_offset()
    asterisk.cli("module reload res_pjsip.so")
    wait_for(lambda: "2000" in asterisk.cli("pjsip show endpoints"), what="the generated endpoints")
    assert "ERROR" not in asterisk.log_since(offset), asterisk.log_since(offset)[-2000:]
    return inventory, tftp_root


@pytest.fixture(scope="module")
def tftp_server(provisioned, tmp_path_factory):
    _, root = provisioned
    port = free_port(socket.SOCK_DGRAM)
    log = open(tmp_path_factory.mktemp("tftp") / "tftp.log", "wb")
    proc = subprocess.Popen([TELEFEATURES, "tftp", "--root", str(root), "--bind", f"127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT)
    wait_for(lambda: udp_bound(port) or proc.poll() is not None, what="telefeatures tftp")
    assert proc.poll() is None
    yield port
    proc.terminate()
    proc.wait(timeout=10)


def tftp_get(port: int, name: str, dest: Path) -> bytes:
    """Fetch with Debian's tftp-hpa client, as a phone's bootloader would."""
    out = subprocess.run(["tftp", "-m", "binary", "127.0.0.1", str(port), "-c", "get", name, str(dest)],
                         capture_output=True, text=True, timeout=30)
    # tftp-hpa exits 0 even on a TFTP error; it says so on its output instead.
    assert "Error" not in out.stdout + out.stderr and dest.exists(), out.stdout + out.stderr
    return dest.read_bytes()


def asterisk_has_contact(asterisk, endpoint: str) -> bool:
    from telefeatures.ami import AmiClient, AmiSettings

    async def contacts():
        settings = AmiSettings(host="127.0.0.1", port=asterisk.ports.ami, username=asterisk.ami_user,
                               secret=asterisk.ami_secret)
        async with AmiClient(settings) as ami:
            return await ami.pjsip_contacts()

    return any(c.get("Endpoint") == endpoint for c in asyncio.run(contacts()))


def test_notify_says_an_unregistered_phone_was_not_told(asterisk, provisioned):
    """Runs before any test registers 2000: Asterisk answers PJSIPNotify for an
    endpoint without a contact with Success and sends nothing."""
    inventory, _ = provisioned
    assert not asterisk_has_contact(asterisk, "2000")
    env = {"TELEFEATURES_AMI_HOST": "127.0.0.1", "TELEFEATURES_AMI_PORT": str(asterisk.ports.ami),
           "TELEFEATURES_AMI_USERNAME": asterisk.ami_user, "TELEFEATURES_AMI_SECRET": asterisk.ami_secret}
    told = run_cli("provision", "notify", str(inventory), "--phones", MAC, env=env)
    assert told.returncode == 1, told.stdout + told.stderr
    assert "notify check-sync: 0 phone(s) told, 0 failed, 1 not told (not registered)" in told.stdout


def test_virtual_7961_fetches_its_config_registers_and_dials(asterisk, feature_server, provisioned, tftp_server,
                                                            sipp, redis_state, tmp_path):
    _, root = provisioned
    data = tftp_get(tftp_server, SEP, tmp_path / SEP)
    assert data == (root / SEP).read_bytes()
    assert tftp_get(tftp_server, "dialplan.xml", tmp_path / "dialplan.xml") == (root / "dialplan.xml").read_bytes()

    device = etree.fromstring(data)
    assert device.findtext("devicePool/callManagerGroup/members/member/callManager/processNodeName") == "127.0.0.1"
    assert device.findtext("devicePool/callManagerGroup/members/member/callManager/ports/sipPort") == \
        str(asterisk.ports.sip)
    assert device.findtext("transportLayerProtocol") == "2"  # UDP, as the inventory says
    lines = {ln.get("button"): ln for ln in device.iter("line")}
    line1, line2 = lines["1"], lines["2"]
    assert line1.findtext("featureID") == "9" and line1.findtext("proxy") == "USECALLMANAGER"
    assert line1.findtext("displayName") == "Virtual 7961 & Co"  # escaped in the file, intact once parsed
    assert line2.findtext("authName") == "lab-2001"

    for line in (line1, line2):
        ext, user, password = line.findtext("name"), line.findtext("authName"), line.findtext("authPassword")
        assert len(password) == 12  # site.auth_password_max_length, the default
        # The phone registers with exactly what the file says...
        contact = free_port(socket.SOCK_DGRAM)
        result = sipp.register(ext, contact, auth_user=user, password=password)
        assert result.returncode == 0 and result.received("200"), result.output
        # ...and a wrong password is refused, so the file's credentials are what counted.
        wrong = sipp.register(ext, contact, auth_user=user, password=password + "x", timeout=8)
        assert not wrong.received("200")

    ext, user, password = line1.findtext("name"), line1.findtext("authName"), line1.findtext("authPassword")
    log_at = feature_server.log_offset()
    result = sipp.call(ext, "*83", auth_user=user, password=password)
    assert result.returncode == 0 and result.answered, result.output
    assert any("route=cidblock/status ext=2000 status=OK" in s for s in feature_server.sessions_since(log_at))


def test_tftp_serves_nothing_outside_its_root_and_takes_no_uploads(provisioned, tftp_server, tmp_path):
    secret = provisioned[1].parent / "tftp.secrets.json"
    assert secret.exists()  # generated passwords live beside the root, never in it
    for name in ("../tftp.secrets.json", str(secret), "..%2ftftp.secrets.json", "sep0019e8aabb01.cnf.xml"):
        out = subprocess.run(["tftp", "-m", "binary", "127.0.0.1", str(tftp_server), "-c", "get", name,
                              str(tmp_path / "x")], capture_output=True, text=True, timeout=30)
        assert "Error" in out.stdout + out.stderr, name
    upload = tmp_path / "evil.cnf.xml"
    upload.write_text("<device/>")
    out = subprocess.run(["tftp", "-m", "binary", "127.0.0.1", str(tftp_server), "-c", "put", str(upload),
                          "SEP000000000001.cnf.xml"], capture_output=True, text=True, timeout=30)
    assert "Error" in out.stdout + out.stderr
    assert not (provisioned[1] / "SEP000000000001.cnf.xml").exists()


def notifies(receiver, event: str):
    return [m for m in receiver.received("NOTIFY") if m.header("Event") == event]


def test_notify_reaches_the_phone_with_the_expected_event(asterisk, provisioned, sipp, tmp_path):
    inventory, _ = provisioned
    line = etree.parse(str(provisioned[1] / SEP)).find(".//line[@button='1']")
    receiver = AnsweringAgent("127.0.0.1", free_port(socket.SOCK_DGRAM), tmp_path / "notify.trace",
                              scenario="notify_uas.xml").start()
    env = {"TELEFEATURES_AMI_HOST": "127.0.0.1", "TELEFEATURES_AMI_PORT": str(asterisk.ports.ami),
           "TELEFEATURES_AMI_USERNAME": asterisk.ami_user, "TELEFEATURES_AMI_SECRET": asterisk.ami_secret}
    try:
        registered = sipp.register("2000", receiver.port, password=line.findtext("authPassword"))
        assert registered.returncode == 0, registered.output

        told = run_cli("provision", "notify", str(inventory), "--phones", MAC, env=env)
        assert told.returncode == 0, told.stdout + told.stderr
        # Asterisk also sends the newly registered phone its unsolicited MWI
        # NOTIFY (Event: message-summary), at a moment of its own choosing.
        notify = wait_for(lambda: notifies(receiver, "check-sync"), what="a check-sync NOTIFY at the phone")[-1]
        assert notify.request_uri.startswith("sip:2000@127.0.0.1")
        assert notifies(receiver, "service-control") == []

        told = run_cli("provision", "notify", str(inventory), "--phones", MAC, "--event", "restart", env=env)
        assert told.returncode == 0, told.stdout + told.stderr
        restart = wait_for(lambda: notifies(receiver, "service-control"), what="a service-control NOTIFY")[-1]
        assert "action=restart" in restart.body
        assert len(notifies(receiver, "check-sync")) == 1
    finally:
        receiver.stop()
