"""Thread-per-call FastAGI (socketserver.ThreadingTCPServer, the model of
wazo-agid) doing the outbound policy's work with the synchronous Redis client.

    python bench/servers/threaded.py --port 4573 --redis-url redis://127.0.0.1:6379/0 [--agi pyst2]

``--agi plain`` (default) reads the header and exchanges commands with a few
lines of socket-file code; ``--agi pyst2`` uses pyst2's ``asterisk.agi.AGI``
on the connection, as a pyst-derived server does (pyst2's SIGHUP handler,
which only the main thread may install, is skipped; its narration goes nowhere).
"""

from __future__ import annotations

import argparse
import signal
import socketserver
import threading

import redis

from telefeatures.state.schema import KeySchema

ALLOWED = b'SET VARIABLE "CALLERID(pres)" "allowed"\n'
PROHIB = b'SET VARIABLE "CALLERID(pres)" "prohib"\n'
STATUS_OK = b'SET VARIABLE "TF_STATUS" "OK"\n'


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024
    redis: redis.Redis
    keys: KeySchema


class Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        rfile, wfile = self.rfile, self.wfile
        args = {}
        for _ in range(256):
            line = rfile.readline(8194)
            if not line:
                return  # closed before the header block ended
            if line == b"\n":
                break
            if line.startswith(b"agi_arg_"):
                key, _, value = line.rstrip(b"\n").partition(b": ")
                args[key] = value.decode()
        ext = args.get(b"agi_arg_1", "")
        dialed = args.get(b"agi_arg_2", "")
        blocked = self.server.redis.get(self.server.keys.cidblock(ext)) is not None
        for command in (PROHIB if blocked else ALLOWED, b'SET VARIABLE "TF_DIAL" "%s"\n' % dialed.encode(),
                        STATUS_OK):
            wfile.write(command)
            if not rfile.readline(8194):
                return


class _Discard:
    def write(self, text: str) -> None:
        pass


def pyst2_handler():
    from asterisk.agi import AGI

    class SocketAGI(AGI):
        def __init__(self, stdin, stdout):  # AGI.__init__ minus signal.signal(SIGHUP)
            self.stdin, self.stdout, self.stderr = stdin, stdout, _Discard()
            self._got_sighup = False
            self.env = {}
            self._get_agi_env()

    class Pyst2Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            rfile = self.request.makefile("r", encoding="utf-8", errors="replace", newline="\n")
            wfile = self.request.makefile("w", encoding="utf-8", newline="\n")
            try:
                agi = SocketAGI(rfile, wfile)
                ext = agi.env.get("agi_arg_1", "")
                dialed = agi.env.get("agi_arg_2", "")
                blocked = self.server.redis.get(self.server.keys.cidblock(ext)) is not None
                agi.set_variable("CALLERID(pres)", "prohib" if blocked else "allowed")
                agi.set_variable("TF_DIAL", dialed)
                agi.set_variable("TF_STATUS", "OK")
            except Exception:  # noqa: BLE001 - a hung-up peer ends the call like any other error
                pass
            finally:
                rfile.close()
                wfile.close()

    return Pyst2Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--key-prefix", default="tf:")
    parser.add_argument("--agi", choices=["plain", "pyst2"], default="plain")
    opts = parser.parse_args()
    server = Server(("127.0.0.1", opts.port), pyst2_handler() if opts.agi == "pyst2" else Handler)
    server.redis = redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(
        opts.redis_url, max_connections=64, timeout=0.5))
    server.keys = KeySchema(opts.key_prefix)

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with server:
        server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
