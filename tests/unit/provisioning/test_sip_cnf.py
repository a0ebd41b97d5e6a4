"""The 7940/7960: SIP<MAC>.cnf + SIPDefault.cnf + the same dial plan, from the
same inventory as the 79x1 files."""

from __future__ import annotations

import re
import pytest
from click.testing import CliRunner

from telefeatures.cli import cli
from telefeatures.provisioning.inventory import InventoryError, parse_inventory
from telefeatures.provisioning.render import ConfigRenderer, RenderError

from tests.support.corpus import corpus_files

from .conftest import SITE, phone_toml
SITE_7940 = SITE.replace("[site.firmware]", '[site.firmware]\n"7940" = "P0S3-8-12-00"\n"7960" = "P0S3-8-12-00"')
LINES = [{"extension": "1001", "display_name": "Hall & Co", "messages_number": "8000"},
         {"extension": "1002", "display_name": "Hall 2", "label": "Overflow", "auth_user": "hall-2"}]


def read_cnf(data: bytes) -> dict[str, str]:
    """key -> value, the way the 7940/7960 reads its files (quotes removed)."""
    values = {}
    for line in data.decode("ascii").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = line.partition(":")
        assert sep, line
        values[key.strip()] = value.strip().strip('"')
    return values


def render(text: str, passwords: dict[str, str] | None = None) -> tuple[dict[str, str], dict[str, str]]:
    inventory = parse_inventory(text)
    passwords = passwords or {line.extension: f"pw-{line.extension}-abcd" for p in inventory.phones
                              for line in p.lines}
    renderer = ConfigRenderer()
    return (read_cnf(renderer.render_sip_cnf(inventory, inventory.phones[0], passwords)),
            read_cnf(renderer.render_sip_default(inventory)))


def test_lines_firmware_and_settings():
    phone, default = render(SITE_7940 + phone_toml("0019E8F490AD", "7960", "Hall", LINES))
    assert phone["image_version"] == "P0S3-8-12-00" and phone["phone_label"] == "Hall"
    assert (phone["line1_name"], phone["line1_shortname"], phone["line1_displayname"], phone["line1_authname"],
            phone["line1_password"]) == ("1001", "1001", "Hall & Co", "1001", "pw-1001-abcd")
    assert (phone["line2_shortname"], phone["line2_authname"]) == ("Overflow", "hall-2")
    for values in (phone, default):
        assert values["proxy1_address"] == "192.0.2.10" and values["proxy1_port"] == "5060"
        assert values["proxy_register"] == "1" and values["dial_template"] == "dialplan"
        assert values["time_zone"] == "EST" and values["dst_start_month"] == "March"
        assert values["dst_start_week_of_month"] == "2" and values["dst_stop_month"] == "November"
        assert values["time_format_24hr"] == "0" and values["date_format"] == "M/D/Y"
        assert values["tos_media"] == "5"  # dscpForAudio 184 = EF = precedence 5
        assert values["remote_party_id"] == "1" and values["telnet_level"] == "0"
        assert values["callerid_blocking"] == "0"  # 2 = off (locked) on the 79x1
    assert phone["messages_uri"] == "8000"  # line 1's: one Messages key per phone
    assert default["messages_uri"] == "*97"
    assert "line1_name" not in default and "image_version" not in default


def test_phone_overrides_go_to_its_own_file():
    text = SITE_7940 + phone_toml("0019E8F490AD", "7940", None, LINES[:1]).replace(
        'model = "7940"\n', 'model = "7940"\ntime_zone = "Europe/Berlin"\nnat_enabled = true\n'
                            'nat_address = "203.0.113.7"\ndate_format = "D.M.Y"\ntelnet_level = 2\n')
    phone, default = render(text)
    assert (phone["time_zone"], phone["dst_start_week_of_month"], phone["dst_stop_month"]) == ("CET", "8", "October")
    assert (phone["nat_enable"], phone["nat_address"]) == ("1", "203.0.113.7")
    assert (phone["date_format"], phone["time_format_24hr"]) == ("D.M.Y", "1")
    assert phone["telnet_level"] == "2" and default["telnet_level"] == "0"
    assert default["time_zone"] == "EST" and default["nat_enable"] == "0"


