"""Message-waiting lamp and busy-lamp keys end to end, through the real
Asterisk 22 test bed: the inventory is built into phone files, the PJSIP
include (mailboxes=, subscribe_context) and the hints include, which the
running Asterisk loads; sipp phones then see what a 79x1 would.

- MWI: app_voicemail (file storage, mailboxes polled) publishes a changed
  mailbox; Asterisk sends the registered phone an unsolicited
  message-summary NOTIFY, with the lamp on, then off again.
- BLF: a phone's busy-lamp key SUBSCRIBEs (Event: dialog) to another
  inventory extension; Asterisk answers from the generated hint with
  dialog-info NOTIFYs that follow a real call to that extension.
"""

from __future__ import annotations

import socket
import threading
import wave
from pathlib import Path

import pytest
from lxml import etree

from tests.support.cli import run_cli
from tests.support.ports import free_port
from tests.testbed.services import wait_for
from tests.testbed.sipp import AnsweringAgent, parse_trace

VOICEMAIL = "1050"  # a line with a mailbox (voicemail.conf [default] 1050 in the test bed)
WATCHED = "1051"  # the extension the busy-lamp key follows
WATCHER_MAC, WATCHED_MAC = "00:19:e8:aa:bb:50", "00:19:e8:aa:bb:51"

INVENTORY = """
[site]
asterisk_address = "127.0.0.1"
sip_port = {sip_port}
time_zone = "America/Chicago"
ntp_server = "127.0.0.1"
messages_number = "*97"

[site.dial_rules]
extension_patterns = ["10.."]

[[phones]]
mac = "{watcher}"
model = "7962"

  [[phones.lines]]
  extension = "{voicemail}"
  display_name = "Voicemail user"

  [[phones.buttons]]
  type = "blf"
  label = "Watched"
  extension = "{watched}"

[[phones]]
mac = "{watched_mac}"
model = "7942"

  [[phones.lines]]
  extension = "{watched}"
  display_name = "Watched line"
  mailbox = ""
"""


