"""Ten virtual 7961s boot for real on a phone network of namespaces.

Server namespace: a bridge with 10.99.0.1, dnsmasq running the configuration
``provision dhcp`` wrote, ``telefeatures tftp`` on port 69, the real Asterisk
test bed (chroot) with a transport on 10.99.0.1:5060, ``telefeatures serve``
and its Redis. One namespace per phone, its eth0 carrying the phone's MAC.

Each phone, all at once: busybox udhcpc gets its reserved address and option
150 -> tftp-hpa fetches SEP<MAC>.cnf.xml and dialplan.xml from the address in
option 150 -> sipp registers from the reserved address with the credentials
and server read from the fetched file -> dials *83, which is answered.

Everything lives in namespaces this module creates and deletes at the end,
pass or fail; nothing touches an address outside them or 127.0.0.0/8.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from tests.support.cli import TELEFEATURES, run_cli
from tests.support.netns import PhoneNetwork
from tests.support.ports import free_port, udp_bound
from tests.support.processes import stop_process
from tests.support.redis_server import RedisProcess
from tests.testbed.asterisk import Asterisk, choose_source, prepare, remove_run_dir
from tests.testbed.services import KEY_PREFIX, FeatureServer, wait_for
from tests.testbed.sipp import AnsweringAgent, SippRunner

UDHCPC_SCRIPT = Path(__file__).resolve().parents[1] / "support" / "udhcpc_record.sh"
SERVER_IP = "10.99.0.1"
PHONE_SUBNET = "10.99.0.0/24"
ENUMERATION_LIMIT = 20  # unknown phone-config names a TFTP peer may ask for before it is blocked
SIP_PORT = 5060
PHONE_COUNT = 10
PHONES = [(f"p{n}", f"00:19:e8:b0:00:{n:02x}", f"10.99.0.{10 + n}", str(2100 + n)) for n in range(1, PHONE_COUNT + 1)]
ATTACKER_MAC = "00:19:e8:66:66:66"
# In the inventory, never plugged in: what doctor must notice.
UNPLUGGED = ("p99", "00:19:e8:b0:00:99", "10.99.0.99", "2199")

INVENTORY_HEAD = f"""
[site]
asterisk_address = "{SERVER_IP}"
sip_port = {SIP_PORT}
transport = "udp"
pjsip_transport = "transport-phones"
context = "tf-phones"
time_zone = "America/Chicago"
ntp_server = "{SERVER_IP}"

[site.dial_rules]
extension_patterns = ["2..."]
outside_patterns = [".........."]

[dhcp]
subnet = "{PHONE_SUBNET}"
range = ["10.99.0.100", "10.99.0.199"]
router = "{SERVER_IP}"
ntp_servers = ["{SERVER_IP}"]
tftp_servers = ["{SERVER_IP}"]
lease_time = 3600
"""

PHONE_ENTRY = """
[[phones]]
mac = "{mac}"
model = "7961"
label = "{name}"
ip = "{ip}"
  [[phones.lines]]
  extension = "{ext}"
  display_name = "Virtual {name}"
