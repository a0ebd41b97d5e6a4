"""The feature codes, in one place: the Asterisk dialplan (``[tf-features]``),
the phones' dial plan (``provision build``) and the server's per-call codes
all come from this table.

Two presets give the defaults; any code can be set on its own:

* ``default``: ``*81`` / ``*82`` turn persistent caller-ID blocking on / off,
  ``*67<number>`` withholds caller ID for one call.
* ``nanp``: as North American carriers do, ``*82<number>`` *shows* the caller
  ID for one call (for a line whose blocking is on), so persistent blocking
  off moves to ``*86``.

The dialplan passes per-call codes to the ``outbound`` route in their
canonical form (``*67``, ``*82`` + number), whatever the site dials, so the
server needs no copy of the site's codes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A feature code: digits and stars, as the phones' dial-plan grammar can name them.
CODE = re.compile(r"[0-9*]{1,8}", re.ASCII)
# What the dialplan passes to the outbound route for a per-call code.
CANONICAL_PER_CALL_BLOCK = "*67"
CANONICAL_PER_CALL_SHOW = "*82"
PRESETS = ("default", "nanp")


@dataclass(frozen=True)
class FeatureCode:
    """One code dialled on its own: ``field`` names it in settings, ``route``
    is the AGI route it runs."""

    field: str
    route: str
    what: str
    default: str
    nanp: str


FEATURE_CODES = (
    FeatureCode("call_return", "callreturn", "call return", "*69", "*69"),
    FeatureCode("block_on", "cidblock/on", "caller-ID blocking on", "*81", "*81"),
    FeatureCode("block_off", "cidblock/off", "caller-ID blocking off", "*82", "*86"),
    FeatureCode("block_status", "cidblock/status", "caller-ID blocking status", "*83", "*83"),
    FeatureCode("callblock_last", "callblock/last", "block the last caller", "*60", "*60"),
    FeatureCode("callblock_clear", "callblock/clear", "empty the reject list", "*80", "*80"),
    FeatureCode("anonreject_on", "anonreject/on", "anonymous call rejection on", "*77", "*77"),
    FeatureCode("anonreject_off", "anonreject/off", "anonymous call rejection off", "*87", "*87"),
)
# Codes dialled in front of a number: (field, canonical form, what, default, nanp); None: not offered.
PER_CALL_CODES = (
    ("per_call_block", CANONICAL_PER_CALL_BLOCK, "caller ID withheld for one call", "*67", "*67"),
    ("per_call_show", CANONICAL_PER_CALL_SHOW, "caller ID shown for one call", None, "*82"),
)


def preset_codes(preset: str) -> dict[str, str | None]:
    """Every code field with its value under ``preset``."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: use one of {', '.join(PRESETS)}")
    nanp = preset == "nanp"
    codes: dict[str, str | None] = {c.field: c.nanp if nanp else c.default for c in FEATURE_CODES}
    for field, _, _, default, nanp_code in PER_CALL_CODES:
        codes[field] = nanp_code if nanp else default
    return codes


def check_codes(codes: dict[str, str | None]) -> None:
    """Each code well formed, and no two the same: a ValueError naming the code."""
    seen: dict[str, str] = {}
    for field, code in codes.items():
        if code is None:
            continue
        if not CODE.fullmatch(code):
            raise ValueError(f"feature code {code!r} must be 1-8 of 0-9 and *")
        if code in seen:
            raise ValueError(f"feature code {code} is given to both {seen[code]} and {field}")
        seen[code] = field


def features_context(codes: dict[str, str | None]) -> str:
    """The ``[tf-features]`` dialplan context for these codes (every field of
    :func:`preset_codes`; None leaves a per-call code out)."""
    check_codes(codes)
    lines = [
        "; telefeatures: the feature codes (generated from telefeatures/codes.py;",
        "; `telefeatures provision build --codes FILE` writes this file for a site's",
        "; own codes or the nanp preset, matching the phones' dial plan).",
        "",
        "[tf-features]",
    ]
    for code in FEATURE_CODES:
        lines += [f"; {code.what}",
                  f"exten => {codes[code.field]},1,Gosub(tf-feature,s,1({code.route}))",
                  " same => n,Hangup()"]
    for field, canonical, what, _, _ in PER_CALL_CODES:
        code = codes[field]
        if code is None:
            continue
        # The number after the code goes to the outbound route in canonical form.
        lines += [f"; {code} + number: {what}",
                  f"exten => _{code}X.,1,Gosub(tf-outbound-call,s,1({canonical}${{EXTEN:{len(code)}}}))",
                  " same => n,Hangup()"]
    return "\n".join(lines) + "\n"
