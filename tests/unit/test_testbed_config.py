"""The test bed's Asterisk configuration: media bound to loopback (bug 12).

With RTP bound to 0.0.0.0 Asterisk looks up its host name for the SDP of every
call; under load some lookups hit the resolver's 5 s timeout and calls stalled
in bursts. Every endpoint therefore binds its media to 127.0.0.1.

Media ports come from blocks of their own: a sipp phone binds four ports from
its ``-mp`` on, and a port picked from the kernel's ephemeral range could be
handed to someone else before sipp binds it."""

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


def test_sipp_media_ports_skip_a_block_with_any_port_taken_and_stay_out_of_kernel_and_asterisk_ranges():
    import socket

    from tests.support import ports

    base = ports.sipp_media_port()
    assert base % 2 == 0 and ports.SIPP_MEDIA_RANGE[0] <= base <= ports.SIPP_MEDIA_RANGE[1]
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert base + 3 < ephemeral_low and base + 3 < ports.ASTERISK_RTP_RANGE[0]
    # Take the video RTP port (base + 2) of the next block the picker would
    # offer: it must move past that block rather than hand it out.
    upcoming = ports.SIPP_MEDIA_RANGE[0] + (next(ports._media_blocks) + 1) % (
        (ports.SIPP_MEDIA_RANGE[1] - ports.SIPP_MEDIA_RANGE[0]) // 4) * 4
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", upcoming + 2))
        chosen = ports.sipp_media_port()
    assert chosen != upcoming and not any(ports.udp_bound(p) for p in range(chosen, chosen + 4))


def test_asterisk_rtp_range_is_below_the_ports_the_kernel_hands_out():
    from tests.support import ports

    start, end = ports.asterisk_rtp_range()
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert end - start == 200 and ports.ASTERISK_RTP_RANGE[0] <= start and end < ephemeral_low


def test_free_ports_come_from_below_the_kernel_range_and_skip_a_bound_one():
    """A listener's port (Redis, the feature server, Asterisk's SIP and AMI)
    stays out of the ephemeral range, so no outgoing connection can be handed
    it between the pick and the bind, or between a stop and a restart."""
    import socket

    from tests.support import ports

    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    low, high = ports.LISTENER_RANGE
    assert high < ports.SIPP_MEDIA_RANGE[0] and high < ephemeral_low
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        port = ports.free_port(kind)
        assert low <= port < high
    # Bind the port the picker would offer next: it must move past it.
    upcoming = low + (next(ports._listener_ports) + 1) % (high - low)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", upcoming))
        chosen = ports.free_port()
    assert chosen != upcoming and low <= chosen < high


def test_free_port_on_an_address_this_machine_lacks_says_so():
    import pytest

    from tests.support import ports

    with pytest.raises(OSError):
        ports.free_port(host="192.0.2.1")  # TEST-NET-1: never a local address
