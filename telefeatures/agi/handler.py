"""What the AGI layer asks of whatever answers its sessions.

The server and the classic entry point know nothing of features: they are
given a :class:`SessionHandler` (wired in :mod:`telefeatures.service`) that
describes a session for the log line before it runs, then handles it.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from .channel import Channel
from .protocol import AgiRequest


class SessionLabel(Protocol):
    """What the log line and the metrics say about a session before it ends."""

    @property
    def route_label(self) -> str:
        """The route for metrics: a known route's name, or ``unknown``."""

    @property
    def extension(self) -> str | None:
        """The extension the session acts for, None when it is not known."""

    @property
    def tenant(self) -> str | None:
        """The tenant of that extension, None for none (or not known)."""


class SessionResult(Protocol):
    """How a session ended, for the log line: ``status`` and ``reason`` words."""

    @property
    def status(self) -> str: ...

    @property
    def reason(self) -> str: ...


Label = TypeVar("Label", bound=SessionLabel)


class SessionHandler(Protocol[Label]):
    def describe(self, route: str, request: AgiRequest) -> Label:
        """Label the session from its header alone (cheap, no I/O): known
        before it runs, so a hang-up or a timeout is logged with it."""

    async def handle(self, channel: Channel, session: Label) -> SessionResult:
        """Run the session on ``channel``. ``ChannelHungUp``, ``CommandRejected``
        and protocol errors propagate to the caller, which logs them."""
