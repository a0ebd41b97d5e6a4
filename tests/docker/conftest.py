"""Tests of the Docker images and of docker-compose.yml, on a real Docker
engine (scripts/test starts one). Containers run on the host network and are
removed at the end, pass or fail."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from tests.testbed.images import IMAGES, ImageError, engine_problem, ensure_all


@pytest.fixture(scope="session")
def images() -> None:
    """The project's images, built or (normally: scripts/test built them) reused."""
    problem = engine_problem()
    if problem:
        pytest.fail(f"these tests need a Docker engine (scripts/test starts one): {problem}", pytrace=False)
    try:
        ensure_all(IMAGES)
    except ImageError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def containers(images):
    """Start containers with ``containers.run(...)``; all removed afterwards."""

    class Containers:
        def __init__(self) -> None:
            self.names: list[str] = []

        def run(self, image: str, *args: str, options: tuple[str, ...] = ()) -> str:
            name = f"tf-test-{uuid.uuid4().hex[:8]}"
            subprocess.run(["docker", "run", "-d", "--name", name, "--network", "host", *options, image, *args],
                           check=True, capture_output=True)
            self.names.append(name)
            return name

    started = Containers()
    yield started
    for name in started.names:
        subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True)
