"""The ``telefeatures`` command: state show/set/clear, and ``serve`` as a real process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from telefeatures.cli import cli
from tests.support.asterisk_peer import call, header_bytes
from tests.support.redis_server import free_port
from telefeatures.state.schema import CIDBLOCK_ON, KeySchema
from tests.support.redis_server import TF_KEYS

TELEFEATURES = str(Path(sys.executable).parent / "telefeatures")


def run_cli(*args, redis_url: str | None = None, env: dict | None = None):
    base = ["--redis-url", redis_url] if redis_url else []
    return CliRunner().invoke(cli, [*base, *args], env=env)


# --------------------------------------------------------------------------- state show / set / clear


def test_show_empty(redis_url):
    result = run_cli("state", "show", redis_url=redis_url)
    assert result.exit_code == 0
    assert result.stdout == "no state stored\n"
    assert result.stderr == f"(state store: {redis_url})\n"  # which Redis it read
    assert json.loads(run_cli("state", "show", "--json", redis_url=redis_url).stdout) == []


def test_set_show_clear(redis_url, redis_sync):
    result = run_cli("state", "set", "1000", "--cidblock", "on", redis_url=redis_url)
    assert result.exit_code == 0 and result.stdout == "1000: updated\n"
    assert redis_sync.get(TF_KEYS.cidblock("1000")) == "1"

    result = run_cli("state", "set", "1000", "--last-caller", "2125551234", "--name", "Bob", redis_url=redis_url)
    assert result.exit_code == 0
    result = run_cli("state", "show", "1000", redis_url=redis_url)
    assert result.stdout.startswith("1000: cidblock=on last_caller=2125551234 'Bob' at ")

    data = json.loads(run_cli("state", "show", "1000", "--json", redis_url=redis_url).stdout)
    assert data["extension"] == "1000" and data["cidblock"] is True
    assert data["last_caller"]["number"] == "2125551234"
    assert data["last_caller"]["name"] == "Bob"
    assert data["last_caller"]["withheld"] is False
    assert data["last_caller"]["time"]

    run_cli("state", "set", "1001", "--cidblock", "off", redis_url=redis_url)
    run_cli("state", "set", "1002", "--cidblock", "on", redis_url=redis_url)
    listing = run_cli("state", "show", redis_url=redis_url).stdout.splitlines()
    assert [line.split(":")[0] for line in listing] == ["1000", "1002"]  # 1001 has no state at all
    assert [d["extension"] for d in json.loads(run_cli("state", "show", "--json", redis_url=redis_url).stdout)] == [
        "1000", "1002"]

    result = run_cli("state", "set", "1000", "--cidblock", "off", redis_url=redis_url)
    assert redis_sync.exists(TF_KEYS.cidblock("1000")) == 0
    result = run_cli("state", "clear", "1000", redis_url=redis_url)
    assert result.exit_code == 0 and result.stdout == "1000: removed 1 key(s)\n"
    result = run_cli("state", "clear", "1002", redis_url=redis_url)
    assert result.stdout == "1002: removed 1 key(s)\n"
    assert redis_sync.keys("*") == []


def test_show_one_extension_without_state(redis_url):
    result = run_cli("state", "show", "1000", redis_url=redis_url)
    assert result.stdout == "1000: cidblock=off last_caller=none anonreject=off reject_list=0\n"


@pytest.mark.parametrize(("number", "reason"), [("5551234&PJSIP/evil", "invalid-number"), ("anonymous", "anonymous"),
                                                ("٥٥٥١٢٣٤", "invalid-number"), ("900-555-1212", "invalid-number")])
def test_set_invalid_last_caller_is_refused_and_changes_nothing(redis_url, redis_sync, number, reason):
    # (was: recorded as withheld, replacing the real last caller, exit 0)
    run_cli("state", "set", "1000", "--last-caller", "2125551234", redis_url=redis_url)
    result = run_cli("state", "set", "1000", "--last-caller", number, "--cidblock", "on", redis_url=redis_url)
    assert result.exit_code == 2
    assert f"is not a dialable number ({reason})" in result.output
    assert "--last-caller" in result.output
    assert redis_sync.hget(TF_KEYS.last_caller("1000"), "number") == "2125551234"
    assert redis_sync.get(TF_KEYS.cidblock("1000")) is None


def test_set_needs_something_to_set(redis_url, redis_sync):
    result = run_cli("state", "set", "1000", redis_url=redis_url)
    assert result.exit_code == 2
    assert "nothing to set" in result.output


@pytest.mark.parametrize("command", [["state", "set", "10 00", "--cidblock", "on"], ["state", "clear", "1000:x"],
                                     ["state", "show", "*"]])
def test_invalid_extension_refused(redis_url, redis_sync, command):
    result = run_cli(*command, redis_url=redis_url)
    assert result.exit_code == 2
    assert "is not a valid extension" in result.output
    assert redis_sync.keys("*") == []


def test_key_prefix_option(redis_url, redis_sync):
    result = CliRunner().invoke(cli, ["--redis-url", redis_url, "--key-prefix", "site1:", "state", "set", "1000",
                                      "--cidblock", "on"])
    assert result.exit_code == 0
    assert redis_sync.keys("*") == [KeySchema("site1:").cidblock("1000")]
    assert "no state stored" in run_cli("state", "show", redis_url=redis_url).output


def test_redis_url_from_environment(redis_url, redis_sync):
    result = run_cli("state", "set", "1000", "--cidblock", "on", env={"TELEFEATURES_REDIS_URL": redis_url})
    assert result.exit_code == 0
    assert redis_sync.get(TF_KEYS.cidblock("1000")) == "1"


def test_state_with_redis_down(closed_port):
    for command in (["state", "show"], ["state", "set", "1000", "--cidblock", "on"], ["state", "clear", "1000"]):
        result = run_cli(*command, redis_url=closed_port.url)
        assert result.exit_code == 1
        assert "Redis is not reachable" in result.output


def test_state_with_bad_setting():
    result = run_cli("state", "show", redis_url="http://127.0.0.1:6379")
    assert result.exit_code == 1
    assert "redis_url" in result.output


# --------------------------------------------------------------------------- serve (a real process)


class Served:
    def __init__(self, proc: asyncio.subprocess.Process, port: int):
        self.proc = proc
        self.port = port
        self.log: list[str] = []

    async def wait_for_log(self, needle: str, timeout: float = 20) -> str:
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.proc.stderr.readline()
                if not raw:
                    raise AssertionError(f"server exited before logging {needle!r}:\n" + "".join(self.log))
                line = raw.decode(errors="replace")
                self.log.append(line)
                if needle in line:
                    return line

    async def terminate(self, timeout: float = 20) -> int:
        """SIGTERM (unless it already got one) and its exit code."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        return await self.exit_code(timeout)

    async def exit_code(self, timeout: float = 20) -> int:
        async with asyncio.timeout(timeout):
            rest = await self.proc.stderr.read()
            self.log.append(rest.decode(errors="replace"))
            return await self.proc.wait()

    @property
    def output(self) -> str:
        return "".join(self.log)


