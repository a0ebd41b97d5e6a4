"""Inventory validation: every error names the phone, the line and the field."""

from __future__ import annotations

import zoneinfo

import pytest

from telefeatures.provisioning.inventory import InventoryError, normalize_mac, parse_inventory
from telefeatures.provisioning.timezones import CISCO_ZONES, IANA_TO_CISCO, cisco_time_zone

from .conftest import SITE, phone_toml


def errors_of(text: str) -> list[str]:
    with pytest.raises(InventoryError) as info:
        parse_inventory(text)
    return info.value.errors


def one_phone(**line: str) -> str:
    fields = {"extension": "1001", "display_name": "Alice"} | line
    return SITE + phone_toml("00:19:e8:f4:90:ad", "7961", "Desk1", [fields])


@pytest.mark.parametrize("spelling", ["00:19:e8:f4:90:ad", "0019.E8F4.90AD", "0019E8F490AD",
                                      "00-19-E8-F4-90-AD", "0019e8f490ad"])
def test_mac_spellings_normalize_to_upper_hex(spelling):
    assert normalize_mac(spelling) == "0019E8F490AD"
    inventory = parse_inventory(SITE + phone_toml(spelling, lines=[{"extension": "1001", "display_name": "A"}]))
    assert inventory.phones[0].config_name == "SEP0019E8F490AD.cnf.xml"


@pytest.mark.parametrize("bad", ["00:19:e8:f4:90", "00:19-e8:f4:90:ad", "0019.E8F4.90AG", "01:00:5e:00:00:01",
                                 "ff:ff:ff:ff:ff:ff", "000000000000", "0019.E8F4.90AD.00"])
def test_bad_mac_is_named(bad):
    [error] = errors_of(SITE + phone_toml(bad, lines=[{"extension": "1001", "display_name": "A"}]))
    assert error.startswith(f"phone #1 (mac {bad}")
    assert ", mac: " in error


def test_good_inventory_parses_with_defaults():
    inventory = parse_inventory(one_phone())
    site = inventory.site
    assert site.transport == "udp" and site.context == "tf-phones"
    assert site.pjsip_transport_name == "transport-udp" and site.transport_code == 2
    assert site.cisco_time_zone == "Eastern Standard/Daylight Time"
    codes = site.feature_codes
    assert (codes.call_return, codes.block_on, codes.block_off, codes.block_status, codes.per_call_block) == (
        "*69", "*81", "*82", "*83", "*67")
    assert inventory.phones[0].lines[0].auth_name == "1001"


def test_duplicate_mac_across_spellings():
    text = SITE + phone_toml("00:19:e8:f4:90:ad", lines=[{"extension": "1001", "display_name": "A"}]) \
        + phone_toml("0019.E8F4.90AD", lines=[{"extension": "1002", "display_name": "B"}])
    [error] = errors_of(text)
    assert error == "phone #2 (mac 00:19:e8:f4:90:ad), mac: duplicate MAC, already used by phone #1"


def test_duplicate_extension_names_both_places():
    text = SITE + phone_toml("0019E8F490AD", label="Desk1",
                             lines=[{"extension": "1001", "display_name": "A"}]) \
        + phone_toml("0019E8F490AE", label="Desk2",
                     lines=[{"extension": "1002", "display_name": "B"}, {"extension": "1001", "display_name": "C"}])
    [error] = errors_of(text)
    assert error.startswith("phone #2 (mac 00:19:e8:f4:90:ae, label Desk2), line #2 (extension 1001), extension:")
    assert "already on phone #1 line #1" in error


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("display_name", "A" * 31, "display_name: 31 characters; the phone allows at most 30"),
    ("label", "L" * 31, "label: 31 characters; the phone allows at most 30"),
    ("auth_user", "u" * 31, "auth_user: 1-30 of letters"),
    ("password", "p" * 31, "password: 31 characters; the phone allows at most 30"),
    ("password", "short", "password: at least 12 characters"),
    ("password", "has space 12345", "password: spaces and backslashes are not allowed"),
    ("display_name", "Zoë Müller", "display_name: 'ë' is not ASCII; the phone cannot display it"),
    ("display_name", 'Say "hi"', "display_name: characters '\"' are not allowed"),
    ("display_name", "Tab\there", "display_name: control character '\\t' is not allowed"),
    ("extension", "10a1", "extension: '10a1': an extension is 2-15 digits"),
])
def test_line_value_errors_name_phone_line_and_field(field, value, expected):
    [error] = errors_of(one_phone(**{field: value}))
    ext = value if field == "extension" else "1001"
    assert error.startswith(f"phone #1 (mac 00:19:e8:f4:90:ad, label Desk1), line #1 (extension {ext}), ")
    assert expected in error, error