"""

# The phones' transport, on the server's bridge address (the test bed's own
# transport stays on the namespace's loopback for the AGI and AMI side).
PHONE_TRANSPORT = f"""
[transport-phones]
type = transport
protocol = udp
bind = {SERVER_IP}:{SIP_PORT}
"""


@dataclass
class PhoneSite:
    net: PhoneNetwork
    work: Path
    inventory: Path
    tftp_root: Path
    asterisk: Asterisk
    feature_server: FeatureServer
    sipp: SippRunner
    tftp_log: Path
    dnsmasq_log: Path
    dnsmasq: subprocess.Popen

    def ami_env(self) -> dict[str, str]:
        return {"TELEFEATURES_AMI_HOST": "127.0.0.1", "TELEFEATURES_AMI_PORT": str(self.asterisk.ports.ami),
                "TELEFEATURES_AMI_USERNAME": self.asterisk.ami_user,
                "TELEFEATURES_AMI_SECRET": self.asterisk.ami_secret}

    def cli_in_server(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """A ``telefeatures`` command run on the server (AMI is on its loopback)."""
        return subprocess.run(self.net.command(self.net.server, TELEFEATURES, *args), capture_output=True,
                              text=True, timeout=timeout, env={**os.environ, **self.ami_env()})


def _stop(process: subprocess.Popen | None) -> None:
    stop_process(process, grace=10)


@pytest.fixture(scope="module")
def phone_net():
    PhoneNetwork.remove_orphans("tfb")
    net = PhoneNetwork(f"tfb{os.getpid()}")
    try:
        net.create()
        for name, mac, _ip, _ext in PHONES:
            net.add_host(name, mac)
        net.add_host("x", ATTACKER_MAC)
        yield net
    finally:
        problems = net.destroy()
        leftover = [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
                    if n.startswith(net.prefix + "-")]
        assert not problems and not leftover, (problems, leftover)


@pytest.fixture(scope="module")
def phone_site(phone_net, tmp_path_factory):
    net = phone_net
    work = tmp_path_factory.mktemp("phone-boot")
    inventory = work / "phones.toml"
    inventory.write_text(INVENTORY_HEAD + "".join(
        PHONE_ENTRY.format(name=name, mac=mac, ip=ip, ext=ext) for name, mac, ip, ext in [*PHONES, UNPLUGGED]))
    tftp_root = work / "tftp"
    tftp_root.mkdir()
    redis = RedisProcess(work / "redis").start()  # a Unix socket: reachable from any namespace
    source = "host" if choose_source() == "host" else "chroot"
    feature_server = asterisk = dnsmasq = tftp = None
    try:
        with net.entered(net.server):
            feature_server = FeatureServer(work / "serve", redis.url)
            feature_server.start()
        # Outside the namespace: preparing the test bed may download its Python packages.
        asterisk = prepare(agi_port=feature_server.port, extra_pjsip=PHONE_TRANSPORT, source=source,
                           env={"TELEFEATURES_REDIS_URL": redis.url, "TELEFEATURES_KEY_PREFIX": KEY_PREFIX})
        built = run_cli("provision", "build", str(inventory), "--tftp-root", str(tftp_root),
                        "--pjsip", str(asterisk.run_dir / "etc" / "telefeatures-phones.conf"))
        assert built.returncode == 0, built.stdout + built.stderr
        dhcp_conf = work / "dnsmasq.conf"
        made = run_cli("provision", "dhcp", str(inventory), "--format", "dnsmasq", "--output", str(dhcp_conf))
        assert made.returncode == 0, made.stderr
        dnsmasq_log = work / "dnsmasq.log"
        tftp_log = work / "tftp.log"
        with net.entered(net.server):
            asterisk.start()
            # DHCP only (port=0: no DNS), on the bridge alone, leases in the test's directory.
            dnsmasq = subprocess.Popen(
                ["dnsmasq", "--keep-in-foreground", "--port=0", f"--conf-file={dhcp_conf}", "--interface=br0",
                 "--bind-interfaces", f"--dhcp-leasefile={work / 'dnsmasq.leases'}",
                 f"--pid-file={work / 'dnsmasq.pid'}", "--log-dhcp", f"--log-facility={dnsmasq_log}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            # Locked down: the phone network only, each phone's files only to its reserved
            # address, a peer asking for ENUMERATION_LIMIT unknown phone names blocked.
            tftp = subprocess.Popen(
                [TELEFEATURES, "--state-dir", str(work / "state"), "tftp", "--root", str(tftp_root),
                 "--bind", f"{SERVER_IP}:69", "--allow", PHONE_SUBNET, "--inventory", str(inventory),
                 "--enumeration-limit", str(ENUMERATION_LIMIT), "--enumeration-window", "60",
                 "--enumeration-block", "600"],
                stdout=open(tftp_log, "wb"), stderr=subprocess.STDOUT)
            wait_for(lambda: udp_bound(69, SERVER_IP) or tftp.poll() is not None, what="telefeatures tftp")
            assert tftp.poll() is None, tftp_log.read_text()
            assert dnsmasq.poll() is None, dnsmasq_log.read_text() if dnsmasq_log.exists() else ""
        wait_for(lambda: "2101" in asterisk.cli("pjsip show endpoints"), what="the generated endpoints")
        yield PhoneSite(net, work, inventory, tftp_root, asterisk, feature_server,
                        SippRunner(asterisk, work / "sipp", server=f"{SERVER_IP}:{SIP_PORT}"), tftp_log, dnsmasq_log,
                        dnsmasq)
    finally:
        _stop(tftp)
        _stop(dnsmasq)
        if asterisk is not None:
            asterisk.stop()
            remove_run_dir(asterisk)
        if feature_server is not None:
            feature_server.stop()
        redis.stop()


# ----------------------------------------------------------------------------- what a phone does


@dataclass
class Lease:
    ip: str
    option_150: list[str]
    option_66: str | None


def dhcp_lease(site: PhoneSite, name: str) -> Lease:
    """The phone's DHCP client, as at power-on: discover, request options 150 and 66."""
    record = site.work / f"{name}.dhcp"
    record.unlink(missing_ok=True)
    netns = site.net.hosts[name].netns
    out = subprocess.run(site.net.command(netns, "busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "6",
                                          "-T", "2", "-O", "150", "-O", "66", "-s", str(UDHCPC_SCRIPT)),
                         capture_output=True, text=True, timeout=60, env={**os.environ, "TF_DHCP_RECORD": str(record)})
    # If DHCP never arrives, look at `iptables -S FORWARD`: a dockerd with its own
    # iptables handling drops bridged traffic (start it with --iptables=false).
    assert out.returncode == 0 and record.exists(), f"{name}: no lease\n{out.stdout}{out.stderr}"
    values = dict(line.split("=", 1) for line in record.read_text().splitlines() if "=" in line)
    raw150 = bytes.fromhex(values.get("opt150", ""))
    servers = [socket.inet_ntoa(raw150[i:i + 4]) for i in range(0, len(raw150), 4)]
    site.net.hosts[name].ip = values["ip"]
    return Lease(values["ip"], servers, values.get("tftp"))


