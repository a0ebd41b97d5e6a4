"""The Redis key schema. This is the only module that builds key strings.

Every key starts with a configurable prefix (default ``tf:``) so several sites or
PBXs can share one Redis. Schema version 2 puts every key of one extension under
one Redis Cluster hash tag (the part in braces), so all of them live in one slot
and a transaction over them works in a Cluster::

    <prefix>{<extension>}:cidblock            string "1" while persistent caller-ID
                                              blocking (*81) is on; absent when off
    <prefix>{<extension>}:lastcaller          hash of the last outside caller (*69),
                                              fields LAST_CALLER_FIELDS: number, name,
                                              pres, time, withheld, reason
    <prefix>{<extension>}:rejectlist          sorted set of blocked caller numbers (*60):
                                              member = number, score = epoch seconds it
                                              was added; at most callblock_max_entries
                                              (the oldest go first)
    <prefix>{<extension>}:anonreject          string "1" while anonymous call rejection
                                              (*77) is on; absent when off
    <prefix>{<extension>}:lastrejected        hash of the last inbound call refused by
                                              the two above, fields LAST_REJECTED_FIELDS:
                                              number, name, pres, time, reason
                                              (blocked-caller / anonymous); kept apart
                                              so a refused call is never the *69 caller
    <prefix>{<tenant>:<extension>}:<kind>     the same for an extension of a tenant
    <prefix>schema                            "2": the layout above is in use
    <prefix>import:astdb[:<tenant>]           hash: AstDB key (/CIDBlock/1000) -> the value
                                              an import took from it, so a second import
                                              does not undo a change made since

Version 1 (before tenants and hash tags) was ``<prefix>ext:<extension>:<kind>``;
``telefeatures state migrate-keys`` moves such keys (see :mod:`.migrate`).

Extensions and tenants are validated before they reach a key (see
``valid_extension`` / ``valid_tenant``), so a key can never contain ``{``,
``}``, ``*`` or blanks, and a ``:`` inside the braces always separates the
tenant from the extension.
"""

from __future__ import annotations

import re

VERSION = 2
# Every kind of per-extension key; clear/has_state/migration cover exactly these.
KINDS = ("cidblock", "lastcaller", "rejectlist", "anonreject", "lastrejected")

_EXTENSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}", re.ASCII)
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}", re.ASCII)
_PREFIX = re.compile(r"[A-Za-z0-9_.-]{0,32}:?", re.ASCII)


# The value of a cidblock / anonreject key while the feature is on.
CIDBLOCK_ON = ANONREJECT_ON = "1"

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


# The fields of a last-refused-call hash.
LAST_REJECTED_FIELDS = (NUMBER, NAME, PRES, TIME, REASON)


def last_rejected_hash(*, number: str, name: str, presentation: int, time: float, reason: str) -> dict[str, str]:
    """The hash of a last-refused-call key, field by field."""
    return {NUMBER: number, NAME: name, PRES: str(presentation), TIME: f"{time:.3f}", REASON: reason}


def valid_extension(value: str) -> bool:
    """An extension / PJSIP endpoint name safe to use in a key and a log line."""
    return bool(_EXTENSION.fullmatch(value))


def valid_tenant(value: str) -> bool:
    """A tenant name: letters, digits, ``_ . -``; never ``{ } :`` or blanks,
    which would break the hash tag."""
    return bool(_TENANT.fullmatch(value))


def valid_prefix(value: str) -> bool:
    return bool(_PREFIX.fullmatch(value))


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


