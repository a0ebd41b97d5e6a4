"""Several feature servers behind Asterisk's hagi://: a real DNS server
(dnsmasq on 127.0.x.y:53) serves SRV records for two ``telefeatures serve``
instances (priority 10 and 20), the test Asterisk resolves through it (its own
resolv.conf), and calls move to the second server when the first stops.

It also shows the quirk the dialplan has to live with: a server that accepts
and then closes mid-session leaves AGISTATUS=SUCCESS (hagi does not try the
next record either); the shipped dialplan relies on TF_STATUS, so the call
still goes out, with the fallback presentation.
"""

from __future__ import annotations

import re
import socket
import threading
from pathlib import Path

import pytest

from tests.integration.e2e import assert_anonymous, assert_presented, outbound, played, star
from tests.support.dns_server import DnsServer
from tests.support.ports import free_port
from tests.support.redis_server import RedisProcess
from tests.scale.pbx import Pbx, stop_all
from tests.testbed.services import KEYS, FeatureServer, wait_for

NAME = "tf.test"


class Bed:
    def __init__(self, workdir: Path):
        self.parts: list = []  # stopped in reverse, whatever was started
        try:
            self._start(workdir)
        except BaseException:
            self.stop()
            raise

    def _start(self, workdir: Path) -> None:
        self.redis = self._add(RedisProcess(workdir / "redis", port=free_port()).start())
        self.first = self._add(FeatureServer(workdir / "first", self.redis.url))
        self.second = self._add(FeatureServer(workdir / "second", self.redis.url))
        self.first.start()
        self.second.start()
        self.dns = self._add(DnsServer(workdir / "dns", [
            (f"_agi._tcp.{NAME}", f"agi1.{NAME}", self.first.port, 10, 0),
            (f"_agi._tcp.{NAME}", f"agi2.{NAME}", self.second.port, 20, 0),
        ], {f"agi1.{NAME}": "127.0.0.1", f"agi2.{NAME}": "127.0.0.1"}).start())
        self.pbx = self._add(Pbx(workdir, self.first.port,
                                 edits={"extensions.conf": (r"^TF_AGI=.*$", f"TF_AGI=hagi://{NAME}")},
                                 resolv_conf=self.dns.resolv_conf()))
        self.asterisk, self.provider, self.sipp = self.pbx.asterisk, self.pbx.provider, self.pbx.sipp

    def _add(self, part):
        self.parts.append(part)
        return part

    def stop(self) -> None:
        stop_all(*reversed(self.parts))


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    bed = Bed(tmp_path_factory.mktemp("hagi"))
    yield bed
    bed.stop()


class Closer:
    """Accepts on a port, reads the AGI header, closes without a word: a
    server dying mid-session."""

    def __init__(self, port: int):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen()
        self.accepted = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\n\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk

    def stop(self) -> None:
        self.sock.close()


def test_srv_priority_then_failover_to_the_second_server(bed):
    ast, sipp, provider = bed.asterisk, bed.sipp, bed.provider
    # both up: the priority-10 server answers every call (hagi never balances)
    first_at, second_at = bed.first.log_offset(), bed.second.log_offset()
    offset = ast.log_offset()
    star(sipp, "1000", "*81")
    assert played(ast, offset, "activated")
    assert_anonymous(outbound(sipp, provider, "1000"), "1000")
    assert len(bed.first.sessions_since(first_at)) == 2
    assert bed.second.sessions_since(second_at) == []
    assert any(f"_agi._tcp.{NAME}" in q for q in bed.dns.queries())

    # the first server stops: the same calls are answered by the second
    assert bed.first.stop() == 0
    second_at = bed.second.log_offset()
    offset = ast.log_offset()
    star(sipp, "1000", "*82")
    assert played(ast, offset, "de-activated")
    assert_presented(outbound(sipp, provider, "1000"), "1000", "Alice")
    sessions = bed.second.sessions_since(second_at)
    assert any("route=cidblock/off ext=1000 status=OK" in s for s in sessions), sessions
    assert any("route=outbound ext=1000 status=OK" in s for s in sessions), sessions
    assert bed.redis.client().get(KEYS.cidblock("1000")) is None

    # back again: priority 10 wins again
    bed.first.start()
    first_at = bed.first.log_offset()
    star(sipp, "1000", "*81")
    assert any("route=cidblock/on ext=1000 status=OK" in s for s in bed.first.sessions_since(first_at))


def test_server_closing_mid_session_leaves_agistatus_success_and_the_call_still_goes_out(bed):
    """The priority-10 address accepts and closes without answering: Asterisk
    counts that as a session (AGISTATUS=SUCCESS) and does not try the second
    record; TF_STATUS stays empty, so the dialplan falls back."""
    bed.redis.client().set(KEYS.cidblock("1000"), "1")  # blocked: a server would withhold too
    bed.first.stop()
    closer = Closer(bed.first.port)
    try:
        second_at = bed.second.log_offset()
        offset = bed.asterisk.log_offset()
        invite = outbound(bed.sipp, bed.provider, "1000")
        assert_anonymous(invite, "1000")  # TF_FALLBACK_PRES=prohib
        log = bed.asterisk.log_since(offset)
        assert "no answer for outbound (AGISTATUS=SUCCESS), fallback presentation" in log
        assert closer.accepted >= 1
        assert bed.second.sessions_since(second_at) == []  # hagi did not move on
        # a feature code gets the error prompt, not silence
        offset = bed.asterisk.log_offset()
        star(bed.sipp, "1000", "*83")
        assert played(bed.asterisk, offset, "sorry")
        assert "no answer for cidblock/status (AGISTATUS=SUCCESS)" in bed.asterisk.log_since(offset)
    finally:
        closer.stop()
        bed.first.start()
        wait_for(lambda: bed.first.process and bed.first.process.poll() is None, what="first server back")


def test_the_dialplan_decides_on_tf_status_never_on_agistatus():
    """Every AGI() runs in [tf-agi], which clears the result variables first;
    AGISTATUS appears only in log lines."""
    from tests.testbed.asterisk import DIALPLAN

    text = (DIALPLAN / "telefeatures.conf").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith(";")]
    agi_lines = [i for i, line in enumerate(lines) if re.search(r"\bAGI\(", line)]
    assert agi_lines
    context = None
    seen_clear = False
    for i, line in enumerate(lines):
        if line.startswith("["):
            context, seen_clear = line, False
        if "Set(TF_STATUS=)" in line:
            seen_clear = True
        if i in agi_lines:
            assert context == "[tf-agi]" and seen_clear, line
    for line in lines:
        if "AGISTATUS" in line:
            assert re.search(r"Verbose\(.*\$\{AGISTATUS\}", line), line