def tftp_fetch(site: PhoneSite, name: str, server: str, filename: str) -> bytes | None:
    """tftp-hpa from the phone's namespace; None when the server refuses."""
    dest = site.work / "fetched" / name / filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)
    out = subprocess.run(site.net.command(site.net.hosts[name].netns, "tftp", "-m", "binary", server, "-c", "get",
                                          filename, str(dest)), capture_output=True, text=True, timeout=60)
    # tftp-hpa exits 0 even on a TFTP error; it says so on its output instead.
    if "Error" in out.stdout + out.stderr or "timed out" in out.stdout + out.stderr or not dest.exists():
        return None
    return dest.read_bytes()


@dataclass
class Credentials:
    server: str
    port: int
    extension: str
    auth_user: str
    password: str


def credentials_from(sep_file: bytes) -> Credentials:
    device = etree.fromstring(sep_file)
    member = "devicePool/callManagerGroup/members/member/callManager/"
    line = device.find(".//line[@button='1']")
    return Credentials(device.findtext(member + "processNodeName"), int(device.findtext(member + "ports/sipPort")),
                       line.findtext("name"), line.findtext("authName"), line.findtext("authPassword"))


@dataclass
class Booted:
    name: str
    lease: Lease
    credentials: Credentials
    registered: bool
    answered: bool
    output: str


