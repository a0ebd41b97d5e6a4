"""Block the last caller (*60 / *80), anonymous call rejection (*77 / *87),
inbound RING/REJECT, the ring-group pre-dial hook and TF_EXTENSION: every rule
through the real AgiChannel (scripted Asterisk) and a real Redis."""

from __future__ import annotations

import time

import pytest

from telefeatures.features.base import Status
from telefeatures.features.numbers import NumberRules, anonymity, classify_caller, parse_presentation
from telefeatures.state.repository import CallerRecord
from tests.support.asterisk_peer import Script, scripted_channel
from tests.support.callerids import HOSTILE_NUMBERS
from tests.support.redis_server import TF_KEYS

ERROR_PROMPTS = ["sorry", "please-try-call-later"]
CALLER = "5551234567"
LISTED = TF_KEYS.reject_list("1000")


async def run(app, route, args=(), script=None, tenant=None, **fields):
    """What the server does with a session: describe it, then handle it."""
    script_name = route if tenant is None else f"{route}?tenant={tenant}"
    channel, asterisk = scripted_channel(script_name, args, script, **fields)
    call = app.describe(route, channel.request)
    outcome = await app.handle(channel, call)
    return call.extension, outcome, asterisk


@pytest.fixture
def repo(backend):
    return backend.repository


@pytest.fixture
def app(repo, make_app):
    return make_app(repo)


@pytest.fixture
def down_app(down_backend, make_app):
    return make_app(down_backend.repository)


async def last_call_from(repo, ext, number, name="", pres="0"):
    await repo.record_caller(ext, classify_caller(number, name, pres, NumberRules()))


# --------------------------------------------------------------------------- who is anonymous


@pytest.mark.parametrize(
    ("number", "pres", "expected"),
    [
        (CALLER, "0", None),
        (CALLER, "3", None),
        (CALLER, "32", "withheld"),  # prohib_not_screened
        (CALLER, "35", "withheld"),  # prohib
        (CALLER, "prohib", "withheld"),
        (CALLER, "96", "withheld"),  # 0x60: reserved, counted as restricted
        (CALLER, "67", "unavailable"),  # unavailable: ring unless configured
        (CALLER, "unavailable", "unavailable"),
        ("anonymous", "0", "withheld"),
        ("Anonymous", "0", "withheld"),
        (" private ", "0", "withheld"),
        ("restricted", "0", "withheld"),
        ("withheld", "0", "withheld"),
        ("unknown", "0", "unavailable"),
        ("unavailable", "0", "unavailable"),
        ("", "0", "unavailable"),
        ("anonymous", "67", "withheld"),
        ("anonymous", "garbage", "withheld"),  # the number still counts
        (CALLER, "garbage", None),
    ],
)
def test_anonymity(number, pres, expected):
    assert anonymity(number, pres) == expected


@pytest.mark.parametrize(("raw", "value"), [("0", 0), ("35", 35), ("prohib", 35), ("allowed", 3),
                                             ("allowed_not_screened", 0), ("unavailable", 67), ("x", None),
                                             ("256", None), ("-1", None)])
def test_presentation_by_number_or_name(raw, value):
    assert parse_presentation(raw) == value


# --------------------------------------------------------------------------- inbound decides


async def test_unlisted_caller_rings_and_is_recorded(app, repo):
    _, outcome, ast = await run(app, "inbound", ["1000"], callerid=CALLER)
    assert (outcome.status, outcome.reason) == (Status.OK, "")
    assert ast.variables == {"TF_INBOUND": "RING", "TF_STATUS": "OK"}
    assert ast.sets[-1] == ("TF_STATUS", "OK")  # TF_STATUS last
    assert (await repo.last_caller("1000")).number == CALLER


async def test_listed_caller_is_rejected_and_does_not_replace_the_last_caller(app, repo, redis_sync):
    await last_call_from(repo, "1000", "5559990000")
    await repo.add_rejected_number("1000", CALLER, 1.7e9, 20)
    _, outcome, ast = await run(app, "inbound", ["1000"], callerid=CALLER, calleridname="Pest")
    assert (outcome.status, outcome.reason) == (Status.OK, "blocked-caller")
    assert ast.variables == {"TF_INBOUND": "REJECT", "TF_REASON": "blocked-caller", "TF_STATUS": "OK"}
    assert ast.prompts == []  # the dialplan plays the rejection, not the server
    assert (await repo.last_caller("1000")).number == "5559990000"
    rejected = redis_sync.hgetall(TF_KEYS.last_rejected("1000"))
    assert rejected["number"] == CALLER and rejected["reason"] == "blocked-caller" and rejected["name"] == "Pest"
    assert float(rejected["time"]) > 1.7e9


