"""*69: call back the last outside caller of this extension."""

from __future__ import annotations

from ..agi.channel import play
from ..state.repository import StateUnavailable
from .base import Call, FeatureContext, Outcome, Status, confirmed


class CallReturn:
    """Route ``callreturn`` (arg1 = the calling extension).

    No record: the "no information" prompt, REFUSED. Withheld record: the
    from-unknown-caller prompt, REFUSED. Otherwise (default ``confirm`` mode)
    announce the number and wait for the confirm digit; ``immediate`` mode skips
    that. TF_DIAL is the stored number rewritten by the callback rules.
    """

    def __init__(self, ctx: FeatureContext):
        self.ctx = ctx
        self.settings = ctx.settings
        self.prompts = ctx.settings.prompts

    async def run(self, call: Call) -> Outcome:
        channel = call.channel
        if call.extension is None:
            await play(channel, self.prompts.error)
            return Outcome(Status.ERROR, "bad-extension")
        try:
            record = await self.ctx.state.last_caller(call.extension, call.tenant)
        except StateUnavailable:
            await play(channel, self.prompts.error)
            return Outcome(Status.ERROR, "state-error")
        if record is None:
            await play(channel, self.prompts.callreturn_no_record)
            return Outcome(Status.REFUSED, "no-record")
        if record.withheld:
            await play(channel, self.prompts.callreturn_withheld)
            return Outcome(Status.REFUSED, "withheld")
        callback = self.ctx.callbacks.callback_number(record.number)
        if callback is None:
            await play(channel, self.prompts.callreturn_not_dialable)
            return Outcome(Status.REFUSED, "not-dialable")
        if self.settings.callreturn_mode == "immediate":
            return Outcome(Status.OK, dial=callback)
        if await self._confirmed(call, record.number):
            return Outcome(Status.OK, dial=callback)
        await play(channel, self.prompts.callreturn_declined)
        return Outcome(Status.REFUSED, "declined")

    async def _confirmed(self, call: Call, number: str) -> bool:
        return await confirmed(call.channel, self.settings.confirm_digit, self.settings.confirm_timeout_ms,
                               self.prompts.callreturn_announce, number.lstrip("+"), self.prompts.callreturn_confirm)