def boot_phone(site: PhoneSite, name: str, mac: str) -> Booted:
    """DHCP -> TFTP (SEP file, dial plan) -> REGISTER -> dial *83, as a 7961 does."""
    lease = dhcp_lease(site, name)
    tftp_server = lease.option_150[0]
    sep_name = "SEP" + mac.replace(":", "").upper() + ".cnf.xml"
    sep_file = tftp_fetch(site, name, tftp_server, sep_name)
    assert sep_file is not None, f"{name}: {sep_name} not served"
    assert tftp_fetch(site, name, tftp_server, "dialplan.xml") is not None, f"{name}: dialplan.xml not served"
    creds = credentials_from(sep_file)
    sipp = SippRunner(site.asterisk, site.sipp.workdir, server=f"{creds.server}:{creds.port}")
    with site.net.entered(site.net.hosts[name].netns):
        reg = sipp.register(creds.extension, free_port(socket.SOCK_DGRAM, lease.ip), auth_user=creds.auth_user,
                            password=creds.password, local_ip=lease.ip)
        # Asterisk hangs up once *83 has answered (status read, prompt played): the
        # phone waits for that, however slow a loaded machine makes it, rather
        # than hanging up itself after a fixed time, maybe in the middle of it.
        call = sipp.call(creds.extension, "*83", auth_user=creds.auth_user, password=creds.password,
                         local_ip=lease.ip, hold_ms=30000) if reg.received("200") else None
    return Booted(name, lease, creds, bool(reg.received("200")), bool(call and call.answered),
                  reg.output + (call.output if call else ""))


def boot_all(site: PhoneSite) -> list[Booted]:
    with ThreadPoolExecutor(max_workers=PHONE_COUNT) as pool:
        return list(pool.map(lambda p: boot_phone(site, p[0], p[1]), PHONES))


# ----------------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def booted(phone_site):
    """All ten phones powered on at once (the first test checks how that went)."""
    log_at = phone_site.feature_server.log_offset()
    started = time.monotonic()
    phones = boot_all(phone_site)
    return phones, time.monotonic() - started, log_at


def test_ten_virtual_7961s_boot_register_and_dial(phone_site, booted):
    booted, elapsed, log_at = booted
    for phone, (name, _mac, ip, ext) in zip(booted, PHONES):
        assert phone.lease.ip == ip, f"{name}: leased {phone.lease.ip}, reserved {ip}"
        assert phone.lease.option_150 == [SERVER_IP] and phone.lease.option_66 == SERVER_IP
        assert (phone.credentials.server, phone.credentials.port, phone.credentials.extension) == (
            SERVER_IP, SIP_PORT, ext)
        assert phone.registered, f"{name}: not registered\n{phone.output}"
        assert phone.answered, f"{name}: *83 not answered\n{phone.output}"
    contacts = phone_site.asterisk.cli("pjsip show contacts")
    for _name, _mac, ip, ext in PHONES:
        assert f"{ext}/sip:{ext}@{ip}:" in contacts, contacts
    # Each *83 reached telefeatures serve (its session line is written when the call ends).
    wanted = {f"route=cidblock/status ext={ext} status=OK" for _name, _mac, _ip, ext in PHONES}
    wait_for(lambda: all(any(w in s for s in phone_site.feature_server.sessions_since(log_at)) for w in wanted),
             timeout=15, what="a cidblock/status session for every phone")
    print(f"\n{PHONE_COUNT} phones booted (DHCP, TFTP, REGISTER, *83) in {elapsed:.1f}s")


def test_doctor_shows_each_phone_fetched_and_registered_from_its_reserved_address(phone_site, booted):
    site = phone_site

    def doctor():
        return site.cli_in_server("provision", "doctor", str(site.inventory), "--tftp-root", str(site.tftp_root),
                                  "--state-dir", str(site.work / "state"))

    # The TFTP server writes its fetch record at most once a second.
    summary = f"{PHONE_COUNT + 1} phone(s), {PHONE_COUNT} ok, 1 with problems"
    result = wait_for(lambda: summary in (r := doctor()).stdout and r, timeout=30, what="the ten phones ok")
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:PHONE_COUNT + 2]}
    for _name, mac, ip, ext in PHONES:
        assert f" from {ip} " in rows[mac] and rows[mac].endswith(" ok"), result.stdout
        assert f"{ext} from {ip} (telefeatures-testbed-phone)" in rows[mac], result.stdout
    # The phone that was never plugged in is the one problem, and the exit code says so.
    assert result.returncode == 1
    assert rows[UNPLUGGED[1]].endswith("2 problem(s)")
    assert f"{UNPLUGGED[1]}: never fetched its file" in result.stdout
    assert f"{UNPLUGGED[1]}: line {UNPLUGGED[3]} is not registered" in result.stdout


