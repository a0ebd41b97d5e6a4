"""Outbound hook, *67 and (NANP) *82: the presentation every outgoing call gets."""

from __future__ import annotations

from ..state.repository import StateUnavailable
from .base import Call, FeatureContext, Outcome, Status
from .numbers import InvalidNumber, parse_dialed_choice
from .presentation import PresentationPolicy


class OutboundPolicy:
    """Route ``outbound`` (arg1 = calling extension, arg2 = dialed digits).

    Strips a leading per-call code (``*67`` withholds, ``*82`` shows, for this
    call only), validates the number, and sets the presentation: as the
    per-call code says, else withheld when the extension has
    persistent blocking on. When the state cannot be read the call still goes
    out, with the ``on_state_error`` presentation (withhold by default).
    """

    def __init__(self, ctx: FeatureContext):
        self.ctx = ctx
        self.policy = PresentationPolicy(ctx.settings)
        self.withhold_on_error = ctx.settings.on_state_error == "withhold"

    async def run(self, call: Call) -> Outcome:
        dialed = call.args[0] if call.args else ""
        try:
            number, per_call = parse_dialed_choice(dialed, self.ctx.settings.per_call_block_codes,
                                                   self.ctx.settings.per_call_show_codes, self.ctx.numbers)
        except InvalidNumber:
            return Outcome(Status.REFUSED, "invalid-number")
        status, reason = Status.OK, ""
        if per_call is not None:  # *67 withholds, *82 shows, whatever the extension chose
            withhold = per_call
        elif call.extension is None:
            withhold = self.withhold_on_error
            status, reason = Status.ERROR, "bad-extension"
        else:
            try:
                withhold = await self.ctx.state.is_blocked(call.extension, call.tenant)
            except StateUnavailable:
                withhold = self.withhold_on_error
                status, reason = Status.ERROR, "state-error"
        return Outcome(status, reason, dial=number, variables=self.policy.variables(withhold))
