"""The test bed's Asterisk configuration: media bound to loopback (bug 12).

With RTP bound to 0.0.0.0 Asterisk looks up its host name for the SDP of every
call; under load some lookups hit the resolver's 5 s timeout and calls stalled
in bursts. Every endpoint therefore binds its media to 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

PJSIP = Path(__file__).resolve().parents[2] / "tests" / "testbed" / "asterisk" / "pjsip.conf"


def sections() -> list[tuple[str, dict[str, str]]]:
    """pjsip.conf's sections in order (names repeat: one per object type)."""
    found: list[tuple[str, dict[str, str]]] = []
    for raw in PJSIP.read_text().splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            found.append((line[1:line.index("]")], {}))
        elif "=" in line and found:
            key, _, value = line.partition("=")
            found[-1][1][key.strip()] = value.strip()
    return found


def test_every_endpoint_binds_its_media_to_loopback():
    endpoints = {name: options for name, options in sections() if options.get("type") == "endpoint"}
    assert {"phone", "provider"} <= set(endpoints)
    for name, options in endpoints.items():
        assert options.get("media_address") == "127.0.0.1", name
        assert options.get("bind_rtp_to_media_address") == "yes", name


def test_every_phone_endpoint_is_made_from_that_template():
    text = PJSIP.read_text()
    for phone in ("1000", "1001", "1002"):
        assert f"[{phone}](phone)\n" in text
