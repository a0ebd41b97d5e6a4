"""*69 for ring groups, queues and follow-me: Dial's pre-dial handler
``b(tf-ring-hook^s^1)`` runs on every callee channel, and this records the
caller for the extension actually rung."""

from __future__ import annotations

from ..state.repository import CallerRecord, StateUnavailable
from .base import Call, FeatureContext, Outcome, Status
from .numbers import classify_caller


async def connected_caller(call: Call, ctx: FeatureContext) -> CallerRecord:
    """The caller as the rung channel knows it: its connected line (the
    callee channel's own caller ID is the endpoint's, not the caller's)."""
    channel = call.channel
    number = await channel.get_variable("CONNECTEDLINE(num)") or ""
    name = await channel.get_variable("CONNECTEDLINE(name)") or ""
    pres = await channel.get_variable("CONNECTEDLINE(pres)") or ""
    return classify_caller(number, name, pres, ctx.numbers)


class RecordRung:
    """Route ``ringhook`` (arg1 = the extension being rung, arg2 = ``1`` when
    the call came in from a trunk: the dialplan's inherited ``TF_FROM_TRUNK``).

    Like the inbound hook it records the caller - read from the channel's
    connected line - withheld ones as withheld;
    internal calls only with ``record_internal``, else OK / ``internal``.
    """

    def __init__(self, ctx: FeatureContext):
        self.ctx = ctx

    async def run(self, call: Call) -> Outcome:
        if call.extension is None:
            return Outcome(Status.ERROR, "bad-extension")
        from_trunk = call.args[:1] == ("1",)
        if not from_trunk and not self.ctx.settings.record_internal:
            return Outcome(Status.OK, "internal")
        record = await connected_caller(call, self.ctx)
        try:
            await self.ctx.state.record_caller(call.extension, record, call.tenant)
        except StateUnavailable:
            return Outcome(Status.ERROR, "state-error")
        return Outcome(Status.OK, f"withheld-{record.reason}" if record.withheld else "")