async def test_reject_list_is_per_extension(app, repo):
    await repo.add_rejected_number("1001", CALLER, 1.7e9, 20)
    _, _, ast = await run(app, "inbound", ["1000"], callerid=CALLER)
    assert ast.variables["TF_INBOUND"] == "RING"


@pytest.mark.parametrize(("number", "pres"), [("anonymous", "0"), ("private", "0"), ("restricted", "0"),
                                              (CALLER, "32"), (CALLER, "35"), ("unknown", "35")])
async def test_anonymous_caller_rejected_while_anonreject_is_on(app, repo, number, pres):
    await last_call_from(repo, "1000", "5559990000")
    await repo.set_anon_reject("1000", True)
    _, outcome, ast = await run(app, "inbound", ["1000"], callerid=number, callingpres=pres)
    assert (outcome.status, outcome.reason) == (Status.OK, "anonymous")
    assert ast.variables["TF_INBOUND"] == "REJECT"
    assert (await repo.last_caller("1000")).number == "5559990000"
    assert (await repo.snapshot("1000")).last_rejected.reason == "anonymous"


@pytest.mark.parametrize(("number", "pres"), [("anonymous", "0"), (CALLER, "35"), ("unknown", "67")])
async def test_anonymous_caller_rings_while_anonreject_is_off(app, repo, number, pres):
    _, outcome, ast = await run(app, "inbound", ["1000"], callerid=number, callingpres=pres)
    assert ast.variables["TF_INBOUND"] == "RING"
    assert (await repo.last_caller("1000")).withheld


@pytest.mark.parametrize(("number", "pres"), [("unknown", "0"), ("unavailable", "0"), ("", "0"), (CALLER, "67")])
async def test_unavailable_caller_rings_unless_configured(repo, make_app, number, pres):
    await repo.set_anon_reject("1000", True)
    _, outcome, ast = await run(make_app(repo), "inbound", ["1000"], callerid=number, callingpres=pres)
    assert ast.variables["TF_INBOUND"] == "RING"
    strict = make_app(repo, anonreject_unavailable=True)
    _, outcome, ast = await run(strict, "inbound", ["1000"], callerid=number, callingpres=pres)
    assert (ast.variables["TF_INBOUND"], outcome.reason) == ("REJECT", "anonymous")


async def test_shown_number_rings_while_anonreject_is_on(app, repo):
    await repo.set_anon_reject("1000", True)
    _, _, ast = await run(app, "inbound", ["1000"], callerid=CALLER)
    assert ast.variables["TF_INBOUND"] == "RING"


@pytest.mark.parametrize("number", HOSTILE_NUMBERS)
async def test_hostile_caller_ids_are_never_matched_or_stored(app, repo, redis_sync, number):
    await repo.add_rejected_number("1000", CALLER, 1.7e9, 20)
    _, _, ast = await run(app, "inbound", ["1000"], callerid=number.replace("\r", "").replace("\n", "")
                          .replace("\x00", ""))
    assert ast.variables["TF_INBOUND"] == "RING"
    assert redis_sync.zrange(LISTED, 0, -1) == [CALLER]
    assert redis_sync.exists(TF_KEYS.last_rejected("1000")) == 0


async def test_inbound_fails_open(down_app):
    _, outcome, ast = await run(down_app, "inbound", ["1000"], callerid="anonymous")
    assert (outcome.status, outcome.reason) == (Status.ERROR, "state-error")
    assert ast.variables["TF_INBOUND"] == "RING"


async def test_inbound_bad_extension_rings(app):
    _, outcome, ast = await run(app, "inbound", ["10 00"], callerid=CALLER)
    assert outcome.reason == "bad-extension" and ast.variables["TF_INBOUND"] == "RING"


# --------------------------------------------------------------------------- *60 block the last caller


ANNOUNCE = ["privacy-to-blacklist-last-caller", "if-correct-press", "digits/1"]


