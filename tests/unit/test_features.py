"""Every feature rule, through the real AgiChannel and a real Redis.

The channel is answered by the scripted Asterisk without sockets (the server
tests cover the same routes over TCP).
"""

from __future__ import annotations

import logging

import fakeredis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telefeatures.agi.channel import ChannelHungUp
from telefeatures.app import ROUTES, FeatureApp, extension_of
from telefeatures.config import FeatureSettings, RewriteRule
from telefeatures.features.base import Status
from telefeatures.state.backend import StateBackend
from telefeatures.state.repository import CallerRecord, StateRepository
from telefeatures.state import schema
from telefeatures.state.schema import KeySchema
from tests.support.asterisk_peer import Script, request_for, scripted_channel
from tests.support.redis_server import RedisProcess
from tests.support.callerids import HOSTILE_NUMBERS
from tests.support.redis_server import TF_KEYS

ERROR_PROMPTS = ["sorry", "please-try-call-later"]
ANNOUNCE = ["info-about-last-call", "telephone-number"]
CONFIRM = ["to-call-this-number", "vm-press", "digits/1"]


async def handle(app: FeatureApp, channel, route: str):
    """What the server does with a session: describe it, then handle it."""
    call = app.describe(route, channel.request)
    return call.extension, await app.handle(channel, call)


async def run(app: FeatureApp, route: str, args=(), script: Script | None = None, **fields):
    channel, asterisk = scripted_channel(route, args, script, **fields)
    extension, outcome = await handle(app, channel, route)
    return extension, outcome, asterisk


@pytest.fixture
def repo(backend) -> StateRepository:
    return backend.repository


@pytest.fixture
def app(repo, make_app) -> FeatureApp:
    return make_app(repo)


@pytest.fixture
def down_app(down_backend, make_app) -> FeatureApp:
    return make_app(down_backend.repository)


async def record(repo, ext, number, name="", pres="0"):
    from telefeatures.features.numbers import NumberRules, classify_caller

    await repo.record_caller(ext, classify_caller(number, name, pres, NumberRules()))


def published(asterisk) -> list[str]:
    return [name for name, _ in asterisk.sets if name.startswith("TF_")]


# --------------------------------------------------------------------------- publishing


async def test_tf_status_is_set_last(app, repo):
    await record(repo, "1000", "5551234567")
    _, outcome, ast = await run(app, "callreturn", ["1000"], Script(wait_digit="1"))
    assert outcome.status is Status.OK
    assert published(ast) == ["TF_DIAL", "TF_STATUS"]
    _, _, ast = await run(app, "callreturn", ["1001"])
    assert published(ast) == ["TF_REASON", "TF_STATUS"]


async def test_unknown_route(app):
    ext, outcome, ast = await run(app, "nosuchroute", ["1000"])
    assert ext is None
    assert (outcome.status, outcome.reason) == (Status.ERROR, "unknown-route")
    assert ast.variables == {"TF_STATUS": "ERROR", "TF_REASON": "unknown-route"}
    assert ast.prompts == []


def test_routes_are_all_served(app):
    assert sorted(app.routes) == sorted(ROUTES)


# --------------------------------------------------------------------------- extension resolution


@pytest.mark.parametrize(
    ("args", "channel", "expected"),
    [
        (["1000"], "PJSIP/1001-0000001a", "1000"),  # arg1 wins
        ([], "PJSIP/1001-0000001a", "1001"),
        ([""], "PJSIP/1001-0000001a", "1001"),
        ([], "PJSIP/alice-desk-00000002", "alice-desk"),  # split on the LAST '-'
        ([], "PJSIP/10001-0000ffff", "10001"),  # 5-digit extensions work (unlike ${CHANNEL:4:4})
        ([], "SIP/1002-00000003", "1002"),
        ([], "IAX2/1003-1234", "1003"),
        ([], "Local/1000@phones-00000001;1", None),
        ([], "DAHDI/1-1", None),
        ([], "PJSIP/1000", None),  # no unique suffix
        ([], "PJSIP/-0000001a", None),
        ([], "", None),
        (["10 00"], "PJSIP/1001-0000001a", None),  # a bad arg1 never falls back
        (["1000;x"], "PJSIP/1001-0000001a", None),
        (["1000:cidblock"], "PJSIP/1001-0000001a", None),
        (["*"], "PJSIP/1001-0000001a", None),
        (["x" * 65], "PJSIP/1001-0000001a", None),
        ([], "PJSIP/" + "x" * 65 + "-0000001a", None),
    ],
)
def test_extension_of(args, channel, expected):
    assert extension_of(request_for("outbound", args, channel=channel)) == expected


