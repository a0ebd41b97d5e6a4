"""A real Asterisk 22 for the end-to-end suite, from one of three sources.

``TF_ASTERISK`` picks the source (default ``auto``, tried in this order):

- ``host``: an ``asterisk`` binary already installed on this machine;
- ``docker``: the ``telefeatures-asterisk`` image (``docker/asterisk/Dockerfile``,
  built or reused by ``tests/testbed/images.py``), run on the host network,
  when a Docker engine answers;
- ``chroot``: a Debian sid root made with ``debootstrap`` and run with
  ``chroot`` (needs root). The root is cached outside the checkout, in
  ``$TF_TESTBED_CACHE`` (default ``~/.cache/telefeatures-testbed``), under a
  name derived from the recipe, so a warm run reuses it.

``auto`` logs which source it took and why it passed over the others; a
source named explicitly that cannot run is an error, not a fallback.

Each run gets its own directory (config, logs, spool, AstDB), its own ports,
and is always stopped. ``python -m tests.testbed.asterisk build`` prepares the
chosen source ahead of a test run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.ports import asterisk_rtp_range, free_port

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent.parent
CONFIG_TEMPLATES = HERE / "asterisk"
DIALPLAN = PROJECT / "dialplan"

# The chroot recipe. Any change here changes the cache key, so a new root is built.
CHROOT_RECIPE = {
    "suite": "sid",
    "variant": "minbase",
    "include": ["asterisk", "asterisk-core-sounds-en", "python3", "python3-venv"],
    "revision": 1,
}
# What telefeatures-agi needs inside the Asterisk root (classic AGI), the same
# list the Docker image installs.
CLASSIC_AGI_REQUIREMENTS = PROJECT / "docker" / "asterisk" / "classic-agi-requirements.txt"
# Published as source archives only: built into (pure) wheels on the host.
SDIST_ONLY = ("pyst2",)


def classic_agi_requirements() -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in CLASSIC_AGI_REQUIREMENTS.read_text().splitlines())
    return [line for line in lines if line]


def requirement_name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


CHROOT_VENV = "/opt/telefeatures"
OWNED_DIRS = ["etc/asterisk", "var/lib/asterisk", "var/spool/asterisk", "var/log/asterisk",
              "run/asterisk", "var/cache/asterisk"]


class TestbedError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[testbed] {msg}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    base = os.environ.get("TF_TESTBED_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                              "telefeatures-testbed")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def recipe_key(recipe: dict) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------- sources


def debian_mirror() -> str:
    """The Debian mirror this machine's apt already uses."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in path.read_text().splitlines():
            m = re.match(r"URIs:\s*(\S+)", line)
            if m and "security" not in m.group(1):
                return m.group(1)
    sources = Path("/etc/apt/sources.list")
    if sources.exists():
        for line in sources.read_text().splitlines():
            m = re.match(r"deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+\S+", line)
            if m and "security" not in m.group(1):
                return m.group(1)
    return "http://deb.debian.org/debian"


def chroot_root_path() -> Path:
    return cache_dir() / f"asterisk-sid-root-{recipe_key(CHROOT_RECIPE)}"