class KeySchema:
    __slots__ = ("prefix",)

    def __init__(self, prefix: str = "tf:"):
        if not valid_prefix(prefix):
            raise ValueError(f"invalid key prefix {prefix!r}: letters, digits, _ . - and a trailing ':' only")
        self.prefix = prefix

    def hash_tag(self, extension: str, tenant: str | None = None) -> str:
        """``<prefix>{[<tenant>:]<extension>}``: the start of every key of one extension."""
        if not valid_extension(extension):
            raise ValueError(f"invalid extension {extension[:70]!r}")
        if tenant is None:
            return f"{self.prefix}{{{extension}}}"
        if not valid_tenant(tenant):
            raise ValueError(f"invalid tenant {tenant[:40]!r}")
        return f"{self.prefix}{{{tenant}:{extension}}}"

    def key(self, kind: str, extension: str, tenant: str | None = None) -> str:
        return f"{self.hash_tag(extension, tenant)}:{kind}"

    def cidblock(self, extension: str, tenant: str | None = None) -> str:
        return self.key("cidblock", extension, tenant)

    def last_caller(self, extension: str, tenant: str | None = None) -> str:
        return self.key("lastcaller", extension, tenant)

    def reject_list(self, extension: str, tenant: str | None = None) -> str:
        return self.key("rejectlist", extension, tenant)

    def anon_reject(self, extension: str, tenant: str | None = None) -> str:
        return self.key("anonreject", extension, tenant)

    def last_rejected(self, extension: str, tenant: str | None = None) -> str:
        return self.key("lastrejected", extension, tenant)

    def extension_keys(self, extension: str, tenant: str | None = None) -> list[str]:
        """Every key one extension can have (one slot in a Cluster)."""
        return [self.key(kind, extension, tenant) for kind in KINDS]

    def astdb_imports(self, tenant: str | None = None) -> str:
        if tenant is None:
            return f"{self.prefix}import:astdb"
        if not valid_tenant(tenant):
            raise ValueError(f"invalid tenant {tenant[:40]!r}")
        return f"{self.prefix}import:astdb:{tenant}"

    def version_key(self) -> str:
        return f"{self.prefix}schema"

    def all_extension_keys(self, tenant: str | None = None) -> str:
        """A SCAN pattern for the per-extension keys of ``tenant`` (or of every
        tenant and none, when None). :meth:`owner_of` sorts out the matches."""
        if tenant is None:
            return f"{_glob_escape(self.prefix)}{{*"
        if not valid_tenant(tenant):
            raise ValueError(f"invalid tenant {tenant[:40]!r}")
        return f"{_glob_escape(self.prefix)}{{{tenant}:*"

    def owner_of(self, key: str) -> tuple[str | None, str] | None:
        """``(tenant, extension)`` of one of our per-extension keys, else None."""
        if not key.startswith(self.prefix + "{"):
            return None
        tag, sep, kind = key[len(self.prefix) + 1:].partition("}:")
        if not sep or kind not in KINDS:
            return None
        tenant, colon, extension = tag.rpartition(":")
        if not valid_extension(extension):
            return None
        if not colon:
            return None, extension
        return (tenant, extension) if valid_tenant(tenant) else None

    def extension_of(self, key: str, tenant: str | None = None) -> str | None:
        """The extension a key of ``tenant`` (None: no tenant) belongs to, or None."""
        owner = self.owner_of(key)
        return owner[1] if owner is not None and owner[0] == tenant else None

    # ------------------------------------------------------------ version 1, for migration only

    def legacy_keys(self) -> str:
        """A SCAN pattern for version-1 keys (``<prefix>ext:<extension>:<kind>``)."""
        return f"{_glob_escape(self.prefix)}ext:*"

    def legacy_key(self, kind: str, extension: str) -> str:
        if not valid_extension(extension):
            raise ValueError(f"invalid extension {extension[:70]!r}")
        return f"{self.prefix}ext:{extension}:{kind}"

    def legacy_owner(self, key: str) -> tuple[str, str] | None:
        """``(kind, extension)`` of a version-1 key, else None."""
        head = f"{self.prefix}ext:"
        if not key.startswith(head):
            return None
        ext, _, kind = key[len(head):].rpartition(":")
        if kind not in KINDS or not valid_extension(ext):
            return None
        return kind, ext
