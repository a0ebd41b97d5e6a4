"""Star codes end to end: sipp phones -> Asterisk 22 (shipped dialplan) ->
``telefeatures serve`` -> Redis, and what the provider trunk receives."""

from __future__ import annotations

import re

from tests.integration.e2e import (
    CALLER,
    OUTSIDE,
    assert_anonymous,
    assert_presented,
    invites_after,
    outbound,
    played,
    star,
)
from tests.testbed.services import KEYS
from telefeatures.state.schema import CIDBLOCK_ON

# ----------------------------------------------------------------------------- *81 *82 *83


def test_star81_then_outbound_call_is_anonymous(asterisk, feature_server, provider, sipp, redis_state):
    offset = asterisk.log_offset()
    star(sipp, "1000", "*81")
    assert redis_state.get(KEYS.cidblock("1000")) == "1"
    assert played(asterisk, offset, "activated")
    assert_anonymous(outbound(sipp, provider, "1000"), "1000")


def test_star82_then_outbound_call_shows_caller_id(asterisk, feature_server, provider, sipp, redis_state):
    redis_state.set(KEYS.cidblock("1000"), CIDBLOCK_ON)
    offset = asterisk.log_offset()
    star(sipp, "1000", "*82")
    assert redis_state.get(KEYS.cidblock("1000")) is None
    assert played(asterisk, offset, "de-activated")
    assert_presented(outbound(sipp, provider, "1000"), "1000", "Alice")


def test_star83_announces_whether_blocking_is_on(asterisk, feature_server, sipp, redis_state):
    redis_state.set(KEYS.cidblock("1000"), CIDBLOCK_ON)
    offset, log_at = asterisk.log_offset(), feature_server.log_offset()
    star(sipp, "1000", "*83")
    assert played(asterisk, offset, "enabled") and not played(asterisk, offset, "disabled")
    sessions = feature_server.sessions_since(log_at)
    assert any("route=cidblock/status ext=1000 status=OK" in s for s in sessions), sessions

    redis_state.delete(KEYS.cidblock("1000"))
    offset = asterisk.log_offset()
    star(sipp, "1000", "*83")
    assert played(asterisk, offset, "disabled") and not played(asterisk, offset, "enabled")


# ----------------------------------------------------------------------------- *67


def test_star67_withholds_caller_id_for_that_call_only(asterisk, feature_server, provider, sipp, redis_state):
    assert_anonymous(outbound(sipp, provider, "1000", "*67" + OUTSIDE), "1000")
    assert_presented(outbound(sipp, provider, "1000"), "1000", "Alice")
    assert redis_state.get(KEYS.cidblock("1000")) is None


# ----------------------------------------------------------------------------- inbound and *69


def test_inbound_call_then_star69_calls_back(asterisk, feature_server, provider, phone_1001, sipp, redis_state):
    result = sipp.trunk_call("1001", CALLER, "Pat Caller")
    assert result.returncode == 0 and result.answered, result.output
    record = redis_state.hgetall(KEYS.last_caller("1001"))
    assert record["number"] == CALLER and record["withheld"] == "0" and record["name"] == "Pat Caller"

    before, offset = len(provider.invites()), asterisk.log_offset()
    result = sipp.call("1001", "*69", dtmf="1", hold_ms=6000)  # the callback rings out meanwhile
    assert result.returncode == 0, result.output
    invite = invites_after(provider, before)[0]
    assert invite.request_uri.startswith(f"sip:1{CALLER}@"), invite.request_uri
    # The callback is an outbound call like any other: 1001 is not blocked.
    assert_presented(invite, "1001", "Bob")
    assert played(asterisk, offset, "info-about-last-call")


def test_anonymous_inbound_then_star69_refuses(asterisk, feature_server, provider, phone_1001, sipp, redis_state):
    result = sipp.trunk_call("1001", "anonymous", "Anonymous", extra_header="Privacy: id")
    assert result.returncode == 0, result.output
    record = redis_state.hgetall(KEYS.last_caller("1001"))
    assert record["withheld"] == "1" and record["number"] == ""

    before, offset, log_at = len(provider.invites()), asterisk.log_offset(), feature_server.log_offset()
    star(sipp, "1001", "*69", dtmf="1", hold_ms=15000)
    assert played(asterisk, offset, "from-unknown-caller")
    assert any("route=callreturn ext=1001 status=REFUSED reason=withheld" in s
               for s in feature_server.sessions_since(log_at))
    assert len(provider.invites()) == before


def test_hostile_caller_id_then_star69_dials_nothing(asterisk, feature_server, provider, phone_1001, sipp,
                                                     redis_state):
    hostile = "5551234&PJSIP/evil"
    result = sipp.trunk_call("1001", hostile, "Mallory")
    assert result.returncode == 0, result.output
    record = redis_state.hgetall(KEYS.last_caller("1001"))
    assert record["withheld"] == "1" and record["reason"] == "invalid-number" and "evil" not in str(record)

    before, offset = len(provider.invites()), asterisk.log_offset()
    star(sipp, "1001", "*69", dtmf="1", hold_ms=15000)
    log = asterisk.log_since(offset)
    assert len(provider.invites()) == before
    assert not re.search(r"Dial\(.*evil", log), "the hostile caller ID reached Dial"
    assert "PJSIP/evil" not in log


def test_internal_call_does_not_replace_last_caller(asterisk, feature_server, provider, phone_1001, sipp, redis_state):
    result = sipp.trunk_call("1001", CALLER, "Pat Caller")
    assert result.returncode == 0 and result.answered, result.output
    before = redis_state.hgetall(KEYS.last_caller("1001"))

    calls = len(phone_1001.invites())
    result = sipp.call("1000", "1001", hold_ms=800)
    assert result.returncode == 0 and result.answered, result.output
    assert len(phone_1001.invites()) == calls + 1  # the internal call really rang 1001
    assert redis_state.hgetall(KEYS.last_caller("1001")) == before


# ----------------------------------------------------------------------------- persistence


def test_a_restarted_feature_server_serves_the_state_it_never_kept(asterisk, feature_server, provider, sipp,
                                                                     redis_state):
    """The server holds nothing of its own: after SIGTERM and a fresh start,
    *83 and the outbound policy read what *81 left in Redis."""
    star(sipp, "1000", "*81")
    try:
        assert feature_server.stop() == 0
    finally:
        feature_server.start()
    offset = asterisk.log_offset()
    star(sipp, "1000", "*83")
    assert played(asterisk, offset, "enabled")
    assert_anonymous(outbound(sipp, provider, "1000"), "1000")
