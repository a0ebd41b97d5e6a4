"""Inbound hook: remember who last called an extension from outside."""

from __future__ import annotations

from ..state.repository import StateUnavailable
from .base import Call, FeatureContext, Outcome, Status
from .numbers import classify_caller


class RecordInbound:
    """Route ``inbound`` (arg1 = the called extension).

    The dialplan calls this only for calls arriving from trunks, so internal
    calls never replace the record. A withheld, anonymous or undialable caller
    is recorded as withheld, so *69 refuses rather than calling an older caller.
    """

    def __init__(self, ctx: FeatureContext):
        self.ctx = ctx

    async def run(self, call: Call) -> Outcome:
        if call.extension is None:
            return Outcome(Status.ERROR, "bad-extension")
        request = call.channel.request
        record = classify_caller(
            request.get("agi_callerid"),
            request.get("agi_calleridname"),
            request.get("agi_callingpres", "0"),
            self.ctx.numbers,
        )
        try:
            await self.ctx.state.record_caller(call.extension, record, call.tenant)
        except StateUnavailable:
            return Outcome(Status.ERROR, "state-error")
        return Outcome(Status.OK, f"withheld-{record.reason}" if record.withheld else "")