def test_extension_never_from_caller_id():
    request = request_for("cidblock/on", [], channel="Local/x@y-1;1", callerid="1000")
    assert extension_of(request) is None


@pytest.mark.parametrize("route", ["cidblock/on", "cidblock/off", "cidblock/status", "callreturn"])
async def test_feature_codes_with_invalid_extension(app, repo, route, redis_sync):
    ext, outcome, ast = await run(app, route, ["bad ext"], channel="PJSIP/1000-0000001a")
    assert ext is None
    assert (outcome.status, outcome.reason) == (Status.ERROR, "bad-extension")
    assert ast.prompts == ERROR_PROMPTS
    assert ast.variables["TF_STATUS"] == "ERROR"
    assert redis_sync.keys("*") == []


async def test_extension_taken_from_channel_name(app, repo):
    ext, outcome, ast = await run(app, "cidblock/on", [], channel="PJSIP/alice-desk-0000001a", callerid="1000")
    assert ext == "alice-desk"
    assert await repo.is_blocked("alice-desk")
    assert not await repo.is_blocked("1000")


# --------------------------------------------------------------------------- inbound


async def test_inbound_records_caller(app, repo):
    ext, outcome, ast = await run(app, "inbound", ["1000"], callerid="5551234567", calleridname="Bob Smith")
    assert ext == "1000"
    assert (outcome.status, outcome.reason, outcome.dial) == (Status.OK, "", None)
    assert ast.variables == {"TF_INBOUND": "RING", "TF_STATUS": "OK"}
    assert ast.prompts == []  # the inbound hook never plays anything
    rec = await repo.last_caller("1000")
    assert (rec.number, rec.name, rec.presentation, rec.withheld) == ("5551234567", "Bob Smith", 0, False)
    assert rec.time > 0


@pytest.mark.parametrize("pres", ["32", "33", "34", "35", "67"])
async def test_inbound_restricted_presentation(app, repo, pres):
    _, outcome, ast = await run(app, "inbound", ["1000"], callerid="5551234567", callingpres=pres)
    assert (outcome.status, outcome.reason) == (Status.OK, "withheld-restricted")
    assert ast.variables["TF_REASON"] == "withheld-restricted"
    rec = await repo.last_caller("1000")
    assert rec.withheld and rec.number == "" and rec.presentation == int(pres)


@pytest.mark.parametrize("number", ["anonymous", "unknown", "restricted", "", "Anonymous"])
async def test_inbound_anonymous_numbers(app, repo, number):
    _, outcome, _ = await run(app, "inbound", ["1000"], callerid=number, callingpres="0")
    assert outcome.reason == "withheld-anonymous"
    rec = await repo.last_caller("1000")
    assert rec.withheld and rec.number == ""


@pytest.mark.parametrize("number", HOSTILE_NUMBERS)
async def test_inbound_hostile_caller_id_never_dialable(app, repo, number):
    if any(c in number for c in "\r\n"):
        # Asterisk cannot send CR/LF inside a header value; the closest it gets
        # is the value cut at the line break, which must still be safe.
        number = number.split("\r")[0].split("\n")[0]
    _, outcome, _ = await run(app, "inbound", ["1000"], callerid=number, calleridname=number)
    rec = await repo.last_caller("1000")
    if rec.withheld:
        assert outcome.reason.startswith("withheld-")
    else:  # only the cut-off CR/LF cases leave a plain number
        assert rec.number == "5551234"
    _, outcome, ast = await run(app, "callreturn", ["1000"], Script(wait_digit="1"))
    dial = ast.variables.get("TF_DIAL")
    assert dial is None or dial == "5551234"
    if rec.withheld:
        assert (outcome.status, outcome.reason) == (Status.REFUSED, "withheld")
        assert "TF_DIAL" not in ast.variables


async def test_inbound_hostile_strings_through_agi_header(app, repo):
    """Values straight from the header, including NUL and 1 KB strings."""
    for number in ["5551234&PJSIP/evil", ",", "|", ";", '"', "()", "${EXTEN}", "5551234\x00", "9" * 1024,
                   "٥٥٥١٢٣٤٥٦٧"]:
        _, outcome, _ = await run(app, "inbound", ["1000"], callerid=number, calleridname="x" * 1024)
        rec = await repo.last_caller("1000")
        assert rec.withheld, number
        assert rec.number == "" and rec.name == ""
        assert outcome.status is Status.OK


async def test_inbound_bad_presentation(app, repo):
    _, outcome, _ = await run(app, "inbound", ["1000"], callerid="5551234567", callingpres="junk")
    assert outcome.reason == "withheld-bad-presentation"
    assert (await repo.last_caller("1000")).withheld