def stolen_credentials(site: PhoneSite, index: int) -> Credentials:
    """What a harvested SEP file would give away: read straight from the TFTP root."""
    _name, mac, _ip, _ext = PHONES[index]
    return credentials_from((site.tftp_root / ("SEP" + mac.replace(":", "").upper() + ".cnf.xml")).read_bytes())


def register_from(site: PhoneSite, name: str, creds: Credentials, contact_ip: str | None = None):
    """A REGISTER from ``name``'s namespace and address (Contact: ``contact_ip`` if given)."""
    host = site.net.hosts[name]
    with site.net.entered(host.netns):
        port = free_port(socket.SOCK_DGRAM, host.ip)
        result = site.sipp.register(creds.extension, port, auth_user=creds.auth_user, password=creds.password,
                                    local_ip=host.ip, timeout=8)
    return result


def test_harvested_password_is_refused_from_any_other_address_and_the_log_says_so(phone_site, booted):
    site = phone_site
    lease = dhcp_lease(site, "x")  # the attacker plugs into the phone network and gets a dynamic address
    assert lease.ip not in {ip for _n, _m, ip, _e in PHONES}
    creds = stolen_credentials(site, 0)
    log_at = site.asterisk.log_offset()

    refused = register_from(site, "x", creds)
    assert not refused.received("200"), refused.output
    # Asterisk answers the authenticated REGISTER with another challenge, as for a
    # wrong password: the attacker learns nothing, the log says why. (A slow
    # Asterisk may challenge a resent first REGISTER twice: counted per REGISTER.)
    challenged = {m.header("CSeq") for m in refused.received("401")}
    assert challenged == {"1 REGISTER", "2 REGISTER"}, refused.output
    with site.net.entered(site.net.hosts["x"].netns):
        call = site.sipp.call(creds.extension, "*83", auth_user=creds.auth_user, password=creds.password,
                              local_ip=lease.ip, timeout=10)
    assert not call.answered, call.output
    log = wait_for(lambda: (text := site.asterisk.log_since(log_at)).count("Not match Endpoint ACL") >= 2 and text,
                   what="Asterisk's ACL refusals in its log")
    assert f"SIP ACL: Rejecting '{lease.ip}'" in log
    assert f"Request 'REGISTER' from '<sip:{creds.extension}@{SERVER_IP}>' failed for '{lease.ip}:" in log
    assert f"Request 'INVITE' from '\"{creds.extension}\" <sip:{creds.extension}@{SERVER_IP}>' failed for " \
           f"'{lease.ip}:" in log

    # The real phone, from its reserved address, is unaffected.
    contacts = site.asterisk.cli("pjsip show contacts")
    assert f"{creds.extension}/sip:{creds.extension}@{PHONES[0][2]}:" in contacts
    assert lease.ip not in contacts
    again = boot_phone(site, PHONES[0][0], PHONES[0][1])
    assert again.registered and again.answered, again.output


def test_rotated_password_reaches_the_phone_and_the_old_one_stops_working(phone_site, booted):
    site = phone_site
    name, mac, ip, ext = PHONES[1]
    host = site.net.hosts[name]
    old = credentials_from(tftp_fetch(site, name, SERVER_IP, "SEP" + mac.replace(":", "").upper() + ".cnf.xml"))
    with site.net.entered(host.netns):
        listener = AnsweringAgent(ip, free_port(socket.SOCK_DGRAM, ip), site.work / f"{name}-notify.trace",
                                  scenario="notify_uas.xml").start()
    try:
        with site.net.entered(host.netns):
            registered = site.sipp.register(ext, listener.port, auth_user=old.auth_user, password=old.password,
                                            local_ip=ip)
        assert registered.received("200"), registered.output
        pjsip = site.asterisk.run_dir / "etc" / "telefeatures-phones.conf"
        rotated = site.cli_in_server("provision", "rotate-passwords", str(site.inventory), "--tftp-root",
                                     str(site.tftp_root), "--pjsip", str(pjsip), "--phones", mac)
        assert rotated.returncode == 0, rotated.stdout + rotated.stderr
        assert "reload res_pjsip.so: ok" in rotated.stdout
        notify = wait_for(lambda: listener.received("NOTIFY"), what="the re-sync NOTIFY at the phone")[-1]
        assert notify.header("Event") == "check-sync"
    finally:
        listener.stop()

    # The phone re-syncs: it fetches its file again and finds a new password.
    new = credentials_from(tftp_fetch(site, name, SERVER_IP, "SEP" + mac.replace(":", "").upper() + ".cnf.xml"))
    assert new.password != old.password and new.extension == ext
    log_at = site.asterisk.log_offset()
    stale = register_from(site, name, old)
    assert not stale.received("200"), stale.output
    wait_for(lambda: f"failed for '{ip}:" in site.asterisk.log_since(log_at)
             and "Failed to authenticate" in site.asterisk.log_since(log_at), what="the refusal in Asterisk's log")
    fresh = register_from(site, name, new)
    assert fresh.received("200"), fresh.output
    # The other phones' passwords did not change.
    assert stolen_credentials(site, 2).password == booted[0][2].credentials.password


