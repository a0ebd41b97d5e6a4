"""Block the last caller (*60 / *80), anonymous call rejection (*77 / *87),
inbound RING/REJECT failing open, *69 for ring groups (the pre-dial handler)
and calls on Local channels (TF_EXTENSION), end to end: sipp phones and trunk
-> Asterisk 22 (shipped dialplan) -> ``telefeatures serve`` -> Redis."""

from __future__ import annotations

import time

from tests.integration.e2e import (
    CALLER,
    assert_anonymous,
    assert_presented,
    invites_after,
    played,
    star,
)
from tests.testbed.services import KEY_PREFIX, KEYS, wait_for

KIND = {"rejectlist": KEYS.reject_list, "anonreject": KEYS.anon_reject, "lastrejected": KEYS.last_rejected,
        "lastcaller": KEYS.last_caller, "cidblock": KEYS.cidblock}


def key(ext: str, kind: str) -> str:
    return KIND[kind](ext)


def trunk_call(sipp, ext: str, number: str, name: str = "Pat Caller", **kw):
    result = sipp.trunk_call(ext, number, name, **kw)
    assert result.returncode == 0, result.output
    return result


def rejected_with(result) -> str | None:
    """The final response code of a refused INVITE, or None when answered."""
    for message in result.messages:
        if message.direction == "received" and message.start_line.startswith("SIP/2.0 4"):
            return message.start_line.split()[1]
    return None


def sessions(feature_server, log_at: int) -> str:
    return "\n".join(feature_server.sessions_since(log_at))


# ----------------------------------------------------------------------------- *60 / *80


def test_star60_blocks_the_last_caller_and_the_phone_never_rings(asterisk, feature_server, phone_1001, sipp,
                                                                  redis_state):
    answered = trunk_call(sipp, "1001", CALLER)
    assert answered.answered
    offset = asterisk.log_offset()
    star(sipp, "1001", "*60", dtmf="1", hold_ms=6000)
    assert played(asterisk, offset, "privacy-to-blacklist-last-caller") and played(asterisk, offset, "added")
    listed = redis_state.zrange(key("1001", "rejectlist"), 0, -1, withscores=True)
    assert [number for number, _ in listed] == [CALLER] and abs(listed[0][1] - time.time()) < 60

    rings, offset, log_at = len(phone_1001.invites()), asterisk.log_offset(), feature_server.log_offset()
    refused = trunk_call(sipp, "1001", CALLER)
    assert not refused.answered and rejected_with(refused) == "403"
    assert played(asterisk, offset, "vm-nobodyavail")
    assert "route=inbound ext=1001 status=OK reason=blocked-caller" in sessions(feature_server, log_at)
    time.sleep(1)
    assert len(phone_1001.invites()) == rings  # the phone never rang
    # Recorded as refused; the last caller stays the one from before.
    assert redis_state.hgetall(key("1001", "lastrejected"))["reason"] == "blocked-caller"

    # Another caller still rings.
    assert trunk_call(sipp, "1001", "5559870000").answered
    assert len(phone_1001.invites()) == rings + 1

    offset = asterisk.log_offset()
    star(sipp, "1001", "*80", dtmf="1", hold_ms=5000)
    assert played(asterisk, offset, "removed")
    assert redis_state.exists(key("1001", "rejectlist")) == 0
    assert trunk_call(sipp, "1001", CALLER).answered


def test_star60_refuses_a_withheld_last_caller(asterisk, feature_server, phone_1001, sipp, redis_state):
    trunk_call(sipp, "1001", "anonymous", "Anonymous", extra_header="Privacy: id")
    offset, log_at = asterisk.log_offset(), feature_server.log_offset()
    star(sipp, "1001", "*60", dtmf="1", hold_ms=8000)
    assert played(asterisk, offset, "from-unknown-caller") and not played(asterisk, offset, "added")
    assert "route=callblock/last ext=1001 status=REFUSED reason=withheld" in sessions(feature_server, log_at)
    assert redis_state.exists(key("1001", "rejectlist")) == 0


# ----------------------------------------------------------------------------- *77 / *87