async def test_inbound_withheld_call_replaces_older_dialable_one(app, repo):
    await run(app, "inbound", ["1000"], callerid="5551234567")
    await run(app, "inbound", ["1000"], callerid="anonymous")
    _, outcome, ast = await run(app, "callreturn", ["1000"], Script(wait_digit="1"))
    assert outcome.reason == "withheld"
    assert "TF_DIAL" not in ast.variables


async def test_inbound_newer_caller_replaces_older(app, repo):
    await run(app, "inbound", ["1000"], callerid="5551234567", calleridname="Old Name")
    await run(app, "inbound", ["1000"], callerid="2125550000", calleridname="")
    rec = await repo.last_caller("1000")
    assert (rec.number, rec.name) == ("2125550000", "")


async def test_inbound_records_per_extension(app, repo):
    await run(app, "inbound", ["1000"], callerid="5551234567")
    await run(app, "inbound", ["1001"], callerid="2125550000")
    assert (await repo.last_caller("1000")).number == "5551234567"
    assert (await repo.last_caller("1001")).number == "2125550000"


async def test_inbound_invalid_utf8_name(app, repo):
    channel, ast = scripted_channel("inbound", ["1000"], callerid="5551234567", calleridname="B\ufffdb")
    _, outcome = await handle(app, channel, "inbound")
    assert outcome.status is Status.OK
    assert (await repo.last_caller("1000")).name == "B\ufffdb"


async def test_inbound_bad_extension(app, redis_sync):
    _, outcome, ast = await run(app, "inbound", ["../1000"], callerid="5551234567")
    assert (outcome.status, outcome.reason) == (Status.ERROR, "bad-extension")
    assert ast.prompts == []
    assert redis_sync.keys("*") == []


async def test_inbound_redis_down(down_app):
    _, outcome, ast = await run(down_app, "inbound", ["1000"], callerid="5551234567")
    assert (outcome.status, outcome.reason) == (Status.ERROR, "state-error")
    assert ast.variables == {"TF_INBOUND": "RING", "TF_STATUS": "ERROR", "TF_REASON": "state-error"}
    assert ast.prompts == []


# --------------------------------------------------------------------------- *69


async def test_callreturn_no_record(app):
    _, outcome, ast = await run(app, "callreturn", ["1000"], Script(wait_digit="1"))
    assert (outcome.status, outcome.reason, outcome.dial) == (Status.REFUSED, "no-record", None)
    assert ast.prompts == ["info-about-last-call", "im-sorry", "cannot-complete-as-dialed"]
    assert "TF_DIAL" not in ast.variables
    assert ast.variables["TF_STATUS"] == "REFUSED"


async def test_callreturn_withheld(app, repo):
    await record(repo, "1000", "5551234567", pres="32")
    _, outcome, ast = await run(app, "callreturn", ["1000"], Script(wait_digit="1"))
    assert (outcome.status, outcome.reason) == (Status.REFUSED, "withheld")
    assert ast.prompts == ["info-about-last-call", "from-unknown-caller", "unidentified-no-callback"]
    assert ast.said == []
    assert "TF_DIAL" not in ast.variables


async def test_callreturn_confirmed_during_wait(app, repo):
    await record(repo, "1000", "5551234567")
    _, outcome, ast = await run(app, "callreturn", ["1000"], Script(wait_digit="1"))
    assert (outcome.status, outcome.dial) == (Status.OK, "15551234567")
    assert ast.prompts == ANNOUNCE + CONFIRM
    assert ast.said == ["5551234567"]
    assert ast.verbs[-3:] == ["WAIT FOR DIGIT", "SET VARIABLE", "SET VARIABLE"]
    wait = [c for c in ast.commands if c.verb == "WAIT FOR DIGIT"][0]
    assert wait.args == ("5000",)
    assert ast.variables["TF_DIAL"] == "15551234567"
    assert ast.variables["TF_STATUS"] == "OK"


@pytest.mark.parametrize(
    ("pressed_during", "expected_prompts"),
    [
        ("info-about-last-call", ["info-about-last-call"]),
        ("telephone-number", ANNOUNCE),
        ("to-call-this-number", [*ANNOUNCE, "to-call-this-number"]),
        ("digits/1", ANNOUNCE + CONFIRM),
    ],
)
async def test_callreturn_confirm_key_during_prompts(app, repo, pressed_during, expected_prompts):
    await record(repo, "1000", "5551234567")
    _, outcome, ast = await run(app, "callreturn", ["1000"], Script(press={pressed_during: "1"}))
    assert (outcome.status, outcome.dial) == (Status.OK, "15551234567")
    assert ast.prompts == expected_prompts
    assert "WAIT FOR DIGIT" not in ast.verbs
    # every prompt offered the confirm key as escape digit
    assert all(c.args[1] == "1" for c in ast.commands if c.verb == "STREAM FILE")


