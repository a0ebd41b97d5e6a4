"""Generated SIP passwords, kept stable across builds.

A line without a ``password`` in the inventory gets a generated one. It must
not change on the next build (the phone and Asterisk would disagree until the
phone re-fetched its file), so generated passwords live in a small JSON file:

    {"format": 1, "passwords": {"1001": "...", "1002": "..."}}

keyed by extension. The file is written atomically with mode 0600 and only
when a password was added. Entries for extensions that left the inventory
are kept, so a phone that is removed and re-added keeps its password.

Passwords given in the inventory always win and are never copied here.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .files import fsync_directory, write_atomic

# Letters and digits only: nothing that needs escaping in XML, pjsip.conf or a
# SIP digest, and no look-alikes (0/O, 1/l/I) for an admin typing it on a keypad.
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
# The longest authPassword a phone takes by default (site setting
# auth_password_max_length): a first-hand 7942 report (SIP42.9-4-2SR3-1S) gives
# config parse errors beyond 12 characters, and no real-world file has a longer
# one. A generated password is as long as the site's limit allows.
LENGTH = 12
FORMAT = 1


# Random bytes below this map onto the alphabet evenly (byte % 57); the rest are drawn again.
_EVEN_BELOW = 256 - 256 % len(ALPHABET)


def generate_password(length: int = LENGTH) -> str:
    """Each character drawn uniformly from ALPHABET (log2(57) = 5.83 bits each,
    70 bits for 12), from one read of the system's random source instead of
    one per character (a first build of 10,000 lines: 0.03 s instead of 0.12 s)."""
    chars: list[str] = []
    while len(chars) < length:
        chars += [ALPHABET[byte % len(ALPHABET)] for byte in secrets.token_bytes(2 * length) if byte < _EVEN_BELOW]
    return "".join(chars[:length])


class CredentialsError(Exception):
    pass


@dataclass
class CredentialStore:
    path: Path
    passwords: dict[str, str] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)
    # True when the file on disk is readable by group or others.
    too_open: bool = False

    @classmethod
    def load(cls, path: Path) -> CredentialStore:
        try:
            with open(path, "rb") as handle:
                info = os.fstat(handle.fileno())
                raw = handle.read()
        except FileNotFoundError:
            return cls(path)
        except OSError as exc:
            raise CredentialsError(f"{path}: cannot read: {exc.strerror or exc}") from None
        try:
            data = json.loads(raw)
            passwords = data["passwords"]
            if data.get("format") != FORMAT or not isinstance(passwords, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in passwords.items()
            ):
                raise ValueError("unexpected layout")
        except (ValueError, KeyError, TypeError) as exc:
            raise CredentialsError(f"{path}: not a telefeatures secrets file ({exc}); "
                                   "fix or move it, or every generated password would change") from None
        return cls(path, dict(passwords), too_open=bool(info.st_mode & (stat.S_IRWXG | stat.S_IRWXO)))

    def password_for(self, extension: str, max_length: int = LENGTH) -> str:
        """The stored password of ``extension``, generating (and recording) one
        if there is none or the stored one is longer than the phones take."""
        stored = self.passwords.get(extension)
        if stored is None or len(stored) > max_length:
            self.passwords[extension] = generate_password(max_length)
            self.added.append(extension)
        return self.passwords[extension]

    def rotate(self, extension: str, length: int = LENGTH) -> None:
        """Replace ``extension``'s password with a new generated one (saved with
        the next ``save``; the old one works until Asterisk reloads PJSIP)."""
        old = self.passwords.get(extension)
        while (new := generate_password(length)) == old:
            pass
        self.passwords[extension] = new
        self.added.append(extension)

    def save(self) -> bool:
        """Write the file if passwords were added; True if written."""
        if not self.added:
            return False
        data = json.dumps({"format": FORMAT, "passwords": dict(sorted(self.passwords.items()))}, indent=1)
        # Never keep an old, more open mode: these are live SIP credentials.
        write_atomic(self.path, data.encode() + b"\n", 0o600, keep_mode=False)
        fsync_directory(self.path.parent)
        self.added = []
        self.too_open = False
        return True


def default_secrets_path(tftp_root: Path) -> Path:
    """Next to the TFTP root, never inside it (anything inside may be fetched)."""
    root = tftp_root.resolve()
    return root.parent / f"{root.name}.secrets.json"