def test_anonymous_caller_rejected_while_anonreject_is_on(asterisk, feature_server, phone_1001, sipp, redis_state):
    offset = asterisk.log_offset()
    star(sipp, "1001", "*77")
    assert redis_state.get(key("1001", "anonreject")) == "1" and played(asterisk, offset, "activated")

    rings, offset = len(phone_1001.invites()), asterisk.log_offset()
    refused = trunk_call(sipp, "1001", "anonymous", "Anonymous", extra_header="Privacy: id")
    assert not refused.answered and rejected_with(refused) == "403"
    assert played(asterisk, offset, "privacy-unident")
    # A caller who shows the number still rings.
    assert trunk_call(sipp, "1001", CALLER).answered
    assert len(phone_1001.invites()) == rings + 1
    assert redis_state.hgetall(key("1001", "lastrejected"))["reason"] == "anonymous"
    assert redis_state.hgetall(key("1001", "lastcaller"))["number"] == CALLER

    offset = asterisk.log_offset()
    star(sipp, "1001", "*87")
    assert redis_state.get(key("1001", "anonreject")) is None and played(asterisk, offset, "de-activated")
    assert trunk_call(sipp, "1001", "anonymous", "Anonymous", extra_header="Privacy: id").answered
    assert len(phone_1001.invites()) == rings + 2


# ----------------------------------------------------------------------------- fail open


def test_inbound_rings_when_the_feature_server_is_down(asterisk, feature_server, phone_1001, sipp, redis_state):
    redis_state.zadd(key("1001", "rejectlist"), {CALLER: time.time()})
    redis_state.set(key("1001", "anonreject"), "1")
    assert not trunk_call(sipp, "1001", CALLER).answered  # the server is up: refused
    assert feature_server.stop() == 0
    try:
        rings = len(phone_1001.invites())
        assert trunk_call(sipp, "1001", CALLER).answered
        assert trunk_call(sipp, "1001", "anonymous", "Anonymous").answered
        assert len(phone_1001.invites()) == rings + 2
    finally:
        feature_server.start()


def test_inbound_rings_when_redis_is_down(asterisk, feature_server, redis_server, phone_1001, sipp, redis_state):
    redis_state.zadd(key("1001", "rejectlist"), {CALLER: time.time()})
    redis_state.close()
    redis_server.stop()
    try:
        rings, log_at = len(phone_1001.invites()), feature_server.log_offset()
        assert trunk_call(sipp, "1001", CALLER).answered
        assert len(phone_1001.invites()) == rings + 1
        assert "route=inbound ext=1001 status=ERROR reason=state-error" in sessions(feature_server, log_at)
    finally:
        redis_server.start()


# ----------------------------------------------------------------------------- *69 for groups


def test_ring_group_pre_dial_handler_records_every_extension_rung(asterisk, feature_server, phone_1000, phone_1001,
                                                                    sipp, redis_state):
    log_at = feature_server.log_offset()
    rings = len(phone_1000.invites()), len(phone_1001.invites())
    trunk_call(sipp, "600", CALLER, "Pat Caller")
    wait_for(lambda: len(phone_1000.invites()) > rings[0] and len(phone_1001.invites()) > rings[1],
             what="both group members rung")
    for ext in ("1000", "1001"):
        record = redis_state.hgetall(key(ext, "lastcaller"))
        assert record["number"] == CALLER and record["withheld"] == "0" and record["name"] == "Pat Caller", ext
    log = sessions(feature_server, log_at)
    assert "route=ringhook ext=1000 status=OK" in log and "route=ringhook ext=1001 status=OK" in log


def test_ring_group_called_internally_records_nothing(asterisk, feature_server, phone_1000, phone_1001, sipp,
                                                      redis_state):
    log_at = feature_server.log_offset()
    result = sipp.call("1002", "600", hold_ms=800)
    assert result.returncode == 0, result.output
    wait_for(lambda: "route=ringhook ext=1001" in sessions(feature_server, log_at), what="the hook on 1001")
    assert "route=ringhook ext=1000 status=OK reason=internal" in sessions(feature_server, log_at)
    assert redis_state.exists(key("1000", "lastcaller"), key("1001", "lastcaller")) == 0


# ----------------------------------------------------------------------------- Local channels


