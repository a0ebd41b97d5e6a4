"""The Docker recipes agree with pyproject.toml."""

from __future__ import annotations

import re
import tomllib

from tests.testbed.asterisk import PROJECT, classic_agi_requirements, requirement_name


def pyproject_floors() -> dict[str, str]:
    deps = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {requirement_name(d): re.sub(r"\[[^]]*\]", "", d) for d in deps}


def test_classic_agi_requirements_carry_the_pyproject_floors():
    floors = pyproject_floors()
    listed = {requirement_name(r): r for r in classic_agi_requirements()}
    assert {"pydantic", "pydantic-settings", "redis", "pyst2"} <= set(listed)
    for name, requirement in listed.items():
        if name == "six":  # pyst2's undeclared dependency, not ours
            continue
        assert name in floors, f"{name} is in classic-agi-requirements.txt but not a project dependency"
        assert requirement == floors[name], f"{requirement!r} differs from pyproject.toml's {floors[name]!r}"


def test_dockerignore_keeps_what_the_dockerfiles_copy():
    allowed = {line[1:] for line in (PROJECT / ".dockerignore").read_text().splitlines() if line.startswith("!")}
    for dockerfile in PROJECT.glob("docker/*/Dockerfile"):
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY") and "--from" not in line:
                for source in line.split()[1:-1]:
                    assert source.split("/")[0] in allowed, f"{dockerfile.name}: {source} is not in the context"
