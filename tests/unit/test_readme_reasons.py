"""The README lists every reason a route or a session can give (TF_REASON and
the session log's reason=), read from the code that gives them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "telefeatures"
WORD = r"([a-z]+(?:-[a-z]+)*)"


def route_reasons() -> set[str]:
    found: set[str] = set()
    for path in [PACKAGE / "app.py", *sorted((PACKAGE / "features").glob("*.py"))]:
        text = path.read_text()
        found |= set(re.findall(r'Outcome\([^,()]+, "' + WORD + '"', text))
        found |= set(re.findall(r'_error\(call, "' + WORD + '"', text))
        found |= set(re.findall(r'Status\.[A-Z]+, "' + WORD + '"', text))
        if path.name != "numbers.py":
            found |= set(re.findall(r'\b(?:reason|refusal) = "' + WORD + '"', text))
    # the inbound route reports why it recorded a caller as withheld
    numbers = (PACKAGE / "features" / "numbers.py").read_text()
    found |= {f"withheld-{r}" for r in re.findall(r'^\s+reason = "' + WORD + '"', numbers, re.M)}
    return found


def session_reasons() -> set[str]:
    text = (PACKAGE / "agi" / "server.py").read_text()
    found: set[str] = set()
    for line in text.splitlines():
        if "reason" in line and "=" in line:
            found |= set(re.findall(r'"' + WORD + '"', line))
    return found - {"HANGUP", "ERROR"}


def test_the_reasons_are_found_in_the_code():
    assert {"no-record", "withheld", "state-error", "bad-arguments", "unknown-route",
            "withheld-anonymous", "withheld-invalid-number"} <= route_reasons()
    assert {"hangup", "header-timeout", "protocol-error", "internal-error"} <= session_reasons()


def test_readme_documents_every_reason():
    readme = (ROOT / "README.md").read_text()
    missing = sorted(r for r in route_reasons() | session_reasons() if f"`{r}`" not in readme)
    assert missing == []
