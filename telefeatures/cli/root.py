"""The ``telefeatures`` command."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from ..config import Settings, SettingsError, load_settings

T = TypeVar("T")
log = logging.getLogger("telefeatures")


def settings_from(ctx_obj: dict[str, Any], *, starting: bool = False, **overrides: Any) -> Settings:
    """The settings with the shared options and ``overrides`` applied.
    ``starting``: for ``serve``, whose message says it is not starting."""
    try:
        return load_settings(ctx_obj.get("config"), **{**ctx_obj.get("overrides", {}), **overrides})
    except SettingsError as exc:
        head = "bad settings, not starting" if starting else "bad settings"
        raise click.ClickException(f"{head}:\n{exc}") from None


def _remember(name: str):
    """Store a shared option given after a subcommand over the one given before it."""

    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is None:
            return
        obj = ctx.find_root().ensure_object(dict)
        if name == "config":
            obj["config"] = value
        else:
            obj.setdefault("overrides", {})[name] = value

    return callback


def shared_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options every command that reads settings accepts, before or after
    its name: ``telefeatures --redis-url URL state show`` and
    ``telefeatures state show --redis-url URL`` mean the same."""
    options = [
        click.option("--config", type=click.Path(dir_okay=False), expose_value=False, callback=_remember("config"),
                     help="TOML settings file (default: $TELEFEATURES_CONFIG)."),
        click.option("--redis-url", expose_value=False, callback=_remember("redis_url"),
                     help="redis://, rediss:// or unix:// URL; default: embedded Redis."),
        click.option("--state-dir", type=click.Path(file_okay=False), expose_value=False,
                     callback=_remember("state_dir"), help="Where the embedded Redis persists."),
        click.option("--key-prefix", expose_value=False, callback=_remember("key_prefix"),
                     help="Prefix of every Redis key (default tf:)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


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
@click.option("--redis-url", help="redis://, rediss://, unix://, redis+sentinel://h1,h2,h3/<service> or "
              "redis+cluster://h1,h2 URL; default: embedded Redis.")
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
    # (the same options after a subcommand's name: see shared_options)


def main() -> None:
    cli(prog_name="telefeatures")


if __name__ == "__main__":
    main()