async def test_callreturn_confirm_key_during_number(app, repo):
    await record(repo, "1000", "+15551234567")
    _, outcome, ast = await run(app, "callreturn", ["1000"], Script(say_press="1"))
    assert (outcome.status, outcome.dial) == (Status.OK, "15551234567")
    assert ast.said == ["15551234567"]  # the number is read without its '+'
    assert ast.prompts == ANNOUNCE


@pytest.mark.parametrize("script", [Script(), Script(wait_digit="2"), Script(wait_digit="*"),
                                    Script(press={"vm-press": "2"})])
async def test_callreturn_declined(app, repo, script):
    await record(repo, "1000", "5551234567")
    _, outcome, ast = await run(app, "callreturn", ["1000"], script)
    assert (outcome.status, outcome.reason, outcome.dial) == (Status.REFUSED, "declined", None)
    assert ast.prompts[-1] == "goodbye"
    assert "TF_DIAL" not in ast.variables


async def test_callreturn_other_confirm_digit(repo, make_app):
    app = make_app(repo, confirm_digit="#", confirm_timeout_ms=3000)
    await record(repo, "1000", "5551234567")
    _, outcome, ast = await run(app, "callreturn", ["1000"], Script(wait_digit="1"))
    assert outcome.reason == "declined"
    _, outcome, ast = await run(app, "callreturn", ["1000"], Script(wait_digit="#"))
    assert outcome.dial == "15551234567"
    assert [c.args for c in ast.commands if c.verb == "WAIT FOR DIGIT"] == [("3000",)]


async def test_callreturn_immediate_mode(repo, make_app):
    app = make_app(repo, callreturn_mode="immediate")
    await record(repo, "1000", "5551234567")
    _, outcome, ast = await run(app, "callreturn", ["1000"])
    assert (outcome.status, outcome.dial) == (Status.OK, "15551234567")
    assert ast.prompts == [] and ast.said == []
    assert ast.variables == {"TF_DIAL": "15551234567", "TF_STATUS": "OK"}


@pytest.mark.parametrize(
    ("stored", "dial"),
    [
        ("5551234567", "15551234567"),
        ("15551234567", "15551234567"),
        ("+15551234567", "15551234567"),
        ("+442071234567", "011442071234567"),
        ("5551234", "5551234"),
    ],
)
async def test_callreturn_rewrite_rules(repo, make_app, stored, dial):
    app = make_app(repo, callreturn_mode="immediate")
    await record(repo, "1000", stored)
    _, outcome, ast = await run(app, "callreturn", ["1000"])
    assert ast.variables["TF_DIAL"] == dial


async def test_callreturn_number_no_rule_matches(app, repo):
    await record(repo, "1000", "1234")  # dialable, but no callback rule takes it
    _, outcome, ast = await run(app, "callreturn", ["1000"], Script(wait_digit="1"))
    assert (outcome.status, outcome.reason) == (Status.REFUSED, "not-dialable")
    assert ast.prompts == ["cannot-complete-as-dialed"]
    assert "TF_DIAL" not in ast.variables


async def test_callreturn_rule_output_not_dialable_is_refused(repo, make_app):
    app = make_app(repo, callreturn_mode="immediate",
                   callback_rules=[RewriteRule(match=r"[0-9]+", rewrite=r"\g<0>&PJSIP/evil")])
    await record(repo, "1000", "5551234567")
    _, outcome, ast = await run(app, "callreturn", ["1000"])
    assert (outcome.status, outcome.reason) == (Status.REFUSED, "not-dialable")
    assert "TF_DIAL" not in ast.variables


async def test_callreturn_tampered_record_never_dials(app, repo, redis_sync):
    """A record written behind our back (old tool, manual HSET) is re-checked."""
    key = KeySchema().last_caller("1000")
    redis_sync.hset(key, mapping={schema.NUMBER: "5551234567&PJSIP/evil", schema.WITHHELD: "0"})
    _, outcome, ast = await run(app, "callreturn", ["1000"], Script(wait_digit="1"))
    assert (outcome.status, outcome.reason) == (Status.REFUSED, "not-dialable")
    assert "TF_DIAL" not in ast.variables
    redis_sync.hset(key, mapping={schema.NUMBER: "5551234567", schema.WITHHELD: "yes"})
    _, outcome, ast = await run(app, "callreturn", ["1000"], Script(wait_digit="1"))
    assert outcome.reason == "withheld"
    redis_sync.delete(key)
    redis_sync.hset(key, mapping={schema.NUMBER: "5551234567"})  # no withheld field at all
    _, outcome, ast = await run(app, "callreturn", ["1000"], Script(wait_digit="1"))
    assert outcome.reason == "withheld"