@pytest.fixture
async def serve():
    procs: list[asyncio.subprocess.Process] = []

    async def start(*args: str, env: dict | None = None, port: int | None = None, wait: bool = True) -> Served:
        port = port or free_port()
        full_env = {**os.environ, **(env or {})}
        proc = await asyncio.create_subprocess_exec(
            TELEFEATURES, *args, "serve", "--port", str(port), "--log-level", "INFO",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=full_env,
        )
        procs.append(proc)
        served = Served(proc, port)
        if wait:
            await served.wait_for_log("listening on")
        return served

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_serve_answers_and_stops_on_sigterm(serve, redis_url, redis_sync):
    redis_sync.set(TF_KEYS.cidblock("1000"), CIDBLOCK_ON)
    served = await serve("--redis-url", redis_url)
    result = await call("127.0.0.1", served.port, "outbound", ["1000", "5551234567"])
    assert result.sets == [("CALLERID(pres)", "prohib"), ("TF_DIAL", "5551234567"), ("TF_STATUS", "OK")]
    await served.wait_for_log("route=outbound ext=1000 status=OK")
    assert await served.terminate() == 0
    assert "stopped" in served.output


async def test_serve_finishes_in_flight_session_on_sigterm(serve, redis_url):
    served = await serve("--redis-url", redis_url)
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(header_bytes("outbound", ["1000", "5551234567"]))
    await writer.drain()
    commands = [await reader.readline()]  # the session is now in flight
    served.proc.send_signal(signal.SIGTERM)
    await served.wait_for_log("waiting up to")
    try:
        late = await call("127.0.0.1", served.port, "outbound", ["1000", "5551234567"], timeout=5)
    except ConnectionRefusedError:
        late = None
    assert late is None or late.commands == []  # refused, or closed at once
    async with asyncio.timeout(10):
        while commands[-1]:
            writer.write(b"200 result=1\n")
            await writer.drain()
            commands.append(await reader.readline())
    writer.close()
    assert commands[-2] == b'SET VARIABLE "TF_STATUS" "OK"\n'
    assert await served.exit_code() == 0
    assert "waiting up to" in served.output  # it did wait for the session


