"""``telefeatures provision import`` and ``provision lint``: bring an existing
site's phone files into an inventory, and check hand-written files with the
rules the build uses."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .provision import _fail, provision


@provision.command("import")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Inventory TOML to write (must not exist unless --force).")
@click.option("--secrets", "secrets_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Secrets file (JSON, 0600) for the imported SIP passwords; an existing one is added to "
                   "[default: <output>.secrets.json]. Give the same file to 'provision build --secrets'.")
@click.option("--csv", "csv_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Phones in a CSV shaped like Cisco's BAT export (MAC or device name, model or device type, "
                   "directory number, display, line text label, ...).")
@click.option("--site", "site_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Existing inventory whose [site] (and phones) the imported phones join.")
@click.option("--model", help="Model of the phone(s) when the firmware load does not tell (e.g. 7961).")
@click.option("--mac", help="MAC of the single phone file given when its name does not carry one.")
@click.option("--templates-out", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the imported dial plan: write it as DIR/dialplan.xml.j2 for 'provision build --templates "
                   "DIR' (instead of the one the inventory's dial rules generate).")
@click.option("--partial", is_flag=True, help="Write the phones that import even if others are refused.")
@click.option("--force", is_flag=True, help="Overwrite --output if it exists.")
def import_command(paths: tuple[Path, ...], output: Path, secrets_path: Path | None, csv_path: Path | None,
                   site_path: Path | None, model: str | None, mac: str | None, templates_out: Path | None,
                   partial: bool, force: bool) -> None:
    """Read existing SEP<MAC>.cnf.xml, SIP<MAC>.cnf + SIPDefault.cnf, dialplan.xml
    and XMLDefault.cnf.xml files (or directories of them) into an inventory.

    A phone is imported only if the files the build writes for it mean the same
    (lines, names, auth user, password, messages number, speed dials, proxy and
    port, transport, time zone, date format, NAT, media ports); the report lists
    every other setting not carried over. Passwords go to the secrets file, never
    to the inventory or the screen. If any phone is refused nothing is written
    (unless --partial)."""
    from ..provisioning.credentials import CredentialsError, CredentialStore
    from ..provisioning.files import fsync_directory, write_atomic
    from ..provisioning.importer import (
        ImportProblem,
        collect_files,
        dialplan_template,
        import_phones,
        load_site,
        read_csv,
    )
    from ..provisioning.inventory import InventoryError

    if not paths and not csv_path:
        raise click.UsageError("give phone files or directories, or --csv FILE")
    if output.exists() and not force:
        raise click.ClickException(f"{output} exists; give --force to replace it (or another --output)")
    if not output.absolute().parent.is_dir():
        raise click.ClickException(f"directory of --output {output} does not exist")
    secrets_path = secrets_path or output.with_name(output.name.removesuffix(".toml") + ".secrets.json")
    for directory in (p.resolve() for p in paths if p.is_dir()):
        if secrets_path.absolute().resolve().is_relative_to(directory):
            raise click.ClickException(f"secrets file {secrets_path} would be inside {directory}, which holds phone "
                                       "files (a TFTP root?) where anyone could fetch it; choose --secrets elsewhere")
    site, existing = None, None
    try:
        if site_path:
            site, existing = load_site(site_path)
        rows = read_csv(csv_path.read_text(encoding="utf-8-sig"), str(csv_path)) if csv_path else None
        result = import_phones(collect_files(paths), site=site, existing_phones=existing, csv_rows=rows,
                               model=model, mac=mac)
    except InventoryError as exc:
        _fail([*exc.errors], f"{exc.source}: {len(exc.errors)} error(s), nothing written:")
    except (ImportProblem, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{exc}; nothing written") from None

    for item in result.imported:
        phone = item.phone
        click.echo(f"imported {item.source.name}: phone {phone['mac']} ({phone['model']}), "
                   f"{len(phone['lines'])} line(s), {len(phone.get('buttons', []))} other key(s)")
        for note in item.notes:
            click.echo(f"  not carried over: {note}" if " = " in note else f"  note: {note}")
    for note in result.notes:
        click.echo(f"note: {note}")
    for refusal in result.refused:
        click.echo(f"REFUSED  {refusal.source}" + (" (a template to fill in)" if refusal.template else ""),
                   err=True)
        for reason in refusal.reasons:
            click.echo(f"  {reason}", err=True)
    csv_count = len(rows or [])
    click.echo(f"{len(result.imported)} phone file(s) imported, {csv_count} CSV row(s), "
               f"{len(result.refused)} refused")
    if result.inventory is None or not result.inventory.phones:
        click.echo("nothing to write", err=True)
        sys.exit(1)
    if result.refused and not partial:
        click.echo("nothing written: some files were refused (fix them, or --partial writes the rest)", err=True)
        sys.exit(1)

    if templates_out is not None and len(result.dialplans) != 1:
        raise click.ClickException(f"--templates-out keeps one dial plan; {len(result.dialplans)} valid ones were "
                                   "given; nothing written")
    if templates_out is not None and templates_out.exists() and not templates_out.is_dir():
        raise click.ClickException(f"--templates-out {templates_out} is not a directory; nothing written")
    try:
        store = CredentialStore.load(secrets_path)
    except CredentialsError as exc:
        raise click.ClickException(f"{exc}; nothing written") from None
    clashes = sorted(ext for ext, pw in result.passwords.items() if store.passwords.get(ext, pw) != pw)
    if clashes:
        raise click.ClickException(f"{secrets_path} already holds other passwords for extension(s) "
                                   f"{', '.join(clashes)}; nothing written")
    new = {ext: pw for ext, pw in result.passwords.items() if ext not in store.passwords}
    if new:
        store.passwords.update(new)
        store.added = sorted(new)
        store.save()  # before the inventory: no file ever names a password that is not recorded
        click.echo(f"secrets  {secrets_path}: {len(new)} password(s) (mode 0600)")
    if templates_out is not None:
        templates_out.mkdir(parents=True, exist_ok=True)
        template = templates_out / "dialplan.xml.j2"
        write_atomic(template.absolute(), dialplan_template(result.dialplans[0]).encode("utf-8"), 0o644)
        click.echo(f"wrote    {template} (build with --templates {templates_out})")
    write_atomic(output.absolute(), result.toml().encode("utf-8"), 0o644, keep_mode=False)
    fsync_directory(output.absolute().parent)
    click.echo(f"wrote    {output}: {len(result.inventory.phones)} phone(s)")
    click.echo(f"next: telefeatures provision build {output} --tftp-root DIR --secrets {secrets_path}")


@provision.command("lint")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def lint_command(paths: tuple[Path, ...]) -> None:
    """Check hand-written phone files (SEP<MAC>.cnf.xml, XMLDefault.cnf.xml,
    dialplan.xml, SIP<MAC>.cnf, SIPDefault.cnf), or the phone files in a
    directory, with the rules the build applies.

    Prints FILE:LINE: message for each problem; exits 1 if there is any."""
    from ..provisioning.importer import collect_files
    from ..provisioning.lint import lint_file

    files = collect_files(paths)
    count = 0
    for path in files:
        for problem in lint_file(path):
            click.echo(problem)
            count += 1
    click.echo(f"{len(files)} file(s), {count} problem(s)", err=True)
    if count:
        sys.exit(1)

