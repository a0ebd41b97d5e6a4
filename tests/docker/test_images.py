"""The images as a user runs them: telefeatures as an unprivileged user with a
health check on /healthz, settings from the environment or a TOML file, state
in a volume; Asterisk 22 with the shipped dialplan and telefeatures-agi."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
import uuid

from tests.docker.health import wait_health
from tests.support.ports import free_port, tcp_open
from tests.testbed.asterisk import DIALPLAN
from tests.testbed.images import ASTERISK, REDIS, SERVER
from tests.testbed.services import wait_for

FAST_HEALTH = ("--health-interval", "1s", "--health-retries", "2", "--health-start-period", "0s")


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


def healthz(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_server_image_runs_as_an_unprivileged_user(images):
    assert docker("image", "inspect", "--format", "{{.Config.User}}", SERVER.name).stdout.strip() == "telefeatures"
    who = docker("run", "--rm", "--entrypoint", "id", SERVER.name).stdout
    assert "(telefeatures)" in who and not who.startswith("uid=0"), who


def test_server_health_follows_redis(containers):
    """HEALTHCHECK asks /healthz: healthy while Redis answers, unhealthy while
    it is down, healthy again when it is back (the server reconnects)."""
    redis_port, agi_port, metrics_port = free_port(), free_port(), free_port()
    redis = containers.run(REDIS.name, "redis-server", "--bind", "127.0.0.1", "--port", str(redis_port))
    server = containers.run(SERVER.name, options=(
        *FAST_HEALTH, "-e", f"TELEFEATURES_REDIS_URL=redis://127.0.0.1:{redis_port}/0",
        "-e", f"TELEFEATURES_PORT={agi_port}", "-e", f"TELEFEATURES_METRICS__PORT={metrics_port}"))
    wait_health([server])
    assert tcp_open(agi_port)
    assert healthz(metrics_port) == (200, {"ok": True, "accepting": True, "redis": True, "detail": ""})

    docker("stop", "-t", "2", redis)
    wait_health([server], "unhealthy", timeout=60)
    status, body = healthz(metrics_port)
    assert status == 503 and body["redis"] is False and body["accepting"] is True, body

    docker("start", redis)
    wait_health([server], timeout=60)


def test_server_reads_a_toml_file_and_keeps_state_in_its_volume(containers, tmp_path):
    """No Redis URL: the embedded Redis keeps its files in the state volume,
    owned by the unprivileged user, and they outlive the container."""
    agi_port, metrics_port = free_port(), free_port()
    config = tmp_path / "telefeatures.toml"
    config.write_text(f'port = {agi_port}\nkey_prefix = "dk:"\n\n[metrics]\nport = {metrics_port}\n')
    config.chmod(0o644)
    volume = f"tf-test-state-{uuid.uuid4().hex[:8]}"
    mounts = ("-v", f"{volume}:/var/lib/telefeatures")
    try:
        server = containers.run(SERVER.name, options=(
            *FAST_HEALTH, *mounts, "-v", f"{config}:/etc/telefeatures/telefeatures.toml:ro"))
        # Healthy means the check found /healthz on the TOML's metrics port.
        wait_health([server])
        assert tcp_open(agi_port)
        docker("exec", server, "telefeatures", "state", "set", "1000", "--cidblock", "on")
        docker("stop", "-t", "10", server)

        shown = docker("run", "--rm", *mounts, "-v", f"{config}:/etc/telefeatures/telefeatures.toml:ro",
                       SERVER.name, "state", "show", "1000", "--json").stdout
        assert json.loads(shown)["cidblock"] is True, shown
        listing = docker("run", "--rm", *mounts, "--entrypoint", "ls", SERVER.name, "-ln",
                         "/var/lib/telefeatures").stdout
        uid = docker("run", "--rm", "--entrypoint", "id", SERVER.name, "-u").stdout.strip()
        files = [line.split() for line in listing.splitlines()[1:]]
        assert files and all(f[2] == uid for f in files), listing
    finally:
        docker("volume", "rm", "-f", volume, check=False)


def test_server_refuses_a_bad_setting_by_name(images):
    result = docker("run", "--rm", "-e", "TELEFEATURES_PORT=99999", SERVER.name, "serve", check=False)
    assert result.returncode != 0
    assert "port" in result.stderr and "99999" not in result.stdout, result.stderr


def test_asterisk_image_has_the_dialplan_and_telefeatures_agi(images):
    for conf in DIALPLAN.glob("*.conf"):
        shipped = docker("run", "--rm", "--no-healthcheck", ASTERISK.name, "cat",
                         f"/etc/asterisk/telefeatures/{conf.name}").stdout
        assert shipped == conf.read_text(), conf.name
    agi = docker("run", "--rm", "--no-healthcheck", ASTERISK.name, "/opt/telefeatures/bin/python", "-c",
                 "import os, telefeatures.agi.classic; "
                 "print(os.access('/usr/share/asterisk/agi-bin/telefeatures-agi', os.X_OK))")
    assert agi.stdout.strip() == "True", agi.stderr


def test_asterisk_container_turns_healthy_unprivileged_without_iax(containers):
    ast = containers.run(ASTERISK.name, options=("--health-interval", "2s", "--health-start-period", "0s"))
    wait_health([ast], timeout=90)
    status = docker("exec", ast, "cat", "/proc/1/status").stdout
    uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
    assert uid == docker("exec", ast, "id", "-u", "asterisk").stdout.strip() != "0"
    modules = wait_for(lambda: docker("exec", ast, "asterisk", "-rx", "module show like chan_").stdout,
                       what="module list")
    assert "chan_pjsip.so" in modules and "chan_iax2.so" not in modules, modules
