"""A phone (or anything) reading the TFTP root while the site rebuilds must
only ever see whole files: old or new, never a mix or a truncation."""

from __future__ import annotations

import socket
import subprocess
import threading

import tftpy
from lxml import etree

from tests.support.cli import TELEFEATURES
from tests.support.ports import free_port
from tests.support.ports import udp_bound
from tests.testbed.services import wait_for

SEP = "SEP0019E8F490AD.cnf.xml"
INVENTORY = """
[site]
asterisk_address = "127.0.0.1"
time_zone = "America/New_York"
ntp_server = "127.0.0.1"

[[phones]]
mac = "0019E8F490AD"
model = "7961"
label = "Lab"
{lines}
"""


def inventory_text(version: int) -> str:
    lines = "".join(f'\n  [[phones.lines]]\n  extension = "{1000 + i}"\n  display_name = "v{version} line {i}"\n'
                    for i in range(6))
    return INVENTORY.format(lines=lines)


def test_readers_never_see_a_partial_file_during_rebuilds(tmp_path):
    root = tmp_path / "tftp"
    root.mkdir()
    inventory = tmp_path / "phones.toml"
    inventory.write_text(inventory_text(0))
    assert subprocess.run([TELEFEATURES, "provision", "build", str(inventory), "--tftp-root", str(root)],
                          capture_output=True).returncode == 0
    port = free_port(socket.SOCK_DGRAM)
    server = subprocess.Popen([TELEFEATURES, "tftp", "--root", str(root), "--bind", f"127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stop = threading.Event()
    readers: list[threading.Thread] = []
    seen: dict[str, set[str]] = {"disk": set(), "tftp": set()}
    bad: list[str] = []

    def check(where: str, data: bytes) -> None:
        try:
            device = etree.fromstring(data)
        except etree.XMLSyntaxError as exc:
            bad.append(f"{where}: {exc} ({len(data)} bytes)")
            return
        names = [d.text for d in device.iter("displayName")]
        versions = {n.split()[0] for n in names}
        if len(names) != 6 or len(versions) != 1:
            bad.append(f"{where}: a mix of versions {names}")
        seen[where] |= versions

    def reporting(poll):
        def run():
            try:
                poll()
            except Exception as exc:  # noqa: BLE001 - a reader that died is a failure, not silence
                bad.append(f"{poll.__name__} failed: {exc!r}")
        return run

    @reporting
    def poll_disk():
        while not stop.is_set():
            check("disk", (root / SEP).read_bytes())

    @reporting
    def poll_tftp():
        client = tftpy.TftpClient("127.0.0.1", port)
        out = tmp_path / "fetched.xml"
        while not stop.is_set():
            client.download(SEP, str(out), timeout=2)
            check("tftp", out.read_bytes())

    try:
        wait_for(lambda: server.poll() is None and udp_bound(port), what="telefeatures tftp")
        readers += [threading.Thread(target=poll_disk), threading.Thread(target=poll_tftp)]
        for r in readers:
            r.start()
        for version in range(1, 13):
            inventory.write_text(inventory_text(version))
            built = subprocess.run([TELEFEATURES, "provision", "build", str(inventory), "--tftp-root", str(root)],
                                   capture_output=True, text=True)
            assert built.returncode == 0, built.stdout + built.stderr
            assert "1 changed" in built.stdout
    finally:
        stop.set()
        for r in readers:
            r.join(timeout=10)
        server.terminate()
        server.wait(timeout=10)
    print(f"\nversions seen on disk: {len(seen['disk'])}, over TFTP: {len(seen['tftp'])}")
    assert not bad, bad[:5]
    assert len(seen["disk"]) > 5 and len(seen["tftp"]) > 1  # the readers really raced the rebuilds

