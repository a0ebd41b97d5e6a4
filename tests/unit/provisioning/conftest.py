"""Shared test fixtures: inventories written as real TOML files, directory snapshots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SITE = """\
[site]
asterisk_address = "192.0.2.10"
sip_port = 5060
time_zone = "America/New_York"
ntp_server = "192.0.2.1"

[site.firmware]
"7961" = "SIP41.9-4-2SR3-1S"
"7941" = "SIP41.9-4-2SR3-1S"
"7911" = "SIP11.9-4-2SR3-1S"

[site.dial_rules]
extension_patterns = ["1..."]
outside_patterns = ["9.......", "91..........", "911", "9911", "9011*"]
"""


def phone_toml(mac: str, model: str = "7961", label: str | None = None,
               lines: list[dict[str, str]] | None = None) -> str:
    text = f'\n[[phones]]\nmac = "{mac}"\nmodel = "{model}"\n'
    if label is not None:
        text += f'label = "{label}"\n'
    for line in lines or []:
        text += "[[phones.lines]]\n" + "".join(f"{key} = {toml_string(value)}\n" for key, value in line.items())
    return text


def toml_string(value: str) -> str:
    # TOML literal strings cannot hold "'"; basic strings need \" and \\ escaped.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def fleet_toml(count: int, start: int = 1000, site: str = SITE) -> str:
    parts = [site]
    for n in range(count):
        mac = f"0019E8{n:06X}"
        parts.append(phone_toml(mac, "7961", f"P{n}", [{"extension": str(start + n), "display_name": f"User {n}"}]))
    return "".join(parts)


@pytest.fixture
def write_inventory(tmp_path: Path):
    def write(text: str, name: str = "inventory.toml") -> Path:
        path = tmp_path / "inventories" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path
    return write


def snapshot(directory: Path) -> dict[str, tuple[int, int, bytes]]:
    """name -> (inode, mtime_ns, content) of every file below ``directory``."""
    result = {}
    for dirpath, _dirs, files in os.walk(directory):
        for name in files:
            path = Path(dirpath) / name
            info = path.stat()
            result[str(path.relative_to(directory))] = (info.st_ino, info.st_mtime_ns, path.read_bytes())
    return result
