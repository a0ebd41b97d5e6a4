"""Container health as Docker's HEALTHCHECK reports it."""

from __future__ import annotations

import subprocess
import time


def health(container: str) -> str:
    """starting, healthy, unhealthy, or the state of a container that is not running."""
    out = subprocess.run(["docker", "inspect", "--format",
                          "{{if .State.Running}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}",
                          container], capture_output=True, text=True)
    return out.stdout.strip() or out.stderr.strip()


def wait_health(containers: list[str], wanted: str = "healthy", timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        states = {c: health(c) for c in containers}
        if all(s == wanted for s in states.values()):
            return
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {c}\n{last_log(c)}" for c, s in states.items() if s != wanted)
            raise AssertionError(f"not {wanted} after {timeout}s: {states}\n{logs}")
        time.sleep(0.5)


def last_log(container: str, lines: int = 30) -> str:
    out = subprocess.run(["docker", "logs", "--tail", str(lines), container], capture_output=True, text=True)
    checks = subprocess.run(["docker", "inspect", "--format", "{{json .State.Health}}", container],
                            capture_output=True, text=True)
    return out.stdout + out.stderr + "\nhealth: " + checks.stdout[-1500:]
