"""Plans and applies a build: render everything in memory, check everything,
and only then write, so a bad inventory or template writes nothing at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .credentials import CredentialStore
from .devices import SIP_CNF_FORMAT
from .files import fsync_directory, read_if_exists, write_atomic
from .inventory import Inventory, Phone, phone_title
from .render import ConfigRenderer, RenderError

XML_DEFAULT_NAME = "XMLDefault.cnf.xml"
SIP_DEFAULT_NAME = "SIPDefault.cnf"
# Per-phone files: SEP<MAC>.cnf.xml (79x1 and later), SIP<MAC>.cnf (7940/7960).
SEP_NAME = re.compile(r"SEP[0-9A-F]{12}\.cnf\.xml|SIP[0-9A-F]{12}\.cnf")
TFTP_FILE_MODE = 0o644  # the TFTP server must read them
PJSIP_FILE_MODE = 0o640  # holds passwords; give Asterisk's group read access
HINTS_FILE_MODE = 0o644


class BuildError(Exception):
    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__(f"{len(errors)} error(s), nothing written:\n" + "\n".join(f"  {e}" for e in errors))


@dataclass(frozen=True)
class PlannedFile:
    path: Path
    data: bytes
    mode: int
    phone: Phone | None = None


@dataclass
class BuildPlan:
    tftp_root: Path
    files: list[PlannedFile]
    credentials: CredentialStore
    pjsip_path: Path | None = None
    hints_path: Path | None = None


@dataclass
class BuildReport:
    added: list[Path] = field(default_factory=list)
    changed: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    stale: list[Path] = field(default_factory=list)
    changed_phones: list[Phone] = field(default_factory=list)
    pjsip_changed: bool = False
    hints_changed: bool = False
    secrets_written: bool = False


def resolve_passwords(inventory: Inventory, credentials: CredentialStore) -> dict[str, str]:
    """extension -> password: the inventory's, else the stored or a new generated one."""
    return {
        line.extension: line.password or credentials.password_for(line.extension,
                                                                   inventory.site.auth_password_max_length)
        for phone in inventory.phones
        for line in phone.lines
    }


def plan_build(
    inventory: Inventory,
    tftp_root: Path,
    renderer: ConfigRenderer,
    credentials: CredentialStore,
    pjsip_path: Path | None = None,
    hints_path: Path | None = None,
    progress: Callable[[Iterable[Phone]], Iterable[Phone]] = lambda phones: phones,
) -> BuildPlan:
    """Render and check every file; raise BuildError listing every problem."""
    errors: list[str] = []
    passwords = resolve_passwords(inventory, credentials)
    files: list[PlannedFile] = []
    site = inventory.site
    try:
        dialplan = renderer.render_dialplan(site)
        files.append(PlannedFile(tftp_root / site.dial_template, dialplan, TFTP_FILE_MODE))
    except RenderError as exc:
        raise BuildError(exc.lines()) from None
    try:
        files.append(PlannedFile(tftp_root / XML_DEFAULT_NAME, renderer.render_xml_default(site), TFTP_FILE_MODE))
    except RenderError as exc:
        errors += exc.lines()
    if any(phone.config_format == SIP_CNF_FORMAT for phone in inventory.phones):
        try:
            files.append(PlannedFile(tftp_root / SIP_DEFAULT_NAME, renderer.render_sip_default(inventory),
                                     TFTP_FILE_MODE))
        except RenderError as exc:
            errors += exc.lines()
    for i, phone in enumerate(progress(inventory.phones)):
        try:
            if phone.config_format == SIP_CNF_FORMAT:
                data = renderer.render_sip_cnf(inventory, phone, passwords)
            else:
                data = renderer.render_sep_config(inventory, phone, passwords, dialplan)
        except RenderError as exc:
            errors += exc.lines(f"{phone_title(phone, i)}: ")
            continue
        files.append(PlannedFile(tftp_root / phone.config_name, data, TFTP_FILE_MODE, phone))
    if pjsip_path is not None:
        try:
            files.append(PlannedFile(pjsip_path, renderer.render_pjsip(inventory, passwords),
                                     PJSIP_FILE_MODE))
        except RenderError as exc:
            errors += exc.lines()
    if hints_path is not None:
        files.append(PlannedFile(hints_path, renderer.render_hints(inventory), HINTS_FILE_MODE))
    if errors:
        raise BuildError(errors)
    return BuildPlan(tftp_root, files, credentials, pjsip_path, hints_path)


def apply_plan(plan: BuildPlan) -> BuildReport:
    """Write what changed. Generated passwords are saved first, so no file ever
    holds a password that is not also recorded."""
    report = BuildReport()
    report.secrets_written = plan.credentials.save()
    directories: set[Path] = set()
    for planned in plan.files:
        old = read_if_exists(planned.path)
        if old == planned.data:
            report.unchanged.append(planned.path)
            continue
        write_atomic(planned.path, planned.data, planned.mode)
        directories.add(planned.path.parent)
        (report.added if old is None else report.changed).append(planned.path)
        if planned.phone is not None and old is not None:
            report.changed_phones.append(planned.phone)
        if planned.path == plan.pjsip_path:
            report.pjsip_changed = True
        if planned.path == plan.hints_path:
            report.hints_changed = True
    for directory in directories:
        fsync_directory(directory)
    wanted = {planned.path.name for planned in plan.files if planned.path.parent == plan.tftp_root}
    report.stale = sorted(
        path for path in plan.tftp_root.iterdir() if SEP_NAME.fullmatch(path.name) and path.name not in wanted
    )
    return report
