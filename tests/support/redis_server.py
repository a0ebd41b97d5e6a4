"""A throw-away redis-server (Debian's) for tests and benchmarks, on a Unix
socket or a loopback port, optionally with AOF persistence or a password."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from telefeatures.state.schema import KeySchema

from .ports import free_port  # noqa: F401 - re-exported for the tests that use it from here
from .processes import stop_process

REDIS_SERVER = shutil.which("redis-server", path="/usr/bin:/usr/local/bin") or shutil.which("redis-server")


class ClosedPort:
    """A loopback port that refuses connections for as long as this object
    lives: bound, never listening, so nothing else can take it meanwhile."""

    def __init__(self, host: str = "127.0.0.1"):
        self._sock = socket.socket()
        self._sock.bind((host, 0))
        self.host = host
        self.port = self._sock.getsockname()[1]
        self.url = f"redis://{host}:{self.port}/0"

    def close(self) -> None:
        self._sock.close()


class RedisProcess:
    """``redis-server`` started and stopped by the test: on a Unix socket, or on
    ``port``; ``aof`` keeps every write (appendfsync always) across a restart
    or a SIGKILL; ``password`` sets requirepass."""

    def __init__(self, workdir: Path, *, port: int | None = None, aof: bool = False,
                 password: str | None = None):
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.aof = aof
        self.password = password
        self.socket_path = self.workdir / "redis.sock"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return self.url_for()

    def url_for(self, db: int = 0, password: str | None = None) -> str:
        """The URL of database ``db``, with this server's password or ``password``."""
        password = password or self.password
        auth = f":{password}@" if password else ""
        if self.port is not None:
            return f"redis://{auth}127.0.0.1:{self.port}/{db}"
        return f"unix://{auth}{self.socket_path}?db={db}"

    def start(self, timeout: float = 10.0) -> RedisProcess:
        args = [
            REDIS_SERVER,
            "--save", "",
            *(["--appendonly", "yes", "--appendfsync", "always"] if self.aof else ["--appendonly", "no"]),
            *(["--requirepass", self.password] if self.password else []),
            "--dir", str(self.workdir),
            "--bind", "127.0.0.1",
            "--port", str(self.port or 0),
            "--loglevel", "warning",
        ]
        if self.port is None:
            args += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"redis-server exited: {err}")
            with contextlib.suppress(redis.RedisError, OSError):
                client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
                try:
                    if client.ping():
                        return self
                finally:
                    client.close()
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis.from_url(self.url_for(db), decode_responses=True, socket_timeout=2)

    def emptied_client(self, prefix: str) -> redis.Redis:
        """A client, after deleting every key under ``prefix``."""
        client = self.client()
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        return client

    def flush(self) -> None:
        with self.client() as c:
            c.flushall()

    def kill(self) -> None:
        """SIGKILL: no shutdown save; only what the AOF already has survives."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.stop()

    def stop(self) -> None:
        stop_process(self.proc)
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

# The keys under the default prefix, as the unit tests' servers and CLI use them.
TF_KEYS = KeySchema()
