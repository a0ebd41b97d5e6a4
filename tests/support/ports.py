"""Loopback ports for tests and benchmarks: pick a free one, probe one."""

from __future__ import annotations

import errno
import itertools
import random
import socket

# Ports the kernel hands out (bind(0), and the local end of every outgoing
# connection or DNS query on the machine) come from ip_local_port_range
# (32768-60999 by default). A port the tests pick must not come from there:
# between the pick and the bind (seconds, for an Asterisk booting) or between
# a stop and a restart on the same port (Redis, the feature server) any
# outgoing socket can be given it, and the bind fails. Listeners, sipp's media
# ports (-mp and the three after it: audio and video RTP/RTCP) and Asterisk's
# rtpstart-rtpend range each come from a block below it, disjoint from the
# others; each process starts at a random point in each block, so test runs
# side by side rarely try the same port (and never take one that is bound).
LISTENER_RANGE = (2000, 11999)
SIPP_MEDIA_RANGE = (12000, 19996)
ASTERISK_RTP_RANGE = (20000, 31800)
_listener_ports = itertools.count(random.randrange(0, LISTENER_RANGE[1] - LISTENER_RANGE[0]))
_media_blocks = itertools.count(random.randrange(0, 2000))
_rtp_blocks = itertools.count(random.randrange(0, 59))


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    """A port nobody is bound to on ``host`` right now (TCP, or UDP with
    SOCK_DGRAM), from LISTENER_RANGE."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    low, high = LISTENER_RANGE
    for _ in range(high - low):
        port = low + next(_listener_ports) % (high - low)
        with socket.socket(family, kind) as s:
            try:
                s.bind((host, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise  # e.g. an address this machine does not have
            return port
    raise OSError(f"no free port in {low}-{high} on {host}")


def _udp_block_free(base: int, count: int, host: str) -> bool:
    return not any(udp_bound(port, host) for port in range(base, base + count))


def sipp_media_port(host: str = "127.0.0.1") -> int:
    """An even port for sipp's ``-mp`` with it and the next three free on ``host``."""
    low, high = SIPP_MEDIA_RANGE
    slots = (high - low) // 4
    for _ in range(slots):
        base = low + (next(_media_blocks) % slots) * 4
        if _udp_block_free(base, 4, host):
            return base
    raise OSError(f"no four free UDP ports in {low}-{high} on {host}")


def asterisk_rtp_range(width: int = 200) -> tuple[int, int]:
    """An ``rtpstart``/``rtpend`` pair nothing else in the tests picks from."""
    low, high = ASTERISK_RTP_RANGE
    slots = (high - low) // width
    start = low + (next(_rtp_blocks) % slots) * width
    return start, start + width


def tcp_open(port: int, host: str = "127.0.0.1") -> bool:
    """Something accepts TCP connections on this port."""
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def udp_bound(port: int, host: str = "127.0.0.1") -> bool:
    """Something is bound to this UDP port (a UDP server cannot be probed by connecting)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False