async def test_star60_blocks_the_announced_caller(app, repo):
    await last_call_from(repo, "1000", CALLER)
    before = time.time()
    _, outcome, ast = await run(app, "callblock/last", ["1000"], Script(wait_digit="1"))
    assert outcome.status is Status.OK
    assert ast.prompts == ANNOUNCE + ["added"]
    assert ast.said == [CALLER]
    [(number, added)] = await repo.reject_list("1000")
    assert number == CALLER and before - 1 <= added <= time.time() + 1


async def test_star60_plus_number_announced_without_the_plus(app, repo):
    await last_call_from(repo, "1000", "+442071234567")
    _, outcome, ast = await run(app, "callblock/last", ["1000"], Script(wait_digit="1"))
    assert ast.said == ["442071234567"]
    assert [n for n, _ in await repo.reject_list("1000")] == ["+442071234567"]


async def test_star60_confirm_key_during_the_announcement(app, repo):
    await last_call_from(repo, "1000", CALLER)
    _, outcome, ast = await run(app, "callblock/last", ["1000"],
                                Script(press={"privacy-to-blacklist-last-caller": "1"}))
    assert outcome.status is Status.OK and ast.said == []
    assert len(await repo.reject_list("1000")) == 1


@pytest.mark.parametrize("script", [Script(), Script(wait_digit="2")])
async def test_star60_declined_stores_nothing(app, repo, script):
    await last_call_from(repo, "1000", CALLER)
    _, outcome, ast = await run(app, "callblock/last", ["1000"], script)
    assert (outcome.status, outcome.reason) == (Status.REFUSED, "declined")
    assert ast.prompts[-1] == "cancelled"
    assert await repo.reject_list("1000") == []


async def test_star60_no_record(app, repo):
    _, outcome, ast = await run(app, "callblock/last", ["1000"], Script(wait_digit="1"))
    assert (outcome.status, outcome.reason) == (Status.REFUSED, "no-record")
    assert ast.prompts == ["im-sorry", "cannot-complete-as-dialed"]


@pytest.mark.parametrize(("number", "pres"), [("anonymous", "0"), (CALLER, "35"), ("5551234&PJSIP/evil", "0")])
async def test_star60_withheld_caller_cannot_be_blocked(app, repo, number, pres):
    await last_call_from(repo, "1000", number, pres=pres)
    _, outcome, ast = await run(app, "callblock/last", ["1000"], Script(wait_digit="1"))
    assert (outcome.status, outcome.reason) == (Status.REFUSED, "withheld")
    assert ast.prompts == ["privacy-to-blacklist-last-caller", "from-unknown-caller", "feature-not-avail-line"]
    assert ast.said == [] and await repo.reject_list("1000") == []


@pytest.mark.parametrize("number", HOSTILE_NUMBERS)
async def test_star60_planted_record_is_never_announced_or_stored(app, repo, redis_sync, number):
    """A record written behind telefeatures' back (withheld=0, any number)."""
    redis_sync.hset(TF_KEYS.last_caller("1000"), mapping={"number": number, "withheld": "0", "pres": "0",
                                                       "time": "1", "name": "", "reason": ""})
    _, outcome, ast = await run(app, "callblock/last", ["1000"], Script(wait_digit="1"))
    assert (outcome.status, outcome.reason) == (Status.REFUSED, "withheld")
    assert ast.said == [] and redis_sync.exists(LISTED) == 0


async def test_star60_full_list_drops_the_oldest(repo, make_app):
    app = make_app(repo, callblock_max_entries=3)
    for i, number in enumerate(["5550000001", "5550000002", "5550000003"]):
        await repo.add_rejected_number("1000", number, 1.7e9 + i, 3)
    await last_call_from(repo, "1000", CALLER)
    _, outcome, _ = await run(app, "callblock/last", ["1000"], Script(wait_digit="1"))
    assert outcome.status is Status.OK
    assert [n for n, _ in await repo.reject_list("1000")] == ["5550000002", "5550000003", CALLER]


async def test_star60_twice_keeps_the_first_time(app, repo):
    await repo.add_rejected_number("1000", CALLER, 1.7e9, 20)
    await last_call_from(repo, "1000", CALLER)
    _, outcome, _ = await run(app, "callblock/last", ["1000"], Script(wait_digit="1"))
    assert outcome.status is Status.OK
    assert await repo.reject_list("1000") == [(CALLER, 1.7e9)]


async def test_star60_redis_down(down_app):
    _, outcome, ast = await run(down_app, "callblock/last", ["1000"], Script(wait_digit="1"))
    assert (outcome.status, outcome.reason) == (Status.ERROR, "state-error")
    assert ast.prompts == ERROR_PROMPTS


