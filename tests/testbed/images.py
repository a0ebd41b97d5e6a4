"""The Docker images of the end-to-end suite and of ``docker-compose.yml``,
built on a machine with a Docker engine but no image registry.

The project's Dockerfiles start ``FROM debian:sid-slim`` and
``FROM debian:bookworm-slim`` and the compose file runs ``redis:7``. Where
those cannot be pulled, this module makes images carrying the same names:

- ``debian:<suite>-slim``: ``debootstrap --variant=minbase`` of that suite,
  with docs and man pages left out as in Debian's own slim images, imported
  with ``docker import``;
- ``redis:7``: Debian's ``redis-server`` (7.x) on ``debian:bookworm-slim``
  (``tests/testbed/redis.Dockerfile``), run the way the official image runs.

Then it builds ``telefeatures-asterisk`` and ``telefeatures`` from the
project's Dockerfiles. pip inside a build cannot reach the package index
here, so the wheels are fetched on the host for each image's Python into a
cached wheelhouse, put in ``docker/wheelhouse/`` and installed with
``PIP_OPTIONS=--no-index``; ``APT_OPTIONS`` tells apt to accept a mirror
snapshot whose Release file has expired.

Every image carries a label with the hash of its recipe (Dockerfile, build
context, base image, build arguments); an image whose label matches is
reused, so a warm run builds nothing. ``python -m tests.testbed.images build``
makes whatever is missing and says what it built or reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent.parent
WHEELHOUSE = PROJECT / "docker" / "wheelhouse"
LABEL = "org.telefeatures.recipe"
APT_OPTIONS = "-o Acquire::Check-Valid-Until=false"
# Bump to rebuild every base image (e.g. after changing how they are made).
BASE_REVISION = 1
# What Debian's slim images leave out (their /etc/dpkg/dpkg.cfg.d/docker).
SLIM_EXCLUDES = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
"""


class ImageError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[images] {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Image:
    name: str
    dockerfile: Path
    base: str
    # "classic": telefeatures-agi's requirements; "server": the whole project
    # with the [fast] extra; None: no Python packages.
    wheels: str | None
    # The stage that has the image's Python, to ask it its version.
    python_stage: str | None = None


BASES = {"debian:sid-slim": "sid", "debian:bookworm-slim": "bookworm"}
ASTERISK = Image("telefeatures-asterisk:latest", PROJECT / "docker" / "asterisk" / "Dockerfile",
                 "debian:sid-slim", "classic", "asterisk")
SERVER = Image("telefeatures:latest", PROJECT / "docker" / "telefeatures" / "Dockerfile",
               "debian:bookworm-slim", "server", "python")
REDIS = Image("redis:7", HERE / "redis.Dockerfile", "debian:bookworm-slim", None)
IMAGES = (ASTERISK, SERVER, REDIS)


# ----------------------------------------------------------------------------- engine


def docker(*args: str, timeout: float = 1800, input: bytes | None = None, check: bool = True
           ) -> subprocess.CompletedProcess:
    if not shutil.which("docker"):
        raise ImageError("no docker command (apt-get install docker.io)")
    result = subprocess.run(["docker", *args], capture_output=True, timeout=timeout, input=input)
    if check and result.returncode != 0:
        out = (result.stdout.decode(errors="replace")[-3000:] + result.stderr.decode(errors="replace")[-3000:])
        raise ImageError(f"docker {' '.join(args[:3])} ... failed (exit {result.returncode}):\n{out.strip()}")
    return result


def engine_problem() -> str | None:
    """Why this machine cannot run containers right now, or None if it can."""
    if not shutil.which("docker"):
        return "no docker command (apt-get install docker.io)"
    result = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                            text=True, timeout=60)
    if result.returncode != 0:
        return "no Docker engine answers: " + (result.stderr.strip().splitlines() or ["docker info failed"])[-1]
    return None


def image_label(name: str) -> str | None:
    result = docker("image", "inspect", "--format", f'{{{{index .Config.Labels "{LABEL}"}}}}', name, check=False)
    return result.stdout.decode().strip() if result.returncode == 0 else None


