"""Loopback ports for tests and benchmarks: pick a free one, probe one."""

from __future__ import annotations

import socket


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    """A port nobody is bound to on ``host`` right now (TCP, or UDP with SOCK_DGRAM)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


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
