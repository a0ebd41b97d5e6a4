"""Running the TFTP server: one process, or several worker processes on one
port (SO_REUSEPORT) to use more than one core in a boot storm (the default:
one per CPU, at most 4). One process needs a third of tftpd-hpa's CPU per
block, but it is one process: on a busy machine the scheduler gives it one
share, where tftpd-hpa's process per transfer gets one share per phone.

With workers, a classic BPF program on the port's socket group sends every
request from one peer address to the same worker (source address modulo the
number of workers), so the per-peer limits hold exactly as in one process.
The parent only starts, watches and stops the workers: when one dies, all
stop and the command exits non-zero (systemd restarts it).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import resource
import signal
import socket
import struct
from collections.abc import Callable, Coroutine
from pathlib import Path

from .fetch_record import FetchRecord
from .tftp_policy import Limits, PeerPolicy, PhoneBinding
from .tftp_server import TftpServer, listening_socket
from .worker_processes import end_with_parent

log = logging.getLogger("telefeatures.tftp")

SO_ATTACH_REUSEPORT_CBPF = 51  # linux/asm-generic/socket.h
SKF_NET_OFF = -0x100000        # classic BPF: offsets relative to the IP header
MAX_AUTO_WORKERS = 4


def attach_peer_affinity(sock: socket.socket, workers: int) -> bool:
    """Pick the worker socket by the request's source address. False when the
    kernel refuses (the group then spreads requests by address and port)."""
    program = [  # IPv4 or IPv6 (a "::" socket also gets IPv4 packets): check the version nibble
        (0x30, 0, 0, SKF_NET_OFF & 0xFFFFFFFF),          # BPF_LD|BPF_B|BPF_ABS: A = first byte of the IP header
        (0x74, 0, 0, 4),                                 # BPF_ALU|BPF_RSH|BPF_K: A >>= 4, the IP version
        (0x15, 0, 2, 4),                                 # BPF_JMP|BPF_JEQ|BPF_K: IPv4? else skip 2
        (0x20, 0, 0, (SKF_NET_OFF + 12) & 0xFFFFFFFF),   # BPF_LD|BPF_W|BPF_ABS: A = IPv4 source address
        (0x05, 0, 0, 1),                                 # BPF_JMP|BPF_JA: skip 1
        (0x20, 0, 0, (SKF_NET_OFF + 20) & 0xFFFFFFFF),   # A = last 4 bytes of the IPv6 source address
        (0x94, 0, 0, workers),                           # BPF_ALU|BPF_MOD|BPF_K: A %= workers
        (0x16, 0, 0, 0),                                 # BPF_RET|BPF_A
    ]
    filters = (ctypes.c_uint8 * (8 * len(program)))(*b"".join(struct.pack("HBBI", *op) for op in program))
    fprog = struct.pack("HL", len(program), ctypes.addressof(filters))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)
    except OSError as exc:
        log.warning("cannot keep each peer on one TFTP worker (%s): per-peer limits apply per worker",
                    exc.strerror or exc)
        return False
    return True


def build_policy(settings, inventory_path: str | None) -> PeerPolicy:
    """The peer policy from ``TftpSettings``: with an inventory and no allow
    list, loopback + the phones' addresses and networks are allowed."""
    limits = Limits(per_peer_transfers=settings.per_peer_transfers,
                    requests_per_second=settings.requests_per_second, request_burst=settings.request_burst,
                    enumeration_limit=settings.enumeration_limit, enumeration_window=settings.enumeration_window,
                    enumeration_block=settings.enumeration_block)
    binding = PhoneBinding(inventory_path) if inventory_path else None
    return PeerPolicy(limits, list(settings.allow) or None, binding, allow_from_inventory=True)


def serve(settings, root: str, host: str, port: int, state_dir: Path | None,
          run: Callable[[Coroutine], object] = asyncio.run) -> int:
    """Serve until SIGTERM/SIGINT; the exit status for the command."""
    workers = settings.workers or min(len(os.sched_getaffinity(0)), MAX_AUTO_WORKERS)
    inventory = os.fspath(settings.inventory) if settings.inventory else None
    policy = build_policy(settings, inventory)  # fails here, before forking, on a bad inventory
    if policy.allow is None and not policy.allow_from_inventory and not (host.startswith("127.") or host in ("::1", "localhost")):
        log.warning("serving anyone who can reach %s: use --allow CIDR (or --inventory) to choose who", host)

    def server(sock: socket.socket, worker: int) -> TftpServer:
        record = FetchRecord(state_dir, os.path.realpath(root), worker) if (
            settings.record_fetches and state_dir is not None) else None
        return TftpServer(root, host, port, max_transfers=settings.max_transfers, timeout=settings.timeout,
                          retries=settings.retries, policy=policy, record=record, sock=sock)

    _raise_file_limit(settings.max_transfers + 64)  # per process
    if workers == 1:
        run(_until_signal(server(listening_socket(host, port), 0)))
        return 0
    first = listening_socket(host, port, reuse_port=True)
    socks = [first] + [listening_socket(host, first.getsockname()[1], reuse_port=True) for _ in range(workers - 1)]
    attach_peer_affinity(first, workers)
    children: dict[int, int] = {}
    supervisor = os.getpid()
    for worker, sock in enumerate(socks):
        pid = os.fork()
        if pid == 0:  # the worker
            status = 0
            try:
                end_with_parent(supervisor)
                for other in socks:
                    if other is not sock:
                        other.close()
                run(_until_signal(server(sock, worker)))
            except BaseException:
                log.exception("TFTP worker %d failed", worker)
                status = 1
            finally:
                logging.shutdown()
                os._exit(status)
        children[pid] = worker
    for sock in socks:
        sock.close()
    return _supervise(children)


def _raise_file_limit(wanted: int) -> None:
    """A socket per transfer: lift the soft limit on open files (often 1024)
    towards ``wanted``, as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        log.warning("open-file limit %d is below what %d transfers need: transfers past it are refused as busy",
                    target, wanted)


def _supervise(children: dict[int, int]) -> int:
    stopping = False

    def stop(_signum, _frame):
        nonlocal stopping
        stopping = True
        for pid in children:
            _kill(pid)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    while children:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        worker = children.pop(pid, None)
        if worker is None:
            continue
        if not stopping:
            log.error("TFTP worker %d exited (status %d): stopping the others", worker, os.waitstatus_to_exitcode(code))
            status = 1
            stopping = True
            for other in children:
                _kill(other)
    return status


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


async def _until_signal(server: TftpServer) -> None:
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    await server.start()
    try:
        await stopped.wait()
    finally:
        await server.close()