def ensure_chroot_root() -> Path:
    """Build (once) and return the cached Debian sid root with Asterisk 22."""
    root = chroot_root_path()
    if (root / ".telefeatures-ready").exists():
        return root
    if os.geteuid() != 0:
        raise TestbedError("building the Asterisk chroot needs root (debootstrap, chroot)")
    if not shutil.which("debootstrap"):
        raise TestbedError("debootstrap is not installed (apt-get install debootstrap)")
    building = root.with_name(root.name + f".building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    mirror = debian_mirror()
    log(f"building Asterisk root with debootstrap from {mirror} (about a minute)")
    started = time.monotonic()
    cmd = ["debootstrap", f"--variant={CHROOT_RECIPE['variant']}",
           "--include=" + ",".join(CHROOT_RECIPE["include"]), CHROOT_RECIPE["suite"], str(building), mirror]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        raise TestbedError(f"debootstrap failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    # Files owned by the chroot's asterisk uid were unreadable to Asterisk run
    # as root from outside; own them by root.
    for rel in OWNED_DIRS:
        path = building / rel
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["chown", "-R", "root:root", str(path)], check=True)
    (building / ".telefeatures-ready").write_text(json.dumps(CHROOT_RECIPE))
    shutil.rmtree(root, ignore_errors=True)
    os.rename(building, root)
    log(f"Asterisk root ready in {time.monotonic() - started:.0f}s: {root}")
    return root


def host_asterisk() -> str | None:
    path = shutil.which("asterisk")
    if not path:
        return None
    out = subprocess.run([path, "-V"], capture_output=True, text=True).stdout
    m = re.search(r"Asterisk (\d+)", out)
    return path if m and int(m.group(1)) >= 20 else None


def choose_source() -> str:
    """The source ``TF_ASTERISK`` names, or with ``auto`` the first one that can
    run here; says which it took and why each one before it could not. A source
    asked for by name that cannot run is an error, never a fallback."""
    from tests.testbed.images import engine_problem

    wanted = os.environ.get("TF_ASTERISK", "auto")
    if wanted not in ("auto", "host", "docker", "chroot"):
        raise TestbedError(f"TF_ASTERISK={wanted!r}: use auto, host, docker or chroot")
    if wanted == "host" and not host_asterisk():
        raise TestbedError("TF_ASTERISK=host: no asterisk 20 or later on PATH")
    if wanted == "docker":
        problem = engine_problem()
        if problem:
            raise TestbedError(f"TF_ASTERISK=docker: {problem}")
    if wanted != "auto":
        log(f"Asterisk source: {wanted} (TF_ASTERISK={wanted})")
        return wanted
    if host_asterisk():
        log("Asterisk source: host (TF_ASTERISK=auto)")
        return "host"
    problem = engine_problem()
    if problem is None:
        log("Asterisk source: docker (TF_ASTERISK=auto; host: no asterisk 20 or later on PATH)")
        return "docker"
    log(f"Asterisk source: chroot (TF_ASTERISK=auto; host: no asterisk 20 or later on PATH; docker: {problem})")
    return "chroot"


# ----------------------------------------------------------------------------- classic AGI


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    if cmd[0] == "chroot":
        # The host's pip settings (find-links, certificates) mean nothing inside the root.
        kw.setdefault("env", {k: v for k, v in os.environ.items() if not k.startswith("PIP_")})
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if result.returncode != 0:
        raise TestbedError(f"{' '.join(cmd)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return result


def project_digest() -> str:
    """A hash of everything that goes into the project wheel."""
    digest = hashlib.sha256((PROJECT / "pyproject.toml").read_bytes())
    for path in sorted((PROJECT / "telefeatures").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(PROJECT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def build_project_wheel(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("telefeatures-*.whl"):
        old.unlink()
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dest),
          str(PROJECT)])
    return next(dest.glob("telefeatures-*.whl"))


def fetch_wheels(requirements: list[str], pyver: str) -> Path:
    """A cached wheelhouse with ``requirements`` (and what they depend on) for
    CPython ``pyver`` on x86-64 Linux, downloaded on the host: pip inside the
    Asterisk root or a Docker build cannot reach the package index here. pip
    judges environment markers by the host's Python, not ``pyver``: list a
    dependency behind such a marker explicitly."""
    wheelhouse = cache_dir() / f"wheelhouse-{recipe_key({'py': pyver, 'req': requirements})}"
    if (wheelhouse / ".complete").exists():
        return wheelhouse
    log(f"downloading wheels for Python {pyver}: {', '.join(requirement_name(r) for r in requirements)}")
    wheelhouse.mkdir(parents=True, exist_ok=True)
    abi = "cp" + "".join(pyver.split(".")[:2])
    binary = [r for r in requirements if requirement_name(r) not in SDIST_ONLY]
    source = [r for r in requirements if requirement_name(r) in SDIST_ONLY]
    if source:
        _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheelhouse), *source])
    # The wheels built from source go into the same resolve, for their own dependencies.
    built = [str(w) for w in wheelhouse.glob("*.whl")]
    _run([sys.executable, "-m", "pip", "download", "-q", "--dest", str(wheelhouse),
          "--only-binary=:all:", "--python-version", pyver, "--implementation", "cp", "--abi", abi,
          "--abi", "abi3", "--abi", "none",
          "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
          "--platform", "manylinux_2_28_x86_64", "--platform", "any", *binary, *built])
    (wheelhouse / ".complete").write_text("ok")
    return wheelhouse


