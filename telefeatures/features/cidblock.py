"""*81 / *82 / *83: persistent caller-ID blocking per extension."""

from __future__ import annotations

from ..state.repository import StateUnavailable
from .base import Call, FeatureContext, Outcome, Status, failed, switch


class CallerIdBlocking:
    """Routes ``cidblock/on``, ``cidblock/off``, ``cidblock/status`` (arg1 = extension).

    ``status`` also returns ``TF_CIDBLOCK`` to ``on`` or ``off`` for the dialplan.
    """

    def __init__(self, ctx: FeatureContext):
        self.ctx = ctx
        self.prompts = ctx.settings.prompts

    async def enable(self, call: Call) -> Outcome:
        return await switch(call, self.ctx, self.ctx.state.set_blocked, True, self.prompts.cidblock_on)

    async def disable(self, call: Call) -> Outcome:
        return await switch(call, self.ctx, self.ctx.state.set_blocked, False, self.prompts.cidblock_off)

    async def status(self, call: Call) -> Outcome:
        if call.extension is None:
            return await failed(call, self.ctx, "bad-extension")
        try:
            blocked = await self.ctx.state.is_blocked(call.extension, call.tenant)
        except StateUnavailable:
            return await failed(call, self.ctx, "state-error")
        # TF_CIDBLOCK is written before the prompt plays
        return Outcome(Status.OK, variables=(("TF_CIDBLOCK", "on" if blocked else "off"),),
                       announce=tuple(self.prompts.cidblock_status_on if blocked else self.prompts.cidblock_status_off))
