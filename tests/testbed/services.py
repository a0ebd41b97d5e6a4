"""Real services the end-to-end and hardening suites run against: Debian's
redis-server and ``telefeatures serve`` as a subprocess, both on loopback
ports picked per run."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

from .asterisk import free_port

KEY_PREFIX = "tfit:"


def wait_for(predicate, timeout: float = 10, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def udp_bound(port: int, host: str = "127.0.0.1") -> bool:
    """Something is bound to this UDP port (a UDP server cannot be probed by connecting)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


class RedisServer:
    """Debian's redis-server with AOF persistence in a temp dir."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "yes"],
            stdout=open(self.workdir / "redis.log", "ab"), stderr=subprocess.STDOUT)
        wait_for(lambda: _port_open("127.0.0.1", self.port), what="redis-server")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: no shutdown save; only what the AOF already has survives."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=2)

    def emptied_client(self) -> redis.Redis:
        """A client, after deleting every telefeatures key of the test prefix."""
        client = self.client()
        for key in client.scan_iter(f"{KEY_PREFIX}*"):
            client.delete(key)
        return client


class FeatureServer:
    """``telefeatures serve`` exactly as a user runs it, as a subprocess."""

    def __init__(self, workdir: Path, redis_url: str, args: list[str] | None = None,
                 env: dict[str, str] | None = None):
        self.workdir = workdir
        self.redis_url = redis_url
        self.port = free_port()
        self.args = list(args or ["--event-loop", "asyncio"])
        self.env = dict(env or {})
        self.log_path = workdir / "telefeatures.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        exe = shutil.which("telefeatures", path=os.path.dirname(sys.executable)) or "telefeatures"
        env = {**os.environ, "TELEFEATURES_KEY_PREFIX": KEY_PREFIX, "TELEFEATURES_REDIS_URL": self.redis_url,
               **self.env}
        self.process = subprocess.Popen(
            [exe, "serve", "--port", str(self.port), *self.args],
            stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT, env=env)
        wait_for(lambda: _port_open("127.0.0.1", self.port) or self.process.poll() is not None,
                 what="telefeatures serve")
        assert self.process.poll() is None, self.log_path.read_text()

    def stop(self) -> int | None:
        code = None
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            code = self.process.wait(timeout=40)
        self.process = None
        return code

    def log_offset(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.process.pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def sessions_since(self, offset: int) -> list[str]:
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return [ln for ln in f.read().decode(errors="replace").splitlines() if "telefeatures.session" in ln]