def test_every_key_written_is_one_real_7940_files_use():
    known = set()
    for path in corpus_files("sip79x0"):
        for line in path.read_text(errors="replace").splitlines():
            if match := re.match(r"\s*#?\s*([a-z0-9_]+)\s*:", line):
                known.add(match.group(1))
    text = SITE_7940.replace("[site.firmware]", 'logo_url = "http://192.0.2.5/logo.bmp"\n'
                             'directory_url = "http://192.0.2.5/d.xml"\nservices_url = "http://192.0.2.5/s"\n'
                             'phone_password = "settings-pw"\n[site.firmware]')
    phone, default = render(text + phone_toml("0019E8F490AD", "7960", "Hall", LINES))
    assert len(known) > 60
    assert set(phone) - known == set() and set(default) - known == set()


@pytest.mark.parametrize(("change", "message"), [
    (('display_name = "Hall 2"', 'display_name = "Hall; 2"'), "cannot hold ';'"),
    (('time_zone = "America/New_York"', 'time_zone = "Asia/Kolkata"'), "has no 7940/7960 equivalent"),
])
def test_what_the_format_cannot_hold_is_an_error_naming_the_file(change, message):
    inventory = parse_inventory((SITE_7940 + phone_toml("0019E8F490AD", "7960", None, LINES)).replace(*change))
    with pytest.raises(RenderError) as info:
        ConfigRenderer().render_sip_cnf(inventory, inventory.phones[0], {"1001": "p" * 12, "1002": "p" * 12})
    assert info.value.what == "SIP0019E8F490AD.cnf"
    assert any(message in p for p in info.value.problems), info.value.problems


def test_7940_needs_udp():
    with pytest.raises(InventoryError) as info:
        parse_inventory(SITE_7940.replace("[site.firmware]", 'transport = "tcp"\n[site.firmware]')
                        + phone_toml("0019E8F490AD", "7940", None, LINES[:1]))
    assert info.value.errors == ["phone #1 (mac 00:19:e8:f4:90:ad), model: a 7940 registers over UDP, but "
                                 "site.transport is tcp"]