async def test_callreturn_missing_prompt_is_logged_not_fatal(app, repo, caplog):
    await record(repo, "1000", "5551234567")
    caplog.set_level(logging.WARNING, "telefeatures.agi")
    script = Script(missing_prompts={"info-about-last-call", "vm-press"}, wait_digit="1")
    _, outcome, ast = await run(app, "callreturn", ["1000"], script)
    assert (outcome.status, outcome.dial) == (Status.OK, "15551234567")
    assert ast.prompts == ANNOUNCE + CONFIRM  # it went on past the missing files
    warned = [r.getMessage() for r in caplog.records if r.name == "telefeatures.agi"]
    assert any("info-about-last-call" in m for m in warned)
    assert any("vm-press" in m for m in warned)


async def test_callreturn_hangup_during_wait(app, repo):
    await record(repo, "1000", "5551234567")
    channel, ast = scripted_channel("callreturn", ["1000"], Script(hangup_before=7, wait_digit="1"))
    with pytest.raises(ChannelHungUp):
        await handle(app, channel, "callreturn")
    assert ast.verbs[-1] == "WAIT FOR DIGIT"
    assert channel.hung_up
    assert "TF_DIAL" not in ast.variables


async def test_callreturn_wait_failure_is_a_hangup(app, repo):
    await record(repo, "1000", "5551234567")
    channel, ast = scripted_channel("callreturn", ["1000"], Script(replies={7: ["200 result=-1"]}))
    with pytest.raises(ChannelHungUp):
        await handle(app, channel, "callreturn")
    assert "TF_DIAL" not in ast.variables


async def test_callreturn_redis_down(down_app):
    _, outcome, ast = await run(down_app, "callreturn", ["1000"], Script(wait_digit="1"))
    assert (outcome.status, outcome.reason) == (Status.ERROR, "state-error")
    assert ast.prompts == ERROR_PROMPTS
    assert "TF_DIAL" not in ast.variables


async def test_callreturn_with_configured_prompts(repo, make_app):
    app = make_app(repo, prompts={"callreturn_no_record": ["custom/none"], "error": ["custom/err"]})
    _, _, ast = await run(app, "callreturn", ["1000"])
    assert ast.prompts == ["custom/none"]


# --------------------------------------------------------------------------- *81 / *82 / *83


async def test_cidblock_on_off(app, repo, redis_sync):
    _, outcome, ast = await run(app, "cidblock/on", ["1000"])
    assert outcome.status is Status.OK
    assert ast.prompts == ["activated"]
    assert ast.variables == {"TF_STATUS": "OK"}
    assert redis_sync.get(TF_KEYS.cidblock("1000")) == "1"
    assert await repo.is_blocked("1000")
    assert not await repo.is_blocked("1001")

    _, outcome, ast = await run(app, "cidblock/on", ["1000"])  # idempotent
    assert outcome.status is Status.OK and redis_sync.get(TF_KEYS.cidblock("1000")) == "1"

    _, outcome, ast = await run(app, "cidblock/off", ["1000"])
    assert outcome.status is Status.OK
    assert ast.prompts == ["de-activated"]
    assert redis_sync.exists(TF_KEYS.cidblock("1000")) == 0

    _, outcome, _ = await run(app, "cidblock/off", ["1000"])
    assert outcome.status is Status.OK and not await repo.is_blocked("1000")


async def test_cidblock_state_is_set_before_the_prompt(app, repo):
    # A caller who hangs up during the confirmation prompt still gets the change.
    channel, ast = scripted_channel("cidblock/on", ["1000"], Script(hangup_before=1))
    with pytest.raises(ChannelHungUp):
        await handle(app, channel, "cidblock/on")
    assert await repo.is_blocked("1000")


@pytest.mark.parametrize(("blocked", "word", "prompt"), [(True, "on", "enabled"), (False, "off", "disabled")])
async def test_cidblock_status(app, repo, blocked, word, prompt):
    await repo.set_blocked("1000", blocked)
    _, outcome, ast = await run(app, "cidblock/status", ["1000"])
    assert outcome.status is Status.OK
    assert ast.variables == {"TF_CIDBLOCK": word, "TF_STATUS": "OK"}
    assert ast.prompts == [prompt]
    assert ast.sets[0] == ("TF_CIDBLOCK", word)  # set before the prompt plays


