"""Real SIP user agents for the test bed: Debian's sipp with the scenarios in sipp/.

Phones register and call with digest auth on 127.0.0.1; the "provider" answers
outbound calls and places inbound ones from 127.0.0.2 (the address Asterisk
identifies the trunk by). Every run writes sipp's message trace, which
:func:`parse_trace` turns into the messages the test inspects.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.ports import free_port, sipp_media_port, udp_bound
from tests.support.processes import stop_process

from .asterisk import Asterisk, TestbedError, fill_placeholders

SCENARIOS = Path(__file__).resolve().parent / "sipp"
# Pressing a key: sipp replays Debian's recorded RFC 2833 events for it.
DTMF_STEP = """  <pause milliseconds="{delay}"/>
  <nop>
    <action>
      <exec play_pcap_audio="/usr/share/sip-tester/dtmf_2833_{digit}.pcap"/>
    </action>
  </nop>"""
_SEPARATOR = re.compile(r"^-{20,} .*$", re.MULTILINE)
_DIRECTION = re.compile(r"^(UDP|TCP|TLS) message (received|sent)", re.MULTILINE)


@dataclass
class SipMessage:
    direction: str  # "received" or "sent"
    start_line: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str = ""

    @property
    def method(self) -> str:
        return self.start_line.split(" ", 1)[0]

    @property
    def request_uri(self) -> str:
        parts = self.start_line.split(" ")
        return parts[1] if len(parts) > 2 else ""

    def header(self, name: str) -> str | None:
        name = name.lower()
        compact = {"from": "f", "to": "t", "call-id": "i", "via": "v", "contact": "m"}.get(name)
        for key, value in self.headers:
            if key.lower() == name or (compact and key.lower() == compact):
                return value
        return None


def _transaction_key(msg: SipMessage) -> tuple:
    return (msg.direction, msg.start_line, msg.header("Via"), msg.header("Call-ID"), msg.header("CSeq"))


def parse_trace(text: str) -> list[SipMessage]:
    """The SIP messages in a sipp ``-message_file``, each once: sipp logs every
    datagram, and over UDP a request (or a final response) unanswered within
    500 ms is sent again, same Via branch, Call-ID and CSeq. On a busy machine
    Asterisk retransmits an INVITE or NOTIFY the phone was slow to answer;
    counted twice it would look like a second call or a second NOTIFY."""
    messages = []
    seen = set()
    for chunk in _SEPARATOR.split(text):
        m = _DIRECTION.search(chunk)
        if not m:
            continue
        rest = chunk[m.end():].split("\n", 1)[1] if "\n" in chunk[m.end():] else ""
        rest = rest.lstrip("\r\n").replace("\r\n", "\n")
        head, _, body = rest.partition("\n\n")
        lines = [ln for ln in head.split("\n") if ln.strip()]
        if not lines:
            continue
        msg = SipMessage(direction=m.group(2), start_line=lines[0].strip(), body=body)
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                msg.headers.append((name.strip(), value.strip()))
        key = _transaction_key(msg)
        if key not in seen:
            seen.add(key)
            messages.append(msg)
    return messages


@dataclass
class SippResult:
    returncode: int
    messages: list[SipMessage]
    output: str

    def received(self, method_or_code: str) -> list[SipMessage]:
        return [m for m in self.messages if m.direction == "received"
                and (m.method == method_or_code or m.start_line.startswith(f"SIP/2.0 {method_or_code}"))]

    @property
    def answered(self) -> bool:
        return any(m.start_line.startswith("SIP/2.0 200") and "INVITE" in (m.header("CSeq") or "")
                   for m in self.messages if m.direction == "received")


def render_scenario(name: str, values: dict[str, str]) -> str:
    """Fill the test's values (``@NAME@``) into a scenario; sipp's own
    ``[keywords]`` stay for sipp."""
    return fill_placeholders((SCENARIOS / name).read_text(), values, name)


def _with_fresh_ports(cmd: list[str]) -> list[str]:
    """``cmd`` with new signalling and media ports for its local address."""
    cmd = list(cmd)
    local_ip = cmd[cmd.index("-i") + 1]
    cmd[cmd.index("-p") + 1] = str(free_port(socket.SOCK_DGRAM, local_ip))
    cmd[cmd.index("-mp") + 1] = str(sipp_media_port(local_ip))
    return cmd


class SippRunner:
    """Phones talking to ``asterisk`` at ``server`` (default: its loopback
    transport); a phone's own address is ``local_ip``."""

    def __init__(self, asterisk: Asterisk, workdir: Path, server: str | None = None):
        self.asterisk = asterisk
        self.server = server or f"127.0.0.1:{asterisk.ports.sip}"
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._count = 0

    def _base(self, scenario: str, local_ip: str, name: str, values: dict[str, str]) -> tuple[list[str], Path]:
        self._count += 1
        trace = self.workdir / f"{self._count:03d}-{name}.trace"
        rendered = trace.with_suffix(".xml")
        rendered.write_text(render_scenario(scenario, values))
        cmd = ["sipp", self.server, "-sf", str(rendered),
               "-i", local_ip, "-p", str(free_port(socket.SOCK_DGRAM, local_ip)),
               "-mp", str(sipp_media_port(local_ip)), "-nostdin", "-m", "1",
               "-trace_msg", "-message_file", str(trace), "-trace_err",
               "-error_file", str(trace.with_suffix(".err")), "-t", "u1"]
        return cmd, trace

    def _run(self, cmd: list[str], trace: Path, timeout: float) -> SippResult:
        for _ in range(3):
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 15)
            except subprocess.TimeoutExpired as exc:
                raise TestbedError(f"sipp did not finish: {' '.join(cmd)}") from exc
            text = trace.read_text(errors="replace") if trace.exists() else ""
            err = trace.with_suffix(".err")
            errors = err.read_text(errors="replace") if err.exists() else ""
            result = SippResult(proc.returncode, parse_trace(text), proc.stdout[-2000:] + errors[-2000:])
            # A port taken between picking it and sipp binding it stops sipp
            # before it sends anything: the call never happened, so run it
            # again on other ports rather than fail the test on it.
            if result.messages or "errno = 98" not in result.output:
                return result
            cmd = _with_fresh_ports(cmd)
            trace.unlink(missing_ok=True)
            err.unlink(missing_ok=True)
        return result

    def register(self, ext: str, contact_port: int, timeout: float = 20, *, auth_user: str | None = None,
                 password: str | None = None, local_ip: str = "127.0.0.1") -> SippResult:
        """Register ``ext`` (digest auth as ``auth_user``/``password``, default the
        test bed's own credentials) with its Contact at ``contact_port``."""
        cmd, trace = self._base("register.xml", local_ip, f"register-{ext}",
                                {"EXT": ext, "CONTACT_PORT": str(contact_port)})
        cmd += ["-au", auth_user or ext, "-ap", password or self.asterisk.phone_password(ext),
                "-timeout", f"{int(timeout)}s", "-timeout_error"]
        return self._run(cmd, trace, timeout)

    def call(self, ext: str, number: str, *, dtmf: str | None = None, dtmf_delay_ms: int = 4000,
             hold_ms: int = 4000, timeout: float = 60, auth_user: str | None = None,
             password: str | None = None, local_ip: str = "127.0.0.1") -> SippResult:
        """Phone ``ext`` dials ``number``; with ``dtmf`` it presses that key
        (RFC 2833) ``dtmf_delay_ms`` after the answer.

        A key pressed before the feature's first prompt starts is lost (AGI
        reads no digits between commands), and that start comes 0.5 s after
        the answer on an idle machine (Answer() waits that long for media),
        over 2 s on a busy one. The features take the key until their
        announcement, digits, question and 5 s wait are over, so the default
        presses well inside that, not at its edge."""
        values = {"EXT": ext, "HOLD": str(hold_ms), "DTMF": DTMF_STEP.format(digit=dtmf, delay=dtmf_delay_ms)
                  if dtmf else ""}
        cmd, trace = self._base("call.xml", local_ip, f"call-{ext}-{re.sub(r'[^0-9A-Za-z]', '_', number)}",
                                values)
        cmd += ["-s", number, "-au", auth_user or ext, "-ap", password or self.asterisk.phone_password(ext),
                "-timeout", f"{int(timeout)}s", "-timeout_error"]
        return self._call_over(self._run(cmd, trace, timeout))

    def subscribe(self, ext: str, target: str, *, auth_user: str, password: str, quiet_ms: int = 6000,
                  timeout: float = 60, local_ip: str = "127.0.0.1") -> SippResult:
        """Phone ``ext`` subscribes to ``target``'s dialog state (a busy-lamp
        key) and answers NOTIFYs until none comes for ``quiet_ms``."""
        cmd, trace = self._base("subscribe.xml", local_ip, f"subscribe-{ext}-{target}",
                                {"EXT": ext, "WAIT": str(quiet_ms)})
        cmd += ["-s", target, "-au", auth_user, "-ap", password, "-timeout", f"{int(timeout)}s", "-timeout_error"]
        return self._run(cmd, trace, timeout)

    def trunk_call(self, to_ext: str, cidnum: str, cidname: str = "Caller", extra_header: str = "X-Test: 1",
                   hold_ms: int = 2000, timeout: float = 40) -> SippResult:
        """The provider calls ``to_ext`` from 127.0.0.2 with the given caller ID."""
        values = {"CIDNUM": cidnum, "CIDNAME": cidname, "EXTRA": extra_header, "HOLD": str(hold_ms)}
        cmd, trace = self._base("trunk_call.xml", "127.0.0.2", f"trunk-{to_ext}", values)
        cmd += ["-s", to_ext, "-timeout", f"{int(timeout)}s", "-timeout_error"]
        return self._call_over(self._run(cmd, trace, timeout))

    def _call_over(self, result: SippResult) -> SippResult:
        """``result`` once the call is over inside Asterisk too: sipp is done at
        the BYE, but the feature server may still be ending the call's session
        (it logs it when Asterisk lets go), and a test reads that log next."""
        self.asterisk.wait_until_no_channels()
        return result


