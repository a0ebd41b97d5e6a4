"""panoramisk 1.4's ``fast_agi.Application`` doing the outbound policy's work.

One Redis GET, then the same three SET VARIABLE commands through
``Request.send_command``. Two of panoramisk's defects are worked around here,
in the benchmark server only:

- ``add_route`` wraps a plain function with ``asyncio.coroutine``, which is
  gone in Python 3.11: the route is an ``async def``.
- ``Application.handler`` loops forever (freezing the event loop) when a client
  closes before the blank header line, because ``read()`` keeps returning
  ``b""``: the reader it gets raises on end of file instead.

    python bench/servers/panoramisk_server.py --port 4573 --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import redis.asyncio as aioredis
from panoramisk.fast_agi import Application

from telefeatures.state.schema import KeySchema


class _EofRaisingReader:
    """Wraps a StreamReader so ``read()`` raises at end of file instead of
    returning ``b""`` for ever."""

    __slots__ = ("_reader",)

    def __init__(self, reader: asyncio.StreamReader):
        self._reader = reader

    async def read(self, n: int = -1) -> bytes:
        data = await self._reader.read(n)
        if not data:
            raise asyncio.IncompleteReadError(b"", None)
        return data

    def readline(self):
        return self._reader.readline()


def make_route(client: aioredis.Redis, prefix: str):
    keys = KeySchema(prefix)
    async def outbound(request) -> None:
        headers = request.headers
        ext = headers.get("agi_arg_1", "")
        dialed = headers.get("agi_arg_2", "")
        blocked = await client.get(keys.cidblock(ext)) is not None
        await request.send_command(f'SET VARIABLE "CALLERID(pres)" "{"prohib" if blocked else "allowed"}"')
        await request.send_command(f'SET VARIABLE "TF_DIAL" "{dialed}"')
        await request.send_command('SET VARIABLE "TF_STATUS" "OK"')

    return outbound


async def main(port: int, redis_url: str, prefix: str) -> None:
    pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=64, timeout=0.5)
    client = aioredis.Redis(connection_pool=pool)
    app = Application()
    app.add_route("outbound", make_route(client, prefix))

    async def handler(reader, writer):
        try:
            await app.handler(_EofRaisingReader(reader), writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", port, backlog=1024, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--key-prefix", default="tf:")
    opts = parser.parse_args()
    asyncio.run(main(opts.port, opts.redis_url, opts.key_prefix))