# --------------------------------------------------------------------------- *80 clear


async def test_star80_clears_after_confirmation(app, repo):
    await repo.add_rejected_number("1000", CALLER, 1.7e9, 20)
    _, outcome, ast = await run(app, "callblock/clear", ["1000"], Script(wait_digit="1"))
    assert outcome.status is Status.OK
    assert ast.prompts == ["if-correct-press", "digits/1", "removed"]
    assert await repo.reject_list("1000") == []


async def test_star80_declined_keeps_the_list(app, repo):
    await repo.add_rejected_number("1000", CALLER, 1.7e9, 20)
    _, outcome, ast = await run(app, "callblock/clear", ["1000"], Script(wait_digit="9"))
    assert (outcome.status, outcome.reason) == (Status.REFUSED, "declined")
    assert ast.prompts[-1] == "cancelled"
    assert len(await repo.reject_list("1000")) == 1


async def test_star80_redis_down(down_app):
    _, outcome, ast = await run(down_app, "callblock/clear", ["1000"], Script(wait_digit="1"))
    assert (outcome.status, outcome.reason) == (Status.ERROR, "state-error")
    assert ast.prompts[-2:] == ERROR_PROMPTS


# --------------------------------------------------------------------------- *77 / *87


async def test_star77_star87(app, repo, redis_sync):
    _, outcome, ast = await run(app, "anonreject/on", ["1000"])
    assert outcome.status is Status.OK and ast.prompts == ["activated"]
    assert redis_sync.get(TF_KEYS.anon_reject("1000")) == "1"
    _, outcome, ast = await run(app, "anonreject/off", ["1000"])
    assert outcome.status is Status.OK and ast.prompts == ["de-activated"]
    assert redis_sync.exists(TF_KEYS.anon_reject("1000")) == 0


@pytest.mark.parametrize("route", ["anonreject/on", "anonreject/off", "callblock/last", "callblock/clear"])
async def test_new_codes_refuse_a_bad_extension(app, redis_sync, route):
    ext, outcome, ast = await run(app, route, ["bad ext"], Script(wait_digit="1"))
    assert ext is None and (outcome.status, outcome.reason) == (Status.ERROR, "bad-extension")
    assert ast.prompts == ERROR_PROMPTS and redis_sync.keys("*") == []


@pytest.mark.parametrize("route", ["anonreject/on", "anonreject/off"])
async def test_star77_redis_down(down_app, route):
    _, outcome, ast = await run(down_app, route, ["1000"])
    assert (outcome.status, outcome.reason) == (Status.ERROR, "state-error") and ast.prompts == ERROR_PROMPTS


# --------------------------------------------------------------------------- pre-dial hook (*69 for groups)


def connected(number, name="Pat", pres="allowed_not_screened"):
    return Script(variables={"CONNECTEDLINE(num)": number, "CONNECTEDLINE(name)": name,
                             "CONNECTEDLINE(pres)": pres})


async def test_ring_hook_records_the_outside_caller_for_the_rung_extension(app, repo):
    # The callee channel's own caller ID is the endpoint's (1001), never used.
    _, outcome, ast = await run(app, "ringhook", ["1001", "1"], connected(CALLER), channel="PJSIP/1001-00000003",
                                callerid="1001")
    assert outcome.status is Status.OK
    record = await repo.last_caller("1001")
    assert (record.number, record.name, record.withheld) == (CALLER, "Pat", False)
    assert ast.variables == {"TF_STATUS": "OK"}


async def test_ring_hook_withheld_caller(app, repo):
    await run(app, "ringhook", ["1001", "1"], connected(CALLER, pres="prohib"))
    record = await repo.last_caller("1001")
    assert record.withheld and record.number == "" and record.reason == "restricted"


async def test_ring_hook_internal_call_records_nothing_by_default(app, repo):
    _, outcome, ast = await run(app, "ringhook", ["1001"], connected("1000"))
    assert (outcome.status, outcome.reason) == (Status.OK, "internal")
    assert await repo.last_caller("1001") is None
    assert [c.verb for c in ast.commands] == ["SET VARIABLE", "SET VARIABLE"]  # nothing asked


