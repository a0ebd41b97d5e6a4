"""`telefeatures tftp` as an admin runs it: a subprocess, real clients (tftp-hpa,
atftp, busybox tftp), --workers on one port, settings from the TOML file, the
fetch record in the state dir, and the enumeration log line checked by
Debian's fail2ban-regex against the filter shipped in contrib/."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from telefeatures.provisioning.fetch_record import load_fetches
from telefeatures.provisioning.tftp_workers import MAX_AUTO_WORKERS
from tests.support.ports import free_port, udp_bound
from tests.support.processes import kill_leftovers, running
from tests.testbed.services import wait_for

from .conftest import SITE

TELEFEATURES = shutil.which("telefeatures", path=os.path.dirname(sys.executable)) or "telefeatures"
REPO = Path(__file__).resolve().parents[3]
FILTER = REPO / "contrib" / "fail2ban" / "filter.d" / "telefeatures-tftp.conf"
MAC = "0019E8F490AD"
PHONE = f'\n[[phones]]\nmac = "{MAC}"\nmodel = "7961"\nip = "127.0.0.1"\n' \
        '[[phones.lines]]\nextension = "1001"\ndisplay_name = "Front desk"\n'


class Server:
    def __init__(self, tmp: Path, *args: str, config: Path | None = None):
        self.port = free_port(socket.SOCK_DGRAM)
        self.root = tmp / "root"
        self.state = tmp / "state"
        self.log_path = tmp / "tftp.log"
        command = [TELEFEATURES, "--state-dir", str(self.state)]
        if config:
            command += ["--config", str(config)]
        command += ["tftp", "--root", str(self.root), "--bind", f"127.0.0.1:{self.port}", *args]
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        # The port is bound before the workers are forked; a request sent then
        # waits in the socket until a worker runs. Ready is when each says so.
        workers = int(args[args.index("--workers") + 1]) if "--workers" in args else min(
            len(os.sched_getaffinity(0)), MAX_AUTO_WORKERS)
        wait_for(lambda: self.text().count("serving ") >= workers or self.proc.poll() is not None, timeout=30,
                 what=f"{workers} telefeatures tftp worker(s) serving")
        assert self.proc.poll() is None and udp_bound(self.port), self.text()

    def text(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(10)
        self.log.close()
        return code


@pytest.fixture
def root(tmp_path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    (root / f"SEP{MAC}.cnf.xml").write_bytes(b"<device><authPassword>front-desk-pw</authPassword></device>\n")
    (root / "dialplan.xml").write_bytes(b"<DIALTEMPLATE/>\n")
    (root / "jar41sip.sbn").write_bytes(os.urandom(300_000))
    return root


def hpa_get(port: int, name: str, dest: Path) -> str:
    """Debian's tftp-hpa client, giving up after 2 s without an answer."""
    script = f"binary\nrexmt 1\ntimeout 2\nget {name} {dest}\n"
    out = subprocess.run(["tftp", "127.0.0.1", str(port)], input=script, capture_output=True, text=True, timeout=30)
    return out.stdout + out.stderr


