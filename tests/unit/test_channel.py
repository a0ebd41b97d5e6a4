"""AgiChannel over the scripted Asterisk: what each channel call sends and how replies map back."""

from __future__ import annotations

import logging

import pytest

from telefeatures.agi.channel import ChannelHungUp, CommandRejected, play
from tests.support.asterisk_peer import (
    REPLY_511,
    USAGE_ONE_LINE,
    Script,
    ScriptedAsterisk,
    header_lines,
    parse_command,
    scripted_channel,
    usage_block,
)


async def test_get_variable():
    channel, ast = scripted_channel("outbound", ["1000"], Script(variables={"CHANNEL(endpoint)": "1000",
                                                                          "ODD": "a (b) c", "EMPTY": ""}))
    assert await channel.get_variable("CHANNEL(endpoint)") == "1000"
    assert await channel.get_variable("ODD") == "a (b) c"
    assert await channel.get_variable("EMPTY") == ""
    assert await channel.get_variable("UNSET") is None
    assert [c.line for c in ast.commands][0] == 'GET VARIABLE "CHANNEL(endpoint)"'


async def test_set_variable_hostile_value_is_one_argument():
    channel, ast = scripted_channel("outbound")
    value = 'x" "y\\z ${EXTEN} & , |'
    await channel.set_variable("TF_X", value)
    assert ast.sets == [("TF_X", value)]
    assert ast.commands[0].args == ("TF_X", value)


async def test_set_variable_refuses_line_breaks():
    channel, ast = scripted_channel("outbound")
    with pytest.raises(ValueError):
        await channel.set_variable("TF_X", "a\nSET VARIABLE B c")
    assert ast.commands == []  # nothing was sent


async def test_stream_file():
    channel, ast = scripted_channel("x", script=Script(press={"p2": "5", "p3": "#"}, missing_prompts={"gone"}))
    assert await channel.stream_file("p1", "5") is None
    assert await channel.stream_file("p2", "5") == "5"
    assert await channel.stream_file("p2", "1") is None  # a key that is no escape digit is ignored
    assert await channel.stream_file("p3", "#") == "#"
    assert await channel.stream_file("gone", "5") is None
    assert ast.prompts == ["p1", "p2", "p2", "p3", "gone"]
    assert ast.commands[0].line == 'STREAM FILE "p1" "5"'


async def test_missing_prompt_logs_a_warning(caplog):
    caplog.set_level(logging.WARNING, "telefeatures.agi")
    channel, _ = scripted_channel("x", script=Script(missing_prompts={"gone"}))
    assert await channel.stream_file("gone") is None
    assert any("'gone'" in r.getMessage() for r in caplog.records)


async def test_say_digits_and_wait_for_digit():
    channel, ast = scripted_channel("x", script=Script(say_press="1", wait_digit="9"))
    assert await channel.say_digits("5551234", "1") == "1"
    assert await channel.say_digits("5551234", "2") is None
    assert await channel.wait_for_digit(2500) == "9"
    assert ast.said == ["5551234", "5551234"]
    assert ast.commands[-1].line == 'WAIT FOR DIGIT "2500"'
    channel, _ = scripted_channel("x")
    assert await channel.wait_for_digit(1000) is None


async def test_play_stops_at_first_escape_digit():
    channel, ast = scripted_channel("x", script=Script(press={"b": "1"}))
    assert await play(channel, ["a", "b", "c"], "1") == "1"
    assert ast.prompts == ["a", "b"]
    assert await play(channel, ["a", "c"], "1") is None


async def test_511_is_a_hangup():
    channel, _ = scripted_channel("x", script=Script(replies={1: [REPLY_511]}))
    with pytest.raises(ChannelHungUp):
        await channel.stream_file("p")


async def test_dead_channel_still_takes_variables():
    channel, ast = scripted_channel("x", script=Script(hangup_before=1))
    await channel.set_variable("A", "1")
    assert channel.hung_up
    assert await channel.get_variable("A") is None
    with pytest.raises(ChannelHungUp):
        await channel.stream_file("p")
    assert ast.sets == [("A", "1")]


@pytest.mark.parametrize("reply", [["510 Invalid or unknown command"], [USAGE_ONE_LINE], usage_block("X")])
async def test_rejections(reply):
    channel, _ = scripted_channel("x", script=Script(replies={1: reply}))
    with pytest.raises(CommandRejected) as info:
        await channel.set_variable("A", "1")
    assert info.value.reply.code in (510, 520)
    assert 'SET VARIABLE "A" "1"' in str(info.value)


async def test_usage_block_then_next_reply_stays_in_sync():
    channel, ast = scripted_channel("x", script=Script(replies={1: usage_block("SET VARIABLE")},
                                                       variables={"B": "2"}))
    with pytest.raises(CommandRejected) as info:
        await channel.set_variable("A", "1")
    assert len(info.value.reply.usage) == 4
    assert await channel.get_variable("B") == "2"


async def test_close_is_a_hangup():
    channel, _ = scripted_channel("x", script=Script(close_at=2))
    await channel.set_variable("A", "1")
    with pytest.raises(ChannelHungUp):
        await channel.set_variable("B", "2")
    with pytest.raises(ChannelHungUp):
        await channel.set_variable("C", "3")


# --------------------------------------------------------------------------- the scripted Asterisk itself


def test_peer_is_strict_about_argument_counts():
    ast = ScriptedAsterisk()
    assert ast.respond('SET VARIABLE "A"') == usage_block("SET VARIABLE")
    assert ast.respond('SET VARIABLE "A" "b" "c"') == usage_block("SET VARIABLE")
    assert ast.respond("SET VARIABLE A b") == ["200 result=1"]
    assert ast.respond("FROB") == ["510 Invalid or unknown command"]
    assert ast.respond('GET FULL VARIABLE "${X}"') == ["200 result=0"]


def test_peer_injections_in_order():
    ast = ScriptedAsterisk(Script(before={1: ["100 result=0 Trying..."]}, hangup_after=1))
    assert ast.respond('SET VARIABLE "A" "b"') == ["100 result=0 Trying...", "200 result=1", "HANGUP"]
    assert ast.respond('STREAM FILE "x" ""') == [REPLY_511]


def test_parse_command_verbs():
    assert parse_command('WAIT FOR DIGIT "100"').verb == "WAIT FOR DIGIT"
    assert parse_command('GET FULL VARIABLE "${X}"').args == ("${X}",)
    assert parse_command('EXEC "Dial" "PJSIP/x,30"').args == ("Dial", "PJSIP/x,30")
    assert parse_command("").verb == ""


def test_header_order_matches_asterisk():
    keys = [(line if isinstance(line, str) else line.decode()).split(":")[0] for line in header_lines("r", ["a"])]
    assert keys == ["agi_network", "agi_network_script", "agi_request", "agi_channel", "agi_language", "agi_type",
                    "agi_uniqueid", "agi_version", "agi_callerid", "agi_calleridname", "agi_callingpres",
                    "agi_callingani2", "agi_callington", "agi_callingtns", "agi_dnid", "agi_rdnis", "agi_context",
                    "agi_extension", "agi_priority", "agi_enhanced", "agi_accountcode", "agi_threadid", "agi_arg_1"]
    with pytest.raises(TypeError):
        header_lines("r", bogus="x")
