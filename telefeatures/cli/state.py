"""``telefeatures state ...``: inspect and change per-extension state in Redis."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .root import cli, settings_from

T = TypeVar("T")

@cli.group()
def state() -> None:
    """Inspect and change per-extension state in Redis."""


def _with_backend(obj: dict, work: Callable[[Any], Awaitable[T]]) -> T:
    from redis.exceptions import RedisError

    from ..state.backend import StateBackend
    from ..state.repository import StateUnavailable

    settings = settings_from(obj)

    async def main() -> T:
        backend = StateBackend.from_settings(settings)
        try:
            return await work(backend)
        finally:
            await backend.close()

    try:
        return asyncio.run(main())
    except (StateUnavailable, RedisError, OSError) as exc:
        raise click.ClickException(f"Redis is not reachable: {exc}") from None


def _with_repo(obj: dict, work: Callable[[Any], Awaitable[T]]) -> T:
    return _with_backend(obj, lambda backend: work(backend.repository))


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


def _state_dict(st) -> dict:
    caller = None
    if st.last_caller is not None:
        c = st.last_caller
        caller = {
            "number": c.number, "name": c.name, "presentation": c.presentation,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(c.time)) if c.time else None,
            "withheld": c.withheld, "reason": c.reason,
        }
    return {"extension": st.extension, "cidblock": st.cidblock, "last_caller": caller}


@state.command("show")
@click.argument("ext", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@tenant_option
@click.pass_obj
def state_show(obj: dict, ext: str | None, as_json: bool, tenant: str | None) -> None:
    """Show state of EXT, or of every extension (of --tenant) that has any."""
    if ext is not None:
        _check_ext(ext)

    async def work(repo):
        exts = [ext] if ext else await repo.extensions(tenant)
        return [await repo.snapshot(e, tenant) for e in exts]

    states = [_state_dict(s) for s in _with_repo(obj, work)]
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
        click.echo(f"{st['extension']}: cidblock={'on' if st['cidblock'] else 'off'} last_caller={last}")


@state.command("set")
@click.argument("ext")
@click.option("--cidblock", type=click.Choice(["on", "off"]), help="Persistent caller-ID blocking.")
@click.option("--last-caller", help="Record NUMBER as the last outside caller (e.g. for a test).")
@click.option("--name", default="", help="Name to record with --last-caller.")
@tenant_option
@click.pass_obj
def state_set(obj: dict, ext: str, cidblock: str | None, last_caller: str | None, name: str,
              tenant: str | None) -> None:
    """Set state of EXT."""
    _check_ext(ext)
    if cidblock is None and last_caller is None:
        raise click.UsageError("nothing to set: give --cidblock and/or --last-caller")
    from ..features.numbers import NumberRules, classify_caller

    settings = settings_from(obj)

    async def work(repo):
        if cidblock is not None:
            await repo.set_blocked(ext, cidblock == "on", tenant)
        if last_caller is not None:
            record = classify_caller(last_caller, name, "0", NumberRules.from_settings(settings.features))
            await repo.record_caller(ext, record, tenant)
            return record

    record = _with_repo(obj, work)
    if record is not None and record.withheld:
        click.echo(f"{ext}: last caller recorded as withheld ({record.reason})")
    click.echo(f"{ext}: updated")


@state.command("clear")
@click.argument("ext")
@tenant_option
@click.pass_obj
def state_clear(obj: dict, ext: str, tenant: str | None) -> None:
    """Delete all state of EXT."""
    _check_ext(ext)
    removed = _with_repo(obj, lambda repo: repo.clear(ext, tenant))
    click.echo(f"{ext}: removed {removed} key(s)")


@state.command("import-astdb")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Report what would be imported; write nothing.")
@click.option("--block-family", default="CIDBlock", show_default=True)
@click.option("--lastcall-family", default="LastCIDNum", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace last-caller records already in Redis.")
@tenant_option
@click.pass_obj
def state_import_astdb(obj: dict, path: Path, dry_run: bool, block_family: str, lastcall_family: str,
                       overwrite: bool, tenant: str | None) -> None:
    """Import CIDBlock / LastCIDNum from an Asterisk astdb.sqlite3 (read-only)."""
    from ..features.numbers import NumberRules
    from ..astdb_import import apply_import, file_time, plan_import, read_astdb

    settings = settings_from(obj)
    try:
        rows = read_astdb(path)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    plan = plan_import(rows, block_family, lastcall_family, NumberRules.from_settings(settings.features),
                       file_time(path))
    if dry_run:
        blocks, callers = len(plan.blocks), len(plan.callers)
    else:
        blocks, callers = _with_repo(obj, lambda repo: apply_import(plan, repo, overwrite, tenant))
    verb = "would import" if dry_run else "imported"
    click.echo(f"{verb} {blocks} {block_family} value(s) and {callers} {lastcall_family} value(s)")
    for key, value, why in plan.skipped:
        click.echo(f"skipped {key} = {value[:40]!r}: {why}")


@state.command("migrate-keys")
@click.option("--dry-run", is_flag=True, help="Count what would move; write nothing.")
@click.pass_obj
def state_migrate_keys(obj: dict, dry_run: bool) -> None:
    """Move keys of the old layout (tf:ext:<ext>:<kind>) to the Cluster-safe one
    (tf:{<ext>}:<kind>). Safe while servers run; running it again moves nothing."""
    from ..state.migrate import migrate_keys

    report = _with_backend(obj, lambda backend: migrate_keys(backend.admin, backend.keys, dry_run))
    for line in report.lines(dry_run):
        click.echo(line)
    if report.failed:
        raise SystemExit(1)