class AnsweringAgent:
    """A sipp UAS in the background at ``ip:port``: answers every call
    (``uas.xml``), or accepts every NOTIFY (``notify_uas.xml``)."""

    def __init__(self, ip: str, port: int, trace: Path, scenario: str = "uas.xml"):
        self.ip, self.port, self.trace, self.scenario = ip, port, trace, scenario
        self.process: subprocess.Popen | None = None

    def start(self) -> AnsweringAgent:
        self.trace.parent.mkdir(parents=True, exist_ok=True)
        out = self.trace.with_suffix(".out")
        for _ in range(3):
            cmd = ["sipp", "-sf", str(SCENARIOS / self.scenario), "-i", self.ip, "-p", str(self.port),
                   "-mp", str(sipp_media_port(self.ip)), "-nostdin", "-trace_msg",
                   "-message_file", str(self.trace), "-t", "u1"]
            with open(out, "wb") as sink:
                self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=sink,
                                                stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 5
            while not udp_bound(self.port, self.ip):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            else:
                return self
            self.stop()
            # A media port taken after it was picked: try other ones.
            if "errno = 98" not in out.read_text(errors="replace"):
                break
        raise TestbedError(f"sipp UAS on {self.ip}:{self.port} did not start")

    def messages(self) -> list[SipMessage]:
        return parse_trace(self.trace.read_text(errors="replace")) if self.trace.exists() else []

    def received(self, method: str) -> list[SipMessage]:
        return [m for m in self.messages() if m.direction == "received" and m.method == method]

    def invites(self) -> list[SipMessage]:
        return self.received("INVITE")

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None
