"""``telefeatures provision rotate-passwords``: new SIP passwords, live.

A password that may have leaked (a phone file fetched by a stranger, a lost
phone) is replaced by a new generated one everywhere at once: the secrets
file, the phones' SEP files, the PJSIP include; then res_pjsip is reloaded, so
the old password stops working, and the phones are told to re-sync, so they
fetch the new one.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from .provision import (
    _ami_options,
    _ami_settings,
    _build_files,
    _chosen_phones,
    _event_option,
    _load,
    _open_outputs,
    _phones_option,
    _print_report,
    _run_notify,
    _secrets_option,
    _templates_option,
    _tftp_root_option,
    _verbose_option,
    provision,
)


@provision.command("rotate-passwords")
@click.argument("inventory", type=click.Path(dir_okay=False, path_type=Path))
@_tftp_root_option("Directory the TFTP server serves (the phones' files are rewritten there).")
@click.option("--pjsip", "pjsip_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The PJSIP include Asterisk reads (rewritten, then res_pjsip is reloaded).")
@_phones_option
@_templates_option
@_secrets_option
@_event_option
@_verbose_option
@_ami_options
def rotate_passwords(inventory: Path, tftp_root: Path, pjsip_path: Path, macs: tuple[str, ...],
                     templates: Path | None, secrets_path: Path | None, event: str, verbose: bool,
                     **ami: Any) -> None:
    """New generated SIP passwords for every line of the chosen phones: files
    rebuilt, res_pjsip reloaded (the old passwords stop working), phones told
    to re-sync. Lines whose password is written in INVENTORY are left alone
    (change it there and run build)."""
    settings = _ami_settings(**ami)
    inv = _load(inventory)
    phones = _chosen_phones(inv, macs)
    tftp_root, secrets_path, pjsip_path, credentials = _open_outputs(tftp_root, secrets_path, pjsip_path)
    rotated = 0
    told = []
    for phone in phones:
        for line in phone.lines:
            if line.password:
                click.echo(f"skipped  {phone.mac_display} extension {line.extension}: its password is written "
                           "in the inventory; change it there", err=True)
                continue
            credentials.rotate(line.extension, inv.site.auth_password_max_length)
            rotated += 1
            if not told or told[-1] is not phone:
                told.append(phone)
    if not rotated:
        raise click.ClickException("no generated password to rotate among the chosen phones")
    report = _build_files(inventory, inv, tftp_root, pjsip_path, templates, credentials)
    _print_report(report, secrets_path, verbose, reloading=True)
    click.echo(f"rotated  {rotated} password(s) on {len(told)} phone(s)")
    if not _run_notify(settings, told, event, reload_pjsip=True):
        click.echo("Asterisk may still accept the old passwords: reload res_pjsip.so and re-sync the phones "
                   "(telefeatures provision notify)", err=True)
        sys.exit(1)