@pytest.mark.parametrize("route", ["cidblock/on", "cidblock/off", "cidblock/status"])
async def test_cidblock_redis_down(down_app, route):
    _, outcome, ast = await run(down_app, route, ["1000"])
    assert (outcome.status, outcome.reason) == (Status.ERROR, "state-error")
    assert ast.prompts == ERROR_PROMPTS
    assert "TF_CIDBLOCK" not in ast.variables


async def test_cidblock_missing_prompt_not_fatal(app, repo):
    _, outcome, ast = await run(app, "cidblock/on", ["1000"], Script(missing_prompts={"activated"}))
    assert outcome.status is Status.OK
    assert await repo.is_blocked("1000")


# --------------------------------------------------------------------------- outbound / *67


async def test_outbound_unblocked(app):
    _, outcome, ast = await run(app, "outbound", ["1000", "5551234567"])
    assert (outcome.status, outcome.dial) == (Status.OK, "5551234567")
    assert ast.sets == [("CALLERID(pres)", "allowed"), ("TF_DIAL", "5551234567"), ("TF_STATUS", "OK")]
    assert ast.prompts == []


async def test_outbound_blocked(app, repo):
    await repo.set_blocked("1000", True)
    _, outcome, ast = await run(app, "outbound", ["1000", "5551234567"])
    assert outcome.status is Status.OK
    assert ast.sets == [("CALLERID(pres)", "prohib"), ("TF_DIAL", "5551234567"), ("TF_STATUS", "OK")]
    # another extension is unaffected
    _, _, ast = await run(app, "outbound", ["1001", "5551234567"])
    assert ast.variables["CALLERID(pres)"] == "allowed"


async def test_star67_withholds_only_that_call(app, repo, redis_sync):
    _, outcome, ast = await run(app, "outbound", ["1000", "*675551234567"])
    assert (outcome.status, outcome.dial) == (Status.OK, "5551234567")
    assert ast.variables["CALLERID(pres)"] == "prohib"
    assert ast.variables["TF_DIAL"] == "5551234567"
    assert redis_sync.keys("*") == []  # nothing persistent changed
    _, _, ast = await run(app, "outbound", ["1000", "5551234567"])
    assert ast.variables["CALLERID(pres)"] == "allowed"


async def test_star67_with_persistent_block(app, repo):
    await repo.set_blocked("1000", True)
    _, _, ast = await run(app, "outbound", ["1000", "*675551234567"])
    assert ast.variables["CALLERID(pres)"] == "prohib"


async def test_star67_works_when_redis_is_down(down_app):
    _, outcome, ast = await run(down_app, "outbound", ["1000", "*675551234567"])
    # *67 does not need the state at all
    assert (outcome.status, outcome.dial) == (Status.OK, "5551234567")
    assert ast.variables["CALLERID(pres)"] == "prohib"


@pytest.mark.parametrize("dialed", ["", "*67", "5551234&PJSIP/evil", "5551234,30", "*67*67", "*69", "12",
                                    "٥٥٥١٢٣٤", "5551234|x", "${EXTEN}"])
async def test_outbound_refuses_invalid_numbers(app, dialed):
    _, outcome, ast = await run(app, "outbound", ["1000", dialed])
    assert (outcome.status, outcome.reason, outcome.dial) == (Status.REFUSED, "invalid-number", None)
    assert ast.variables == {"TF_STATUS": "REFUSED", "TF_REASON": "invalid-number"}


async def test_outbound_without_dialed_argument(app):
    _, outcome, ast = await run(app, "outbound", ["1000"])
    assert outcome.reason == "invalid-number"
    assert "TF_DIAL" not in ast.variables


async def test_outbound_legacy_mode(repo, make_app):
    app = make_app(repo, legacy_block=True)
    await repo.set_blocked("1000", True)
    _, _, ast = await run(app, "outbound", ["1000", "5551234567"])
    assert ast.sets[:3] == [("CALLERID(pres)", "prohib"), ("CALLERID(name)", "Unavailable"),
                            ("CALLERID(num)", "0-1-999")]
    _, _, ast = await run(app, "outbound", ["1001", "5551234567"])
    assert ast.variables["CALLERID(pres)"] == "allowed"
    assert "CALLERID(num)" not in ast.variables


async def test_outbound_legacy_values_configurable(repo, make_app):
    app = make_app(repo, legacy_block=True, legacy_block_name="Private", legacy_block_number="0000")
    _, _, ast = await run(app, "outbound", ["1000", "*675551234567"])
    assert ast.variables["CALLERID(name)"] == "Private"
    assert ast.variables["CALLERID(num)"] == "0000"


