"""*60 / *80: block the last caller, and empty the reject list.

The inbound route refuses callers on the list (see inbound.py).
"""

from __future__ import annotations

import time

from ..agi.channel import play
from ..state.repository import StateUnavailable
from .base import Call, FeatureContext, Outcome, Status, confirmed, failed


class CallBlocking:
    """Routes ``callblock/last`` and ``callblock/clear`` (arg1 = extension).

    ``last``: no record -> REFUSED ``no-record``; a withheld caller (or a stored
    number that does not validate) cannot be blocked -> REFUSED ``withheld``;
    otherwise announce the number and, on the confirm digit, add it with the
    time to the reject list. A full list (``callblock_max_entries``) drops its
    oldest entry: the caller just heard is always the one blocked.
    ``clear``: on the confirm digit, empty the list.
    """

    def __init__(self, ctx: FeatureContext):
        self.ctx = ctx
        self.settings = ctx.settings
        self.prompts = ctx.settings.prompts

    async def block_last(self, call: Call) -> Outcome:
        if call.extension is None:
            return await failed(call, self.ctx, "bad-extension")
        try:
            record = await self.ctx.state.last_caller(call.extension, call.tenant)
        except StateUnavailable:
            return await failed(call, self.ctx, "state-error")
        if record is None:
            await play(call.channel, self.prompts.callblock_no_record)
            return Outcome(Status.REFUSED, "no-record")
        # Validated again: a damaged or planted record is never announced or stored.
        if record.withheld or not self.ctx.numbers.is_dialable(record.number):
            await play(call.channel, self.prompts.callblock_withheld)
            return Outcome(Status.REFUSED, "withheld")
        if not await self._confirmed(call, self.prompts.callblock_announce, record.number.lstrip("+"),
                                     self.prompts.callblock_confirm):
            await play(call.channel, self.prompts.callblock_declined)
            return Outcome(Status.REFUSED, "declined")
        try:
            await self.ctx.state.add_rejected_number(call.extension, record.number, time.time(),
                                                     self.settings.callblock_max_entries, call.tenant)
        except StateUnavailable:
            return await failed(call, self.ctx, "state-error")
        await play(call.channel, self.prompts.callblock_added)
        return Outcome(Status.OK)

    async def clear(self, call: Call) -> Outcome:
        if call.extension is None:
            return await failed(call, self.ctx, "bad-extension")
        if not await self._confirmed(call, (), "", self.prompts.callblock_clear_confirm):
            await play(call.channel, self.prompts.callblock_declined)
            return Outcome(Status.REFUSED, "declined")
        try:
            await self.ctx.state.clear_reject_list(call.extension, call.tenant)
        except StateUnavailable:
            return await failed(call, self.ctx, "state-error")
        await play(call.channel, self.prompts.callblock_cleared)
        return Outcome(Status.OK)

    async def _confirmed(self, call: Call, announce, digits: str, confirm) -> bool:
        return await confirmed(call.channel, self.settings.confirm_digit, self.settings.confirm_timeout_ms,
                               announce, digits, confirm)
