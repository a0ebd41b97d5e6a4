"""The AGI grammar as pure functions: headers, replies, quoting, encoding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telefeatures.agi.protocol import (
    MAX_HEADER_LINES,
    MAX_LINE_BYTES,
    MAX_USAGE_LINES,
    AgiRequest,
    ProtocolError,
    Reply,
    ReplyReader,
    UnsafeArgument,
    build_request,
    decode_line,
    digit_from_result,
    encode_command,
    parse_header_block,
    parse_header_line,
    parse_reply_line,
    quote,
    split_script,
    unquote_args,
)
from tests.support.asterisk_peer import header_bytes, header_lines, usage_block

# --------------------------------------------------------------------------- decode_line


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"200 result=1\n", "200 result=1"),
        (b"200 result=1\r\n", "200 result=1"),
        (b"200 result=1", "200 result=1"),
        (b"\n", ""),
        (b"\r\n", ""),
        (b"", ""),
        (b"a\rb\n", "a\rb"),  # only a trailing CR is a line ending
        (b"x\n\n", "x\n"),  # one line ending removed, no more
    ],
)
def test_decode_line_strips_one_line_ending(raw, text):
    assert decode_line(raw) == text


def test_decode_line_replaces_invalid_utf8():
    assert decode_line(b"agi_calleridname: \xff\xfeBob\n") == "agi_calleridname: \ufffd\ufffdBob"
    assert decode_line("agi_calleridname: Zoë\n".encode()) == "agi_calleridname: Zoë"


@given(st.binary(max_size=200))
def test_decode_line_never_raises(raw):
    text = decode_line(raw)
    assert isinstance(text, str)
    assert not text.endswith("\n") or raw.endswith(b"\n\n") or raw.endswith(b"\n\r\n")


# --------------------------------------------------------------------------- header lines


@pytest.mark.parametrize(
    ("line", "key", "value"),
    [
        ("agi_channel: PJSIP/1000-0000001a", "agi_channel", "PJSIP/1000-0000001a"),
        ("agi_accountcode:", "agi_accountcode", ""),  # Asterisk: no space after an empty value
        ("agi_accountcode: ", "agi_accountcode", ""),
        ("agi_rdnis: unknown", "agi_rdnis", "unknown"),
        ("agi_request: agi://127.0.0.1:4573/outbound?x=1", "agi_request", "agi://127.0.0.1:4573/outbound?x=1"),
        ("agi_calleridname: Smith, John: Sales", "agi_calleridname", "Smith, John: Sales"),
        ("agi_calleridname:  two leading", "agi_calleridname", " two leading"),  # only one space is the separator
        ("agi_calleridname: trailing  ", "agi_calleridname", "trailing  "),
        ("agi_calleridname:no-space", "agi_calleridname", "no-space"),
        ("agi_arg_1: 1000", "agi_arg_1", "1000"),
        ("agi_arg_127: x", "agi_arg_127", "x"),
        ("agi_callerid: 5551234&PJSIP/evil", "agi_callerid", "5551234&PJSIP/evil"),
        ("agi_callerid: ${SHELL(rm -rf /)}", "agi_callerid", "${SHELL(rm -rf /)}"),
    ],
)
def test_parse_header_line(line, key, value):
    assert parse_header_line(line) == (key, value)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "agi_channel PJSIP/1000",  # no colon
        "channel: PJSIP/1000",  # not agi_
        "AGI_CHANNEL: x",  # upper case
        "agi_: x",  # empty name
        " agi_channel: x",  # leading blank
        "agi_channel : x",  # blank before colon
        "agi-channel: x",
        "agi_chännel: x",
        "HANGUP",
        "200 result=1",
        "x-agi_channel: y",
        "agi_" + "a" * 65 + ": x",  # name longer than any Asterisk sends
        "failure",
    ],
)
def test_parse_header_line_rejects_non_agi(line):
    with pytest.raises(ProtocolError):
        parse_header_line(line)


def test_header_block_as_asterisk_sends_it():
    lines = [line if isinstance(line, str) else line.decode() for line in header_lines("outbound", ["1000", "5551234"])]
    assert "agi_accountcode:" in lines  # the peer sends it the way Asterisk does
    request = parse_header_block([*lines, ""])
    assert request.route == "outbound"
    assert request.args == ("1000", "5551234")
    assert request.arg(1) == "1000"
    assert request.arg(2) == "5551234"
    assert request.arg(3) == ""
    assert request.arg(0) == ""
    assert request.arg(-1) == ""
    assert request.channel == "PJSIP/1000-0000001a"
    assert request.uniqueid == "1763700000.42"
    assert request.get("agi_accountcode") == ""
    assert request.get("agi_network") == "yes"
    assert request.get("agi_missing", "dflt") == "dflt"
    assert request.env["agi_arg_2"] == "5551234"


def test_header_block_stops_at_blank_line():
    request = parse_header_block(["agi_network_script: inbound", "", "agi_arg_1: ignored"])
    assert request.route == "inbound"
    assert request.args == ()


def test_header_block_without_blank_line_is_an_error():
    with pytest.raises(ProtocolError):
        parse_header_block(["agi_network_script: inbound"])
    with pytest.raises(ProtocolError):
        parse_header_block([])


def test_header_block_line_limit():
    ok = [f"agi_x{i}: v" for i in range(MAX_HEADER_LINES)]
    assert len(parse_header_block([*ok, ""]).env) == MAX_HEADER_LINES
    with pytest.raises(ProtocolError):
        parse_header_block([*ok, "agi_one_more: v", ""])


def test_header_block_rejects_a_bad_line():
    with pytest.raises(ProtocolError):
        parse_header_block(["agi_network: yes", "Content-Length: 12", ""])


def test_arguments_numbered_in_order_regardless_of_line_order():
    request = build_request([("agi_arg_2", "b"), ("agi_arg_1", "a"), ("agi_arg_3", "")])
    assert request.args == ("a", "b", "")


@pytest.mark.parametrize(
    "pairs",
    [
        [("agi_arg_2", "b")],
        [("agi_arg_1", "a"), ("agi_arg_3", "c")],
        [("agi_arg_1", "a"), ("agi_arg_2", "b"), ("agi_arg_4", "d")],
    ],
)
def test_argument_numbering_gap_is_an_error(pairs):
    with pytest.raises(ProtocolError):
        build_request(pairs)


def test_non_argument_lookalikes_are_plain_variables():
    # agi_arg_0 and zero-padded numbers are not arguments Asterisk would send
    request = build_request([("agi_arg_0", "x"), ("agi_arg_01", "y"), ("agi_arg_1", "a")])
    assert request.args == ("a",)
    assert request.env["agi_arg_0"] == "x"


def test_empty_argument_values_are_kept():
    request = parse_header_block(["agi_arg_1:", "agi_arg_2: ", "agi_arg_3: x", ""])
    assert request.args == ("", "", "x")


def test_duplicate_header_last_wins():
    request = build_request([("agi_callerid", "1"), ("agi_callerid", "2")])
    assert request.get("agi_callerid") == "2"


@pytest.mark.parametrize(
    ("script", "route", "query"),
    [
        ("outbound", "outbound", {}),
        ("/outbound", "outbound", {}),
        ("cidblock/on", "cidblock/on", {}),
        ("/cidblock/status/", "cidblock/status", {}),
        ("outbound?mode=x&y=", "outbound", {"mode": "x", "y": ""}),
        ("", "", {}),
    ],
)
def test_route_and_query_from_network_script(script, route, query):
    assert split_script(script) == (route, query)
    request = AgiRequest(env={"agi_network_script": script})
    assert request.route == route
    assert request.query == query


def test_request_without_network_script_has_empty_route():
    assert AgiRequest(env={}).route == ""


# --------------------------------------------------------------------------- replies


@pytest.mark.parametrize(
    ("line", "result", "data", "endpos"),
    [
        ("200 result=1", "1", None, None),
        ("200 result=0", "0", None, None),
        ("200 result=-1", "-1", None, None),
        ("200 result=", "", None, None),
        ("200 result=1 (PJSIP/1000)", "1", "PJSIP/1000", None),
        ("200 result=1 ()", "1", "", None),
        ("200 result=0 endpos=16000", "0", None, 16000),
        ("200 result=-1 endpos=0", "-1", None, 0),
        ("200 result=49 endpos=4160", "49", None, 4160),
        ("200 result=0 (timeout) endpos=0", "0", "timeout", 0),
        ("200 result=1 (a (nested) value)", "1", "a (nested) value", None),
        ("200 result=1 (x) endpos=12)", "1", "x) endpos=12", None),  # data may contain ") endpos="
        ("200 result=1 (x) endpos=5) endpos=7", "1", "x) endpos=5", 7),
        ("200 result=1 ((()", "1", "((", None),
        ("200 result=1 (with spaces  and\ttabs)", "1", "with spaces  and\ttabs", None),
        ("200 result=1 (Zoë)", "1", "Zoë", None),
        ("200 result=1 ", "1", None, None),  # trailing blank tolerated
        ("200 result=0 endpos=-5", "0", None, -5),
    ],
)
def test_parse_200(line, result, data, endpos):
    reply = parse_reply_line(line)
    assert reply == Reply(code=200, result=result, data=data, endpos=endpos, text=line)
    assert reply.ok


@pytest.mark.parametrize(
    ("line", "code", "text"),
    [
        ("510 Invalid or unknown command", 510, "Invalid or unknown command"),
        ("511 Command Not Permitted on a dead channel or intercept routine", 511,
         "Command Not Permitted on a dead channel or intercept routine"),
        ("520 Invalid command syntax.  Proper usage not available.", 520,
         "Invalid command syntax.  Proper usage not available."),
        ("510 ", 510, ""),
    ],
)
def test_parse_error_replies(line, code, text):
    reply = parse_reply_line(line)
    assert (reply.code, reply.text, reply.ok) == (code, text, False)
    assert reply.result == "" and reply.data is None


@pytest.mark.parametrize(
    "line",
    [
        "",
        "200",
        "200 ",
        "200 result",
        "200 result=1 junk",
        "200 result=1 (unclosed",
        "200 result=1 endpos=x",
        "200 result=0 endpos=" + "9" * 5000,  # more digits than int() takes
        "200 result=1 (a) (b)x",
        "200result=1",
        "HANGUP",
        "100 result=0 Trying...",  # not a reply on its own
        "520-Invalid command syntax.  Proper usage follows:",  # only ReplyReader knows blocks
        "510",
        "511-x",
        "404 Not Found",
        "600 result=1",
        "failure",
        "agi_network: yes",
        "\x00\x00",
        "２００ result=1",
    ],
)
def test_parse_reply_line_rejects_garbage(line):
    with pytest.raises(ProtocolError):
        parse_reply_line(line)


@pytest.mark.parametrize(
    ("result", "expected"),
    [("0", None), ("-1", None), ("", None), ("49", "1"), ("48", "0"), ("57", "9"), ("42", "*"), ("35", "#"),
     ("65", "A"), ("68", "D"), ("69", None), ("13", None), ("200", None), ("x", None), ("1000000", None)],
)
def test_digit_from_result(result, expected):
    assert digit_from_result(Reply(200, result=result)) == expected


def test_result_int():
    assert Reply(200, result="-1").result_int == -1
    assert Reply(200, result="").result_int is None
    assert Reply(200, result="abc").result_int is None


# --------------------------------------------------------------------------- ReplyReader


def feed_all(lines):
    reader = ReplyReader()
    replies = []
    for line in lines:
        reply = reader.feed(line)
        if reply is not None:
            replies.append(reply)
    return reader, replies


def test_reader_single_reply():
    reader = ReplyReader()
    reply = reader.feed("200 result=1")
    assert reply.code == 200 and reply.result == "1"
    assert not reader.hung_up


@pytest.mark.parametrize(
    "lines",
    [
        ["HANGUP", "200 result=1"],
        ["HANGUP", "HANGUP", "200 result=1"],
        ["100 result=0 Trying...", "200 result=1"],
        ["HANGUP", "100 result=0 Trying...", "HANGUP", "200 result=1"],
    ],
)
def test_reader_skips_hangup_and_trying(lines):
    reader, replies = feed_all(lines)
    assert [r.result for r in replies] == ["1"]
    assert reader.hung_up == ("HANGUP" in lines)


def test_reader_hangup_after_reply_belongs_to_next_command():
    reader = ReplyReader()
    assert reader.feed("200 result=1").result == "1"
    assert not reader.hung_up
    assert reader.feed("HANGUP") is None
    assert reader.hung_up
    assert reader.feed("511 Command Not Permitted on a dead channel or intercept routine").code == 511


def test_reader_collects_520_block_and_stays_in_sync():
    block = usage_block("SET VARIABLE")
    reader, replies = feed_all([*block, "200 result=1"])
    assert len(replies) == 2
    first, second = replies
    assert first.code == 520
    assert first.text == "End of proper usage."
    assert first.usage == ("Invalid command syntax.  Proper usage follows:", " Usage: SET VARIABLE <arguments>",
                           "        Does something with its arguments.", "")
    assert second == Reply(200, result="1", text="200 result=1")
    assert not reader.in_block


def test_reader_520_block_may_contain_reply_lookalikes():
    lines = ["520-Invalid command syntax.  Proper usage follows:", "200 result=1", "HANGUP", "520-x",
             "100 Trying", "520 End of proper usage.", "200 result=0"]
    reader, replies = feed_all(lines)
    assert [r.code for r in replies] == [520, 200]
    assert replies[0].usage == ("Invalid command syntax.  Proper usage follows:", "200 result=1", "HANGUP",
                                "520-x", "100 Trying")
    assert replies[1].result == "0"
    assert not reader.hung_up  # HANGUP inside a usage text is text


def test_reader_in_block_flag():
    reader = ReplyReader()
    assert reader.feed("520-Invalid") is None
    assert reader.in_block
    assert reader.feed("520 End") is not None
    assert not reader.in_block


def test_reader_one_line_520():
    _, replies = feed_all(["520 Invalid command syntax.  Proper usage not available."])
    assert replies[0].code == 520 and replies[0].usage == ()


def test_reader_unending_520_block_is_an_error():
    reader = ReplyReader()
    reader.feed("520-Invalid command syntax.  Proper usage follows:")
    with pytest.raises(ProtocolError):
        for _ in range(MAX_USAGE_LINES + 1):
            reader.feed("usage text")


@pytest.mark.parametrize("line", ["garbage", "", "agi_network: yes", "200", "hangup"])
def test_reader_rejects_garbage(line):
    with pytest.raises(ProtocolError):
        ReplyReader().feed(line)


# --------------------------------------------------------------------------- quoting and encoding


@pytest.mark.parametrize(
    ("arg", "quoted"),
    [
        ("x", '"x"'),
        ("", '""'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ("two words", '"two words"'),
        (5000, '"5000"'),
        ("CALLERID(pres)", '"CALLERID(pres)"'),
    ],
)
def test_quote(arg, quoted):
    assert quote(arg) == quoted


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\x00b", "\n", "x\r\n"])
def test_quote_refuses_cr_lf_nul(bad):
    with pytest.raises(UnsafeArgument):
        quote(bad)
    with pytest.raises(UnsafeArgument):
        encode_command("SET VARIABLE", "X", bad)


def test_encode_command_exact_bytes():
    assert encode_command("SET VARIABLE", "CALLERID(pres)", "prohib") == b'SET VARIABLE "CALLERID(pres)" "prohib"\n'
    assert encode_command("WAIT FOR DIGIT", 5000) == b'WAIT FOR DIGIT "5000"\n'
    assert encode_command("ANSWER") == b"ANSWER\n"
    assert encode_command("STREAM FILE", "beep", "") == b'STREAM FILE "beep" ""\n'


def test_set_variable_is_four_words_for_asterisk():
    line = encode_command("SET VARIABLE", "CALLERID(pres)", "prohib").decode().rstrip("\n")
    assert unquote_args(line) == ["SET", "VARIABLE", "CALLERID(pres)", "prohib"]


def test_hostile_value_stays_one_argument():
    value = 'x" "EXEC" "System" "rm -rf /'
    line = encode_command("SET VARIABLE", "X", value).decode().rstrip("\n")
    assert unquote_args(line) == ["SET", "VARIABLE", "X", value]


@pytest.mark.parametrize(
    "verb",
    ["set variable", "SET  VARIABLE", " SET", "SET VARIABLE ", "SET\tVARIABLE", "SET-VARIABLE", "SET VARIABLE\n",
     "", "EXEC1", "ÄNSWER", 'SET "VARIABLE"'],
)
def test_encode_command_validates_verb(verb):
    with pytest.raises(UnsafeArgument):
        encode_command(verb, "x")


def test_encode_command_8k_cap():
    overhead = len(encode_command("SET VARIABLE", "X", ""))
    fits = "a" * (MAX_LINE_BYTES - overhead)
    assert len(encode_command("SET VARIABLE", "X", fits)) == MAX_LINE_BYTES
    with pytest.raises(UnsafeArgument):
        encode_command("SET VARIABLE", "X", fits + "a")


def test_encode_command_cap_counts_bytes_not_characters():
    overhead = len(encode_command("SET VARIABLE", "X", ""))
    n = (MAX_LINE_BYTES - overhead) // 2 + 1  # fits in characters, not in UTF-8 bytes
    with pytest.raises(UnsafeArgument):
        encode_command("SET VARIABLE", "X", "é" * n)


@pytest.mark.parametrize(
    ("line", "argv"),
    [
        ('SET VARIABLE "A" "b"', ["SET", "VARIABLE", "A", "b"]),
        ("SET VARIABLE A b", ["SET", "VARIABLE", "A", "b"]),
        ('STREAM FILE "x" ""', ["STREAM", "FILE", "x", ""]),
        ('A "b c" d', ["A", "b c", "d"]),
        ('A "b\\"c"', ["A", 'b"c']),
        ('A "b\\\\c"', ["A", "b\\c"]),
        ("A  \t  b", ["A", "b"]),
        ("", []),
        ('A x"y z"w', ["A", "xy zw"]),
    ],
)
def test_unquote_args(line, argv):
    assert unquote_args(line) == argv


# --------------------------------------------------------------------------- properties

SAFE_TEXT = st.text(st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)), max_size=300)


@given(SAFE_TEXT)
def test_property_set_variable_round_trip(text):
    line = encode_command("SET VARIABLE", "X", text).decode("utf-8").rstrip("\n")
    assert unquote_args(line) == ["SET", "VARIABLE", "X", text]


@given(st.lists(SAFE_TEXT, max_size=5))
def test_property_any_arguments_round_trip(args):
    line = encode_command("EXEC", *args).decode("utf-8").rstrip("\n")
    assert unquote_args(line) == ["EXEC", *args]


@given(st.text(max_size=300))
def test_property_parse_reply_line_only_raises_protocol_error(line):
    try:
        reply = parse_reply_line(line)
    except ProtocolError:
        return
    assert reply.code in (200, 510, 511, 520)


@given(st.from_regex(r"200 result=[-0-9a-z]{0,6}( \([^\n]{0,40}\))?( endpos=-?[0-9]{1,19})?", fullmatch=True))
def test_property_wellformed_200_always_parses(line):
    reply = parse_reply_line(line)
    assert reply.code == 200
    assert line.startswith(f"200 result={reply.result}")


REPLYISH = st.one_of(
    st.sampled_from(["HANGUP", "100 result=0 Trying...", "200 result=1", "200 result=0 endpos=5", "510 x",
                     "511 dead", "520 usage", "520-usage", "520-", "520 ", "", "200 result=1 (a) endpos=1)"]),
    st.text(max_size=60),
)


@settings(max_examples=300)
@given(st.lists(REPLYISH, max_size=40))
def test_property_reply_reader_only_returns_replies_or_raises_protocol_error(lines):
    reader = ReplyReader()
    for line in lines:
        try:
            out = reader.feed(line)
        except ProtocolError:
            return
        assert out is None or isinstance(out, Reply)


@given(st.lists(st.text(max_size=80), max_size=30))
def test_property_header_block_only_raises_protocol_error(lines):
    try:
        request = parse_header_block(lines)
    except ProtocolError:
        return
    assert all(key.startswith("agi_") for key in request.env)


@given(st.binary(max_size=300))
def test_property_bytes_to_reply_only_raises_protocol_error(raw):
    reader = ReplyReader()
    for chunk in raw.split(b"\n"):
        try:
            reader.feed(decode_line(chunk))
        except ProtocolError:
            return


def test_peer_header_bytes_parse_back_exactly():
    raw = header_bytes("callreturn", ["1000"], calleridname="Smith, John: Sales")
    assert raw.endswith(b"\n\n")
    assert b"\nagi_accountcode:\n" in raw
    request = parse_header_block(decode_line(line) for line in raw.split(b"\n"))
    assert request.get("agi_calleridname") == "Smith, John: Sales"
    assert request.route == "callreturn"


def test_an_empty_header_block_is_not_asterisk():
    with pytest.raises(ProtocolError, match="empty header block"):
        parse_header_block([""])
    with pytest.raises(ProtocolError, match="empty header block"):
        build_request([])
