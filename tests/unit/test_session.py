"""The sans-IO AgiSession: bytes in, events out, every limit inside it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telefeatures.agi.protocol import (
    CLOSED,
    HANGUP,
    MAX_HEADER_LINES,
    MAX_LINE_BYTES,
    MAX_USAGE_LINES,
    NEED_DATA,
    AgiRequest,
    AgiSession,
    ProtocolError,
    Reply,
)
from tests.support.asterisk_peer import header_bytes, usage_block

HEADER = header_bytes("outbound", ["1000", "5551234567"])


def events(session: AgiSession) -> list:
    out = []
    while (event := session.next_event()) not in (NEED_DATA, CLOSED):
        out.append(event)
    out.append(event)
    return out


def test_header_whole():
    session = AgiSession()
    session.receive_data(HEADER)
    request = session.next_event()
    assert isinstance(request, AgiRequest)
    assert (request.route, request.args) == ("outbound", ("1000", "5551234567"))
    assert session.header_read and session.buffered == 0
    assert session.next_event() is NEED_DATA


@given(st.lists(st.integers(1, len(HEADER) - 1), max_size=8, unique=True))
@settings(max_examples=60)
def test_header_in_any_pieces_is_the_same_request(cuts):
    whole = AgiSession()
    whole.receive_data(HEADER)
    expected = whole.next_event()
    session = AgiSession()
    request = NEED_DATA
    start = 0
    for end in [*sorted(cuts), len(HEADER)]:
        assert request is NEED_DATA
        session.receive_data(HEADER[start:end])
        request = session.next_event()
        start = end
    assert request == expected


def test_header_with_crlf_and_fast_path_agree():
    session = AgiSession()
    session.receive_data(HEADER.replace(b"\n", b"\r\n"))
    crlf = session.next_event()
    session = AgiSession()
    session.receive_data(HEADER)
    assert crlf == session.next_event()


def test_header_then_eof_before_blank_line():
    session = AgiSession()
    session.receive_data(HEADER[:-1])
    assert session.next_event() is NEED_DATA
    session.receive_eof()
    assert session.next_event() is CLOSED


@pytest.mark.parametrize(("data", "message"), [
    (b"agi_x: " + b"y" * MAX_LINE_BYTES + b"\n\n", "line longer"),
    (b"agi_x: " + b"y" * (MAX_LINE_BYTES + 10), "line longer"),  # no newline yet: refused all the same
    (b"".join(b"agi_v%d: 1\n" % i for i in range(MAX_HEADER_LINES + 1)) + b"\n", "header block too large"),
    (b"GET / HTTP/1.1\n\n", "not an AGI header line"),
    (b"\n", "empty header block"),
])
def test_header_limits(data, message):
    session = AgiSession()
    session.receive_data(data)
    with pytest.raises(ProtocolError, match=message):
        session.next_event()


def read_header(session: AgiSession) -> None:
    session.receive_data(HEADER)
    assert isinstance(session.next_event(), AgiRequest)


def test_replies_hangup_and_trying():
    session = AgiSession()
    read_header(session)
    session.receive_data(b"HANGUP\n100 result=0 Trying...\n200 resu")
    assert session.next_event() is HANGUP
    assert session.hung_up
    assert session.next_event() is NEED_DATA
    session.receive_data(b"lt=1 (x) endpos=5\n")
    assert session.next_event() == Reply(200, "1", "x", 5, "200 result=1 (x) endpos=5")
    session.receive_eof()
    assert session.next_event() is CLOSED


def test_usage_block_is_one_reply_and_bounded():
    session = AgiSession()
    read_header(session)
    session.receive_data("\n".join(usage_block("SET VARIABLE")).encode() + b"\n")
    reply = session.next_event()
    assert reply.code == 520 and reply.usage
    session.receive_data(b"520-x\n" + b"HANGUP\n" * (MAX_USAGE_LINES + 1))
    with pytest.raises(ProtocolError, match="520 usage block does not end"):
        session.next_event()


def test_reply_line_limit():
    session = AgiSession()
    read_header(session)
    session.receive_data(b"200 result=1 (" + b"x" * MAX_LINE_BYTES + b")\n")
    with pytest.raises(ProtocolError, match="line longer"):
        session.next_event()


def test_invalid_utf8_becomes_replacement_characters():
    session = AgiSession()
    session.receive_data(HEADER.replace(b"agi_calleridname: ", b"agi_calleridname: \xff\xfe"))
    request = session.next_event()
    assert request.get("agi_calleridname").startswith("\ufffd\ufffd")