def rrq(port: int, name: str) -> None:
    """One read request from a new port, answer or not."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"\0\1" + name.encode() + b"\0octet\0", ("127.0.0.1", port))
        time.sleep(0.1)


def test_real_clients_fetch_from_two_workers_and_the_record_says_so(tmp_path, root):
    server = Server(tmp_path, "--workers", "2")
    try:
        for n in range(3):
            assert "Error" not in hpa_get(server.port, "jar41sip.sbn", tmp_path / f"hpa{n}")
            assert (tmp_path / f"hpa{n}").read_bytes() == (root / "jar41sip.sbn").read_bytes()
        subprocess.run(["atftp", "--option", "blksize 1428", "--option", "tsize", "-g", "-r", "jar41sip.sbn",
                        "-l", str(tmp_path / "atftp"), "127.0.0.1", str(server.port)], check=True, timeout=30)
        subprocess.run(["busybox", "tftp", "-b", "1024", "-g", "-r", "dialplan.xml", "-l", str(tmp_path / "bb"),
                        "127.0.0.1", str(server.port)], check=True, timeout=30)
        assert (tmp_path / "atftp").read_bytes() == (root / "jar41sip.sbn").read_bytes()
        assert (tmp_path / "bb").read_bytes() == b"<DIALTEMPLATE/>\n"
        workers = re.findall(r"serving .* port (\d+)", server.text())
        assert workers == [str(server.port)] * 2
    finally:
        assert server.stop() == 0
    fetches = load_fetches(server.state)
    assert fetches["jar41sip.sbn"].ok.peer == "127.0.0.1" and fetches["jar41sip.sbn"].ok.bytes == 300_000
    assert fetches["dialplan.xml"].ok.peer == "127.0.0.1"
    # One peer address always reaches the same worker (BPF on the port), so its
    # per-peer limits are exact: every fetch from 127.0.0.1 is in one worker's file.
    files = {p.name: json.loads(p.read_text())["files"] for p in (server.state / "tftp").glob("fetches-*.json")}
    assert sorted(len(f) for f in files.values()) in ([2], [0, 2]), files


def test_a_dead_worker_stops_the_command(tmp_path, root):
    server = Server(tmp_path, "--workers", "2")
    children = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout.split()
    assert len(children) == 2, children
    os.kill(int(children[0]), signal.SIGKILL)
    assert server.proc.wait(10) == 1
    assert "exited" in server.text() and "stopping the others" in server.text()
    assert not subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout
    server.log.close()


def test_workers_end_with_a_killed_supervisor(tmp_path, root):
    """A supervisor killed outright (it cannot pass SIGKILL on) leaves no worker
    serving the TFTP root unsupervised."""
    server = Server(tmp_path, "--workers", "2")
    children = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout.split()
    assert len(children) == 2, children
    server.proc.kill()
    server.proc.wait(10)
    server.log.close()
    try:
        wait_for(lambda: not any(running(pid) for pid in children), timeout=30,
                 what="the TFTP workers ending with their supervisor")
        assert not udp_bound(server.port)
    finally:
        kill_leftovers(children)


def test_settings_file_and_inventory_lock_down(tmp_path, root, write_inventory):
    inventory = write_inventory(SITE + PHONE)
    config = tmp_path / "telefeatures.toml"
    config.write_text(f'[tftp]\ninventory = "{inventory}"\nenumeration_limit = 3\nenumeration_block = 30\n')
    server = Server(tmp_path, config=config)
    try:
        # 127.0.0.1 is the phone's address: it gets its file.
        assert "Error" not in hpa_get(server.port, f"SEP{MAC}.cnf.xml", tmp_path / "mine")
        assert b"front-desk-pw" in (tmp_path / "mine").read_bytes()
        # Unknown phone names: not found twice, then blocked (no answer: tftp-hpa times out).
        for n in range(2):
            assert "Error code 1: file not found" in hpa_get(server.port, f"SEP0019E8AAAA0{n}.cnf.xml", tmp_path / "x")
        assert "Transfer timed out" in hpa_get(server.port, "SEP0019E8AAAA09.cnf.xml", tmp_path / "x")
        assert "Transfer timed out" in hpa_get(server.port, "dialplan.xml", tmp_path / "x")
        wait_for(lambda: "enumeration blocked" in server.text(), what="the block line")
    finally:
        assert server.stop() == 0
    assert server.text().count("enumeration blocked: peer 127.0.0.1 asked for 3 unknown phone config names") == 1


def test_allow_flag_and_bad_settings(tmp_path, root):
    server = Server(tmp_path, "--allow", "127.0.0.2/32", "--allow", "10.0.0.0/8")
    try:
        assert "Transfer timed out" in hpa_get(server.port, "dialplan.xml", tmp_path / "x")
    finally:
        server.stop()
    assert "tftp peer 127.0.0.1 refused: not in the allowed networks (--allow), no answer given" in server.text()
    bad = subprocess.run([TELEFEATURES, "tftp", "--root", str(root), "--allow", "10.0.0.0/33"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "allow" in bad.stderr and "Traceback" not in bad.stderr
    bad = subprocess.run([TELEFEATURES, "tftp", "--root", str(root), "--inventory", str(tmp_path / "root" / "dialplan.xml")],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "TOML" in bad.stderr and "Traceback" not in bad.stderr


def test_fail2ban_filter_matches_the_real_block_lines(tmp_path, root):
    """Real log lines from a real block, through Debian's fail2ban-regex and the
    filter in contrib/: exactly the block lines match, with the peer's address."""
    server = Server(tmp_path, "--enumeration-limit", "2", "--enumeration-block", "0.3")
    try:
        for block in (1, 2):  # two blocks: the second after the first cool-down ended
            for n in range(2):
                rrq(server.port, f"SEP0019E8BBBB{block}{n}.cnf.xml")
            # The block starts when the server reads the request, maybe well after it
            # was sent: its line in the log is the start; 0.3 s after seeing it, it is over.
            wait_for(lambda: server.text().count("enumeration blocked") == block, what=f"block {block}")
            time.sleep(0.4)
        assert "Error" not in hpa_get(server.port, "dialplan.xml", tmp_path / "ok")
    finally:
        server.stop()
    log = server.text()
    assert log.count("enumeration blocked") == 2, log
    result = subprocess.run(["fail2ban-regex", "--print-all-matched", str(server.log_path), str(FILTER)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"Failregex: 2 total", result.stdout), result.stdout
    matched = result.stdout.split("Matched line(s):", 1)[1].split("`-", 1)[0]
    assert matched.count("blocked: peer 127.0.0.1 asked for 2 unknown phone config names") == 2, matched
    lines = len(log.splitlines())
    assert re.search(rf"Lines: {lines} lines, 0 ignored, 2 matched, {lines - 2} missed", result.stdout), result.stdout


def test_open_file_limit_is_raised_for_a_socket_per_transfer():
    """A boot storm needs a socket per transfer; a soft limit of 1024 would
    refuse the thousandth phone."""
    script = ("import resource\nfrom telefeatures.provisioning.tftp_workers import _raise_file_limit\n"
              "hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n"
              "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
              "_raise_file_limit(2048 + 64)\n"
              "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard)\n")
    soft, hard = map(int, subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                         check=True).stdout.split())
    assert soft == min(2112, hard if hard >= 0 else 2112)


