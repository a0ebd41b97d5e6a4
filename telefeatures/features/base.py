"""What every feature receives and returns."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..agi.channel import Channel
from ..config import FeatureSettings
from ..state.repository import StateRepository
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
