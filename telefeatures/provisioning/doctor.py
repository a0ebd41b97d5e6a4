"""``provision doctor``: what each phone of the inventory actually did.

Facts come from three places: the TFTP server's fetch record (who fetched
which file, when, from where: fetch_record.py), Asterisk's contacts through
AMI (who is registered, from where, with which user agent), and the TFTP
root itself (is the phone's file there and current, is its firmware
complete). :func:`diagnose` only combines them, so it is tested without any
server; the command gathers them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .fetch_record import FileFetches
from .firmware import FirmwareCheck, check_load
from .inventory import Inventory, Phone


@dataclass(frozen=True)
class Contact:
    """One registered contact, as AMI's ContactList event gives it."""

    endpoint: str
    uri: str
    via_address: str  # the address the REGISTER came from
    user_agent: str
    status: str


@dataclass
class PhoneReport:
    phone: Phone
    fetched: str = "-"
    registered: str = "-"
    firmware: str = "-"
    config: str = "-"
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _when(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _host(address: str) -> str:
    """``10.0.0.5:5060`` -> ``10.0.0.5`` (IPv4, as the phones use)."""
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address


def diagnose(inventory: Inventory, inventory_mtime: float, tftp_root: Path, fetches: dict[str, FileFetches],
             contacts: list[Contact] | None) -> list[PhoneReport]:
    """One report per phone; ``contacts`` None means AMI could not be asked."""
    firmware: dict[str, FirmwareCheck] = {}
    by_endpoint: dict[str, list[Contact]] = {}
    for contact in contacts or []:
        by_endpoint.setdefault(contact.endpoint, []).append(contact)
    reports = []
    for phone in inventory.phones:
        report = PhoneReport(phone)
        reports.append(report)
        name = phone.config_name
        path = tftp_root / name
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            mtime = None
            report.config = "missing"
            report.problems.append(f"{name} is not in the TFTP root (run provision build)")
        if mtime is not None:
            report.config = _when(datetime.fromtimestamp(mtime, timezone.utc))
            if mtime < inventory_mtime:
                report.problems.append(f"{name} is older than the inventory (run provision build)")

        record = fetches.get(name, FileFetches())
        if record.ok is None:
            report.problems.append("never fetched its file")
        else:
            report.fetched = f"{_when(record.ok.at)} from {record.ok.peer}"
            if phone.ip and record.ok.peer != phone.ip:
                report.problems.append(f"fetched its file from {record.ok.peer}, not its address {phone.ip}")
            if mtime is not None and record.ok.at.timestamp() < mtime:
                report.problems.append("has not fetched its current file (re-sync it: provision notify)")
        if record.refused is not None and (record.ok is None or record.refused.at > record.ok.at):
            report.problems.append(f"its file was asked for from {record.refused.peer} at {_when(record.refused.at)}"
                                   " and refused")

        if contacts is None:
            report.registered = "unknown"
        else:
            seen = []
            for line in phone.lines:
                found = by_endpoint.get(line.extension, [])
                if not found:
                    report.problems.append(f"line {line.extension} is not registered")
                    continue
                for contact in found:
                    source = _host(contact.via_address)
                    seen.append(f"{line.extension} from {source} ({contact.user_agent or 'no user agent'})")
                    if phone.ip and source != phone.ip:
                        report.problems.append(f"line {line.extension} registered from {source}, "
                                               f"not its address {phone.ip}")
            report.registered = "; ".join(seen) or "no"

        load = inventory.site.firmware.get(phone.model)
        if load is None:
            report.firmware = "(keeps its own)"
        else:
            check = firmware.get(load) or firmware.setdefault(load, check_load(tftp_root, load))
            report.firmware = load if check.ok else f"{load} INCOMPLETE"
            if not check.ok:
                report.problems.append(f"firmware {check.describe()}")
    return reports


def contacts_from_events(events: list[dict[str, str]]) -> list[Contact]:
    """AMI PJSIPShowContacts' ContactList events -> contacts."""
    contacts = []
    for event in events:
        if event.get("Event") != "ContactList":
            continue
        contacts.append(Contact(endpoint=event.get("Endpoint", ""), uri=event.get("Uri", ""),
                                via_address=event.get("ViaAddr", "") or _uri_host(event.get("Uri", "")),
                                user_agent=event.get("UserAgent", ""), status=event.get("Status", "")))
    return contacts


def _uri_host(uri: str) -> str:
    """``sip:2101@10.99.0.11:5062;transport=udp`` -> ``10.99.0.11``."""
    rest = uri.split("@", 1)[-1].split(";", 1)[0]
    return _host(rest)
