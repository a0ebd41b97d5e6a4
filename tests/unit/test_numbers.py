"""Validation of caller-controlled numbers: classification, dialed digits, callback rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telefeatures.config import NORTH_AMERICAN_RULES, FeatureSettings, RewriteRule
from telefeatures.features.numbers import (
    MAX_NAME,
    CallbackRules,
    InvalidNumber,
    NumberRules,
    classify_caller,
    clean_name,
    parse_dialed,
    parse_presentation,
    presentation_restricted,
)
from tests.support.callerids import HOSTILE_NUMBERS, WITHHELD_NUMBERS

RULES = NumberRules()
CALLBACKS = CallbackRules(list(NORTH_AMERICAN_RULES), RULES)

# --------------------------------------------------------------------------- dialable


@pytest.mark.parametrize("number", ["555", "5551234", "5551234567", "15551234567", "+15551234567", "+442071234567",
                                    "1" * 20, "+" + "1" * 20, "011442071234567"])
def test_dialable(number):
    assert RULES.is_dialable(number)


@pytest.mark.parametrize("number", HOSTILE_NUMBERS + WITHHELD_NUMBERS)
def test_not_dialable(number):
    assert not RULES.is_dialable(number)


def test_dialable_bounds_are_configurable():
    rules = NumberRules(min_digits=7, max_digits=10)
    assert not rules.is_dialable("555123")
    assert rules.is_dialable("5551234")
    assert rules.is_dialable("+5551234567")
    assert not rules.is_dialable("55512345678")


@given(st.text(max_size=40))
def test_property_dialable_means_ascii_digits(value):
    if RULES.is_dialable(value):
        digits = value.removeprefix("+")
        assert digits and all(c in "0123456789" for c in digits)
        assert 3 <= len(digits) <= 20


# --------------------------------------------------------------------------- presentation


@pytest.mark.parametrize("pres", [32, 33, 34, 35, 67, 0x20, 0x40, 0x43, 0x60, 0x63])
def test_restricted_presentations(pres):
    assert presentation_restricted(pres)


@pytest.mark.parametrize("pres", [0, 1, 2, 3, 16, 0x80])
def test_allowed_presentations(pres):
    assert not presentation_restricted(pres)


@pytest.mark.parametrize(("raw", "value"), [("0", 0), ("35", 35), (" 67 ", 67), ("255", 255), ("256", None),
                                            ("-1", None), ("", None), ("prohib", 35), ("prohibited", None), ("3.0", None)])
def test_parse_presentation(raw, value):
    assert parse_presentation(raw) == value


# --------------------------------------------------------------------------- classify_caller


def test_plain_caller_is_recorded():
    record = classify_caller("5551234567", "Bob Smith", "0", RULES, now=1000.0)
    assert (record.number, record.name, record.presentation, record.time, record.withheld, record.reason) == (
        "5551234567", "Bob Smith", 0, 1000.0, False, "")


@pytest.mark.parametrize("pres", ["32", "33", "34", "35", "67"])
def test_restricted_presentation_withholds(pres):
    record = classify_caller("5551234567", "Bob", pres, RULES)
    assert record.withheld and record.reason == "restricted"
    assert record.number == "" and record.name == ""
    assert record.presentation == int(pres)


@pytest.mark.parametrize("number", WITHHELD_NUMBERS)
def test_anonymous_words_withhold(number):
    record = classify_caller(number, "Anonymous", "0", RULES)
    assert record.withheld and record.reason == "anonymous"
    assert record.number == ""


@pytest.mark.parametrize("number", HOSTILE_NUMBERS)
def test_hostile_caller_ids_are_withheld(number):
    record = classify_caller(number, "x", "0", RULES)
    assert record.withheld
    assert record.reason == "invalid-number"
    assert record.number == ""


@pytest.mark.parametrize("pres", ["", "abc", "-1", "999", "0x20"])
def test_bad_presentation_withholds(pres):
    record = classify_caller("5551234567", "Bob", pres, RULES)
    assert record.withheld and record.reason == "bad-presentation"
    assert record.presentation == 0


def test_name_is_cleaned_and_bounded():
    record = classify_caller("5551234567", "  Bob\x00\r\n\x1b[31mSmith" + "y" * 200, "0", RULES)
    assert not record.withheld
    assert record.name.startswith("Bob[31mSmith")
    assert len(record.name) <= MAX_NAME
    assert all(ch.isprintable() for ch in record.name)


@pytest.mark.parametrize("name", ["anonymous", "Unknown", "RESTRICTED", ""])
def test_placeholder_names_are_dropped(name):
    assert classify_caller("5551234567", name, "0", RULES).name == ""


def test_clean_name():
    assert clean_name("  Zoë \t") == "Zoë"
    assert clean_name("a\nb") == "ab"
    assert clean_name("\ufffd\ufffdBob") == "\ufffd\ufffdBob"
    assert len(clean_name("x" * 1000)) == MAX_NAME


@given(st.text(max_size=60), st.text(max_size=60), st.text(max_size=6))
def test_property_classified_number_is_empty_or_dialable(number, name, pres):
    record = classify_caller(number, name, pres, RULES)
    if record.withheld:
        assert record.number == "" and record.name == "" and record.reason
    else:
        assert RULES.is_dialable(record.number)
        assert record.number == number
        assert not presentation_restricted(record.presentation)


# --------------------------------------------------------------------------- parse_dialed


@pytest.mark.parametrize(
    ("dialed", "number", "per_call"),
    [
        ("5551234", "5551234", False),
        ("15551234567", "15551234567", False),
        ("+442071234567", "+442071234567", False),
        ("*675551234", "5551234", True),
        ("*6715551234567", "15551234567", True),
        ("*67+442071234567", "+442071234567", True),
    ],
)
def test_parse_dialed(dialed, number, per_call):
    assert parse_dialed(dialed, ["*67"], RULES) == (number, per_call)


@pytest.mark.parametrize("dialed", ["", "*67", "*67*675551234", "*675551234&PJSIP/x", "*69", "5551234,30",
                                    "*6", "*6 75551234", "67", "*67" + "5" * 30, "٥٥٥١٢٣٤"])
def test_parse_dialed_refuses(dialed):
    with pytest.raises(InvalidNumber):
        parse_dialed(dialed, ["*67"], RULES)


def test_parse_dialed_longest_code_first():
    assert parse_dialed("*6715551234", ["*6", "*67"], RULES) == ("15551234", True)
    assert parse_dialed("1415551234", ["141"], RULES) == ("5551234", True)
    # without any code configured, *67 is just not a number
    with pytest.raises(InvalidNumber):
        parse_dialed("*675551234", [], RULES)


# --------------------------------------------------------------------------- callback rules


@pytest.mark.parametrize(
    ("stored", "dial"),
    [
        ("5551234567", "15551234567"),  # 10 digits -> 1 + number
        ("2125551234", "12125551234"),
        ("15551234567", "15551234567"),  # already 1 + NANP
        ("+15551234567", "15551234567"),  # E.164 NANP
        ("+442071234567", "011442071234567"),  # international -> 011
        ("+33123456", "01133123456"),
        ("5551234", "5551234"),  # 7-digit local
    ],
)
def test_default_callback_rules(stored, dial):
    assert CALLBACKS.callback_number(stored) == dial


@pytest.mark.parametrize("stored", ["1234", "0551234567", "1055512345", "+12345", "12345678901234",
                                    "+1055512345", "+10555123456", "+01234567",  # never dialed abroad
                                    "555123", "0123456", "5551234&PJSIP/x", "٥٥٥١٢٣٤٥٦٧", ""])
def test_numbers_no_rule_matches_are_refused(stored):
    assert CALLBACKS.callback_number(stored) is None


def test_rule_order_first_match_wins():
    rules = CallbackRules([RewriteRule(match=r"[0-9]+", rewrite=r"9\g<0>"),
                           RewriteRule(match=r"[0-9]{7}", rewrite=r"\g<0>")], RULES)
    assert rules.callback_number("5551234") == "95551234"


@pytest.mark.parametrize(
    "rule",
    [
        RewriteRule(match=r"[0-9]+", rewrite=r"\g<0>&PJSIP/evil"),
        RewriteRule(match=r"[0-9]+", rewrite=r"\g<0>,30"),
        RewriteRule(match=r"[0-9]+", rewrite=r"PJSIP/\g<0>"),
        RewriteRule(match=r"[0-9]+", rewrite=r""),
        RewriteRule(match=r"[0-9]+", rewrite=r"1\g<0>" + "0" * 20),  # too long after rewriting
        RewriteRule(match=r"([0-9])[0-9]*", rewrite=r"\1"),  # too short after rewriting
    ],
)
def test_rule_whose_output_is_not_dialable_is_refused(rule):
    assert CallbackRules([rule], RULES).callback_number("5551234") is None


def test_rules_match_ascii_digits_only():
    # \d would match Arabic-Indic digits without re.ASCII; the stored number is
    # checked first anyway, but a rule must not widen what it accepts.
    rules = CallbackRules([RewriteRule(match=r"\d{7}", rewrite=r"\g<0>")], RULES)
    assert rules.callback_number("5551234") == "5551234"
    assert rules.callback_number("٥٥٥١٢٣٤") is None


@settings(max_examples=200)
@given(st.text(alphabet="0123456789+*#&,|;$ ()-٥", max_size=25))
def test_property_callback_is_none_or_dialable(number):
    out = CALLBACKS.callback_number(number)
    assert out is None or (RULES.is_dialable(out) and out.isascii())


def test_settings_rules_are_the_default():
    assert [r.match for r in FeatureSettings().callback_rules] == [r.match for r in NORTH_AMERICAN_RULES]
