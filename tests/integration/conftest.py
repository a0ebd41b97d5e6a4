"""The end-to-end test bed: real Redis, the real ``telefeatures serve`` process,
a real Asterisk 22 running the shipped dialplan, and sipp phones and trunk.

Everything listens on 127.0.0.1 / 127.0.0.2 on ports picked per run, and every
process started here is stopped at the end of the session, pass or fail.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from testbed.asterisk import Asterisk, free_port, prepare, remove_run_dir  # noqa: E402
from testbed.sipp import AnsweringAgent, SippRunner  # noqa: E402

KEY_PREFIX = "tfit:"
PROJECT = TESTS.parent


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def wait_for(predicate, timeout: float = 10, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


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

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=2)


class FeatureServer:
    """``telefeatures serve`` exactly as a user runs it, as a subprocess."""

    def __init__(self, workdir: Path, redis_url: str):
        self.workdir = workdir
        self.redis_url = redis_url
        self.port = free_port()
        self.log_path = workdir / "telefeatures.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        exe = shutil.which("telefeatures", path=os.path.dirname(sys.executable)) or "telefeatures"
        env = {**os.environ, "TELEFEATURES_KEY_PREFIX": KEY_PREFIX, "TELEFEATURES_REDIS_URL": self.redis_url}
        self.process = subprocess.Popen(
            [exe, "serve", "--port", str(self.port), "--event-loop", "asyncio"],
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

    def sessions_since(self, offset: int) -> list[str]:
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return [ln for ln in f.read().decode(errors="replace").splitlines() if "telefeatures.session" in ln]


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("testbed")


@pytest.fixture(scope="session")
def redis_server(workdir):
    server = RedisServer(workdir / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def feature_server(workdir, redis_server):
    server = FeatureServer(workdir / "server", redis_server.url)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def asterisk(feature_server, redis_server) -> Asterisk:
    env = {"TELEFEATURES_REDIS_URL": redis_server.url, "TELEFEATURES_KEY_PREFIX": KEY_PREFIX}
    ast = prepare(agi_port=feature_server.port, env=env)
    try:
        ast.start()
        ast.cli("agi set debug on")
        yield ast
    finally:
        ast.stop()
        if os.environ.get("TF_KEEP_TESTBED"):
            print(f"test bed kept in {ast.run_dir}", file=sys.stderr)
        else:
            remove_run_dir(ast)


@pytest.fixture(scope="session")
def provider(asterisk, workdir):
    agent = AnsweringAgent("127.0.0.2", asterisk.ports.provider, workdir / "sipp" / "provider.trace").start()
    yield agent
    agent.stop()


@pytest.fixture(scope="session")
def sipp(asterisk, workdir) -> SippRunner:
    return SippRunner(asterisk, workdir / "sipp")


@pytest.fixture(scope="session")
def phone_1001(asterisk, sipp, workdir):
    """Phone 1001 registered (digest auth), answering calls at its contact."""
    port = free_port(socket.SOCK_DGRAM)
    agent = AnsweringAgent("127.0.0.1", port, workdir / "sipp" / "phone-1001.trace").start()
    result = sipp.register("1001", port)
    assert result.returncode == 0, result.output
    yield agent
    agent.stop()


@pytest.fixture
def state(redis_server):
    client = redis_server.client()
    for key in client.scan_iter(f"{KEY_PREFIX}*"):
        client.delete(key)
    yield client
    client.close()
