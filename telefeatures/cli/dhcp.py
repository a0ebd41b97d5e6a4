"""``telefeatures provision dhcp``: the phone subnet's DHCP server configuration."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .provision import _load, provision


@provision.command("dhcp")
@click.argument("inventory", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["isc", "dnsmasq", "kea"]), required=True,
              help="isc: dhcpd.conf; dnsmasq: a conf-file/dnsmasq.d drop-in; kea: kea-dhcp4 JSON.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write here (atomically) instead of standard output.")
def dhcp(inventory: Path, fmt: str, output: Path | None) -> None:
    """DHCP reservations (each phone's ip), the dynamic range and options 150/66
    (TFTP), router, DNS, NTP and lease time from INVENTORY's [dhcp] section."""
    from ..provisioning.dhcp import DhcpError, render_dhcp
    from ..provisioning.files import fsync_directory, write_atomic

    inv = _load(inventory)
    try:
        data = render_dhcp(inv, fmt)
    except DhcpError as exc:
        raise click.ClickException(f"{inventory}: {exc}") from None
    if output is None:
        sys.stdout.buffer.write(data)
        return
    output = output.absolute()
    if not output.parent.is_dir():
        raise click.ClickException(f"directory of --output {output} does not exist")
    write_atomic(output, data, 0o644)
    fsync_directory(output.parent)
    reserved = sum(1 for phone in inv.phones if phone.ip)
    click.echo(f"{output}: {fmt} configuration, {reserved} reservation(s)", err=True)
