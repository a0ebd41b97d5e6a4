"""Validation of everything a caller controls: caller IDs and dialed digits.

Nothing leaves this module as "dialable" unless it is ASCII digits with an
optional leading ``+`` and a sane length, so no ``&``, ``,``, ``|``, ``$`` or
blank can ever reach ``Dial`` through telefeatures.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from ..config import FeatureSettings, RewriteRule
from ..state.repository import CallerRecord

# Caller-ID "numbers" that mean the number was not given.
WITHHELD_WORDS = frozenset(
    {"", "anonymous", "unknown", "restricted", "private", "unavailable", "withheld", "blocked", "unidentified"}
)
# Of those, the ones that say the caller chose to hide the number (anonymous
# call rejection refuses them); the rest only say the network has none.
ANONYMOUS_WORDS = frozenset({"anonymous", "private", "restricted", "withheld", "blocked"})
# CALLERID(pres): bits 0x60 are the presentation indicator (0 allowed,
# 0x20 restricted, 0x40 not available).
PRES_INDICATOR_MASK = 0x60
PRES_NOT_AVAILABLE = 0x40
MAX_NAME = 64


class InvalidNumber(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class NumberRules:
    min_digits: int = 3
    max_digits: int = 20

    @classmethod
    def from_settings(cls, settings: FeatureSettings) -> NumberRules:
        return cls(settings.number_min_digits, settings.number_max_digits)

    def is_dialable(self, value: str) -> bool:
        digits = value[1:] if value.startswith("+") else value
        return (
            self.min_digits <= len(digits) <= self.max_digits
            and digits.isascii()
            and digits.isdigit()
        )


def presentation_restricted(pres: int) -> bool:
    return bool(pres & PRES_INDICATOR_MASK)


def anonymity(number: str, pres_raw: str) -> str | None:
    """How a caller hides: ``"withheld"`` (restricted presentation, or a number
    like ``anonymous``/``private``/``restricted``), ``"unavailable"`` (the
    network has no number: presentation "not available", ``unknown``, empty),
    or None when the number is shown. An unreadable presentation counts as
    shown, so only the number decides."""
    pres = parse_presentation(pres_raw)
    indicator = pres & PRES_INDICATOR_MASK if pres is not None else 0
    word = number.strip().lower()
    if indicator and indicator != PRES_NOT_AVAILABLE or word in ANONYMOUS_WORDS:
        return "withheld"
    if indicator == PRES_NOT_AVAILABLE or word in WITHHELD_WORDS:
        return "unavailable"
    return None


# What CALLERID(pres) / CONNECTEDLINE(pres) read as (Asterisk's
# ast_named_caller_presentation); agi_callingpres gives the number.
PRESENTATION_NAMES = {
    "allowed_not_screened": 0, "allowed_passed_screen": 1, "allowed_failed_screen": 2, "allowed": 3,
    "prohib_not_screened": 32, "prohib_passed_screen": 33, "prohib_failed_screen": 34, "prohib": 35,
    "unavailable": 67,
}


def parse_presentation(raw: str) -> int | None:
    """A presentation as a number (``35``) or by its Asterisk name (``prohib``)."""
    text = raw.strip()
    if text in PRESENTATION_NAMES:
        return PRESENTATION_NAMES[text]
    try:
        value = int(text)
    except ValueError:
        return None
    return value if 0 <= value <= 255 else None


def clean_name(raw: str) -> str:
    """A caller name fit to store and show: printable, trimmed, bounded."""
    return "".join(ch for ch in raw if ch.isprintable())[:MAX_NAME].strip()


def classify_caller(number: str, name: str, pres_raw: str, rules: NumberRules, now: float | None = None) -> CallerRecord:
    """Turn the caller ID of an inbound call into what *69 may use.

    A restricted or unavailable presentation, a word like "anonymous", or a
    number that is not plainly dialable makes the record withheld: *69 then
    says so instead of calling anyone, and the number is not kept.
    """
    when = time.time() if now is None else now
    pres = parse_presentation(pres_raw)
    shown_name = clean_name(name)
    if shown_name.lower() in WITHHELD_WORDS:
        shown_name = ""
    if pres is None:
        reason = "bad-presentation"
    elif presentation_restricted(pres):
        reason = "restricted"
    elif number.strip().lower() in WITHHELD_WORDS:
        reason = "anonymous"
    elif not rules.is_dialable(number):
        reason = "invalid-number"
    else:
        return CallerRecord(number=number, name=shown_name, presentation=pres, time=when, withheld=False)
    return CallerRecord(
        number="", name="", presentation=pres if pres is not None else 0, time=when, withheld=True, reason=reason
    )


def parse_dialed(dialed: str, block_codes: list[str], rules: NumberRules) -> tuple[str, bool]:
    """Split dialed digits into (number, withhold_this_call).

    ``*67`` (or another configured code) in front withholds caller ID for this
    call only. The rest must be a dialable number.
    """
    number, choice = parse_dialed_choice(dialed, block_codes, (), rules)
    return number, choice is True


def parse_dialed_choice(dialed: str, block_codes: list[str] | tuple[str, ...],
                        show_codes: list[str] | tuple[str, ...], rules: NumberRules) -> tuple[str, bool | None]:
    """Split dialed digits into (number, choice): True when a block code
    (``*67``) is in front, False when a show code (``*82``, NANP), None when
    neither; the longest matching code wins. The rest must be a dialable number."""
    choice = None
    codes = [(code, True) for code in block_codes] + [(code, False) for code in show_codes]
    for code, withhold in sorted(codes, key=lambda c: len(c[0]), reverse=True):
        if dialed.startswith(code):
            dialed = dialed[len(code):]
            choice = withhold
            break
    if not rules.is_dialable(dialed):
        raise InvalidNumber(f"not a dialable number: {dialed[:32]!r}")
    return dialed, choice


class CallbackRules:
    """Turns a stored caller number into the number *69 dials."""

    def __init__(self, rules: list[RewriteRule], numbers: NumberRules):
        self._rules = [(re.compile(r.match, re.ASCII), r.rewrite) for r in rules]
        self._numbers = numbers

    def callback_number(self, number: str) -> str | None:
        if not self._numbers.is_dialable(number):
            return None
        for pattern, template in self._rules:
            m = pattern.fullmatch(number)
            if m:
                result = m.expand(template)
                # A rule is configuration, but its output is still checked:
                # only digits (and a leading +) may go to Dial.
                return result if self._numbers.is_dialable(result) else None
        return None
