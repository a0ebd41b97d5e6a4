"""*81 / *82 / *83: persistent caller-ID blocking per extension."""

from __future__ import annotations

from ..agi.channel import play
from ..state.repository import StateUnavailable
from .base import Call, FeatureContext, Outcome, Status


class CallerIdBlocking:
    """Routes ``cidblock/on``, ``cidblock/off``, ``cidblock/status`` (arg1 = extension).

    ``status`` also returns ``TF_CIDBLOCK`` to ``on`` or ``off`` for the dialplan.
    """

    def __init__(self, ctx: FeatureContext):
        self.ctx = ctx
        self.prompts = ctx.settings.prompts

    async def enable(self, call: Call) -> Outcome:
        return await self._set(call, True)

    async def disable(self, call: Call) -> Outcome:
        return await self._set(call, False)

    async def _set(self, call: Call, blocked: bool) -> Outcome:
        if call.extension is None:
            return await self._error(call, "bad-extension")
        try:
            await self.ctx.state.set_blocked(call.extension, blocked, call.tenant)
        except StateUnavailable:
            return await self._error(call, "state-error")
        await play(call.channel, self.prompts.cidblock_on if blocked else self.prompts.cidblock_off)
        return Outcome(Status.OK)

    async def status(self, call: Call) -> Outcome:
        if call.extension is None:
            return await self._error(call, "bad-extension")
        try:
            blocked = await self.ctx.state.is_blocked(call.extension, call.tenant)
        except StateUnavailable:
            return await self._error(call, "state-error")
        # TF_CIDBLOCK is written before the prompt plays
        return Outcome(Status.OK, variables=(("TF_CIDBLOCK", "on" if blocked else "off"),),
                       announce=tuple(self.prompts.cidblock_status_on if blocked else self.prompts.cidblock_status_off))

    async def _error(self, call: Call, reason: str) -> Outcome:
        await play(call.channel, self.prompts.error)
        return Outcome(Status.ERROR, reason)
