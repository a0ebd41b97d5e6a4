"""Routes: which feature answers which AGI script name, and how results go back.

Shared by the FastAGI server and the classic ``telefeatures-agi`` entry point.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .agi.channel import Channel, play
from .agi.protocol import AgiRequest
from .config import FeatureSettings
from .features.base import Call, FeatureContext, Outcome, Status
from .features.callreturn import CallReturn
from .features.cidblock import CallerIdBlocking
from .features.inbound import RecordInbound
from .features.outbound import OutboundPolicy
from .state.repository import StateRepository, StateUnavailable
from .state.schema import valid_extension

Handler = Callable[[Call], Awaitable[Outcome]]

# How many arguments each route takes (arg1 is always the extension). A comma
# in dialplan data splits AGI() arguments, so more than this means the data
# was not what the dialplan meant to pass: refuse rather than use a part of it.
ARITY = {"inbound": 1, "callreturn": 1, "cidblock/on": 1, "cidblock/off": 1, "cidblock/status": 1,
         "outbound": 2}
ROUTES = tuple(ARITY)
# Routes a person is listening to (a feature code): errors are announced.
SPOKEN = frozenset({"callreturn", "cidblock/on", "cidblock/off", "cidblock/status"})


def route_args(args: tuple[str, ...]) -> tuple[str, ...]:
    """Arguments without trailing empty ones (``AGI(url,${A},${B})`` with B unset)."""
    end = len(args)
    while end and args[end - 1] == "":
        end -= 1
    return args[:end]


def extension_of(request: AgiRequest) -> str | None:
    """The extension a route acts for.

    arg1 when given (the dialplan passes ``${CHANNEL(endpoint)}``); otherwise the
    endpoint part of ``agi_channel`` (``PJSIP/<endpoint>-<hex>``, split on the
    last ``-``). Never the caller ID, which the phone or trunk controls.
    """
    arg = request.arg(1)
    if arg:
        return arg if valid_extension(arg) else None
    channel = request.channel
    tech, sep, rest = channel.partition("/")
    if not sep or tech not in ("PJSIP", "SIP", "IAX2"):
        return None
    endpoint, dash, _ = rest.rpartition("-")
    return endpoint if dash and valid_extension(endpoint) else None


class FeatureApp:
    def __init__(self, settings: FeatureSettings, state: StateRepository):
        self.settings = settings
        self.ctx = FeatureContext.build(settings, state)
        blocking = CallerIdBlocking(self.ctx)
        self.routes: dict[str, Handler] = {
            "inbound": RecordInbound(self.ctx).run,
            "callreturn": CallReturn(self.ctx).run,
            "cidblock/on": blocking.enable,
            "cidblock/off": blocking.disable,
            "cidblock/status": blocking.status,
            "outbound": OutboundPolicy(self.ctx).run,
        }

    async def handle(self, channel: Channel, route: str, extension: str | None = None) -> tuple[str | None, Outcome]:
        """Run one route on one channel; returns (extension, outcome).

        ``extension``: :func:`extension_of` the request, when the caller already
        worked it out (the server does, to log it whatever happens).

        ``ChannelHungUp`` and ``CommandRejected`` propagate: there is no channel
        left to report to, or a bug to log.
        """
        handler = self.routes.get(route)
        request = channel.request
        if handler is None:
            outcome = Outcome(Status.ERROR, "unknown-route")
            extension = None
        elif len(route_args(request.args)) > ARITY[route]:
            outcome = Outcome(Status.REFUSED if route == "outbound" else Status.ERROR, "bad-arguments")
            if route in SPOKEN:
                await play(channel, self.settings.prompts.error)
        else:
            if extension is None:
                extension = extension_of(request)
            call = Call(channel, extension, request.args[1:])
            try:
                outcome = await handler(call)
            except StateUnavailable:
                # Features handle state errors themselves; this is the net under them.
                await play(channel, self.settings.prompts.error)
                outcome = Outcome(Status.ERROR, "state-error")
        await publish(channel, outcome)
        return extension, outcome


async def publish(channel: Channel, outcome: Outcome) -> None:
    """Set TF_DIAL / TF_REASON / TF_STATUS. TF_STATUS goes last: a dialplan that
    sees it knows the rest is there."""
    if outcome.dial is not None:
        await channel.set_variable("TF_DIAL", outcome.dial)
    if outcome.reason:
        await channel.set_variable("TF_REASON", outcome.reason)
    await channel.set_variable("TF_STATUS", outcome.status.value)
