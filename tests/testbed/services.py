"""``telefeatures serve`` as a subprocess on a loopback port picked per run,
exactly as a user runs it, for the end-to-end and hardening suites and the
benchmarks (Redis: tests/support/redis_server.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from telefeatures.state.schema import KeySchema
from tests.support.cli import TELEFEATURES
from tests.support.ports import free_port, tcp_open

KEY_PREFIX = "tfit:"
KEYS = KeySchema(KEY_PREFIX)  # the keys the test bed's feature server uses


def wait_for(predicate, timeout: float = 10, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


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
        env = {**os.environ, "TELEFEATURES_KEY_PREFIX": KEY_PREFIX, "TELEFEATURES_REDIS_URL": self.redis_url,
               **self.env}
        self.process = subprocess.Popen(
            [TELEFEATURES, "serve", "--port", str(self.port), *self.args],
            stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT, env=env)
        # Generous: on a loaded machine the interpreter and its imports alone can take seconds.
        wait_for(lambda: tcp_open(self.port) or self.process.poll() is not None, timeout=60,
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
