"""``telefeatures provision doctor``: per phone, did it fetch its file, is it
registered, is its firmware there, is its file current."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click

from .provision import _ami_options, _ami_settings, _load, _tftp_root_option, provision

COLUMNS = ("PHONE", "LABEL", "FILE WRITTEN", "FETCHED", "REGISTERED", "FIRMWARE", "STATUS")


@provision.command("doctor")
@click.argument("inventory", type=click.Path(dir_okay=False, path_type=Path))
@_tftp_root_option("Directory the TFTP server serves.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help="The TFTP server's state directory (its fetch record) [default: the state_dir setting].")
@click.option("--no-ami", is_flag=True, help="Do not ask Asterisk who is registered.")
@_ami_options
def doctor(inventory: Path, tftp_root: Path, state_dir: Path | None, no_ami: bool, **ami: Any) -> None:
    """A table, one row per phone: when and from where it fetched its file (the
    TFTP server's record), whether and from where it is registered (AMI), whether
    the firmware named for its model is complete in the TFTP root, whether its
    file is older than the inventory. Exits 1 when anything is wrong."""
    from ..ami import AmiClient, AmiError
    from ..config import default_state_dir
    from ..provisioning.doctor import contacts_from_events, diagnose
    from ..provisioning.fetch_record import load_fetches

    inv = _load(inventory)
    fetches = load_fetches(state_dir or default_state_dir())
    contacts = None
    if not no_ami:
        settings = _ami_settings(**ami)

        async def ask() -> list[dict[str, str]]:
            async with AmiClient(settings) as client:
                return await client.pjsip_contacts()

        try:
            contacts = contacts_from_events(asyncio.run(ask()))
        except AmiError as exc:
            click.echo(f"AMI: {exc}; registrations unknown", err=True)
    reports = diagnose(inv, inventory.stat().st_mtime, tftp_root, fetches, contacts)
    rows = [COLUMNS] + [
        (r.phone.mac_display, r.phone.label or "-", r.config, r.fetched, r.registered, r.firmware,
         "ok" if r.ok else f"{len(r.problems)} problem(s)")
        for r in reports
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    bad = [r for r in reports if not r.ok]
    for report in bad:
        for problem in report.problems:
            click.echo(f"{report.phone.mac_display}: {problem}")
    click.echo(f"{len(reports)} phone(s), {len(reports) - len(bad)} ok, {len(bad)} with problems"
               + ("" if contacts is not None or no_ami else "; registrations not checked"))
    if bad or (contacts is None and not no_ami):
        sys.exit(1)
