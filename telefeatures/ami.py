"""A small wrapper around panoramisk's AMI ``Manager`` for one-shot commands.

panoramisk is built for long-running clients: it reconnects forever after a
failed connect or a lost connection, and its keep-alive pings never check for
a Pong. A command-line run needs the opposite, so this wrapper connects once,
bounds every wait with a timeout, checks each response, and closes.

Settings come from flags, else ``TELEFEATURES_AMI_HOST``, ``_PORT``,
``_USERNAME``, ``_SECRET`` and ``_TIMEOUT``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any

from panoramisk import Manager
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger("telefeatures.ami")

# Header values must not carry CR/LF: that would inject extra AMI headers.
_SAFE_VALUE = re.compile(r"[^\r\n\x00]*")
_ENDPOINT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")

# NOTIFY payloads for Cisco phones (see res_pjsip_notify: each "Variable" is a
# header, except Content-Type/Content which build the body line by line).
NOTIFY_EVENTS: dict[str, list[str]] = {
    # Re-check the configuration; the phone reboots if it changed.
    "check-sync": ["Event=check-sync"],
    # Re-fetch the configuration and re-register without a reboot.
    "restart": ["Event=service-control", "Content-Type=text/plain", "Content=action=restart", "Content="],
}


class AmiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TELEFEATURES_AMI_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(5038, ge=1, le=65535)
    username: str = ""
    secret: SecretStr = SecretStr("")
    timeout: float = Field(5.0, gt=0, le=120)


class AmiError(Exception):
    pass


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    message: str


class _SingleConnectionManager(Manager):
    """panoramisk's Manager without its endless reconnect loop."""

    _attempted = False

    def connect(self, *args: Any, **kwargs: Any):  # type: ignore[override]
        if self._attempted:
            return None
        self._attempted = True
        return super().connect(*args, **kwargs)

    def connection_made(self, future: asyncio.Future) -> None:  # type: ignore[override]
        if future.cancelled():  # our connect timeout fired; nothing to set up
            return
        super().connection_made(future)


class AmiClient:
    """``async with AmiClient(settings) as ami: await ami.pjsip_notify("1001")``"""

    def __init__(self, settings: AmiSettings):
        if not settings.username:
            raise AmiError("no AMI username: give --ami-user or set TELEFEATURES_AMI_USERNAME")
        for value in (settings.host, settings.username, settings.secret.get_secret_value()):
            if not _SAFE_VALUE.fullmatch(value):
                raise AmiError("AMI settings must not contain line breaks")
        self.settings = settings
        self._manager: _SingleConnectionManager | None = None

    async def __aenter__(self) -> AmiClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    async def connect(self) -> None:
        s = self.settings
        manager = _SingleConnectionManager(
            loop=asyncio.get_running_loop(), host=s.host, port=s.port, username=s.username,
            secret=s.secret.get_secret_value(), events="off",
            # No pings during a short command run: they would go unanswered-unchecked anyway.
            ping_delay=3600, ping_interval=3600, log=log,
        )
        self._manager = manager
        try:
            await asyncio.wait_for(manager.connect(), s.timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            self.close()
            reason = "timed out" if isinstance(exc, asyncio.TimeoutError) else (exc.strerror or str(exc))
            raise AmiError(f"cannot connect to AMI at {s.host}:{s.port}: {reason}") from None
        login = manager.authenticated_future
        if login is None:  # the connection was lost before login could be sent
            self.close()
            raise AmiError(f"AMI at {s.host}:{s.port} closed the connection")
        try:
            response = await asyncio.wait_for(asyncio.shield(login), s.timeout)
        except asyncio.TimeoutError:
            self.close()
            raise AmiError(f"no answer to AMI login from {s.host}:{s.port}") from None
        if not response.success:
            self.close()
            raise AmiError(f"AMI login as {s.username!r} refused: {response.message or response.response}")

    def close(self) -> None:
        if self._manager is not None:
            self._manager.close()
            self._manager = None

    async def send(self, action: dict[str, Any]) -> ActionResult:
        """Send one action and wait for its response (bounded by the timeout)."""
        if self._manager is None:
            raise AmiError("not connected")
        for key, value in action.items():
            values = value if isinstance(value, list) else [value]
            if not all(_SAFE_VALUE.fullmatch(str(v)) for v in [key, *values]):
                raise AmiError(f"line break in AMI header {key!r}")
        future = self._manager.send_action(dict(action))
        try:
            response = await asyncio.wait_for(future, self.settings.timeout)
        except asyncio.TimeoutError:
            return ActionResult(False, f"no response within {self.settings.timeout:g} s")
        if isinstance(response, list):  # multi-message responses: the first one carries the status
            response = response[0]
        return ActionResult(response.success, response.message or response.response or "")

    async def pjsip_notify(self, endpoint: str, event: str = "check-sync") -> ActionResult:
        """Ask Asterisk to send a SIP NOTIFY to every contact of ``endpoint``."""
        if not _ENDPOINT.fullmatch(endpoint):
            raise AmiError(f"not an endpoint name: {endpoint!r}")
        if event not in NOTIFY_EVENTS:
            raise AmiError(f"unknown event {event!r} (one of {', '.join(NOTIFY_EVENTS)})")
        return await self.send({"Action": "PJSIPNotify", "Endpoint": endpoint, "Variable": NOTIFY_EVENTS[event]})

    async def pjsip_contacts(self) -> list[dict[str, str]]:
        """Every PJSIP contact Asterisk knows (PJSIPShowContacts' ContactList events)."""
        if self._manager is None:
            raise AmiError("not connected")
        future = self._manager.send_action({"Action": "PJSIPShowContacts"})
        try:
            response = await asyncio.wait_for(future, self.settings.timeout)
        except asyncio.TimeoutError:
            raise AmiError(f"no answer to PJSIPShowContacts within {self.settings.timeout:g} s") from None
        messages = response if isinstance(response, list) else [response]
        if not messages[0].success:
            if "no contacts" in (messages[0].message or "").lower():
                return []
            raise AmiError(f"PJSIPShowContacts refused: {messages[0].message or messages[0].response}")
        return [dict(message) for message in messages[1:]]

    async def reload_module(self, module: str) -> ActionResult:
        return await self.send({"Action": "Reload", "Module": module})
