"""``telefeatures dialplan ...`` and ``telefeatures example ...``: the files
shipped with the package, for a pip-installed user without a checkout."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .root import cli


@cli.group("dialplan")
def dialplan() -> None:
    """The Asterisk dialplan files to #include from extensions.conf."""


@dialplan.command("install")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace files that differ from the shipped ones.")
def dialplan_install(directory: Path, force: bool) -> None:
    """Copy the dialplan files into DIRECTORY, e.g. /etc/asterisk/telefeatures.

    A file already there with other content (local changes) is kept unless --force."""
    from ..shipped import install_dialplan

    try:
        done = install_dialplan(directory, force)
    except OSError as exc:
        raise click.ClickException(f"cannot install into {directory}: {exc.strerror or exc}") from None
    for name, what in done:
        click.echo(f"{directory / name}: {what}")
    if any(what.startswith("kept") for _, what in done):
        sys.exit(1)


@dialplan.command("show")
@click.argument("name", required=False)
def dialplan_show(name: str | None) -> None:
    """Print a dialplan file (default: list them)."""
    from ..shipped import dialplan_files

    shipped = dialplan_files()
    if name is None:
        for entry in shipped:
            click.echo(entry)
        return
    if name not in shipped:
        raise click.BadParameter(f"no dialplan file {name!r}; there are: {', '.join(shipped)}", param_hint="NAME")
    click.echo(shipped[name].decode(), nl=False)


@cli.command("example")
@click.argument("what", type=click.Choice(["config", "inventory", "systemd", "systemd-tftp"]))
def example(what: str) -> None:
    """Print an example file: settings (config), a phone inventory, or a systemd unit."""
    from ..shipped import example as shipped_example

    click.echo(shipped_example(what), nl=False)