def rrq(filename: str) -> bytes:
    return b"\x00\x01" + filename.encode() + b"\x00octet\x00"


def tftp_probe(site: PhoneSite, name: str, filenames: list[str], settle: float = 2.0,
               until=None, within: float = 30.0) -> dict[str, int]:
    """What an enumeration tool does: read requests from ``name``'s address as
    fast as the network takes them; counts the server's DATA and ERROR answers.

    After the last request it listens until ``until(answers)`` holds (for at
    most ``within`` seconds: a loaded server answers late, not differently),
    then ``settle`` seconds more for any answer beyond those."""
    host = site.net.hosts[name]
    answers = {"data": 0, "error": 0}

    def drain(sock: socket.socket) -> None:
        while True:
            try:
                packet = sock.recv(1024)
            except BlockingIOError:
                return
            if packet[:2] == b"\x00\x03":
                answers["data"] += 1
            elif packet[:2] == b"\x00\x05":
                answers["error"] += 1

    def listen(seconds: float, done=lambda: False) -> None:
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline:
            drain(sock)
            time.sleep(0.05)

    with site.net.entered(host.netns):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((host.ip, 0))
            sock.setblocking(False)
            for n, filename in enumerate(filenames):
                sock.sendto(rrq(filename), (SERVER_IP, 69))
                if n % 100 == 99:
                    time.sleep(0.02)  # let the network keep up; answers are counted all along
                drain(sock)
            if until is not None:
                listen(within, lambda: until(answers))
            listen(settle)
    return answers