def test_bind_without_a_port_listens_on_the_documented_default(root, tmp_path):
    # (was: port 69). A loopback address of its own, so 6969 is surely free on it.
    address = "127.77.13.9"
    log = open(tmp_path / "tftp.log", "wb")
    proc = subprocess.Popen([TELEFEATURES, "--state-dir", str(tmp_path / "state"), "tftp", "--root", str(root),
                             "--bind", address], stdout=log, stderr=subprocess.STDOUT)
    try:
        script = f"binary\nrexmt 1\ntimeout 2\nget dialplan.xml {tmp_path / 'got.xml'}\n"

        def fetched() -> bool:
            # tftp-hpa creates the file before the first block comes (and keeps it
            # empty when none does): done is when it reports no error.
            out = subprocess.run(["tftp", address, "6969"], input=script, capture_output=True, text=True,
                                 timeout=30)
            return not re.search("timed out|Error", out.stdout + out.stderr) or proc.poll() is not None

        wait_for(fetched, timeout=20, what="a file from port 6969")
        assert proc.poll() is None, (tmp_path / "tftp.log").read_text()
        assert (tmp_path / "got.xml").read_bytes() == b"<DIALTEMPLATE/>\n"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        log.close()


def test_each_peer_address_reaches_one_worker_socket():
    """The BPF program on the SO_REUSEPORT group: every packet from one address
    lands on the same socket whatever its source port, and addresses spread."""
    from telefeatures.provisioning.tftp_server import listening_socket
    from telefeatures.provisioning.tftp_workers import attach_peer_affinity

    first = listening_socket("127.0.0.1", 0, reuse_port=True)
    group = [first, listening_socket("127.0.0.1", first.getsockname()[1], reuse_port=True)]
    try:
        assert attach_peer_affinity(first, 2)
        for n in range(10, 18):
            for _ in range(6):  # a new source port each time
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                    client.bind((f"127.0.0.{n}", 0))
                    client.sendto(b"\0\1x\0octet\0", ("127.0.0.1", first.getsockname()[1]))
        time.sleep(0.1)
        seen: list[set[str]] = []
        for sock in group:
            addresses = set()
            while True:
                try:
                    addresses.add(sock.recvfrom(100)[1][0])
                except BlockingIOError:
                    break
            seen.append(addresses)
        assert seen[0] | seen[1] == {f"127.0.0.{n}" for n in range(10, 18)}
        assert not seen[0] & seen[1] and seen[0] and seen[1], seen
        assert seen[0] == {f"127.0.0.{n}" for n in range(10, 18, 2)}  # source address modulo 2
    finally:
        for sock in group:
            sock.close()