@pytest.fixture(scope="module")
def built(asterisk, tmp_path_factory):
    """Build the inventory into the running Asterisk's configuration and load it."""
    work = tmp_path_factory.mktemp("phone-keys")
    inventory = work / "phones.toml"
    inventory.write_text(INVENTORY.format(sip_port=asterisk.ports.sip, watcher=WATCHER_MAC,
                                          watched_mac=WATCHED_MAC, voicemail=VOICEMAIL, watched=WATCHED))
    tftp_root = work / "tftp"
    tftp_root.mkdir()
    etc = asterisk.run_dir / "etc"
    result = run_cli("provision", "build", str(inventory), "--tftp-root", str(tftp_root),
                     "--pjsip", str(etc / "telefeatures-phones.conf"), "--hints", str(etc / "telefeatures-hints.conf"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hints include changed" in result.stdout or "added" in result.stdout
    offset = asterisk.log_offset()
    asterisk.cli("module reload res_pjsip.so")
    asterisk.cli("dialplan reload")
    wait_for(lambda: VOICEMAIL in asterisk.cli("pjsip show endpoints"), what="the generated endpoints")
    wait_for(lambda: f"{WATCHED}@tf-hints" in asterisk.cli("core show hints"), what="the generated hint")
    assert " ERROR[" not in asterisk.log_since(offset), asterisk.log_since(offset)[-2000:]
    return tftp_root


def credentials(tftp_root: Path, mac: str, extension: str) -> tuple[str, str]:
    device = etree.parse(str(tftp_root / f"SEP{mac.replace(':', '').upper()}.cnf.xml"))
    line = next(ln for ln in device.iter("line") if ln.findtext("name") == extension)
    return line.findtext("authName"), line.findtext("authPassword")


def leave_message(spool: Path, mailbox: str) -> Path:
    """A message as app_voicemail stores one (msgNNNN.txt + the recording)."""
    inbox = spool / "voicemail" / "default" / mailbox / "INBOX"
    inbox.mkdir(parents=True, exist_ok=True)
    with wave.open(str(inbox / "msg0000.wav"), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\0\0" * 8000)
    (inbox / "msg0000.txt").write_text(
        ";\n; Message Information file\n;\n[message]\norigmailbox={0}\ncontext=tf-phones\nmacrocontext=\n"
        "exten={0}\nrdnis=unknown\npriority=1\ncallerchan=PJSIP/1000-00000001\ncallerid=\"Alice\" <1000>\n"
        "origdate=Sun Nov 29 07:00:00 AM UTC 2026\norigtime=1795849200\ncategory=\nmsg_id=1795849200-00000000\n"
        "flag=\nduration=1\n".format(mailbox))
    return inbox


def lamp_notifies(receiver: AnsweringAgent) -> list[str]:
    return [m.body for m in receiver.received("NOTIFY") if m.header("Event") == "message-summary"]


def test_message_waiting_lamp_follows_the_mailbox(asterisk, built, sipp, tmp_path):
    line = etree.parse(str(built / f"SEP{WATCHER_MAC.replace(':', '').upper()}.cnf.xml")).find(".//line[@button='1']")
    assert line.findtext("messagesNumber") == "*97"
    user, password = credentials(built, WATCHER_MAC, VOICEMAIL)
    receiver = AnsweringAgent("127.0.0.1", free_port(socket.SOCK_DGRAM), tmp_path / "mwi.trace",
                              scenario="notify_uas.xml").start()
    inbox = None
    try:
        registered = sipp.register(VOICEMAIL, receiver.port, auth_user=user, password=password)
        assert registered.returncode == 0 and registered.received("200"), registered.output
        # Registering brings the lamp's current state: off.
        first = wait_for(lambda: lamp_notifies(receiver), what="the MWI NOTIFY on registration")[0]
        assert "Messages-Waiting: no" in first

        inbox = leave_message(asterisk.run_dir / "spool", VOICEMAIL)
        on = wait_for(lambda: [b for b in lamp_notifies(receiver) if "Messages-Waiting: yes" in b],
                      what="a NOTIFY turning the lamp on", timeout=20)[0]
        assert "Voice-Message: 1/0" in on
        # Sent to the contact the phone registered, as the unsolicited NOTIFY a 79x1 expects.
        assert all(m.request_uri.startswith(f"sip:{VOICEMAIL}@127.0.0.1:{receiver.port}")
                   for m in receiver.received("NOTIFY")), [m.request_uri for m in receiver.received("NOTIFY")]

        for path in inbox.iterdir():
            path.unlink()
        count = len(lamp_notifies(receiver))
        off = wait_for(lambda: lamp_notifies(receiver)[count:], what="a NOTIFY turning the lamp off", timeout=20)
        assert "Messages-Waiting: no" in off[-1]
    finally:
        receiver.stop()
        if inbox is not None:
            for path in inbox.iterdir():
                path.unlink()


def dialog_states(body: str) -> list[str]:
    root = etree.fromstring(body.strip().encode())
    namespace = {"d": "urn:ietf:params:xml:ns:dialog-info"}
    return [state.text for state in root.findall("d:dialog/d:state", namespace)]


def subscriber_notified(workdir: Path, ext: str, target: str) -> bool:
    """The phone ``ext`` subscribed to ``target`` (SippRunner.subscribe) has received a NOTIFY."""
    traces = sorted(workdir.glob(f"*-subscribe-{ext}-{target}.trace"))
    return bool(traces) and any(m.direction == "received" and m.method == "NOTIFY"
                                for m in parse_trace(traces[-1].read_text(errors="replace")))


def test_busy_lamp_key_follows_a_call_to_the_watched_extension(asterisk, built, sipp, tmp_path):
    device = etree.parse(str(built / f"SEP{WATCHER_MAC.replace(':', '').upper()}.cnf.xml"))
    key = device.find(".//line[@button='2']")
    assert (key.findtext("featureID"), key.findtext("speedDialNumber")) == ("21", WATCHED)

    # The watched phone registers and answers calls.
    watched_user, watched_password = credentials(built, WATCHED_MAC, WATCHED)
    phone = AnsweringAgent("127.0.0.1", free_port(socket.SOCK_DGRAM), tmp_path / "watched.trace").start()
    results = {}
    try:
        registered = sipp.register(WATCHED, phone.port, auth_user=watched_user, password=watched_password)
        assert registered.returncode == 0, registered.output
        user, password = credentials(built, WATCHER_MAC, VOICEMAIL)
        lamp = threading.Thread(target=lambda: results.update(
            sub=sipp.subscribe(VOICEMAIL, WATCHED, auth_user=user, password=password, quiet_ms=8000)))
        lamp.start()
        # The key's subscription is up (Asterisk's first NOTIFY, the idle
        # state, has reached it) before the call.
        wait_for(lambda: subscriber_notified(sipp.workdir, VOICEMAIL, WATCHED), timeout=30,
                 what="the busy-lamp key's first NOTIFY")
        call = sipp.call("1000", WATCHED, hold_ms=3000)  # a test bed phone calls the watched line
        assert call.returncode == 0 and call.answered, call.output
        lamp.join(timeout=60)
    finally:
        phone.stop()
    sub = results["sub"]
    assert sub.returncode == 0, sub.output
    assert sub.received("200"), sub.output
    notifies = sub.received("NOTIFY")
    assert all(n.header("Event") == "dialog" for n in notifies)
    assert all(n.header("Content-Type") == "application/dialog-info+xml" for n in notifies)
    assert f"sip:{WATCHED}@" in notifies[0].body
    states = [dialog_states(n.body) for n in notifies]
    # Idle at first, in a call while it lasts (ringing may show as early), idle again after.
    assert states[0] in ([], ["terminated"]), states
    assert ["confirmed"] in states, states
    assert states[-1] in ([], ["terminated"]), states