def test_local_channel_leg_dials_out_with_the_extensions_presentation(asterisk, feature_server, provider, sipp,
                                                                      redis_state):
    """1000 calls 700, which dials an outside number through a Local channel
    (no PJSIP endpoint): the leg gets 1000's presentation from TF_EXTENSION."""
    redis_state.set(key("1000", "cidblock"), "1")
    before, log_at = len(provider.invites()), feature_server.log_offset()
    result = sipp.call("1000", "700", hold_ms=1500)
    assert result.returncode == 0 and result.answered, result.output
    assert_anonymous(invites_after(provider, before)[0], "1000")
    assert "route=outbound ext=1000 status=OK" in sessions(feature_server, log_at)

    redis_state.delete(key("1000", "cidblock"))
    before = len(provider.invites())
    result = sipp.call("1000", "700", hold_ms=1500)
    assert result.returncode == 0 and result.answered, result.output
    assert_presented(invites_after(provider, before)[0], "1000", "Alice")


def test_feature_code_without_a_phone(asterisk, feature_server, redis_state):
    """README "Trying it without phones": a Local channel with TF_EXTENSION set."""
    log_at = feature_server.log_offset()
    asterisk.cli("channel originate Local/*81@try-as-1000 application Wait 8")
    wait_for(lambda: "route=cidblock/on ext=1000 status=OK" in sessions(feature_server, log_at),
             what="*81 through a Local channel")
    assert redis_state.get(key("1000", "cidblock")) == "1"


def test_invalid_tf_extension_is_refused(asterisk, feature_server, redis_state):
    offset, log_at = asterisk.log_offset(), feature_server.log_offset()
    asterisk.cli("channel originate Local/*81@try-as-bad application Wait 8")
    wait_for(lambda: "route=cidblock/on" in sessions(feature_server, log_at), timeout=15, what="the *81 session")
    assert "route=cidblock/on ext=- status=ERROR reason=bad-extension" in sessions(feature_server, log_at)
    assert played(asterisk, offset, "sorry")
    assert redis_state.keys(f"{KEY_PREFIX}*") == []


# ----------------------------------------------------------------------------- NANP preset


def test_nanp_codes_written_by_provision_build(asterisk, feature_server, provider, sipp, redis_state, tmp_path):
    """`provision build --codes` with the nanp preset: *82<number> shows the
    caller ID for that call although blocking is on, *86 turns blocking off."""
    from click.testing import CliRunner

    from telefeatures.cli import cli
    from tests.integration.e2e import OUTSIDE
    from tests.unit.provisioning.conftest import SITE, phone_toml

    inventory = tmp_path / "phones.toml"
    inventory.write_text(SITE.replace("[site.dial_rules]", '[site.feature_codes]\npreset = "nanp"\n[site.dial_rules]')
                         + phone_toml("0019E8F490AD", "7961", "A", [{"extension": "1000", "display_name": "Alice",
                                                                      "password": "x" * 12}]))
    (tmp_path / "tftp").mkdir()
    codes = asterisk.run_dir / "etc" / "telefeatures" / "telefeatures-codes.conf"
    shipped = codes.read_text()
    result = CliRunner().invoke(cli, ["provision", "build", str(inventory), "--tftp-root", str(tmp_path / "tftp"),
                                      "--codes", str(codes)])
    assert result.exit_code == 0, result.output
    assert "\\*82*" in (tmp_path / "tftp" / "dialplan.xml").read_text()  # the phones dial it too
    asterisk.cli("dialplan reload")
    try:
        redis_state.set(key("1000", "cidblock"), "1")
        before = len(provider.invites())
        result = sipp.call("1000", "*82" + OUTSIDE, hold_ms=1000)
        assert result.returncode == 0 and result.answered, result.output
        invite = invites_after(provider, before)[0]
        assert invite.request_uri.startswith(f"sip:{OUTSIDE}@"), invite.request_uri
        assert_presented(invite, "1000", "Alice")

        star(sipp, "1000", "*86")
        assert redis_state.get(key("1000", "cidblock")) is None
    finally:
        codes.write_text(shipped)
        asterisk.cli("dialplan reload")
