"""docker-compose.yml brought up as shipped (Redis, telefeatures, Asterisk on
the host network), every service healthy, then a real call through it: a sipp
phone dials *81 on the stack's Asterisk, which asks the stack's telefeatures,
which writes the stack's Redis; the next outside call leaves anonymous.

Only what a test machine must change is overridden: the ports (TF_*_PORT,
the compose file's own knobs) and Asterisk's configuration (the test bed's,
with its ports and phones, mounted as a user mounts theirs)."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
import uuid

import pytest
import redis

from telefeatures.state.schema import KeySchema
from tests.docker.health import wait_health
from tests.integration.e2e import assert_anonymous, outbound, played, star
from tests.support.ports import free_port
from tests.testbed.asterisk import PROJECT, prepare, remove_run_dir
from tests.testbed.sipp import AnsweringAgent, SippRunner


def compose(project: str, files: list[str], env: dict, *args: str) -> subprocess.CompletedProcess:
    cmd = ["docker-compose", "--project-name", project, "--project-directory", str(PROJECT)]
    for f in files:
        cmd += ["--file", f]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=300)


@pytest.fixture
def stack(images, tmp_path, monkeypatch):
    ports = {"TF_REDIS_PORT": str(free_port()), "TF_AGI_PORT": str(free_port()),
             "TF_METRICS_PORT": str(free_port())}
    monkeypatch.setenv("TF_ASTERISK", "docker")
    ast = prepare(agi_port=int(ports["TF_AGI_PORT"]),
                  env={"TELEFEATURES_REDIS_URL": f"redis://127.0.0.1:{ports['TF_REDIS_PORT']}/0"})
    conf = f"{ast.inside}/etc/asterisk.conf"
    override = tmp_path / "compose.test.yml"
    override.write_text(json.dumps({"services": {"asterisk": {
        "volumes": [f"{ast.run_dir}:{ast.inside}"],
        "environment": ast.env,
        "command": ["asterisk", "-f", "-U", "root", "-C", conf],
        "healthcheck": {"test": ["CMD", "asterisk", "-C", conf, "-rx", "core waitfullybooted"],
                        "interval": "10s", "timeout": "5s", "retries": 3},
    }}}))
    project = f"tftest{uuid.uuid4().hex[:8]}"
    files = [str(PROJECT / "docker-compose.yml"), str(override)]
    ast.container = None
    try:
        up = compose(project, files, ports, "up", "--detach", "--no-build")
        assert up.returncode == 0, up.stderr
        ids = compose(project, files, ports, "ps", "--quiet").stdout.split()
        assert len(ids) == 3, ids
        names = {svc: compose(project, files, ports, "ps", "--quiet", svc).stdout.strip()
                 for svc in ("redis", "telefeatures", "asterisk")}
        ast.container = names["asterisk"]
        ast.source = "docker"
        yield ast, ports, names
    finally:
        # Shown with a failure: what each service said.
        print(compose(project, files, ports, "logs", "--no-color", "--tail", "40").stdout)
        down = compose(project, files, ports, "down", "--volumes", "--remove-orphans", "--timeout", "10")
        remove_run_dir(ast)
        assert down.returncode == 0, down.stderr


def test_compose_stack_comes_up_healthy_and_serves_star_codes(stack, tmp_path):
    ast, ports, names = stack
    wait_health(list(names.values()), timeout=120)

    with urllib.request.urlopen(f"http://127.0.0.1:{ports['TF_METRICS_PORT']}/healthz", timeout=3) as response:
        assert json.loads(response.read())["ok"] is True

    provider = AnsweringAgent("127.0.0.2", ast.ports.provider, tmp_path / "provider.trace").start()
    try:
        sipp = SippRunner(ast, tmp_path / "sipp")
        offset = ast.log_offset()
        star(sipp, "1000", "*81")
        assert played(ast, offset, "activated")
        stack_redis = redis.Redis(port=int(ports["TF_REDIS_PORT"]), decode_responses=True)
        assert stack_redis.get(KeySchema().cidblock("1000")) == "1"  # the image's default key prefix
        assert_anonymous(outbound(sipp, provider, "1000"), "1000")
        stack_redis.close()
    finally:
        provider.stop()