async def test_ring_hook_records_internal_calls_when_configured(repo, make_app):
    await run(make_app(repo, record_internal=True), "ringhook", ["1001"], connected("1000", "Alice"))
    record = await repo.last_caller("1001")
    assert (record.number, record.name) == ("1000", "Alice")


@pytest.mark.parametrize("number", ["5551234&PJSIP/evil", "٥٥٥١٢٣٤٥٦٧", "5" * 1024])
async def test_ring_hook_hostile_connected_line(app, repo, number):
    await run(app, "ringhook", ["1001", "1"], connected(number))
    record = await repo.last_caller("1001")
    assert record.withheld and record.number == ""


async def test_ring_hook_redis_down(down_app):
    _, outcome, _ = await run(down_app, "ringhook", ["1001", "1"], connected(CALLER))
    assert (outcome.status, outcome.reason) == (Status.ERROR, "state-error")


# --------------------------------------------------------------------------- which extension is this call


async def test_local_channel_takes_tf_extension(app, repo):
    ext, outcome, ast = await run(app, "cidblock/on", [], Script(variables={"TF_EXTENSION": "1000"}),
                                  channel="Local/*81@tf-phones-00000001;2", callerid="2000")
    assert ext == "1000" and outcome.status is Status.OK
    assert await repo.is_blocked("1000") and not await repo.is_blocked("2000")
    assert ast.commands[0].line == 'GET VARIABLE "TF_EXTENSION"'


async def test_outbound_on_a_local_channel_gets_the_extensions_presentation(app, repo):
    await repo.set_blocked("1000", True)
    ext, outcome, ast = await run(app, "outbound", ["", "5552345678"], Script(variables={"TF_EXTENSION": "1000"}),
                                  channel="Local/5552345678@tf-outbound-00000001;2")
    assert ext == "1000" and outcome.status is Status.OK
    assert ast.variables["CALLERID(pres)"] == "prohib"


@pytest.mark.parametrize("value", ["10 00", "1000&PJSIP/evil", "1000,1", "${EXTEN}", "١٠٠٠", "x" * 65, "*81"])
async def test_invalid_tf_extension_is_refused_like_a_bad_arg1(app, redis_sync, value):
    ext, outcome, ast = await run(app, "cidblock/on", [], Script(variables={"TF_EXTENSION": value}),
                                  channel="Local/*81@tf-phones-00000001;2")
    assert ext is None and (outcome.status, outcome.reason) == (Status.ERROR, "bad-extension")
    assert redis_sync.keys("*") == []


async def test_no_tf_extension_is_refused(app):
    ext, outcome, _ = await run(app, "cidblock/on", [], channel="Local/*81@tf-phones-00000001;2", callerid="1000")
    assert ext is None and outcome.reason == "bad-extension"


@pytest.mark.parametrize(("args", "channel", "expected"), [
    (["1001"], "Local/x@y-1;2", "1001"),  # arg1 wins; nothing asked
    ([], "PJSIP/1002-0000001a", "1002"),  # an endpoint channel: its name, never the variable
    (["bad ext"], "Local/x@y-1;2", None),  # a bad arg1 never falls back
])
async def test_tf_extension_only_without_arg1_and_endpoint(app, args, channel, expected):
    ext, _, ast = await run(app, "anonreject/on", args, Script(variables={"TF_EXTENSION": "1000"}), channel=channel)
    assert ext == expected
    assert "GET VARIABLE" not in [c.verb for c in ast.commands]


async def test_a_bad_tenant_never_falls_back_to_tf_extension(app, redis_sync):
    ext, outcome, ast = await run(app, "anonreject/on", [], Script(variables={"TF_EXTENSION": "1000"}),
                                  channel="Local/x@y-1;2", tenant="a{b}")
    assert ext is None and outcome.reason == "bad-extension"
    assert redis_sync.keys("*") == []


async def test_tenant_applies_to_the_new_state(app, repo):
    await repo.add_rejected_number("1000", CALLER, 1.0, 20, "acme")
    _, _, ast = await run(app, "inbound", ["1000"], callerid=CALLER, tenant="acme")
    assert ast.variables["TF_INBOUND"] == "REJECT"
    _, _, ast = await run(app, "inbound", ["1000"], callerid=CALLER)
    assert ast.variables["TF_INBOUND"] == "RING"


def test_caller_record_round_trip_still_whole():
    record = CallerRecord(CALLER, "Pat", 0, 1.7e9, False)
    assert CallerRecord.from_fields(record.to_fields()) == record