async def test_outbound_site_caller_id(repo, make_app):
    app = make_app(repo, outbound_cid_number="2125550100", outbound_cid_name="Acme, Inc.")
    _, _, ast = await run(app, "outbound", ["1000", "5551234567"])
    assert ast.sets[:3] == [("CALLERID(pres)", "allowed"), ("CALLERID(num)", "2125550100"),
                            ("CALLERID(name)", "Acme, Inc.")]
    # a withheld call does not get the site number
    await repo.set_blocked("1000", True)
    _, _, ast = await run(app, "outbound", ["1000", "5551234567"])
    assert ast.variables == {"CALLERID(pres)": "prohib", "TF_DIAL": "5551234567", "TF_STATUS": "OK"}


async def test_outbound_custom_block_codes(repo, make_app):
    app = make_app(repo, per_call_block_codes=["*67", "141"])
    _, outcome, ast = await run(app, "outbound", ["1000", "1415551234567"])
    assert outcome.dial == "5551234567"
    assert ast.variables["CALLERID(pres)"] == "prohib"


async def test_outbound_redis_down_withholds_by_default(down_app):
    _, outcome, ast = await run(down_app, "outbound", ["1000", "5551234567"])
    assert (outcome.status, outcome.reason, outcome.dial) == (Status.ERROR, "state-error", "5551234567")
    assert ast.variables == {"CALLERID(pres)": "prohib", "TF_DIAL": "5551234567", "TF_REASON": "state-error",
                             "TF_STATUS": "ERROR"}
    assert ast.prompts == []  # outbound never plays the error prompt: the call goes out


async def test_outbound_redis_down_allow_option(down_backend, make_app):
    app = make_app(down_backend.repository, on_state_error="allow")
    _, outcome, ast = await run(app, "outbound", ["1000", "5551234567"])
    assert (outcome.status, outcome.reason) == (Status.ERROR, "state-error")
    assert ast.variables["CALLERID(pres)"] == "allowed"
    assert ast.variables["TF_DIAL"] == "5551234567"


async def test_outbound_bad_extension_still_dials(app):
    _, outcome, ast = await run(app, "outbound", ["bad ext", "5551234567"])
    assert (outcome.status, outcome.reason, outcome.dial) == (Status.ERROR, "bad-extension", "5551234567")
    assert ast.variables["CALLERID(pres)"] == "prohib"


async def test_outbound_extension_from_channel(app, repo):
    await repo.set_blocked("1001", True)
    _, outcome, ast = await run(app, "outbound", ["", "5551234567"], channel="PJSIP/1001-0000001a")
    assert ast.variables["CALLERID(pres)"] == "prohib"


# --------------------------------------------------------------------------- Redis stops and comes back


async def test_redis_stopped_then_restarted(tmp_path, make_app):
    redis_proc = RedisProcess(tmp_path / "r").start()
    backend = StateBackend.open(redis_proc.url, tmp_path / "state", timeout=0.5)
    try:
        app = make_app(backend.repository)
        await backend.repository.set_blocked("1000", True)
        _, outcome, ast = await run(app, "outbound", ["1000", "5551234567"])
        assert outcome.status is Status.OK and ast.variables["CALLERID(pres)"] == "prohib"

        redis_proc.stop()
        _, outcome, ast = await run(app, "outbound", ["1000", "5551234567"])
        assert (outcome.status, outcome.reason) == (Status.ERROR, "state-error")
        assert ast.variables["CALLERID(pres)"] == "prohib"
        _, outcome, ast = await run(app, "cidblock/off", ["1000"])
        assert outcome.reason == "state-error" and ast.prompts == ERROR_PROMPTS

        redis_proc.start()  # same socket, empty data
        _, outcome, ast = await run(app, "outbound", ["1000", "5551234567"])
        assert outcome.status is Status.OK
        assert ast.variables["CALLERID(pres)"] == "allowed"
    finally:
        await backend.close()
        redis_proc.stop()


# --------------------------------------------------------------------------- properties (fakeredis: fast)


@pytest.fixture
def fake_app():
    client = fakeredis.FakeAsyncRedis()
    return FeatureApp(FeatureSettings(callreturn_mode="immediate"), StateRepository(client, KeySchema()))


