"""Safe by default: loopback binds, the peer allow-list, metrics off unless
asked for, and the operational surface (health, metrics, JSON logs)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

from tests.hardening.checks import normal_session, run
from tests.support.asterisk_peer import call, header_bytes, read_until_closed
from tests.support.ports import free_port
from tests.testbed.services import wait_for


def listening_sockets(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket process ``pid`` listens on, from
    /proc: its socket inodes, matched against the kernel's LISTEN entries."""
    import os

    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            fields = line.split()
            addr, _, hexport = fields[1].partition(":")
            if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                if len(addr) == 8:
                    addr = ".".join(str(int(addr[i:i + 2], 16)) for i in (6, 4, 2, 0))
                found.add((addr, int(hexport, 16)))
    return found


def test_binds_to_loopback_by_default_and_metrics_are_off(serve):
    server = serve()
    # one listening socket, on loopback: no metrics, no health endpoint, nothing else
    assert listening_sockets(server.process.pid) == {("127.0.0.1", server.port)}


def test_a_peer_outside_the_allow_list_is_closed_at_once(serve):
    server = serve("--allow-peer", "127.0.0.1/32")

    async def from_second_loopback_address():
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port, local_addr=("127.0.0.2", 0))
        try:
            writer.write(header_bytes("cidblock/off", ["1000"]))
            await writer.drain()
        except OSError:
            pass
        data = await read_until_closed(reader, 2)
        writer.close()
        return data

    assert run(from_second_loopback_address()) == b""  # not one command
    wait_for(lambda: "refused connection from 127.0.0.2: not in allow_peers" in server.log_text(),
             what="the refusal in the log")
    result = run(call("127.0.0.1", server.port, "cidblock/status", ["1000"], timeout=3))
    assert result.status == "OK"


def test_an_allowed_second_address_is_served(serve):
    server = serve("--host", "127.0.0.1", "--allow-peer", "127.0.0.2/32", "--allow-peer", "127.0.0.1/32")
    result = run(call("127.0.0.1", server.port, "cidblock/status", ["1000"], local_addr=("127.0.0.2", 0),
                      timeout=3))
    assert result.status == "OK"


def test_metrics_and_health_endpoint(serve, redis_server):
    port = free_port()
    server = serve("--metrics", "--metrics-port", str(port))
    assert listening_sockets(server.process.pid) == {("127.0.0.1", server.port), ("127.0.0.1", port)}
    run(normal_session(server.port))
    run(call("127.0.0.1", server.port, "nosuchroute", ["1000"], timeout=3))
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'telefeatures_sessions_total{route="outbound",status="OK",tenant=""} 1.0' in body
    assert 'telefeatures_sessions_total{route="unknown",status="ERROR",tenant=""} 1.0' in body
    assert "telefeatures_session_seconds_bucket" in body and "telefeatures_active_sessions 0.0" in body

    health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read())
    assert health == {"ok": True, "accepting": True, "redis": True, "detail": ""}

    redis_server.stop()
    try:
        def unhealthy():
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
            except urllib.error.HTTPError as exc:
                return exc.code == 503 and json.loads(exc.read())["redis"] is False
            return False

        wait_for(unhealthy, timeout=12, what="/healthz to report Redis down")
        run(normal_session(server.port))  # still answering
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        errors = [ln for ln in body.splitlines() if ln.startswith("telefeatures_redis_errors_total ")]
        assert errors and float(errors[0].split()[1]) >= 1
    finally:
        redis_server.start()


def test_json_logs(serve):
    server = serve("--log-format", "json")
    run(normal_session(server.port))
    wait_for(lambda: '"route"' in server.log_text(), what="a JSON session line")
    lines = [json.loads(ln) for ln in server.log_text().splitlines() if ln.startswith("{")]
    sessions = [ln for ln in lines if ln.get("name") == "telefeatures.session"]
    assert sessions, lines
    entry = sessions[-1]
    assert entry["route"] == "outbound" and entry["status"] == "OK" and entry["extension"] == "1000"
    assert isinstance(entry["ms"], float) and entry["levelname"] == "INFO"