def image_id(name: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", name).stdout.decode().strip()


def digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------- base images


def ensure_base(name: str) -> str:
    """Make ``debian:<suite>-slim`` unless an image of this recipe has that name."""
    from tests.testbed.asterisk import cache_dir, debian_mirror

    suite = BASES[name]
    mirror = debian_mirror()
    key = digest("base", suite, mirror, SLIM_EXCLUDES, BASE_REVISION)
    if image_label(name) == key:
        return "reused"
    if os.geteuid() != 0:
        raise ImageError(f"making {name} needs root (debootstrap)")
    if not shutil.which("debootstrap"):
        raise ImageError("debootstrap is not installed (apt-get install debootstrap)")
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix=f"base-{suite}-", dir=cache_dir()))
    try:
        # The slim excludes go in before the first package is unpacked.
        excludes = root / "etc" / "dpkg" / "dpkg.cfg.d" / "excludes"
        excludes.parent.mkdir(parents=True)
        excludes.write_text(SLIM_EXCLUDES)
        result = subprocess.run(["debootstrap", "--variant=minbase", suite, str(root), mirror],
                                capture_output=True, text=True, timeout=1200)
        if result.returncode != 0:
            raise ImageError(f"debootstrap {suite} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        for leftover in ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
                         "usr/share/locale", "usr/share/info"):
            path = root / leftover
            if path.is_dir():
                for child in path.iterdir():
                    if child.name not in ("locale.alias", "partial") and not child.is_symlink():
                        shutil.rmtree(child) if child.is_dir() else child.unlink()
        tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(["docker", "import", "--change", f"LABEL {LABEL}={key}",
                                   "--change", 'CMD ["bash"]', "-", name], stdin=tar.stdout,
                                  capture_output=True, text=True, timeout=600)
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise ImageError(f"docker import of {name} failed: {imported.stderr.strip()}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    log(f"{name}: debootstrap {suite} from {mirror} imported in {time.monotonic() - started:.0f}s")
    return "built"


# ----------------------------------------------------------------------------- wheels


def image_requirements(image: Image) -> list[str]:
    """What pip installs in the image, and the build tools pip needs to build
    the project from /src there, offline."""
    import tomllib

    from tests.testbed.asterisk import classic_agi_requirements

    pyproject = tomllib.loads((PROJECT / "pyproject.toml").read_text())
    project = pyproject["project"]
    wanted = (classic_agi_requirements() if image.wheels == "classic"
              else [*project["dependencies"], *project["optional-dependencies"]["fast"]])
    # redis-py needs async-timeout below Python 3.11.3 (bookworm has 3.11.2),
    # a marker pip download would judge by the host's Python.
    return [*wanted, *pyproject["build-system"]["requires"], "async-timeout>=4.0.3"]


def image_python(image: Image, build_args: list[str]) -> str:
    """The major.minor version of the image's Python, from its Python stage."""
    tag = f"telefeatures-python-probe:{image.python_stage}"
    docker("build", "-q", "--network", "host", "--force-rm", "--target", image.python_stage, "-t", tag,
           *build_args, "-f", str(image.dockerfile), str(PROJECT))
    out = docker("run", "--rm", "--network", "host", tag, "python3", "-c",
                 "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')").stdout.decode().strip()
    docker("image", "rm", tag, check=False)
    return out


def ensure_wheels(image: Image, pyver: str) -> str:
    """Put exactly the image's wheels in docker/wheelhouse/; returns their key."""
    from tests.testbed.asterisk import fetch_wheels

    wheelhouse = fetch_wheels(image_requirements(image), pyver)
    for old in WHEELHOUSE.glob("*.whl"):  # another image's, or stale
        old.unlink()
    for wheel in wheelhouse.glob("*.whl"):
        shutil.copyfile(wheel, WHEELHOUSE / wheel.name)
    return wheelhouse.name


# ----------------------------------------------------------------------------- project images


def context_digest() -> str:
    """A hash of what ``docker build`` sends from the repository (see .dockerignore),
    except the wheelhouse, which the wheel key stands for."""
    h = hashlib.sha256()
    roots = [PROJECT / "pyproject.toml", PROJECT / "README.md", PROJECT / "telefeatures",
             PROJECT / "dialplan", PROJECT / "docker"]
    for top in roots:
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" in path.parts or WHEELHOUSE in path.parents:
                continue
            h.update(str(path.relative_to(PROJECT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def ensure_image(image: Image, offline: bool = True) -> str:
    """Build the image unless one of the same recipe exists; returns "built" or "reused"."""
    started = time.monotonic()
    build_args = [] if not offline else ["--build-arg", f"APT_OPTIONS={APT_OPTIONS}"]
    wheels = None
    if image.wheels:
        pyver = image_python(image, build_args)
        wheels = ensure_wheels(image, pyver)
        if offline:
            build_args += ["--build-arg", "PIP_OPTIONS=--no-index"]
    context = PROJECT if image.wheels else Path(tempfile.mkdtemp(prefix="tf-empty-context-"))
    key = digest(image.name, image.dockerfile.read_text(), context_digest() if image.wheels else "",
                 image_id(image.base), wheels, build_args)
    if image_label(image.name) == key:
        return "reused"
    try:
        docker("build", "-q", "--network", "host", "--force-rm", "--label", f"{LABEL}={key}", *build_args,
               "-t", image.name, "-f", str(image.dockerfile), str(context))
        # The image this one replaced, if any, is now nameless: drop it.
        docker("image", "prune", "-f", "--filter", "dangling=true", "--filter", f"label={LABEL}", check=False)
    finally:
        if context != PROJECT:
            shutil.rmtree(context, ignore_errors=True)
    log(f"{image.name}: built from {image.dockerfile.relative_to(PROJECT)} in {time.monotonic() - started:.0f}s")
    return "built"


def ensure_all(images: tuple[Image, ...] = IMAGES) -> dict[str, str]:
    problem = engine_problem()
    if problem:
        raise ImageError(problem)
    done: dict[str, str] = {}
    for image in images:
        if image.base not in done:
            done[image.base] = ensure_base(image.base)
        done[image.name] = ensure_image(image)
    return done


def main(argv: list[str]) -> int:
    if argv[:1] != ["build"]:
        print("usage: python -m tests.testbed.images build", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        done = ensure_all()
    except ImageError as exc:
        log(f"failed: {exc}")
        return 1
    for name, how in done.items():
        log(f"{name}: {how}")
    log(f"images ready in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