NUMBERISH = st.one_of(
    st.text(alphabet="0123456789+*#&,|;$() -\"'٥５", max_size=24),
    st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=30),
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(number=NUMBERISH, pres=st.sampled_from(["0", "1", "3", "32", "35", "67", "x"]))
async def test_property_inbound_then_callreturn_dials_only_digits(fake_app, number, pres):
    await run(fake_app, "inbound", ["1000"], callerid=number, callingpres=pres)
    _, outcome, ast = await run(fake_app, "callreturn", ["1000"])
    dial = ast.variables.get("TF_DIAL")
    if dial is not None:
        assert dial.isascii() and dial.isdigit()
        assert pres in ("0", "1", "3")
        assert outcome.status is Status.OK
    else:
        assert outcome.status is Status.REFUSED


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dialed=NUMBERISH)
async def test_property_outbound_dials_only_digits(fake_app, dialed):
    _, outcome, ast = await run(fake_app, "outbound", ["1000", dialed])
    dial = ast.variables.get("TF_DIAL")
    if dial is not None:
        assert dial.removeprefix("+").isascii() and dial.removeprefix("+").isdigit()
        assert ast.variables["CALLERID(pres)"] == ("prohib" if dialed.startswith("*67") else "allowed")
    else:
        assert outcome.reason == "invalid-number"


def test_caller_record_fields_round_trip():
    rec = CallerRecord("5551234567", "Bob", 0, 1234.5, False)
    assert CallerRecord.from_fields(rec.to_fields()) == rec


# --------------------------------------------------------------------------- argument count


@pytest.mark.parametrize(
    ("route", "args", "status"),
    [
        ("outbound", ["1000", "555", "1234"], "REFUSED"),  # "555,1234" split by AGI() on the comma
        ("cidblock/on", ["1000", "x"], "ERROR"),
        ("callreturn", ["1000", "5551234567"], "ERROR"),
        ("inbound", ["1000", ""], None),  # trailing empty arguments are harmless
        ("outbound", ["1000", "5551234567", "", ""], None),
    ],
)
async def test_extra_arguments_are_refused(app, repo, redis_sync, route, args, status):
    _, outcome, ast = await run(app, route, args, callerid="2125551234")
    if status is None:
        assert outcome.status is Status.OK
        return
    assert (outcome.status.value, outcome.reason) == (status, "bad-arguments")
    assert "TF_DIAL" not in ast.variables
    assert "CALLERID(pres)" not in ast.variables
    assert redis_sync.keys("*") == []
    # A person dialled a feature code: they hear why nothing happened.
    assert ast.prompts == (["sorry", "please-try-call-later"] if route != "outbound" else [])


# --------------------------------------------------------------------------- tenants


async def run_for_tenant(app: FeatureApp, route: str, tenant: str, args=(), **fields):
    channel, asterisk = scripted_channel(f"{route}?tenant={tenant}", args, **fields)
    extension, outcome = await handle(app, channel, route)
    return extension, outcome, asterisk


async def test_tenants_keep_their_own_state(app, repo, redis_sync):
    _, outcome, _ = await run_for_tenant(app, "cidblock/on", "acme", ["1000"])
    assert outcome.status is Status.OK
    assert redis_sync.get("tf:{acme:1000}:cidblock") == "1"
    assert redis_sync.get("tf:{1000}:cidblock") is None
    # the same extension number of another tenant, and of no tenant, still shows its ID
    for tenant in ("globex", ""):
        _, outcome, ast = await run_for_tenant(app, "outbound", tenant, ["1000", "2125551234"])
        assert outcome.status is Status.OK and ast.variables["CALLERID(pres)"] == "allowed"
    _, outcome, ast = await run_for_tenant(app, "outbound", "acme", ["1000", "2125551234"])
    assert outcome.status is Status.OK and ast.variables["CALLERID(pres)"] == "prohib"
    # inbound and *69 per tenant
    await run_for_tenant(app, "inbound", "globex", ["1000"], callerid="2125559876")
    assert redis_sync.hget("tf:{globex:1000}:lastcaller", "number") == "2125559876"
    _, outcome, _ = await run_for_tenant(app, "callreturn", "acme", ["1000"])
    assert (outcome.status, outcome.reason) == (Status.REFUSED, "no-record")


@pytest.mark.parametrize("tenant", ["{acme}", "a:b", "a%20b", "a}", "-x", "x" * 33])
async def test_invalid_tenant_is_refused_and_outbound_withholds(app, redis_sync, tenant):
    _, outcome, ast = await run_for_tenant(app, "cidblock/on", tenant, ["1000"])
    assert (outcome.status, outcome.reason) == (Status.ERROR, "bad-extension")
    assert ast.prompts == list(app.settings.prompts.error)
    _, outcome, ast = await run_for_tenant(app, "outbound", tenant, ["1000", "2125551234"])
    assert outcome.status is Status.ERROR and ast.variables["CALLERID(pres)"] == "prohib"
    assert outcome.dial == "2125551234"
    assert redis_sync.keys("*") == []