async def test_serve_options_reach_the_server(serve, redis_url):
    served = await serve("--redis-url", redis_url, env={"TELEFEATURES_FEATURES__ON_STATE_ERROR": "allow",
                                                        "TELEFEATURES_ALLOW_PEERS": "127.0.0.1"})
    assert "allowed peers: 127.0.0.1/32" in served.output
    refused = await call("127.0.0.1", served.port, "outbound", ["1000", "5551234567"],
                         local_addr=("127.0.0.2", 0), timeout=5)
    assert refused.commands == []
    assert await served.terminate() == 0


async def test_serve_with_redis_down_still_answers(serve, closed_port):
    served = await serve("--redis-url", closed_port.url)
    result = await call("127.0.0.1", served.port, "outbound", ["1000", "5551234567"])
    assert result.variables == {"CALLERID(pres)": "prohib", "TF_DIAL": "5551234567", "TF_REASON": "state-error",
                                "TF_STATUS": "ERROR"}
    assert "Redis is not reachable" in served.output
    assert await served.terminate() == 0


@pytest.mark.parametrize(
    ("args", "env", "field"),
    [
        (["--redis-url", "http://127.0.0.1:6379"], {}, "redis_url"),
        ([], {"TELEFEATURES_FEATURES__ON_STATE_ERROR": "maybe"}, "features.on_state_error"),
        ([], {"TELEFEATURES_MAX_SESSIONS": "0"}, "max_sessions"),
    ],
)
async def test_serve_refuses_bad_settings(serve, args, env, field):
    served = await serve(*args, env=env, wait=False)
    async with asyncio.timeout(20):
        out = (await served.proc.stderr.read()).decode()
        code = await served.proc.wait()
    assert code != 0
    assert "bad settings" in out
    assert f"'{field}'" in out


async def test_serve_bad_config_file(serve, tmp_path):
    served = await serve("--config", str(tmp_path / "missing.toml"), wait=False)
    async with asyncio.timeout(20):
        out = (await served.proc.stderr.read()).decode()
        assert await served.proc.wait() != 0
    assert "missing.toml" in out


async def test_serve_port_in_use(serve, redis_url):
    first = await serve("--redis-url", redis_url)
    second = await serve("--redis-url", redis_url, port=first.port, wait=False)
    async with asyncio.timeout(20):
        out = (await second.proc.stderr.read()).decode()
        assert await second.proc.wait() != 0
    assert f"cannot listen on FastAGI 127.0.0.1:{first.port}" in out
    assert await first.terminate() == 0


async def test_serve_metrics_port_in_use_names_the_metrics_port(serve, redis_url):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = await serve("--redis-url", redis_url, wait=False,
                           env={"TELEFEATURES_METRICS__ENABLED": "true", "TELEFEATURES_METRICS__PORT": str(port)})
        async with asyncio.timeout(20):
            out = (await proc.proc.stderr.read()).decode()
            assert await proc.proc.wait() != 0
    assert f"cannot listen on metrics 127.0.0.1:{port}" in out


