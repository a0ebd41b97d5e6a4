"""The ``telefeatures`` command."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .config import Settings, SettingsError, load_settings
from .logsetup import configure_logging

T = TypeVar("T")
log = logging.getLogger("telefeatures")


def _settings(ctx_obj: dict[str, Any], **overrides: Any) -> Settings:
    try:
        return load_settings(ctx_obj.get("config"), **{**ctx_obj.get("overrides", {}), **overrides})
    except SettingsError as exc:
        raise click.ClickException(f"bad settings, not starting:\n{exc}") from None


def run_loop(settings: Settings, main: Callable[[], Awaitable[T]]) -> T:
    """Run on uvloop when wanted and available, else the standard loop."""
    if settings.event_loop in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if settings.event_loop == "uvloop":
                raise click.ClickException("event_loop = 'uvloop' but uvloop is not installed") from None
        else:
            return uvloop.run(main())
    return asyncio.run(main())


@click.group()
@click.option("--config", "config", type=click.Path(dir_okay=False), envvar="TELEFEATURES_CONFIG",
              help="TOML settings file (default: $TELEFEATURES_CONFIG).")
@click.option("--redis-url", help="redis://, rediss:// or unix:// URL; default: embedded Redis.")
@click.option("--state-dir", type=click.Path(file_okay=False), help="Where the embedded Redis persists.")
@click.option("--key-prefix", help="Prefix of every Redis key (default tf:).")
@click.version_option(package_name="telefeatures")
@click.pass_context
def cli(ctx: click.Context, config: str | None, redis_url: str | None, state_dir: str | None,
        key_prefix: str | None) -> None:
    """telefeatures: telco star codes for Asterisk, with state in Redis."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config
    ctx.obj["overrides"] = {"redis_url": redis_url, "state_dir": state_dir, "key_prefix": key_prefix}


# ----------------------------------------------------------------------------- serve


@cli.command()
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="TCP port (default 4573).")
@click.option("--allow-peer", "allow_peers", multiple=True,
              help="Address or CIDR allowed to connect; repeat for more (default: loopback only).")
@click.option("--max-sessions", type=int, help="Concurrent sessions before new ones are refused.")
@click.option("--log-format", type=click.Choice(["text", "json"]))
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
@click.option("--metrics/--no-metrics", "metrics_enabled", default=None,
              help="Serve Prometheus /metrics and /healthz (default off).")
@click.option("--metrics-port", type=int)
@click.option("--event-loop", type=click.Choice(["auto", "asyncio", "uvloop"]))
@click.pass_obj
def serve(obj: dict, host, port, allow_peers, max_sessions, log_format, log_level, metrics_enabled,
          metrics_port, event_loop) -> None:
    """Run the FastAGI feature server."""
    metrics_over: dict[str, Any] = {}
    if metrics_enabled is not None:
        metrics_over["enabled"] = metrics_enabled
    if metrics_port is not None:
        metrics_over["port"] = metrics_port
    settings = _settings(
        obj, host=host, port=port, allow_peers=list(allow_peers) or None, max_sessions=max_sessions,
        log_format=log_format, log_level=log_level, event_loop=event_loop,
        metrics=metrics_over or None,
    )
    configure_logging(settings.log_level, settings.log_format)
    from .service import StartupError
    from .service import serve as serve_forever

    try:
        code = run_loop(settings, lambda: serve_forever(settings))
    except StartupError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)


# ----------------------------------------------------------------------------- state


@cli.group()
def state() -> None:
    """Inspect and change per-extension state in Redis."""


def _with_repo(obj: dict, work: Callable[[Any], Awaitable[T]]) -> T:
    from .state.backend import StateBackend
    from .state.repository import StateUnavailable

    settings = _settings(obj)

    async def main() -> T:
        backend = StateBackend.from_settings(settings)
        try:
            return await work(backend.repository)
        finally:
            await backend.close()

    try:
        return asyncio.run(main())
    except StateUnavailable as exc:
        raise click.ClickException(f"Redis is not reachable: {exc}") from None


def _check_ext(ext: str) -> str:
    from .state.schema import valid_extension

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
@click.pass_obj
def state_show(obj: dict, ext: str | None, as_json: bool) -> None:
    """Show state of EXT, or of every extension that has any."""
    if ext is not None:
        _check_ext(ext)

    async def work(repo):
        exts = [ext] if ext else await repo.extensions()
        return [await repo.snapshot(e) for e in exts]

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
@click.pass_obj
def state_set(obj: dict, ext: str, cidblock: str | None, last_caller: str | None, name: str) -> None:
    """Set state of EXT."""
    _check_ext(ext)
    if cidblock is None and last_caller is None:
        raise click.UsageError("nothing to set: give --cidblock and/or --last-caller")
    from .features.numbers import NumberRules, classify_caller

    settings = _settings(obj)

    async def work(repo):
        if cidblock is not None:
            await repo.set_blocked(ext, cidblock == "on")
        if last_caller is not None:
            record = classify_caller(last_caller, name, "0", NumberRules.from_settings(settings.features))
            await repo.record_caller(ext, record)
            return record

    record = _with_repo(obj, work)
    if record is not None and record.withheld:
        click.echo(f"{ext}: last caller recorded as withheld ({record.reason})")
    click.echo(f"{ext}: updated")


@state.command("clear")
@click.argument("ext")
@click.pass_obj
def state_clear(obj: dict, ext: str) -> None:
    """Delete all state of EXT."""
    _check_ext(ext)
    removed = _with_repo(obj, lambda repo: repo.clear(ext))
    click.echo(f"{ext}: removed {removed} key(s)")


@state.command("import-astdb")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Report what would be imported; write nothing.")
@click.option("--block-family", default="CIDBlock", show_default=True)
@click.option("--lastcall-family", default="LastCIDNum", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace last-caller records already in Redis.")
@click.pass_obj
def state_import_astdb(obj: dict, path: Path, dry_run: bool, block_family: str, lastcall_family: str,
                       overwrite: bool) -> None:
    """Import CIDBlock / LastCIDNum from an Asterisk astdb.sqlite3 (read-only)."""
    from .features.numbers import NumberRules
    from .state.astdb import apply_import, file_time, plan_import, read_astdb

    settings = _settings(obj)
    try:
        rows = read_astdb(path)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    plan = plan_import(rows, block_family, lastcall_family, NumberRules.from_settings(settings.features),
                       file_time(path))
    if dry_run:
        blocks, callers = len(plan.blocks), len(plan.callers)
    else:
        blocks, callers = _with_repo(obj, lambda repo: apply_import(plan, repo, overwrite))
    verb = "would import" if dry_run else "imported"
    click.echo(f"{verb} {blocks} {block_family} value(s) and {callers} {lastcall_family} value(s)")
    for key, value, why in plan.skipped:
        click.echo(f"skipped {key} = {value[:40]!r}: {why}")


from .provisioning.cli import provision, tftp  # noqa: E402

cli.add_command(provision)
cli.add_command(tftp)


def main() -> None:
    cli(prog_name="telefeatures")


if __name__ == "__main__":
    main()
