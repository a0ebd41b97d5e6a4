"""The Redis key schema. This is the only module that builds key strings.

Every key starts with a configurable prefix (default ``tf:``) so several sites or
PBXs can share one Redis::

    <prefix>ext:<extension>:cidblock    string "1" while persistent caller-ID
                                        blocking (*81) is on; absent when off
    <prefix>ext:<extension>:lastcaller  hash of the last outside caller (*69),
                                        fields LAST_CALLER_FIELDS: number, name,
                                        pres, time, withheld, reason

Extensions are validated before they reach a key (see ``valid_extension``), so a
key can never contain ``:``, ``*`` or blanks.
"""

from __future__ import annotations

import re

_EXTENSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}", re.ASCII)
_PREFIX = re.compile(r"[A-Za-z0-9_.-]{0,32}:?", re.ASCII)


# The value of a cidblock key while blocking is on.
CIDBLOCK_ON = "1"

# The fields of a last-caller hash. Every write sets all of them at once.
NUMBER, NAME, PRES, TIME, WITHHELD, REASON = LAST_CALLER_FIELDS = (
    "number", "name", "pres", "time", "withheld", "reason")


def last_caller_hash(*, number: str, name: str, presentation: int, time: float, withheld: bool,
                     reason: str = "") -> dict[str, str]:
    """The hash of a last-caller key, field by field."""
    return {
        NUMBER: number,
        NAME: name,
        PRES: str(presentation),
        TIME: f"{time:.3f}",
        WITHHELD: "1" if withheld else "0",
        REASON: reason,
    }


def valid_extension(value: str) -> bool:
    """An extension / PJSIP endpoint name safe to use in a key and a log line."""
    return bool(_EXTENSION.fullmatch(value))


def valid_prefix(value: str) -> bool:
    return bool(_PREFIX.fullmatch(value))


class KeySchema:
    __slots__ = ("prefix",)

    def __init__(self, prefix: str = "tf:"):
        if not valid_prefix(prefix):
            raise ValueError(f"invalid key prefix {prefix!r}: letters, digits, _ . - and a trailing ':' only")
        self.prefix = prefix

    def _ext(self, extension: str) -> str:
        if not valid_extension(extension):
            raise ValueError(f"invalid extension {extension[:70]!r}")
        return f"{self.prefix}ext:{extension}"

    def cidblock(self, extension: str) -> str:
        return self._ext(extension) + ":cidblock"

    def last_caller(self, extension: str) -> str:
        return self._ext(extension) + ":lastcaller"

    def all_extension_keys(self) -> str:
        """A SCAN pattern matching every per-extension key under this prefix."""
        escaped = re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix)
        return f"{escaped}ext:*"

    def extension_of(self, key: str) -> str | None:
        """The extension a key belongs to, or None if it is not one of ours."""
        head = f"{self.prefix}ext:"
        if not key.startswith(head):
            return None
        ext, _, kind = key[len(head):].rpartition(":")
        if kind not in ("cidblock", "lastcaller") or not valid_extension(ext):
            return None
        return ext
