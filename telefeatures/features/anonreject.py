"""*77 / *87: anonymous call rejection per extension (the decision itself is
made by the inbound route, see inbound.py)."""

from __future__ import annotations

from .base import Call, FeatureContext, Outcome, switch


class AnonymousRejection:
    """Routes ``anonreject/on`` and ``anonreject/off`` (arg1 = extension):
    persistent, confirmed by a prompt."""

    def __init__(self, ctx: FeatureContext):
        self.ctx = ctx
        self.prompts = ctx.settings.prompts

    async def enable(self, call: Call) -> Outcome:
        return await switch(call, self.ctx, self.ctx.state.set_anon_reject, True, self.prompts.anonreject_on)

    async def disable(self, call: Call) -> Outcome:
        return await switch(call, self.ctx, self.ctx.state.set_anon_reject, False, self.prompts.anonreject_off)
