"""``telefeatures tftp``: serve the phone files, read-only."""

from __future__ import annotations

import click

from .root import cli, run_loop, settings_from

DEFAULT_PORT = 6969  # unprivileged; the phones' 69 is asked for explicitly


@cli.command("tftp")
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False),
              help="Directory to serve (read-only).")
@click.option("--bind", default=f"127.0.0.1:{DEFAULT_PORT}", show_default=True,
              help=f"HOST[:PORT] to listen on (port {DEFAULT_PORT} when not given); the phones' port is 69 "
                   "(needs CAP_NET_BIND_SERVICE).")
@click.option("--allow", "allow", multiple=True, metavar="CIDR",
              help="Answer only peers in this network (repeatable; setting tftp.allow). Others get no answer.")
@click.option("--inventory", type=click.Path(exists=True, dir_okay=False),
              help="Serve each phone's SEP/SIP config only to its inventory `ip` (setting tftp.inventory).")
@click.option("--workers", type=click.IntRange(0, 64),
              help="Processes sharing the port (default 0: one per CPU, at most 4).")
@click.option("--max-transfers", type=click.IntRange(1, 100000), help="Transfers at once (default 2048).")
@click.option("--per-peer-transfers", type=click.IntRange(1, 1000), help="Transfers at once per address (default 8).")
@click.option("--timeout", type=click.FloatRange(0.1, 255), help="Seconds before a block is sent again (default 2).")
@click.option("--retries", type=click.IntRange(0, 50), help="Resends before a transfer is given up (default 5).")
@click.option("--enumeration-limit", type=click.IntRange(2, 10000),
              help="Unknown phone-config MACs a peer may ask for in the window before it is blocked (default 8).")
@click.option("--enumeration-window", type=click.FloatRange(min=0, min_open=True), help="Seconds (default 60).")
@click.option("--enumeration-block", type=click.FloatRange(min=0), help="Seconds a blocked peer gets no answer (default 600).")
@click.pass_context
def tftp(ctx: click.Context, root: str, bind: str, **given) -> None:
    """Serve phone files over TFTP, read-only.

    Every setting is also read from the [tftp] table of the settings file and
    TELEFEATURES_TFTP__* variables; flags win. The fetch record for
    `provision doctor` goes to <state dir>/tftp/.
    """
    from pydantic import ValidationError

    from ..config import TftpSettings, describe_validation_error
    from ..logsetup import configure_logging
    from ..provisioning.inventory import InventoryError
    from ..provisioning.tftp_server import parse_bind
    from ..provisioning.tftp_workers import serve

    settings = settings_from(ctx.obj)
    try:
        host, port = parse_bind(bind, default_port=DEFAULT_PORT)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--bind") from None
    overrides = {key: value for key, value in given.items() if value not in (None, ())}
    try:
        tftp_settings = TftpSettings.model_validate({**settings.tftp.model_dump(), **overrides})
    except ValidationError as exc:
        raise click.ClickException(f"bad settings, not starting:\n{describe_validation_error(exc)}") from None
    configure_logging(settings.log_level, settings.log_format)
    try:
        status = serve(tftp_settings, root, host, port, settings.state_dir,
                       run=lambda main: run_loop(settings, lambda: main))
    except InventoryError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {bind}: {exc.strerror or exc}") from None
    ctx.exit(status)
