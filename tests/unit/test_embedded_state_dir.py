"""One embedded Redis per state directory (bug 4): a lock and the socket in the
state directory, so a second process uses the running server, whatever /tmp it
sees, or stops with a clear message; never a second server on the same files."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.asterisk_peer import call
from tests.support.redis_server import free_port

TELEFEATURES = str(Path(sys.executable).parent / "telefeatures")


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([TELEFEATURES, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


async def wait_for_line(stream: asyncio.StreamReader, needle: str, seen: list[str], timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while True:
            raw = await stream.readline()
            if not raw:
                raise AssertionError(f"server exited before logging {needle!r}:\n" + "".join(seen))
            seen.append(raw.decode(errors="replace"))
            if needle in seen[-1]:
                return


async def test_cli_uses_the_running_servers_embedded_redis_across_a_private_tmp(tmp_path):
    """The reproduction of the report: ``serve`` with its own /tmp (as under
    systemd's PrivateTmp=yes), then ``state set`` from a normal shell."""
    state_dir = tmp_path / "sd"
    private_tmp = tmp_path / "private-tmp"
    private_tmp.mkdir()
    port = free_port()
    script = (f"mount -t tmpfs none {private_tmp} && TMPDIR={private_tmp} exec {TELEFEATURES} "
              f"--state-dir {state_dir} serve --port {port} --event-loop asyncio")
    # a mount namespace of its own (as root; otherwise inside a user namespace, which may mount a tmpfs)
    unshare = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-r", "-m"]
    proc = await asyncio.create_subprocess_exec(*unshare, "sh", "-c", script, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    seen: list[str] = []
    try:
        await wait_for_line(proc.stderr, "listening on", seen)
        assert (state_dir / "redis.sock").is_socket()
        registry = state_dir / "telefeatures.rdb.settings"
        had_registry = registry.exists()

        done = await asyncio.to_thread(cli, "--state-dir", str(state_dir), "state", "set", "2000", "--cidblock", "on")
        assert done.returncode == 0, done.stderr
        assert done.stdout == "2000: updated\n"
        assert f"embedded, {state_dir} (of the running telefeatures process" in done.stderr

        # the running server sees the change: *81 withholds its next outbound call
        result = await call("127.0.0.1", port, "outbound", ["2000", "5551234567"])
        assert result.variables["CALLERID(pres)"] == "prohib"
        assert registry.exists() == had_registry  # the CLI deleted nothing of the server's
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            await proc.stderr.read()
            code = await proc.wait()
    assert code == 0, "".join(seen)
    # the server saved on the way out; the next process owns the directory and reads it back
    shown = await asyncio.to_thread(cli, "--state-dir", str(state_dir), "state", "show", "2000")
    assert shown.stdout == "2000: cidblock=on last_caller=none anonreject=off reject_list=0\n", shown.stderr
    assert f"(state store: embedded, {state_dir})" in shown.stderr


def test_an_owner_whose_redis_does_not_answer_stops_a_second_process_with_a_clear_message(tmp_path):
    state_dir = tmp_path / "sd"
    state_dir.mkdir()
    lock = os.open(state_dir / "telefeatures.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        os.write(lock, b"4242\n")
        done = cli("--state-dir", str(state_dir), "state", "set", "2000", "--cidblock", "on")
    finally:
        os.close(lock)
    assert done.returncode == 1
    assert f"the embedded Redis of state directory {state_dir} belongs to process 4242" in done.stderr
    assert "--redis-url" in done.stderr
    assert not (state_dir / "telefeatures.rdb").exists()  # no second server wrote anything
    assert not (state_dir / "appendonly.aof").exists()


def test_the_lock_is_released_when_the_owner_exits(tmp_path):
    state_dir = tmp_path / "sd"
    first = cli("--state-dir", str(state_dir), "state", "set", "2000", "--cidblock", "on")
    assert first.returncode == 0, first.stderr
    second = cli("--state-dir", str(state_dir), "state", "show", "2000")
    assert second.returncode == 0, second.stderr
    assert second.stdout == "2000: cidblock=on last_caller=none anonreject=off reject_list=0\n"
    assert f"(state store: embedded, {state_dir})\n" == second.stderr.splitlines(keepends=True)[-1]
