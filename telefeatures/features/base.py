"""What every feature receives and returns."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from collections.abc import Awaitable, Callable, Sequence

from ..agi.channel import Channel, play
from ..config import FeatureSettings
from ..state.repository import StateRepository, StateUnavailable
from .numbers import CallbackRules, NumberRules


class Status(enum.StrEnum):
    OK = "OK"
    REFUSED = "REFUSED"
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one route. Features never write channel variables: the
    app publishes ``variables`` (in order), plays ``announce``, then sets
    TF_DIAL / TF_REASON / TF_STATUS."""

    status: Status
    reason: str = ""
    dial: str | None = None
    variables: tuple[tuple[str, str], ...] = ()
    announce: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FeatureContext:
    """Everything shared by all calls: settings, state, the compiled number rules."""

    settings: FeatureSettings
    state: StateRepository
    numbers: NumberRules
    callbacks: CallbackRules

    @classmethod
    def build(cls, settings: FeatureSettings, state: StateRepository) -> FeatureContext:
        numbers = NumberRules.from_settings(settings)
        return cls(settings, state, numbers, CallbackRules(settings.callback_rules, numbers))


@dataclass(frozen=True, slots=True)
class Call:
    """One AGI session as a feature sees it."""

    channel: Channel
    extension: str | None  # None: could not be determined safely
    args: tuple[str, ...]  # route arguments after the extension
    tenant: str | None = None  # validated; None: no tenant


async def failed(call: Call, ctx: FeatureContext, reason: str) -> Outcome:
    """A feature code that cannot do its job: the error prompt, ERROR."""
    await play(call.channel, ctx.settings.prompts.error)
    return Outcome(Status.ERROR, reason)


async def switch(call: Call, ctx: FeatureContext, store: Callable[[str, bool, str | None], Awaitable[None]],
                 on: bool, confirmation: Sequence[str]) -> Outcome:
    """A persistent on/off feature code (*81, *77...): store first, then confirm,
    so a caller who hangs up on the prompt still has what was asked for."""
    if call.extension is None:
        return await failed(call, ctx, "bad-extension")
    try:
        await store(call.extension, on, call.tenant)
    except StateUnavailable:
        return await failed(call, ctx, "state-error")
    await play(call.channel, confirmation)
    return Outcome(Status.OK)


async def confirmed(channel: Channel, key: str, timeout_ms: int, announce: Sequence[str], digits: str,
                    confirm: Sequence[str]) -> bool:
    """Announce, say ``digits`` (may be empty), ask, then wait: True when the
    caller pressed ``key``. The key works at any point: during the
    announcement, the digits, the question, or the wait after it."""
    digit = await play(channel, announce, key)
    if digit is None and digits:
        digit = await channel.say_digits(digits, key)
    if digit is None:
        digit = await play(channel, confirm, key)
    if digit is None:
        digit = await channel.wait_for_digit(timeout_ms)
    return digit == key
