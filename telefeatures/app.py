"""The feature application: which feature answers which route, and the one
place that writes the result variables.

Given to the FastAGI server and to the classic ``telefeatures-agi`` entry point
as their session handler (see :mod:`telefeatures.service`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .agi.channel import Channel, play
from .agi.protocol import AgiRequest
from .config import FeatureSettings
from .features.anonreject import AnonymousRejection
from .features.base import Call, FeatureContext, Outcome, Status
from .features.callblock import CallBlocking
from .features.callreturn import CallReturn
from .features.cidblock import CallerIdBlocking
from .features.inbound import RecordInbound
from .features.outbound import OutboundPolicy
from .features.ringhook import RecordRung
from .state.repository import StateRepository, StateUnavailable
from .state.schema import valid_extension, valid_tenant

Handler = Callable[[Call], Awaitable[Outcome]]


@dataclass(frozen=True, slots=True)
class Route:
    """One route, ``agi://host/<name>``.

    ``arity``: how many arguments it takes (arg1 is always the extension). A
    comma in dialplan data splits AGI() arguments, so more than this means the
    data was not what the dialplan meant to pass: refuse rather than use a part
    of it. ``spoken``: a person is listening (a feature code), so errors are
    announced. ``feature`` and ``method``: the feature class (one instance per
    app, shared by its routes) and its method that answers. ``bad_arguments``:
    the status given when there are too many arguments.
    """

    name: str
    arity: int
    spoken: bool
    feature: type
    method: str = "run"
    bad_arguments: Status = Status.ERROR


# Every route served. A new feature adds its lines here.
ROUTE_TABLE: tuple[Route, ...] = (
    Route("inbound", 1, spoken=False, feature=RecordInbound),
    Route("callreturn", 1, spoken=True, feature=CallReturn),
    Route("cidblock/on", 1, spoken=True, feature=CallerIdBlocking, method="enable"),
    Route("cidblock/off", 1, spoken=True, feature=CallerIdBlocking, method="disable"),
    Route("cidblock/status", 1, spoken=True, feature=CallerIdBlocking, method="status"),
    Route("outbound", 2, spoken=False, feature=OutboundPolicy, bad_arguments=Status.REFUSED),
    Route("callblock/last", 1, spoken=True, feature=CallBlocking, method="block_last"),
    Route("callblock/clear", 1, spoken=True, feature=CallBlocking, method="clear"),
    Route("anonreject/on", 1, spoken=True, feature=AnonymousRejection, method="enable"),
    Route("anonreject/off", 1, spoken=True, feature=AnonymousRejection, method="disable"),
    # Dial's pre-dial handler (tf-ring-hook): arg2 is 1 for a call from a trunk.
    Route("ringhook", 2, spoken=False, feature=RecordRung),
)
ROUTES = tuple(route.name for route in ROUTE_TABLE)
# Channel technologies whose channel name carries the endpoint (PJSIP/<endpoint>-<hex>).
ENDPOINT_CHANNELS = ("PJSIP", "SIP", "IAX2")
# Set on phone endpoints (``set_var=__TF_EXTENSION=<ext>`` in the generated
# PJSIP include) and inherited by the Local channels their calls create; an
# admin's dialplan may set it.
EXTENSION_VARIABLE = "TF_EXTENSION"


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
    if not sep or tech not in ENDPOINT_CHANNELS:
        return None
    endpoint, dash, _ = rest.rpartition("-")
    return endpoint if dash and valid_extension(endpoint) else None


def extension_from_variable(request: AgiRequest) -> bool:
    """True when the extension must come from ``TF_EXTENSION``: no arg1, and a
    channel that names no endpoint (``Local/…``, ``DAHDI/…``)."""
    return not request.arg(1) and request.channel.partition("/")[0] not in ENDPOINT_CHANNELS


async def extension_from_channel(channel: Channel) -> str | None:
    """``TF_EXTENSION`` read from the channel (``GET VARIABLE``: the channel's
    own or inherited value). A value that is not a valid extension is refused
    (None), like a bad arg1."""
    value = await channel.get_variable(EXTENSION_VARIABLE)
    return value if value and valid_extension(value) else None


class BadTenant(ValueError):
    """The dialplan passed a tenant name that is not valid."""


def tenant_of(request: AgiRequest) -> str | None:
    """The tenant of this call: the ``tenant`` parameter of the AGI script
    (``agi://host/route?tenant=${TF_TENANT}``, from the dialplan and the
    endpoint's ``set_var=TF_TENANT=...``), None when absent or empty. Never
    from caller data. Raises :class:`BadTenant` for an invalid name."""
    tenant = request.query.get("tenant", "")
    if not tenant:
        return None
    if not valid_tenant(tenant):
        raise BadTenant(tenant)
    return tenant


@dataclass(slots=True)
class RoutedCall:
    """A session as the app described it: its route (None: unknown) and the
    tenant and extension it acts for, worked out once from the header - except
    that with ``ask_channel`` (no arg1, no endpoint) the extension is read from
    the channel's ``TF_EXTENSION`` when the session runs."""

    route: Route | None
    handler: Handler | None
    extension: str | None
    tenant: str | None = None
    ask_channel: bool = False

    @property
    def route_label(self) -> str:
        return self.route.name if self.route is not None else "unknown"


class FeatureApp:
    """The session handler: describe a session, run its feature, publish the outcome."""

    def __init__(self, settings: FeatureSettings, state: StateRepository, table: tuple[Route, ...] = ROUTE_TABLE):
        self.settings = settings
        self.ctx = FeatureContext.build(settings, state)
        features: dict[type, object] = {}
        self.routes: dict[str, tuple[Route, Handler]] = {}
        for route in table:
            feature = features.get(route.feature)
            if feature is None:
                feature = features[route.feature] = route.feature(self.ctx)
            self.routes[route.name] = (route, getattr(feature, route.method))

    def describe(self, route: str, request: AgiRequest) -> RoutedCall:
        entry = self.routes.get(route)
        if entry is None:
            return RoutedCall(None, None, None)
        try:
            tenant = tenant_of(request)
        except BadTenant:
            # Treated like an unusable extension: the feature answers with its
            # error (outbound: the on_state_error presentation).
            return RoutedCall(entry[0], entry[1], None)
        extension = extension_of(request)
        return RoutedCall(entry[0], entry[1], extension, tenant,
                          ask_channel=extension is None and extension_from_variable(request))

    async def handle(self, channel: Channel, call: RoutedCall) -> Outcome:
        """Run the described route on ``channel`` and publish its outcome.

        ``ChannelHungUp`` and ``CommandRejected`` propagate: there is no channel
        left to report to, or a bug to log.
        """
        outcome = await self._run(channel, call)
        await publish(channel, outcome)
        return outcome

    async def _run(self, channel: Channel, call: RoutedCall) -> Outcome:
        route = call.route
        if route is None:
            return Outcome(Status.ERROR, "unknown-route")
        request = channel.request
        if len(route_args(request.args)) > route.arity:
            if route.spoken:
                await play(channel, self.settings.prompts.error)
            return Outcome(route.bad_arguments, "bad-arguments")
        if call.ask_channel:
            call.extension, call.ask_channel = await extension_from_channel(channel), False
        try:
            return await call.handler(Call(channel, call.extension, request.args[1:], call.tenant))
        except StateUnavailable:
            # Features handle state errors themselves; this is the net under them.
            await play(channel, self.settings.prompts.error)
            return Outcome(Status.ERROR, "state-error")


async def publish(channel: Channel, outcome: Outcome) -> None:
    """Write what the feature decided: its own variables (caller-ID
    presentation, TF_CIDBLOCK), then its announcement, then TF_DIAL /
    TF_REASON / TF_STATUS. TF_STATUS goes last: a dialplan that sees it knows
    the rest is there."""
    for name, value in outcome.variables:
        await channel.set_variable(name, value)
    if outcome.announce:
        await play(channel, outcome.announce)
    if outcome.dial is not None:
        await channel.set_variable("TF_DIAL", outcome.dial)
    if outcome.reason:
        await channel.set_variable("TF_REASON", outcome.reason)
    await channel.set_variable("TF_STATUS", outcome.status.value)
