"""``telefeatures state ...``: inspect and change per-extension state in Redis.

Every command ends by saying which store it used. The work itself is in
:mod:`telefeatures.admin`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .root import cli, settings_from, shared_options

T = TypeVar("T")


@cli.group()
@shared_options
def state() -> None:
    """Inspect and change per-extension state in Redis."""


def _with_backend(settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work`` on the configured store's backend, then say which store that was."""
    from redis.exceptions import RedisError

    from ..admin import with_backend
    from ..state.backend import EmbeddedRedisError
    from ..state.repository import StateUnavailable

    try:
        result, store = asyncio.run(with_backend(settings, work))
    except (StateUnavailable, RedisError, OSError) as exc:
        raise click.ClickException(f"Redis is not reachable: {exc}") from None
    except EmbeddedRedisError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"(state store: {store})", err=True)
    return result


def _with_state(settings, work: Callable[[Any], Awaitable[T]]) -> T:
    return _with_backend(settings, lambda backend: work(backend.repository))


def _check_tenant(ctx, param, tenant: str | None) -> str | None:
    from ..state.schema import valid_tenant

    if tenant is not None and not valid_tenant(tenant):
        raise click.BadParameter(f"{tenant!r} is not a valid tenant name (letters, digits, _ . -; "
                                 "no braces, colons or blanks)", ctx=ctx, param=param)
    return tenant


tenant_option = click.option("--tenant", callback=_check_tenant, metavar="NAME",
                             help="The tenant the extension belongs to (default: none).")


def _check_ext(ext: str) -> str:
    from ..state.schema import valid_extension

    if not valid_extension(ext):
        raise click.BadParameter(f"{ext!r} is not a valid extension", param_hint="EXT")
    return ext


@state.command("show")
@click.argument("ext", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@tenant_option
@shared_options
@click.pass_obj
def state_show(obj: dict, ext: str | None, as_json: bool, tenant: str | None) -> None:
    """Show state of EXT, or of every extension (of --tenant) that has any."""
    from ..admin import state_as_dict

    if ext is not None:
        _check_ext(ext)

    async def work(repo):
        exts = [ext] if ext else await repo.extensions(tenant)
        return [await repo.snapshot(e, tenant) for e in exts]

    states = [state_as_dict(s) for s in _with_state(settings_from(obj), work)]
    if as_json:
        click.echo(json.dumps(states if ext is None else states[0], indent=2))
        return
    if not states:
        click.echo("no state stored")
    for st in states:
        c = st["last_caller"]
        if c is None:
            last = "none"
        elif c["withheld"]:
            last = f"withheld ({c['reason']}) at {c['time']}"
        else:
            last = f"{c['number']} {c['name']!r} at {c['time']}"
        click.echo(f"{st['extension']}: cidblock={'on' if st['cidblock'] else 'off'} last_caller={last} "
                   f"anonreject={'on' if st['anonreject'] else 'off'} reject_list={len(st['reject_list'])}")
        for entry in st["reject_list"]:
            click.echo(f"  blocked {entry['number']} since {entry['added']}")
        r = st["last_rejected"]
        if r is not None:
            click.echo(f"  last refused call: {r['number'] or 'withheld'} ({r['reason']}) at {r['time']}")


@state.command("set")
@click.argument("ext")
@click.option("--cidblock", type=click.Choice(["on", "off"]), help="Persistent caller-ID blocking.")
@click.option("--last-caller", help="Record NUMBER (digits, optional leading +) as the last outside caller, "
                                    "e.g. for a test.")
@click.option("--name", default="", help="Name to record with --last-caller.")
@click.option("--anonreject", type=click.Choice(["on", "off"]), help="Anonymous call rejection (*77 / *87).")
@click.option("--block", "block", multiple=True, metavar="NUMBER",
              help="Add NUMBER to the reject list (*60); repeat for more.")
@click.option("--unblock", "unblock", multiple=True, metavar="NUMBER", help="Take NUMBER off the reject list.")
@click.option("--clear-blocked", is_flag=True, help="Empty the reject list (*80).")
@tenant_option
@shared_options
@click.pass_obj
def state_set(obj: dict, ext: str, cidblock: str | None, last_caller: str | None, name: str,
              anonreject: str | None, block: tuple[str, ...], unblock: tuple[str, ...], clear_blocked: bool,
              tenant: str | None) -> None:
    """Set state of EXT. An invalid --last-caller or --block changes nothing."""
    import time

    from ..admin import InvalidLastCaller, InvalidRejectNumber, last_caller_record, reject_numbers

    _check_ext(ext)
    if cidblock is None and last_caller is None and anonreject is None and not (block or unblock or clear_blocked):
        raise click.UsageError("nothing to set: give --cidblock, --last-caller, --anonreject, --block, --unblock "
                               "or --clear-blocked")
    settings = settings_from(obj)
    record = None
    if last_caller is not None:
        try:
            record = last_caller_record(settings, last_caller, name)
        except InvalidLastCaller as exc:
            raise click.BadParameter(str(exc), param_hint="--last-caller") from None
    try:
        reject_numbers(settings, block)
    except InvalidRejectNumber as exc:
        raise click.BadParameter(str(exc), param_hint="--block") from None

    async def work(repo):
        if cidblock is not None:
            await repo.set_blocked(ext, cidblock == "on", tenant)
        if record is not None:
            await repo.record_caller(ext, record, tenant)
        if anonreject is not None:
            await repo.set_anon_reject(ext, anonreject == "on", tenant)
        if clear_blocked:
            await repo.clear_reject_list(ext, tenant)
        for number in unblock:
            await repo.remove_rejected_number(ext, number, tenant)
        for number in block:
            await repo.add_rejected_number(ext, number, time.time(), settings.features.callblock_max_entries,
                                           tenant)

    _with_state(settings, work)
    click.echo(f"{ext}: updated")


@state.command("clear")
@click.argument("ext")
@tenant_option
@shared_options
@click.pass_obj
def state_clear(obj: dict, ext: str, tenant: str | None) -> None:
    """Delete all state of EXT."""
    _check_ext(ext)
    removed = _with_state(settings_from(obj), lambda repo: repo.clear(ext, tenant))
    click.echo(f"{ext}: removed {removed} key(s)")


@state.command("import-astdb")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Report exactly what a real run would import and skip "
                                              "(it reads Redis to know); write nothing.")
