"""Star codes end to end: sipp phones -> Asterisk 22 (shipped dialplan) ->
telefeatures serve -> Redis, and what the provider trunk receives."""

from __future__ import annotations

from conftest import KEY_PREFIX, wait_for

OUTSIDE = "5552345678"


def new_invites(provider, before: int, count: int = 1):
    return wait_for(lambda: provider.invites()[before:] if len(provider.invites()) >= before + count else None,
                    timeout=10, what=f"{count} INVITE(s) at the provider")


def test_star81_then_outbound_call_is_anonymous(asterisk, feature_server, provider, sipp, state):
    result = sipp.call("1000", "*81")
    assert result.returncode == 0, result.output
    assert state.get(f"{KEY_PREFIX}ext:1000:cidblock") == "1"

    before = len(provider.invites())
    result = sipp.call("1000", OUTSIDE, hold_ms=1000)
    assert result.returncode == 0 and result.answered, result.output
    invite = new_invites(provider, before)[0]
    assert invite.request_uri.startswith(f"sip:{OUTSIDE}@")
    assert "anonymous@anonymous.invalid" in invite.header("From")
    assert "1000" not in invite.header("From")
    assert invite.header("Privacy") == "id"
    assert "1000" in invite.header("P-Asserted-Identity")
