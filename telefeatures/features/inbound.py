"""Inbound hook: decide RING or REJECT, and remember who last called an
extension from outside."""

from __future__ import annotations

from ..state.repository import CallerRecord, RejectedCall, StateUnavailable
from .base import Call, FeatureContext, Outcome, Status
from .numbers import anonymity, classify_caller

RING = (("TF_INBOUND", "RING"),)
REJECT = (("TF_INBOUND", "REJECT"),)


def caller_of(call: Call, ctx: FeatureContext) -> CallerRecord:
    request = call.channel.request
    return classify_caller(request.get("agi_callerid"), request.get("agi_calleridname"),
                           request.get("agi_callingpres", "0"), ctx.numbers)


class RecordInbound:
    """Route ``inbound`` (arg1 = the called extension).

    Sets ``TF_INBOUND`` = ``REJECT`` (``TF_REASON`` ``blocked-caller`` or
    ``anonymous``) when the caller's number is on the extension's reject list,
    or when anonymous call rejection is on and the caller withheld the number
    (also when it is merely unavailable, with ``anonreject_unavailable``).
    A refused call is kept as the last *refused* call and never replaces the
    last caller. Otherwise ``RING``, and the caller is recorded for *69 (a
    withheld or undialable one as withheld). The dialplan calls this only for
    calls from trunks, so internal calls never replace the record.

    Fails open: whenever the answer is not a sure REJECT (bad extension,
    Redis down) it is RING.
    """

    def __init__(self, ctx: FeatureContext):
        self.ctx = ctx
        self.settings = ctx.settings

    async def run(self, call: Call) -> Outcome:
        if call.extension is None:
            return Outcome(Status.ERROR, "bad-extension", variables=RING)
        record = caller_of(call, self.ctx)
        state = self.ctx.state
        try:
            screening = await state.screening(call.extension, record.number, call.tenant)
            refusal = "blocked-caller" if screening.listed else None
            if refusal is None and screening.anon_reject and self._anonymous(call):
                refusal = "anonymous"
            if refusal:
                await state.record_rejected(call.extension, RejectedCall(
                    record.number, record.name, record.presentation, record.time, refusal), call.tenant)
                return Outcome(Status.OK, refusal, variables=REJECT)
            await state.record_caller(call.extension, record, call.tenant)
        except StateUnavailable:
            return Outcome(Status.ERROR, "state-error", variables=RING)
        return Outcome(Status.OK, f"withheld-{record.reason}" if record.withheld else "", variables=RING)

    def _anonymous(self, call: Call) -> bool:
        request = call.channel.request
        how = anonymity(request.get("agi_callerid"), request.get("agi_callingpres", "0"))
        return how == "withheld" or (how == "unavailable" and self.settings.anonreject_unavailable)
