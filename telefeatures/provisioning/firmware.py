"""Is the firmware the inventory names for a model in the TFTP root?

A phone told to run load ``SIP41.9-4-2SR3-1S`` (its ``loadInformation``)
fetches ``SIP41.9-4-2SR3-1S.loads`` and then every image that file names
(``apps41….sbn``, ``cnu41….sbn``, …). If any is missing the phone keeps
retrying the upgrade, or is left without an application ("protocol
application invalid"). The .loads file is a signed text file: the image names
are read out of it as the file names it contains, whatever its header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MAX_LOADS_BYTES = 1 << 20  # a .loads file is a few hundred bytes
# An image name inside a .loads file: term41.9-4-2ES26.sbn, dsp41.9-4-2ES26.sbn, jar41sip.9-4-2ES26.sbn ...
_IMAGE = re.compile(rb"(?<![A-Za-z0-9._-])([A-Za-z0-9][A-Za-z0-9._-]{0,100}\.(?:sbn|sb2|bin|zz|loads|img))(?![A-Za-z0-9])")


@dataclass(frozen=True)
class FirmwareCheck:
    load: str  # the load name, as in the inventory
    missing: tuple[str, ...]  # file names not in the TFTP root (the .loads file itself first)
    images: tuple[str, ...]  # what the .loads file lists

    @property
    def ok(self) -> bool:
        return not self.missing

    def describe(self) -> str:
        if self.ok:
            return f"{self.load}: .loads and {len(self.images)} image(s) present"
        return f"{self.load}: missing {', '.join(self.missing)}"


def check_load(tftp_root: Path, load: str) -> FirmwareCheck:
    loads_name = f"{load}.loads"
    loads = tftp_root / loads_name
    try:
        with open(loads, "rb") as handle:
            data = handle.read(MAX_LOADS_BYTES)
    except OSError:
        return FirmwareCheck(load, (loads_name,), ())
    images = tuple(dict.fromkeys(
        name.decode() for name in _IMAGE.findall(data) if not name.decode().endswith(loads_name)))
    missing = tuple(name for name in images if not (tftp_root / name).is_file())
    if not images:
        missing = (f"{loads_name} names no image",)
    return FirmwareCheck(load, missing, images)


def missing_firmware(firmware: dict[str, str], tftp_root: Path) -> dict[str, FirmwareCheck]:
    """model -> the failed check, for every model whose named firmware is incomplete."""
    checks: dict[str, FirmwareCheck] = {}
    by_load: dict[str, FirmwareCheck] = {}
    for model, load in firmware.items():
        check = by_load.get(load) or by_load.setdefault(load, check_load(tftp_root, load))
        if not check.ok:
            checks[model] = check
    return checks
