"""sipp's message trace as the end-to-end tests read it: a UDP retransmission
(same start line, Via branch, Call-ID and CSeq) is the same message, so a
phone that was slow to answer is not counted as rung twice."""

from __future__ import annotations

from tests.testbed.sipp import parse_trace


def _entry(direction: str, start_line: str, branch: str, cseq: str, call_id: str = "1-99@127.0.0.1") -> str:
    return (f"----------------------------------------------- 2026-11-29 10:29:13.882156\n"
            f"UDP message {direction} [300] bytes :\n\n"
            f"{start_line}\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\nCall-ID: {call_id}\n"
            f"CSeq: {cseq}\nContent-Length: 0\n\n")


def test_a_retransmitted_request_is_one_message_and_a_new_transaction_is_another():
    invite = _entry("received", "INVITE sip:1001@127.0.0.1 SIP/2.0", "z9hG4bK-a", "1 INVITE")
    notify_1 = _entry("received", "NOTIFY sip:2000@127.0.0.1 SIP/2.0", "z9hG4bK-b", "5 NOTIFY", "n-1")
    notify_2 = _entry("received", "NOTIFY sip:2000@127.0.0.1 SIP/2.0", "z9hG4bK-c", "6 NOTIFY", "n-1")
    answer = _entry("sent", "SIP/2.0 200 OK", "z9hG4bK-a", "1 INVITE")
    messages = parse_trace(invite + invite + answer + answer + notify_1 + notify_1 + notify_2)
    assert [(m.direction, m.method, m.header("CSeq")) for m in messages] == [
        ("received", "INVITE", "1 INVITE"), ("sent", "SIP/2.0", "1 INVITE"),
        ("received", "NOTIFY", "5 NOTIFY"), ("received", "NOTIFY", "6 NOTIFY")]


def test_the_same_request_of_another_call_is_another_message():
    first = _entry("received", "INVITE sip:1001@127.0.0.1 SIP/2.0", "z9hG4bK-a", "1 INVITE", "call-1")
    second = _entry("received", "INVITE sip:1001@127.0.0.1 SIP/2.0", "z9hG4bK-a", "1 INVITE", "call-2")
    assert len(parse_trace(first + second)) == 2
