"""A scripted Asterisk Manager Interface peer on 127.0.0.1 for unit tests.

Speaks the AMI wire format (banner, CRLF-separated headers, blank line
between messages) and answers Login, PJSIPNotify, PJSIPShowContacts and Reload the way
Asterisk's manager.c and res_pjsip_notify.c do. Runs its own event loop in a
thread so both async tests and CLI tests (which call asyncio.run) can use it.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field


@dataclass
class FakeAmi:
    username: str = "tf"
    secret: str = "s3cret"
    endpoints: set[str] = field(default_factory=set)
    # endpoints with a contact (a registered phone); None: every endpoint
    registered: set[str] | None = None
    answer_login: bool = True
    answer_actions: bool = True
    reload_ok: bool = True
    close_after_login: bool = False
    actions: list[list[tuple[str, str]]] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def __enter__(self) -> FakeAmi:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)

    def actions_named(self, name: str) -> list[list[tuple[str, str]]]:
        return [a for a in self.actions if dict(a).get("Action") == name]

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        server.close()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        try:
            while True:
                block = await reader.readuntil(b"\r\n\r\n")
                headers = [tuple(line.split(": ", 1)) for line in block.decode().split("\r\n") if ": " in line]
                self.actions.append(headers)
                reply = self._answer(dict(headers))
                if reply is None:
                    continue
                writer.write(reply.encode())
                await writer.drain()
                if dict(headers).get("Action") == "Login" and (self.close_after_login or "Error" in reply):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    def _answer(self, headers: dict[str, str]) -> str | None:
        action, action_id = headers.get("Action"), headers.get("ActionID", "")

        def response(status: str, message: str) -> str:
            return f"Response: {status}\r\nActionID: {action_id}\r\nMessage: {message}\r\n\r\n"

        if action == "Login":
            if not self.answer_login:
                return None
            if headers.get("Username") == self.username and headers.get("Secret") == self.secret:
                return response("Success", "Authentication accepted") + "Event: FullyBooted\r\nStatus: Fully Booted\r\n\r\n"
            return response("Error", "Authentication failed")
        if not self.answer_actions:
            return None
        if action == "PJSIPNotify":
            endpoint = headers.get("Endpoint", "")
            if endpoint in self.endpoints:
                return response("Success", "NOTIFY sent")
            return response("Error", f"Unable to retrieve endpoint {endpoint}")
        if action == "PJSIPShowContacts":
            registered = sorted(self.endpoints if self.registered is None else self.registered)
            if not registered:
                return response("Error", "No Contacts found")
            reply = (f"Response: Success\r\nActionID: {action_id}\r\nEventList: start\r\n"
                     "Message: A listing of Contacts follows, presented as ContactList events\r\n\r\n")
            for endpoint in registered:
                reply += (f"Event: ContactList\r\nActionID: {action_id}\r\nEndpoint: {endpoint}\r\n"
                          f"Uri: sip:{endpoint}@127.0.0.1:5060\r\nStatus: Reachable\r\n\r\n")
            return reply + (f"Event: ContactListComplete\r\nActionID: {action_id}\r\nEventList: Complete\r\n"
                            f"ListItems: {len(registered)}\r\n\r\n")
        if action == "Reload":
            return response("Success", "Module Reloaded") if self.reload_ok else response(
                "Error", "No such module")
        return response("Error", "Invalid/unknown command")