@pytest.mark.parametrize(("label", "expected"), [
    (" Front", "label: leading or trailing spaces are not allowed in the phone label"),
    ("ThirteenChars", "label: 13 characters; the phone allows at most 12"),
    ("Café", "label: 'é' is not ASCII"),
])
def test_phone_label_rules(label, expected):
    [error] = errors_of(SITE + phone_toml("0019E8F490AD", label=label,
                                          lines=[{"extension": "1001", "display_name": "A"}]))
    assert error.startswith("phone #1 (mac 0019E8F490AD")
    assert expected in error


def test_unknown_model_lists_known_ones():
    [error] = errors_of(SITE + phone_toml("0019E8F490AD", model="7912",
                                          lines=[{"extension": "1001", "display_name": "A"}]))
    assert error.startswith("phone #1 (mac 0019E8F490AD), model: Input should be '7906'")
    assert "'7961G-GE'" in error


def test_too_many_lines_for_model():
    lines = [{"extension": f"100{n}", "display_name": f"L{n}"} for n in range(1, 3)]
    [error] = errors_of(SITE + phone_toml("0019E8F490AD", model="7911", lines=lines))
    assert error == "phone #1 (mac 0019E8F490AD): 2 lines, but a 7911 has 1 line button(s)"


def test_phone_without_lines():
    [error] = errors_of(SITE + phone_toml("0019E8F490AD", lines=[]))
    assert error.startswith("phone #1 (mac 0019E8F490AD), lines: Field required")


def test_unknown_time_zone_is_rejected_clearly():
    [error] = errors_of(SITE.replace("America/New_York", "Mars/Olympus_Mons"))
    assert error.startswith("site.time_zone: unknown time zone 'Mars/Olympus_Mons'")
    [error] = errors_of(SITE.replace("America/New_York", "america/new_york"))
    assert "did you mean 'America/New_York'" in error
    [error] = errors_of(SITE.replace("America/New_York", "Europe/Berln"))
    assert "did you mean 'Europe/Berlin'" in error
    # speaks to the admin: where the names are listed, not a source file
    assert ".py" not in error and "`telefeatures provision zones` lists every name" in error


def test_cisco_zone_name_accepted_directly():
    inventory = parse_inventory(SITE.replace("America/New_York", "W. Europe Standard/Daylight Time"))
    assert inventory.site.cisco_time_zone == "W. Europe Standard/Daylight Time"


def test_time_zone_table_uses_real_iana_names():
    available = zoneinfo.available_timezones()
    assert set(IANA_TO_CISCO) <= available
    for iana in ("America/New_York", "America/Chicago", "America/Denver", "America/Phoenix",
                 "America/Los_Angeles", "Europe/London", "Europe/Berlin", "Europe/Paris", "Asia/Tokyo",
                 "Australia/Sydney"):
        assert cisco_time_zone(iana) in CISCO_ZONES
    assert cisco_time_zone("America/Los_Angeles") == "Pacific Standard/Daylight Time"
    assert cisco_time_zone("Europe/London") == "GMT Standard/Daylight Time"


def test_malformed_toml_reports_line_and_column():
    [error] = errors_of(SITE + "\n[[phones]]\nmac = 0019E8F490AD\n")
    assert error.startswith("TOML syntax error: ")
    assert f"(at line {SITE.count(chr(10)) + 3}, column 8)" in error


def test_wrong_types_are_not_coerced():
    errors = errors_of(SITE.replace("sip_port = 5060", 'sip_port = "5060"')
                       + phone_toml("0019E8F490AD", lines=[{"extension": "1001", "display_name": "A"}])
                       .replace('extension = "1001"', "extension = 1001"))
    assert errors[0] == "site.sip_port: Input should be a valid integer"
    assert errors[1].startswith("phone #1 (mac 0019E8F490AD), line #1 (extension 1001), extension: "
                                "Input should be a valid string")


def test_unknown_keys_are_errors():
    [error] = errors_of(SITE.replace("[site.firmware]", 'ntp_sever = "x"\n[site.firmware]'))
    assert error == "site.ntp_sever: unknown key (did you mean 'ntp_server'?)"
    [error] = errors_of(SITE.replace("[site.firmware]", 'qqqqq = "x"\n[site.firmware]'))
    assert error == "site.qqqqq: unknown key"