def test_tftp_attacker_gets_no_phone_file_and_is_blocked_while_phones_keep_booting(phone_site, booted):
    site = phone_site
    if site.net.hosts["x"].ip is None:
        dhcp_lease(site, "x")
    attacker_ip = site.net.hosts["x"].ip
    log_at = site.tftp_log.stat().st_size

    # A real phone's file, asked for by its exact name from another address: "file not found", like a typo.
    real_names = ["SEP" + mac.replace(":", "").upper() + ".cnf.xml" for _n, mac, _i, _e in PHONES]
    assert tftp_fetch(site, "x", SERVER_IP, real_names[2]) is None
    assert tftp_probe(site, "x", real_names[3:5], settle=1.0,
                      until=lambda a: a["data"] + a["error"] >= 2) == {"data": 0, "error": 2}

    # 5,000 plausible names (Cisco OUIs, real phones' neighbours among them): nothing served, blocked after K.
    guesses = [f"SEP{oui}{n:06X}.cnf.xml" for oui in ("0019E8", "001BD4", "00260B", "0023EB", "001E13")
               for n in range(1000)]
    assert len(guesses) == 5000
    # Three names were counted above; the K-th unknown name blocks the peer and
    # gets no answer itself, so K - 3 - 1 "file not found" answers, then silence.
    refusals = ENUMERATION_LIMIT - 3 - 1
    with ThreadPoolExecutor(max_workers=1) as pool:
        # A real phone powers on in the middle of it (DHCP, TFTP from its own address, REGISTER, *83).
        during = pool.submit(boot_phone, site, PHONES[4][0], PHONES[4][1])
        answers = tftp_probe(site, "x", guesses, until=lambda a: a["error"] >= refusals)
        rebooted = during.result()
    assert rebooted.registered and rebooted.answered, rebooted.output
    assert answers["data"] == 0
    assert answers["error"] == refusals, answers
    blocked = f"tftp enumeration blocked: peer {attacker_ip} asked for {ENUMERATION_LIMIT}"
    log = wait_for(lambda: blocked in (text := site.tftp_log.read_bytes()[log_at:].decode(errors="replace")) and text,
                   what="the block in the TFTP server's log")
    assert log.count(blocked) == 1, log[-3000:]
    # Blocked: even dialplan.xml, which anyone on the phone network may fetch, gets no answer now.
    assert tftp_probe(site, "x", ["dialplan.xml"], settle=1.0) == {"data": 0, "error": 0}

    # The fetch record names the stranger who asked for a real phone's file.
    wait_for(lambda: "refused" in site.cli_in_server(
        "provision", "doctor", str(site.inventory), "--tftp-root", str(site.tftp_root), "--state-dir",
        str(site.work / "state"), "--no-ami").stdout, timeout=30, what="the refusal in the fetch record")
    doctor = site.cli_in_server("provision", "doctor", str(site.inventory), "--tftp-root", str(site.tftp_root),
                                "--state-dir", str(site.work / "state"), "--no-ami")
    assert doctor.returncode == 1
    assert f"its file was asked for from {attacker_ip} at" in doctor.stdout

    # And after it.
    again = boot_phone(site, PHONES[5][0], PHONES[5][1])
    assert again.registered and again.answered, again.output


def _isc_dhcpd(site: PhoneSite, conf: Path) -> list[str]:
    leases = site.work / "dhcpd.leases"
    leases.touch()
    return ["dhcpd", "-4", "-f", "-q", "-cf", str(conf), "-lf", str(leases), "-pf", str(site.work / "dhcpd.pid"),
            "br0"]


def _kea_dhcp4(site: PhoneSite, conf: Path) -> list[str]:
    # The generated file as is, but leases kept in memory, not in the machine's /var/lib/kea.
    text = "\n".join(line for line in conf.read_text().splitlines() if not line.strip().startswith("//"))
    config = json.loads(text)
    config["Dhcp4"]["lease-database"] = {"type": "memfile", "persist": False}
    run = conf.with_suffix(".run.json")
    run.write_text(json.dumps(config))
    return ["kea-dhcp4", "-c", str(run)]


@pytest.mark.parametrize("fmt, command", [("isc", _isc_dhcpd), ("kea", _kea_dhcp4)])
def test_isc_dhcpd_and_kea_running_their_generated_config_give_each_phone_its_reservation(phone_site, booted, fmt,
                                                                                         command):
    site = phone_site
    _stop(site.dnsmasq)  # one DHCP server on the phone network at a time
    conf = site.work / f"dhcp.{fmt}"
    made = run_cli("provision", "dhcp", str(site.inventory), "--format", fmt, "--output", str(conf))
    assert made.returncode == 0, made.stderr
    log = open(site.work / f"{fmt}.log", "wb")
    env = {**os.environ, "KEA_PIDFILE_DIR": str(site.work), "KEA_LOCKFILE_DIR": "none"}
    server = subprocess.Popen(site.net.command(site.net.server, *command(site, conf)), stdout=log,
                              stderr=subprocess.STDOUT, env=env)
    try:
        time.sleep(1)  # the daemon opens its sockets
        assert server.poll() is None, (site.work / f"{fmt}.log").read_text()
        with ThreadPoolExecutor(max_workers=PHONE_COUNT) as pool:
            leases = list(pool.map(lambda p: dhcp_lease(site, p[0]), PHONES))
    finally:
        _stop(server)
    for lease, (name, _mac, ip, _ext) in zip(leases, PHONES):
        assert (lease.ip, lease.option_150, lease.option_66) == (ip, [SERVER_IP], SERVER_IP), name