def ensure_chroot_classic_agi(root: Path) -> str:
    """Install telefeatures-agi into a venv inside the root; returns its path there.

    Dependencies are downloaded on the host for the root's Python into a cached
    wheelhouse and installed offline; the project wheel is rebuilt and
    installed whenever the project's sources changed.
    """
    requirements = classic_agi_requirements()
    pyver = _run(["chroot", str(root), "python3", "-c",
                  "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"]).stdout.strip()
    key = recipe_key({"py": pyver, "req": requirements})
    marker = root / CHROOT_VENV.lstrip("/") / f".deps-{key}"
    inside_wheels = root / "tmp" / "tf-wheelhouse"
    if not marker.exists():
        wheelhouse = fetch_wheels(requirements, pyver)
        shutil.rmtree(root / CHROOT_VENV.lstrip("/"), ignore_errors=True)
        _run(["chroot", str(root), "python3", "-m", "venv", CHROOT_VENV])
        shutil.rmtree(inside_wheels, ignore_errors=True)
        shutil.copytree(wheelhouse, inside_wheels)
        _run(["chroot", str(root), f"{CHROOT_VENV}/bin/pip", "install", "-q", "--no-index",
              "--find-links", "/tmp/tf-wheelhouse", *requirements])
        marker.write_text("ok")
    installed = root / CHROOT_VENV.lstrip("/") / f".project-{project_digest()}"
    if not installed.exists():
        for old in installed.parent.glob(".project-*"):
            old.unlink()
        wheel = build_project_wheel(root / "tmp" / "tf-project-wheel")
        _run(["chroot", str(root), f"{CHROOT_VENV}/bin/pip", "install", "-q", "--no-index", "--no-deps",
              "--force-reinstall", f"/tmp/tf-project-wheel/{wheel.name}"])
        installed.write_text("ok")
    return f"{CHROOT_VENV}/bin/telefeatures-agi"


def ensure_docker_image() -> str:
    """Build (or reuse) the telefeatures-asterisk image; returns its name."""
    from tests.testbed.images import ASTERISK, ImageError, ensure_all

    try:
        ensure_all((ASTERISK,))
    except ImageError as exc:
        raise TestbedError(f"Docker source: {exc}") from None
    return ASTERISK.name


# ----------------------------------------------------------------------------- instance


@dataclass
class Ports:
    sip: int
    ami: int
    agi: int
    provider: int
    rtp_start: int
    rtp_end: int