@click.option("--block-family", default="CIDBlock", show_default=True)
@click.option("--lastcall-family", default="LastCIDNum", show_default=True)
@click.option("--blacklist-family", default="blacklist", show_default=True,
              help="FreePBX-style blacklist: /<family>/<number>, /<family>/blocked, or /<family>/<ext>/<number>.")
@click.option("--blacklist-for", "blacklist_for", multiple=True, metavar="EXT",
              help="Extensions that get the PBX-wide blacklist (repeat); without it that list is skipped.")
@click.option("--overwrite", is_flag=True,
              help="Replace state already in Redis. Without it, an extension's blocking setting already in Redis "
                   "(or changed since an earlier import, e.g. by *82) and its recorded last caller are kept; "
                   "each kind is judged on its own.")
@tenant_option
@shared_options
@click.pass_obj
def state_import_astdb(obj: dict, path: Path, dry_run: bool, block_family: str, lastcall_family: str,
                       blacklist_family: str, blacklist_for: tuple[str, ...], overwrite: bool,
                       tenant: str | None) -> None:
    """Import CIDBlock / LastCIDNum / blacklist from an Asterisk astdb.sqlite3 (read-only)."""
    from ..admin import astdb_plan
    from ..astdb_import import apply_blacklist, apply_import, file_time

    for ext in blacklist_for:
        _check_ext(ext)
    settings = settings_from(obj)
    try:
        plan = astdb_plan(settings, path, block_family, lastcall_family, blacklist_family, blacklist_for)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None

    async def work(repo):
        counts = await apply_import(plan, repo, overwrite, tenant, dry_run)
        return counts, await apply_blacklist(plan, repo, overwrite, tenant, dry_run, file_time(path))

    (blocks, callers), (numbers, anon_on) = _with_state(settings, work)
    verb = "would import" if dry_run else "imported"
    click.echo(f"{verb} {blocks} {block_family} value(s) and {callers} {lastcall_family} value(s)")
    if plan.rejects or plan.anon_reject:
        click.echo(f"{verb} {numbers} {blacklist_family} number(s) into the reject lists of {len(plan.rejects)} "
                   f"extension(s); anonymous call rejection on for: {', '.join(anon_on) or 'none'}")
    for key, value, why in plan.skipped:
        click.echo(f"skipped {key} = {value[:40]!r}: {why}")


@state.command("migrate-keys")
@click.option("--dry-run", is_flag=True, help="Count what would move; write nothing.")
@shared_options
@click.pass_obj
def state_migrate_keys(obj: dict, dry_run: bool) -> None:
    """Move keys of the old layout (tf:ext:<ext>:<kind>) to the Cluster-safe one
    (tf:{<ext>}:<kind>). Safe while servers run; running it again moves nothing."""
    from ..state.migrate import migrate_keys

    report = _with_backend(settings_from(obj),
                           lambda backend: migrate_keys(backend.admin, backend.keys, dry_run))
    for line in report.lines(dry_run):
        click.echo(line)
    if report.failed:
        raise SystemExit(1)
