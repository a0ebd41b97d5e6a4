"""Helpers shared by the hardening tests."""

from __future__ import annotations

import asyncio

from tests.support.asterisk_peer import call


async def normal_session(port: int, ext: str = "1000", number: str = "5552345678"):
    """An ordinary outbound session; it must complete quickly after any attack."""
    result = await call("127.0.0.1", port, "outbound", [ext, number], timeout=3)
    assert result.status in ("OK", "ERROR"), result.sets
    assert result.variables.get("TF_DIAL") == number
    return result


def run(coro):
    return asyncio.run(coro)
