"""``telefeatures tftp``: serve the phone files, read-only."""

from __future__ import annotations

import asyncio

import click

from .root import cli


@cli.command("tftp")
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False),
              help="Directory to serve (read-only).")
@click.option("--bind", default="127.0.0.1:6969", show_default=True,
              help="HOST:PORT to listen on; the phones' port is 69 (needs CAP_NET_BIND_SERVICE).")
@click.option("--max-transfers", type=click.IntRange(1, 10000), default=32, show_default=True)
@click.option("--timeout", type=click.FloatRange(0.1, 255), default=2.0, show_default=True,
              help="Seconds before a block is sent again.")
@click.option("--retries", type=click.IntRange(0, 50), default=5, show_default=True)
def tftp(root: str, bind: str, max_transfers: int, timeout: float, retries: int) -> None:
    """Serve phone files over TFTP, read-only."""
    from ..logsetup import configure_logging
    from ..provisioning.tftp_server import TftpServer, parse_bind

    try:
        host, port = parse_bind(bind)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--bind") from None
    configure_logging("INFO", "text")
    server = TftpServer(root, host, port, max_transfers=max_transfers, timeout=timeout, retries=retries)
    try:
        asyncio.run(server.serve_forever())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {bind}: {exc.strerror or exc}") from None