def test_a_typo_in_a_required_key_is_one_error_that_suggests_the_key():
    # (was: "lines: Field required" and "lnies: Extra inputs are not permitted", no hint)
    text = SITE + phone_toml("0019E8F490AD", lines=[{"extension": "1001", "display_name": "A"}])
    errors = errors_of(text.replace("[[phones.lines]]", "[[phones.lnies]]"))
    assert errors == ["phone #1 (mac 0019E8F490AD), lnies: unknown key (did you mean 'lines'?)"]


def test_unknown_firmware_model_and_bad_load():
    errors = errors_of(SITE.replace('"7911" = "SIP11.9-4-2SR3-1S"', '"7912" = "P0S3-08"\n"7942" = "a b"'))
    assert any(e.startswith("site.firmware.7912.[key]: Input should be '7906'") for e in errors), errors
    assert any(e.startswith("site.firmware.7942: 'a b' is not a load name") for e in errors), errors


@pytest.mark.parametrize(("pattern", "expected"), [
    ("9XXXXXXX", "'X' is not part of the phone's grammar"),
    ("9[2-9]......", "ranges like [2-9] are not part of the phone's grammar"),
    ("9\\1", "a backslash may only escape a star"),
])
def test_dial_rules_use_the_phone_grammar(pattern, expected):
    [error] = errors_of(SITE.replace('"9011*"', f'"9011*", {toml_escape(pattern)}'))
    assert error.startswith("site.dial_rules.outside_patterns.5: dial pattern")
    assert expected in error


def toml_escape(text: str) -> str:
    return '"' + text.replace("\\", "\\\\") + '"'


def test_extension_the_dial_plan_would_cut_short():
    # With 4-digit extension patterns, a 5-digit extension would be sent after 4 digits.
    [error] = errors_of(SITE + phone_toml("0019E8F490AD", lines=[{"extension": "10001", "display_name": "A"}]))
    assert error.startswith("phone #1 (mac 00:19:e8:f4:90:ad), line #1 (extension 10001), extension: cannot be "
                            "dialled, the dial plan sends '1000' as soon as it is complete (template '1...')")


def test_feature_codes_validated_and_distinct():
    errors = errors_of(SITE.replace("[site.dial_rules]", '[site.feature_codes]\ncall_return = "*6#9"\n'
                                    'block_on = "*82"\n[site.dial_rules]'))
    assert any("site.feature_codes.call_return: feature code '*6#9' must be 1-8 of 0-9 and *" in e for e in errors)
    errors = errors_of(SITE.replace("[site.dial_rules]", '[site.feature_codes]\nblock_on = "*82"\n'
                                    "[site.dial_rules]"))
    assert errors == ["site.feature_codes: feature codes must all be different"]


def test_every_error_is_reported_at_once():
    text = SITE.replace("America/New_York", "Nowhere") + phone_toml(
        "nope", model="7912", lines=[{"extension": "1001", "display_name": "B" * 40}])
    errors = errors_of(text)
    assert len(errors) == 4, errors


def test_extension_that_would_wait_for_a_longer_rule():
    # "1..." and "1.........." name the same number of exact keys: on 1001 the phone keeps waiting.
    site = SITE.replace('"9011*"]', '"9011*", "1.........."]')
    [error] = errors_of(site + phone_toml("0019E8F490AD", lines=[{"extension": "1001", "display_name": "A"}]))
    assert error.startswith("phone #1 (mac 00:19:e8:f4:90:ad), line #1 (extension 1001), extension: would not "
                            "dial at once: template '1..........' could still match")


def test_extension_outside_every_extension_pattern():
    [error] = errors_of(SITE + phone_toml("0019E8F490AD", lines=[{"extension": "2001", "display_name": "A"}]))
    assert "extension 2001), extension: would not dial at once: no template with Timeout 0 matches it" in error


def test_feature_code_that_would_wait():
    site = SITE.replace('"9011*"]', '"9011*", "\\\\*69."]')
    [error] = errors_of(site)
    assert error.startswith("site: feature code *69 (call return) would not dial at once: template '\\\\*69.' could "
                            "still match")


def test_provision_zones_lists_every_name_an_inventory_accepts():
    from click.testing import CliRunner

    from telefeatures.cli import cli

    result = CliRunner().invoke(cli, ["provision", "zones"])
    assert result.exit_code == 0
    listed = result.output
    assert all(iana in listed for iana in IANA_TO_CISCO)
    assert all(cisco in listed for cisco in CISCO_ZONES)
