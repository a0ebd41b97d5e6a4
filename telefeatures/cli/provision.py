"""``telefeatures provision ...``: phone files and PJSIP endpoints from one inventory.

Heavy modules (lxml, Jinja2, panoramisk) are imported inside the commands so
registering these commands costs the rest of the ``telefeatures`` CLI nothing.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .root import cli

if TYPE_CHECKING:
    from ..ami import AmiSettings
    from ..provisioning.build import BuildReport
    from ..provisioning.credentials import CredentialStore
    from ..provisioning.inventory import Inventory, Phone

NOTIFY_EVENT_NAMES = ("check-sync", "restart")  # the keys of ami.NOTIFY_EVENTS
PROGRESS_FROM = 200  # phones; smaller builds finish before a bar is worth drawing
LIST_AT_MOST = 50  # file names listed per category unless --verbose


def _fail(lines: list[str], header: str) -> None:
    click.echo(header, err=True)
    for line in lines:
        click.echo(f"  {line}", err=True)
    sys.exit(1)


def _load(path: Path) -> Inventory:
    from ..provisioning.inventory import InventoryError, load_inventory

    try:
        return load_inventory(path)
    except InventoryError as exc:
        _fail(exc.errors, f"{exc.source}: {len(exc.errors)} error(s), nothing written:")
        raise AssertionError("unreachable")


def _ami_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--ami-host", help="Asterisk manager host [env TELEFEATURES_AMI_HOST, default 127.0.0.1]."),
        click.option("--ami-port", type=int, help="Manager port [env TELEFEATURES_AMI_PORT, default 5038]."),
        click.option("--ami-user", help="Manager user (needs write=system) [env TELEFEATURES_AMI_USERNAME]."),
        click.option("--ami-secret", help="Manager secret; prefer env TELEFEATURES_AMI_SECRET, "
                                          "a flag shows in the process list."),
        click.option("--ami-timeout", type=float, help="Seconds per AMI step [default 5]."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _ami_settings(ami_host, ami_port, ami_user, ami_secret, ami_timeout) -> AmiSettings:
    from ..ami import AmiSettings

    given = {"host": ami_host, "port": ami_port, "username": ami_user, "secret": ami_secret,
             "timeout": ami_timeout}
    try:
        return AmiSettings(**{k: v for k, v in given.items() if v is not None})
    except ValueError as exc:
        raise click.ClickException(f"bad AMI settings: {exc}") from None


def _tftp_root_option(help: str, required: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--tftp-root", required=required,
                        type=click.Path(exists=True, file_okay=False, path_type=Path), help=help)


def _templates_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--templates", type=click.Path(exists=True, file_okay=False, path_type=Path),
                        help="Directory of site templates overriding the built-in ones.")(func)


def _secrets_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--secrets", "secrets_path", type=click.Path(dir_okay=False, path_type=Path),
                        help="Generated passwords (JSON, mode 0600) "
                             "[default: <tftp-root>.secrets.json beside the root].")(func)


def _verbose_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("-v", "--verbose", is_flag=True, help="List every file, not just the first few.")(func)


def _phones_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--phones", "macs", multiple=True, metavar="MAC",
                        help="Only these phones (repeat, or separate with commas); default: every phone.")(func)


def _chosen_phones(inv: Inventory, macs: tuple[str, ...]) -> list[Phone]:
    """The phones ``--phones`` names (any MAC spelling), all when none."""
    from ..provisioning.notify import select_phones

    wanted = [part.strip() for text in macs for part in text.split(",") if part.strip()]
    try:
        return select_phones(inv, wanted)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _event_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--event", type=click.Choice(NOTIFY_EVENT_NAMES), default="check-sync", show_default=True,
                        help="check-sync: re-check config (reboots if changed); "
                             "restart: re-fetch and re-register without a reboot.")(func)


def _run_notify(settings: AmiSettings, phones: list[Phone], event: str, reload_pjsip: bool = False) -> bool:
    from ..ami import AmiError
    from ..provisioning.notify import notify_phones

    try:
        outcomes, reload = asyncio.run(notify_phones(settings, phones, event, reload_pjsip))
    except AmiError as exc:
        click.echo(f"notify: {exc}; no phone was told", err=True)
        return False
    if reload is not None:
        click.echo(f"reload res_pjsip.so: {'ok' if reload.ok else 'FAILED'} ({reload.message})")
    told = [o for o in outcomes if o.ok]
    unregistered = [o for o in outcomes if not o.registered]
    failed = [o for o in outcomes if not o.ok and o.registered]
    for outcome in told:
        click.echo(f"told     {outcome.phone.mac_display} (endpoint {outcome.endpoint}): {event}")
    for outcome in unregistered:
        click.echo(f"NOT TOLD {outcome.phone.mac_display} (endpoint {outcome.endpoint}): {outcome.message}",
                   err=True)
    for outcome in failed:
        click.echo(f"FAILED   {outcome.phone.mac_display} (endpoint {outcome.endpoint}): {outcome.message}",
                   err=True)
    summary = f"notify {event}: {len(told)} phone(s) told, {len(failed)} failed"
    if unregistered:
        summary += f", {len(unregistered)} not told (not registered)"
    click.echo(summary)
    return not failed and not unregistered


@cli.group("provision")
def provision() -> None:
    """Cisco 79x1 SIP phone files and PJSIP endpoints from one inventory."""


def _warn_missing_firmware(inv: Inventory, tftp_root: Path) -> None:
    from ..provisioning.firmware import missing_firmware

    for model, problem in missing_firmware(dict(inv.site.firmware), tftp_root).items():
        click.echo(f"warning: firmware for the {model} in {tftp_root}: {problem.describe()}; "
                   "phones of that model cannot load it", err=True)


@provision.command("check")
@click.argument("inventory", type=click.Path(dir_okay=False, path_type=Path))
@_templates_option
@_tftp_root_option("Also warn when a model's firmware (.loads and its images) is missing here.", required=False)
def check(inventory: Path, templates: Path | None, tftp_root: Path | None) -> None:
    """Validate INVENTORY and render every file in memory; write nothing.

    Exits 1 listing every error."""
    from ..provisioning.build import BuildError, plan_build
    from ..provisioning.credentials import CredentialStore
    from ..provisioning.render import ConfigRenderer

    inv = _load(inventory)
    try:
        plan = plan_build(inv, Path("."), ConfigRenderer(templates), CredentialStore(Path("(not saved)")),
                          pjsip_path=Path("pjsip.conf"))
    except BuildError as exc:
        _fail(exc.errors, f"{inventory}: {len(exc.errors)} error(s):")
    lines = sum(len(p.lines) for p in inv.phones)
    click.echo(f"{inventory}: ok, {len(inv.phones)} phone(s), {lines} line(s), {len(plan.files)} file(s)")
    if tftp_root is not None:
        _warn_missing_firmware(inv, tftp_root)


@provision.command("build")
@click.argument("inventory", type=click.Path(dir_okay=False, path_type=Path))
@_tftp_root_option("Directory the TFTP server serves; phone files go here.")
@click.option("--pjsip", "pjsip_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the PJSIP endpoints here (a file to #include from pjsip.conf).")
@click.option("--hints", "hints_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a dialplan include with a hint per line here (for busy-lamp keys; "
                   "#include it from extensions.conf).")
@click.option("--codes", "codes_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the Asterisk feature codes ([tf-features]) here, the same codes the phones' dial plan "
                   "has (e.g. /etc/asterisk/telefeatures/telefeatures-codes.conf).")
@_templates_option
@_secrets_option
@click.option("--notify", is_flag=True, help="Tell phones whose file changed to re-sync (through AMI).")
@_event_option
@_verbose_option
@_ami_options
def build(inventory: Path, tftp_root: Path, pjsip_path: Path | None, hints_path: Path | None,
          codes_path: Path | None, templates: Path | None, secrets_path: Path | None, notify: bool, event: str,
          verbose: bool,
          **ami: Any) -> None:
    """Write SEP<MAC>.cnf.xml, dialplan.xml and XMLDefault.cnf.xml into the TFTP
    root (and the PJSIP include), rewriting only files whose content changed."""
    settings = _ami_settings(**ami) if notify else None
    inv = _load(inventory)
    tftp_root, secrets_path, pjsip_path, credentials = _open_outputs(tftp_root, secrets_path, pjsip_path,
                                                                     hints_path)
    if hints_path is not None:
        hints_path = hints_path.absolute()
    if codes_path is not None:
        codes_path = codes_path.absolute()
        if not codes_path.parent.is_dir():
            raise click.ClickException(f"directory of --codes {codes_path} does not exist")
    report = _build_files(inventory, inv, tftp_root, pjsip_path, templates, credentials, hints_path, codes_path)
    _print_report(report, secrets_path, verbose)
    _warn_missing_firmware(inv, tftp_root)
    if notify:
        phones = report.changed_phones
        if not phones:
            click.echo("notify: no provisioned phone's file changed; nobody told")
        elif not _run_notify(settings, phones, event, reload_pjsip=report.pjsip_changed):
            sys.exit(1)


def _open_outputs(tftp_root: Path, secrets_path: Path | None, pjsip_path: Path | None,
                  hints_path: Path | None = None) -> tuple[Path, Path, Path | None, CredentialStore]:
    """Resolve where a build writes and load the generated passwords. The
    paths are checked here too (the build checks them again before writing),
    so a mistake stops before any rendering or reading."""
    from ..provisioning.build import output_path_errors
    from ..provisioning.credentials import CredentialsError, CredentialStore, default_secrets_path

    tftp_root = tftp_root.resolve()
    secrets_path = (secrets_path or default_secrets_path(tftp_root)).absolute()
    if pjsip_path is not None:
        pjsip_path = pjsip_path.absolute()
    errors = output_path_errors(tftp_root, secrets_path, pjsip_path,
                                hints_path.absolute() if hints_path is not None else None)
    if errors:
        raise click.ClickException("; ".join(errors))
    try:
        credentials = CredentialStore.load(secrets_path)
    except CredentialsError as exc:
        raise click.ClickException(str(exc)) from None
    if credentials.too_open:
        click.echo(f"warning: {secrets_path} is readable by others; it will be rewritten 0600 "
                   "when a password is added (chmod 600 it now)", err=True)
    return tftp_root, secrets_path, pjsip_path, credentials


def _build_files(inventory: Path, inv: Inventory, tftp_root: Path, pjsip_path: Path | None,
                 templates: Path | None, credentials: CredentialStore,
                 hints_path: Path | None = None, codes_path: Path | None = None) -> BuildReport:
    """Render everything, then write what changed; nothing at all on an error."""
    from ..provisioning.build import BuildError, apply_plan, plan_build
    from ..provisioning.build_cache import BuildCache, default_cache_path
    from ..provisioning.render import ConfigRenderer

    renderer = ConfigRenderer(templates)
    cache = BuildCache.load(default_cache_path(tftp_root))
    try:
        if len(inv.phones) >= PROGRESS_FROM and sys.stderr.isatty():
            with click.progressbar(length=len(inv.phones), label="rendering", file=sys.stderr) as bar:
                def advance(phones: Iterable[Phone]) -> Iterator[Phone]:
                    for phone in phones:
                        bar.update(1)
                        yield phone
                plan = plan_build(inv, tftp_root, renderer, credentials, pjsip_path, hints_path, codes_path,
                                  progress=advance, cache=cache)
        else:
            plan = plan_build(inv, tftp_root, renderer, credentials, pjsip_path, hints_path, codes_path,
                              cache=cache)
        return apply_plan(plan)
    except BuildError as exc:
        _fail(exc.errors, f"{inventory}: {len(exc.errors)} error(s), nothing written:")


def _print_report(report: BuildReport, secrets_path: Path, verbose: bool, reloading: bool = False) -> None:
    """What a build wrote; ``reloading``: the caller reloads res_pjsip itself."""
    def listing(title: str, paths: list[Path]) -> None:
        shown = paths if verbose else paths[:LIST_AT_MOST]
        for path in shown:
            click.echo(f"{title:9}{path}")
        if len(shown) < len(paths):
            click.echo(f"{title:9}... and {len(paths) - len(shown)} more (--verbose lists all)")

    listing("added", report.added)
    listing("changed", report.changed)
    listing("stale", report.stale)
    if report.secrets_written:
        click.echo(f"secrets  {secrets_path} (new generated passwords saved)")
    click.echo(f"{len(report.added)} added, {len(report.changed)} changed, {len(report.unchanged)} unchanged, "
               f"{len(report.stale)} stale (phone files no longer in the inventory; not deleted)")
    if report.pjsip_changed and not reloading:
        click.echo("PJSIP include changed: reload it in Asterisk (module reload res_pjsip.so)")
    if report.hints_changed:
        click.echo("hints include changed: reload the dialplan in Asterisk (dialplan reload)")


@provision.command("zones")
def zones() -> None:
    """List the time zone names an inventory's time_zone may use: IANA names
    and the Cisco zone each maps to, then the Cisco names themselves."""
    from ..provisioning.timezones import CISCO_ZONES, IANA_TO_CISCO

    width = max(map(len, IANA_TO_CISCO))
    for iana, cisco in IANA_TO_CISCO.items():
        click.echo(f"{iana:{width}}  {cisco}")
    click.echo("")
    for cisco in sorted(CISCO_ZONES):
        click.echo(cisco)


@provision.command("notify")
@click.argument("inventory", type=click.Path(dir_okay=False, path_type=Path))
@_phones_option
@_event_option
@_ami_options
def notify_command(inventory: Path, macs: tuple[str, ...], event: str, **ami: Any) -> None:
    """Tell phones to re-read their configuration (SIP NOTIFY via AMI PJSIPNotify)."""
    settings = _ami_settings(**ami)
    inv = _load(inventory)
    phones = _chosen_phones(inv, macs)
    if not _run_notify(settings, phones, event):
        sys.exit(1)
