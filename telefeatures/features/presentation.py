"""Which caller-ID presentation an outbound call gets."""

from __future__ import annotations

from ..config import FeatureSettings


class PresentationPolicy:
    """Turns "withhold or not" into the channel variables to set.

    Withheld: ``CALLERID(pres)=prohib``; Asterisk's PJSIP then sends an
    anonymous From (and P-Asserted-Identity with ``Privacy: id`` where the trunk
    has ``send_pai`` and ``trust_id_outbound``). Legacy mode additionally
    replaces name and number, as the old ``Unavailable`` / ``0-1-999`` recipe did,
    for trunks that ignore presentation. Allowed: ``allowed`` plus the site's
    outbound caller ID when one is configured.
    """

    def __init__(self, settings: FeatureSettings):
        withheld = [("CALLERID(pres)", "prohib")]
        if settings.legacy_block:
            withheld += [
                ("CALLERID(name)", settings.legacy_block_name),
                ("CALLERID(num)", settings.legacy_block_number),
            ]
        allowed = [("CALLERID(pres)", "allowed")]
        if settings.outbound_cid_number:
            allowed.append(("CALLERID(num)", settings.outbound_cid_number))
        if settings.outbound_cid_name:
            allowed.append(("CALLERID(name)", settings.outbound_cid_name))
        self._withheld = tuple(withheld)
        self._allowed = tuple(allowed)

    def variables(self, withhold: bool) -> tuple[tuple[str, str], ...]:
        return self._withheld if withhold else self._allowed
