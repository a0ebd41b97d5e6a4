"""Checks shared by the end-to-end tests: what the provider saw, what Asterisk played."""

from __future__ import annotations

from tests.testbed.services import wait_for

OUTSIDE = "5552345678"
CALLER = "5551234567"


def invites_after(provider, before: int, count: int = 1):
    return wait_for(lambda: provider.invites()[before:] if len(provider.invites()) >= before + count else None,
                    timeout=15, what=f"{count} INVITE(s) at the provider")


def assert_anonymous(invite, ext: str):
    from_ = invite.header("From")
    assert "anonymous@anonymous.invalid" in from_, from_
    assert ext not in from_
    # send_pai + trust_id_outbound: the real identity travels in PAI, marked private.
    assert invite.header("Privacy") == "id"
    assert ext in (invite.header("P-Asserted-Identity") or "")


def assert_presented(invite, ext: str, name: str):
    from_ = invite.header("From")
    assert f"sip:{ext}@" in from_ and name in from_, from_
    assert "anonymous" not in from_.lower()
    assert invite.header("Privacy") in (None, "none")


def played(asterisk, offset: int, prompt: str) -> bool:
    return f"Playing '{prompt}." in asterisk.log_since(offset)


def star(sipp, ext: str, code: str, **kw):
    result = sipp.call(ext, code, **kw)
    assert result.returncode == 0 and result.answered, result.output
    return result


def outbound(sipp, provider, ext: str, number: str = OUTSIDE):
    before = len(provider.invites())
    result = sipp.call(ext, number, hold_ms=1000)
    assert result.returncode == 0 and result.answered, result.output
    invite = invites_after(provider, before)[0]
    assert invite.request_uri.startswith(f"sip:{number.removeprefix('*67')}@"), invite.request_uri
    return invite
