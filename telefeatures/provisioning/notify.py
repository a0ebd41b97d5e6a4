"""Tell phones to re-read their configuration, through Asterisk (AMI PJSIPNotify)."""

from __future__ import annotations

from dataclasses import dataclass

from ..ami import ActionResult, AmiClient, AmiError, AmiSettings
from .inventory import Inventory, Phone, normalize_mac


@dataclass(frozen=True)
class NotifyOutcome:
    """``ok``: the NOTIFY went out. ``registered`` False: Asterisk had no
    contact for the endpoint, so nothing was sent (the phone is "not told")."""

    phone: Phone
    endpoint: str
    ok: bool
    message: str
    registered: bool = True


def select_phones(inventory: Inventory, macs: list[str]) -> list[Phone]:
    """The inventory's phones with these MACs (any spelling); all if none given.

    Raises ValueError naming MACs that are malformed or not in the inventory.
    """
    if not macs:
        return list(inventory.phones)
    by_mac = {phone.mac: phone for phone in inventory.phones}
    wanted: list[Phone] = []
    problems = []
    for text in macs:
        try:
            mac = normalize_mac(text)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if mac not in by_mac:
            problems.append(f"{text}: not in the inventory")
        elif by_mac[mac] not in wanted:
            wanted.append(by_mac[mac])
    if problems:
        raise ValueError("; ".join(problems))
    return wanted


async def notify_phones(settings: AmiSettings, phones: list[Phone], event: str,
                        reload_pjsip: bool = False) -> tuple[list[NotifyOutcome], ActionResult | None]:
    """NOTIFY each phone once, through the endpoint of its first line (the
    NOTIFY reaches the phone itself; one per line would repeat the reboot).

    With ``reload_pjsip``, res_pjsip is reloaded first so the phones find the
    new credentials in Asterisk when they re-register; if that fails, no phone
    is told. A phone whose endpoint has no contact in Asterisk (not
    registered) is not told. Raises AmiError when AMI cannot be reached,
    refuses the login, or cannot list the contacts.
    """
    outcomes: list[NotifyOutcome] = []
    async with AmiClient(settings) as ami:
        reload = None
        if reload_pjsip:
            reload = await ami.reload_module("res_pjsip.so")
            if not reload.ok:
                return [NotifyOutcome(p, p.lines[0].extension, False, "not sent: res_pjsip reload failed")
                        for p in phones], reload
        # PJSIPNotify answers Success for an endpoint without any contact and
        # sends nothing: ask Asterisk which endpoints have one.
        reachable = {contact.get("Endpoint", "") for contact in await ami.pjsip_contacts()}
        for phone in phones:
            endpoint = phone.lines[0].extension
            if endpoint not in reachable:
                outcomes.append(NotifyOutcome(phone, endpoint, False, "not told: Asterisk has no contact for this "
                                              "endpoint (the phone is not registered)", registered=False))
                continue
            try:
                result = await ami.pjsip_notify(endpoint, event)
            except AmiError as exc:
                result = ActionResult(False, str(exc))
            outcomes.append(NotifyOutcome(phone, endpoint, result.ok, result.message))
    return outcomes, reload
