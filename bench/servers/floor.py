"""The floor: the least an asyncio FastAGI server can do for the outbound policy.

Reads the header block, makes the one Redis GET telefeatures makes, sends the
same three SET VARIABLE commands (each waiting for its reply) and closes. No
limits, no timeouts, no validation, no logging, no metrics.

    python bench/servers/floor.py --port 4573 --redis-url redis://127.0.0.1:6379/0 [--loop uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import redis.asyncio as aioredis

from telefeatures.state.schema import KeySchema

ALLOWED = b'SET VARIABLE "CALLERID(pres)" "allowed"\n'
PROHIB = b'SET VARIABLE "CALLERID(pres)" "prohib"\n'
STATUS_OK = b'SET VARIABLE "TF_STATUS" "OK"\n'


def make_handler(client: aioredis.Redis, prefix: str):
    keys = KeySchema(prefix)
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            args = {}
            while True:
                line = await reader.readuntil(b"\n")
                if line == b"\n":
                    break
                if line.startswith(b"agi_arg_"):
                    key, _, value = line.rstrip(b"\n").partition(b": ")
                    args[key] = value.decode()
            ext = args.get(b"agi_arg_1", "")
            dialed = args.get(b"agi_arg_2", "")
            blocked = await client.get(keys.cidblock(ext)) is not None
            for command in (PROHIB if blocked else ALLOWED,
                            b'SET VARIABLE "TF_DIAL" "%s"\n' % dialed.encode(),
                            STATUS_OK):
                writer.write(command)
                await reader.readuntil(b"\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return handle


async def main(port: int, redis_url: str, prefix: str) -> None:
    pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=64, timeout=0.5)
    client = aioredis.Redis(connection_pool=pool)
    server = await asyncio.start_server(make_handler(client, prefix), "127.0.0.1", port, backlog=1024,
                                        reuse_address=True)
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
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    opts = parser.parse_args()
    coro = main(opts.port, opts.redis_url, opts.key_prefix)
    if opts.loop == "uvloop":
        import uvloop

        uvloop.run(coro)
    else:
        asyncio.run(coro)