async def test_serve_on_embedded_redis_persists(serve, tmp_path):
    state_dir = tmp_path / "state"
    env = {"TELEFEATURES_STATE_DIR": str(state_dir)}
    served = await serve(env=env)
    result = await call("127.0.0.1", served.port, "cidblock/on", ["1000"])
    assert result.status == "OK"
    assert await served.terminate() == 0
    assert (state_dir / "telefeatures.rdb").exists()
    # a new process on the same state directory sees it
    shown = await asyncio.create_subprocess_exec(TELEFEATURES, "state", "show", "1000",
                                                 env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE)
    async with asyncio.timeout(20):
        out, _ = await shown.communicate()
    assert shown.returncode == 0
    assert out.decode().startswith("1000: cidblock=on")


# --------------------------------------------------------------------------- shared options (bug 1), store named (bugs 2, 3)


def test_shared_options_after_the_subcommand(redis_url, redis_sync):
    result = CliRunner().invoke(cli, ["state", "set", "1000", "--cidblock", "on", "--redis-url", redis_url])
    assert result.exit_code == 0, result.output
    assert redis_sync.get(TF_KEYS.cidblock("1000")) == CIDBLOCK_ON
    result = CliRunner().invoke(cli, ["state", "show", "--redis-url", redis_url, "--key-prefix", "tf:"])
    assert result.stdout.startswith("1000: cidblock=on")
    # after the subcommand wins over before it
    result = CliRunner().invoke(cli, ["--redis-url", "redis://127.0.0.1:1", "state", "show", "--redis-url", redis_url])
    assert result.exit_code == 0 and result.stdout.startswith("1000: cidblock=on")


def test_every_command_that_reads_settings_lists_the_shared_options():
    for command in (["serve"], ["state"], ["state", "show"], ["state", "set"], ["state", "clear"],
                    ["state", "import-astdb"]):
        result = CliRunner().invoke(cli, [*command, "--help"])
        assert result.exit_code == 0
        for option in ("--config", "--redis-url", "--state-dir", "--key-prefix"):
            assert option in result.output, (command, option)


def test_state_command_with_a_bad_url_does_not_speak_of_starting():
    result = CliRunner().invoke(cli, ["state", "show", "--redis-url", "http://127.0.0.1:1"])
    assert result.exit_code == 1
    assert "bad settings:" in result.output and "not starting" not in result.output
    assert "redis_url" in result.output


async def test_serve_names_the_unreachable_redis_without_its_password(serve, closed_port):
    port = closed_port.url.rsplit(":", 1)[1].split("/")[0]
    served = await serve("--redis-url", f"redis://:hunter2@127.0.0.1:{port}/0")
    result = await call("127.0.0.1", served.port, "outbound", ["1000", "5551234567"])
    assert result.variables["TF_REASON"] == "state-error"
    assert await served.terminate() == 0
    assert f"Redis is not reachable yet at redis://127.0.0.1:{port}/0: " in served.output
    assert "Connection refused" in served.output or "Error" in served.output
    assert "hunter2" not in served.output


async def test_the_warning_repeats_until_redis_answers(down_backend, monkeypatch, caplog):
    from telefeatures import metrics, service

    monkeypatch.setattr(service, "HEALTH_INTERVAL", 0.02)
    monkeypatch.setattr(service, "REPEAT_WARNING", 0.1)
    health = metrics.Health()
    health.redis_ok = False
    caplog.set_level("WARNING", logger="telefeatures")
    watcher = asyncio.create_task(service.watch_redis(down_backend, health))
    await asyncio.sleep(0.45)
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    warnings = [r.getMessage() for r in caplog.records if "still not reachable" in r.getMessage()]
    assert len(warnings) >= 2
    assert all(down_backend.description in w for w in warnings)
    assert not health.redis_ok
