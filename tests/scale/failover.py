"""Call load against a real ``telefeatures serve`` while a Redis master is
killed: what each call got, how long it took, and which writes were
acknowledged, so a test can check every acknowledged write afterwards.

Each worker loops over fresh extensions: ``*81`` (cidblock/on), an outbound
call, ``*82`` (cidblock/off), an outbound call. A fresh extension per cycle
makes every acknowledged write checkable on its own after the failover: an
acknowledged ``*81`` whose ``*82`` was not even tried must read blocked, an
acknowledged ``*82`` must read unblocked.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from tests.support.asterisk_peer import call


@dataclass
class CallRecord:
    route: str
    extension: str
    started: float  # monotonic
    seconds: float
    status: str  # TF_STATUS, "" when the server did not answer (or the call hung)
    presentation: str = ""  # CALLERID(pres) set on an outbound call


@dataclass
class Load:
    host: str
    port: int
    workers: int = 8
    pause: float = 0.01  # between one worker's calls
    prefix: str = "9"  # extensions are <prefix><worker><cycle>
    hang_limit: float = 5.0  # a call still open after this long is counted as hung
    records: list[CallRecord] = field(default_factory=list)
    # extension -> [(route, acked)] in the order tried
    writes: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)
    # extension -> when its last acknowledged write was answered (monotonic)
    last_ack: dict[str, float] = field(default_factory=dict)
    hung: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def _one(self, route: str, extension: str, *args: str) -> CallRecord:
        started = time.monotonic()
        status, pres = "", ""
        try:
            result = await call(self.host, self.port, route, [extension, *args], timeout=self.hang_limit)
            status = result.variables.get("TF_STATUS", "")
            pres = result.variables.get("CALLERID(pres)", "")
        except TimeoutError:
            self.hung += 1
        except OSError:
            pass
        record = CallRecord(route, extension, started, time.monotonic() - started, status, pres)
        self.records.append(record)
        return record

    async def _worker(self, n: int) -> None:
        cycle = 0
        while not self._stop.is_set():
            ext = f"{self.prefix}{n:02d}{cycle:05d}"
            cycle += 1
            tried = self.writes.setdefault(ext, [])
            on = await self._one("cidblock/on", ext)
            tried.append(("on", on.status == "OK"))
            self._note_ack(ext, on)
            await self._one("outbound", ext, "2125551234")
            await asyncio.sleep(self.pause)
            if self._stop.is_set():
                break
            off = await self._one("cidblock/off", ext)
            tried.append(("off", off.status == "OK"))
            self._note_ack(ext, off)
            await self._one("outbound", ext, "2125551234")
            await asyncio.sleep(self.pause)

    async def run(self, until: asyncio.Future | None = None, seconds: float | None = None) -> None:
        tasks = [asyncio.create_task(self._worker(n)) for n in range(self.workers)]
        try:
            if until is not None:
                await until
            else:
                await asyncio.sleep(seconds)
        finally:
            self._stop.set()
            await asyncio.gather(*tasks)

    # ------------------------------------------------------------ judging

    def write_resumed_after(self, t: float, affected=lambda ext: True) -> float | None:
        """Seconds from ``t`` to the first acknowledged write that started after
        ``t``, among the extensions ``affected`` says the failure touched."""
        for record in sorted(self.records, key=lambda r: r.started):
            if (record.started >= t and record.route.startswith("cidblock/") and record.status == "OK"
                    and affected(record.extension)):
                return record.started + record.seconds - t
        return None

    def _note_ack(self, ext: str, record: CallRecord) -> None:
        if record.status == "OK":
            self.last_ack[ext] = record.started + record.seconds

    def expected_state(self) -> dict[str, bool]:
        """extension -> blocked, for every extension whose final state is decided
        by an acknowledged write (a later write that failed leaves it open)."""
        expected = {}
        for ext, tried in self.writes.items():
            if not tried:
                continue
            last_route, last_acked = tried[-1]
            if last_acked:
                expected[ext] = last_route == "on"
        return expected

    def acked_writes(self) -> int:
        return sum(acked for tried in self.writes.values() for _, acked in tried)