def test_build_writes_both_formats_from_one_inventory(tmp_path):
    inventory = tmp_path / "phones.toml"
    inventory.write_text(SITE_7940 + phone_toml("0019E8F490AD", "7960", "Hall", LINES)
                         + phone_toml("0019E8F490AE", "7961", None, [{"extension": "1003", "display_name": "C"}]))
    root = tmp_path / "tftp"
    root.mkdir()
    result = CliRunner().invoke(cli, ["provision", "build", str(inventory), "--tftp-root", str(root)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in root.iterdir()) == ["SEP0019E8F490AE.cnf.xml", "SIP0019E8F490AD.cnf",
                                                      "SIPDefault.cnf", "XMLDefault.cnf.xml", "dialplan.xml"]
    xml_default = (root / "XMLDefault.cnf.xml").read_text()
    assert '<loadInformation7 model="Cisco IP Phone 7960">P0S3-8-12-00</loadInformation7>' in xml_default
    # A 7960 removed from the inventory is listed as stale, like a SEP file.
    inventory.write_text(SITE_7940 + phone_toml("0019E8F490AE", "7961", None,
                                                [{"extension": "1003", "display_name": "C"}]))
    result = CliRunner().invoke(cli, ["provision", "build", str(inventory), "--tftp-root", str(root)])
    assert result.exit_code == 0 and "SIP0019E8F490AD.cnf" in result.output, result.output


RULE_1996 = ('{start_month = "April", start_week_of_month = 1, stop_month = "October", stop_week_of_month = 8, '
             'stop_time = "03:00"}')


def with_daylight_saving(site: str | None, phone: str | None = None, model: str = "7960") -> str:
    """SITE_7940 with ``daylight_saving = <site>`` and one phone of ``model`` with its own ``<phone>``."""
    text = SITE_7940
    if site is not None:
        text = text.replace("[site.firmware]", f"daylight_saving = {site}\n[site.firmware]")
    entry = phone_toml("0019E8F490AD", model, None, LINES[:1])
    if phone is not None:
        entry = entry.replace(f'model = "{model}"\n', f'model = "{model}"\ndaylight_saving = {phone}\n')
    return text + entry


def dst_keys(values: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in values.items() if key.startswith("dst_")}


def test_an_explicit_daylight_saving_rule_is_written_instead_of_the_zones():
    phone, default = render(with_daylight_saving(RULE_1996))
    for values in (phone, default):
        assert values["time_zone"] == "EST"  # the zone's name stays
        assert dst_keys(values) == {
            "dst_offset": "1", "dst_start_month": "April", "dst_start_day": "", "dst_start_day_of_week": "Sunday",
            "dst_start_week_of_month": "1", "dst_start_time": "02:00", "dst_stop_month": "October",
            "dst_stop_day": "", "dst_stop_day_of_week": "Sunday", "dst_stop_week_of_month": "8",
            "dst_stop_time": "03:00", "dst_auto_adjust": "1"}


def test_a_fixed_day_rule_writes_the_day_and_no_week():
    phone, _ = render(with_daylight_saving('{start_month = "March", start_day = 21, stop_month = "September", '
                                           'stop_day = 22, start_time = "00:00", offset = 2}'))
    assert (phone["dst_start_day"], phone["dst_start_week_of_month"], phone["dst_start_time"]) == ("21", "", "00:00")
    assert (phone["dst_stop_day"], phone["dst_stop_week_of_month"], phone["dst_offset"]) == ("22", "", "2")


def test_daylight_saving_off_and_a_phones_own_rule():
    phone, default = render(with_daylight_saving('"off"', RULE_1996))
    assert dst_keys(default) == {"dst_auto_adjust": "0"}  # the site's: off
    assert phone["dst_auto_adjust"] == "1" and phone["dst_start_month"] == "April"  # the phone's own wins
    phone, default = render(with_daylight_saving(None, '"off"'))
    assert dst_keys(phone) == {"dst_auto_adjust": "0"} and default["dst_start_month"] == "March"  # auto: US rule


@pytest.mark.parametrize(("site", "phone", "model", "error"), [
    ('"of"', None, "7960", "site.daylight_saving: 'of': use \"auto\" (the time zone's rule), \"off\", or a table"),
    ("1", None, "7960", "site.daylight_saving: Input should be a valid string"),
    (RULE_1996.replace('"October"', '"Oct"'), None, "7960",
     "site.daylight_saving.stop_month: Input should be 'January', 'February'"),
    (RULE_1996.replace("start_week_of_month = 1", "start_week_of_month = 7"), None, "7960",
     "site.daylight_saving.start_week_of_month: 7 is not a week of the month: 1-6, or 8 for the last week"),
    (RULE_1996.replace('"03:00"', '"3"'), None, "7960",
     "site.daylight_saving.stop_time: '3' is not a time of day: use HH:MM (24-hour), e.g. 02:00"),
    (RULE_1996.replace("start_week_of_month = 1, ", ""), None, "7960",
     "site.daylight_saving: give start_week_of_month (1-6, 8 = the last week, with start_day_of_week) or "
     "start_day (a day of the month)"),
    (RULE_1996.replace("stop_week_of_month = 8", "stop_day = 31, stop_week_of_month = 8"), None, "7960",
     "site.daylight_saving: stop_day is a fixed day of the month: leave out stop_week_of_month and "
     "stop_day_of_week (the phone ignores them)"),
    (RULE_1996.replace("stop_week_of_month = 8", 'stop_day = 31, stop_day_of_week = "Monday"'), None, "7960",
     "site.daylight_saving: stop_day is a fixed day of the month"),
    (None, RULE_1996.replace("}", ", offset = 3}"), "7960",
     "phone #1 (mac 0019E8F490AD), daylight_saving.offset: Input should be less than or equal to 2"),
    (None, RULE_1996.replace('"April"', '"Apr"'), "7960",
     "phone #1 (mac 0019E8F490AD), daylight_saving.start_month: Input should be 'January'"),
    # The 79x1 file has no such setting: its zone table carries the rule, so a phone of it cannot override it.
    (None, '"off"', "7961", "phone #1 (mac 0019E8F490AD): daylight_saving: a 7961 takes its daylight-saving rule "
                            "from its time zone's table (set time_zone); daylight_saving is for the 7940/7960"),
])
def test_bad_daylight_saving_names_the_phone_and_field(site, phone, model, error):
    with pytest.raises(InventoryError) as info:
        parse_inventory(with_daylight_saving(site, phone, model))
    [message] = info.value.errors
    assert message.startswith(error), message


def test_a_79x1_may_say_auto_and_ignores_the_sites_rule():
    inventory = parse_inventory(with_daylight_saving(RULE_1996, '"auto"', "7961"))
    assert inventory.settings_for(inventory.phones[0]).daylight_saving == "auto"
    parse_inventory(with_daylight_saving(RULE_1996, None, "7961"))  # the site's rule is for its 7940/7960s