@dataclass
class Asterisk:
    """One running Asterisk. Paths in ``run_dir`` are host paths; ``inside``
    is the same directory as Asterisk sees it (differs in a chroot)."""

    source: str
    run_dir: Path
    inside: str
    ports: Ports
    ami_user: str
    ami_secret: str
    phone_secret: str
    root: Path | None = None
    container: str | None = None
    image: str | None = None
    process: subprocess.Popen | None = None
    env: dict = field(default_factory=dict)
    # A resolv.conf this Asterisk alone uses (hagi:// SRV tests): bind-mounted
    # over /etc/resolv.conf in a mount namespace of its own (chroot, host) or
    # mounted into the container (docker).
    resolv_conf: Path | None = None

    @property
    def log_path(self) -> Path:
        return self.run_dir / "log" / "messages.log"

    def phone_password(self, ext: str) -> str:
        return f"{self.phone_secret}-{ext}"

    def _cmd(self, *args: str) -> list[str]:
        conf = f"{self.inside}/etc/asterisk.conf"
        if self.source == "chroot":
            return ["chroot", str(self.root), "asterisk", "-C", conf, *args]
        if self.source == "docker":
            return ["docker", "exec", self.container, "asterisk", "-C", conf, *args]
        return ["asterisk", "-C", conf, *args]

    def cli(self, command: str, timeout: float = 15) -> str:
        result = subprocess.run(self._cmd("-rx", command), capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise TestbedError(f"asterisk -rx {command!r} failed: {result.stderr.strip()}")
        return result.stdout

    def wait_until_no_channels(self, timeout: float = 60) -> None:
        """Return once Asterisk has no channel left. A call's channel outlives
        the caller's BYE until its dialplan ends, and an AGI() in it ends only
        when the feature server closes the session, which it logs (and has
        written Redis) first: after this, the call's session lines and state
        are there to read."""
        deadline = time.monotonic() + timeout
        while True:
            out = self.cli("core show channels count")
            m = re.search(r"^(\d+) active channel", out, re.M)
            if m is None:
                raise TestbedError(f"'core show channels count' said: {out!r}")
            if m.group(1) == "0":
                return
            if time.monotonic() > deadline:
                raise TestbedError(f"channels still up {timeout:g}s after the call:\n"
                                   f"{self.cli('core show channels concise')}")
            time.sleep(0.1)

    def start(self, boot_timeout: float = 60) -> None:
        if self.source == "docker":
            self.container = f"tf-testbed-{uuid.uuid4().hex[:8]}"
            # The image's health check asks the default asterisk.conf, not this run's.
            cmd = ["docker", "run", "--rm", "--name", self.container, "--network", "host", "--no-healthcheck",
                   "-v", f"{self.run_dir}:{self.inside}", *[f"-e{k}={v}" for k, v in self.env.items()],
                   *(["-v", f"{self.resolv_conf}:/etc/resolv.conf:ro"] if self.resolv_conf else []),
                   self.image, "asterisk", "-f", "-U", "root", "-C",
                   f"{self.inside}/etc/asterisk.conf"]
        else:
            cmd = self._cmd("-f", "-U", "root")
            if self.resolv_conf is not None:
                target = self.root / "etc" / "resolv.conf" if self.source == "chroot" else Path("/etc/resolv.conf")
                cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                       'mount --bind "$1" "$2" && shift 2 && exec "$@"', "sh", str(self.resolv_conf), str(target),
                       *cmd]
        out = open(self.run_dir / "console.out", "wb")
        self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                        env={**os.environ, **self.env}, start_new_session=True)
        deadline = time.monotonic() + boot_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise TestbedError(f"Asterisk exited during boot:\n{self._tail()}")
            try:
                self.cli("core waitfullybooted", timeout=10)
                return
            except (TestbedError, subprocess.TimeoutExpired):
                time.sleep(0.3)
        self.stop()
        raise TestbedError(f"Asterisk did not boot within {boot_timeout}s:\n{self._tail()}")

    def _tail(self, n: int = 4000) -> str:
        text = ""
        for path in (self.run_dir / "console.out", self.log_path):
            if path.exists():
                text += f"--- {path.name}\n" + path.read_text(errors="replace")[-n:]
        return text

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                self.cli("core stop now", timeout=10)
            except (TestbedError, subprocess.TimeoutExpired):
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self.container:
            subprocess.run(["docker", "rm", "-f", self.container], capture_output=True)
        self.process = None

    def log_since(self, offset: int) -> str:
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def log_offset(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0


def fill_placeholders(template: str, values: dict[str, str], what: str) -> str:
    """Replace ``@NAME@`` with ``values[NAME]``; a placeholder left unfilled is
    an error. (Asterisk's own ``${...}`` and sipp's ``[...]`` pass through.)"""
    for key, value in values.items():
        template = template.replace(f"@{key}@", value)
    leftover = re.findall(r"@[A-Z_]+@", template)
    if leftover:
        raise TestbedError(f"{what}: no value for {sorted(set(leftover))}")
    return template


def prepare(agi_port: int, env: dict | None = None, extra_pjsip: str = "", quiet: bool = False,
            source: str | None = None) -> Asterisk:
    """Pick a source, make a run directory with config, and return an Asterisk
    ready to ``start()``. ``extra_pjsip`` is appended to pjsip.conf (e.g. a
    generated ``#include``). The tests read the verbose log (every dialplan
    step, every prompt played); ``quiet`` logs only notices and errors, as a
    production PBX would, for benchmarks. ``source`` overrides TF_ASTERISK
    (a test that runs Asterisk inside a network namespace needs a process it
    starts itself: chroot or host)."""
    source = source or choose_source()
    run_id = f"tf-run-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    root = image = None
    classic_agi = str(Path(sys.executable).with_name("telefeatures-agi"))
    moddir = datadir = ""
    if source == "chroot":
        root = ensure_chroot_root()
        run_dir = root / "tmp" / run_id
        inside = f"/tmp/{run_id}"
        classic_agi = ensure_chroot_classic_agi(root)
        moddir = "/usr/lib/x86_64-linux-gnu/asterisk/modules"
        datadir = "/usr/share/asterisk"
    elif source == "host":
        run_dir = Path(tempfile.mkdtemp(prefix=run_id))
        inside = str(run_dir)
        candidates = ["/usr/lib/x86_64-linux-gnu/asterisk/modules", "/usr/lib/asterisk/modules",
                      "/usr/lib64/asterisk/modules"]
        moddir = next((c for c in candidates if Path(c).is_dir()), candidates[0])
        datadir = "/usr/share/asterisk" if Path("/usr/share/asterisk/sounds").exists() else "/var/lib/asterisk"
    else:
        image = ensure_docker_image()
        run_dir = Path(tempfile.mkdtemp(prefix=run_id))
        inside = "/testbed"
        classic_agi = f"{CHROOT_VENV}/bin/telefeatures-agi"
        moddir = "/usr/lib/x86_64-linux-gnu/asterisk/modules"
        datadir = "/usr/share/asterisk"
    for sub in ("etc/telefeatures", "lib", "spool", "run", "log"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    rtp_start, rtp_end = asterisk_rtp_range()
    ports = Ports(sip=free_port(socket.SOCK_DGRAM), ami=free_port(), agi=agi_port,
                  provider=free_port(socket.SOCK_DGRAM, "127.0.0.2"), rtp_start=rtp_start, rtp_end=rtp_end)
    ast = Asterisk(source=source, run_dir=run_dir, inside=inside, ports=ports, ami_user="tftest",
                   ami_secret=uuid.uuid4().hex, phone_secret=uuid.uuid4().hex[:12], root=root, image=image,
                   env=env or {})
    values = {
        "RUN": inside, "MODDIR": moddir, "DATADIR": datadir, "SIP_PORT": str(ports.sip),
        "AMI_PORT": str(ports.ami), "AMI_USER": ast.ami_user, "AMI_SECRET": ast.ami_secret,
        "AGI_PORT": str(agi_port), "PROVIDER_PORT": str(ports.provider), "RTP_START": str(ports.rtp_start),
        "RTP_END": str(ports.rtp_end), "PHONE_SECRET": ast.phone_secret, "CLASSIC_AGI": classic_agi,
        "VERBOSE": "0" if quiet else "5",
        "MESSAGES_LEVELS": "notice,warning,error" if quiet else "notice,warning,error,verbose(5)",
    }
    for template in CONFIG_TEMPLATES.glob("*.conf"):
        text = fill_placeholders(template.read_text(), values, template.name)
        if template.name == "pjsip.conf" and extra_pjsip:
            text += "\n" + extra_pjsip + "\n"
        (run_dir / "etc" / template.name).write_text(text)
    # The shipped dialplan, byte for byte, where the test bed's extensions.conf includes it.
    for conf in DIALPLAN.glob("*.conf"):
        shutil.copyfile(conf, run_dir / "etc" / "telefeatures" / conf.name)
    return ast


def remove_run_dir(ast: Asterisk) -> None:
    shutil.rmtree(ast.run_dir, ignore_errors=True)


def main(argv: list[str]) -> int:
    if argv[:1] != ["build"]:
        print("usage: python -m tests.testbed.asterisk build", file=sys.stderr)
        return 2
    source = choose_source()
    if source == "chroot":
        root = ensure_chroot_root()
        ensure_chroot_classic_agi(root)
        out = _run(["chroot", str(root), "asterisk", "-V"]).stdout.strip()
    elif source == "docker":
        image = ensure_docker_image()
        out = _run(["docker", "run", "--rm", "--network", "host", "--no-healthcheck", image, "asterisk",
                    "-V"]).stdout.strip()
    else:
        out = _run(["asterisk", "-V"]).stdout.strip()
    log(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
