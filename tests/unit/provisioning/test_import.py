"""Reading phone files into their meaning, ``provision import`` (round trip,
refusals, secrets, CSV) and ``provision lint``, on real files and the real CLI."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from telefeatures.cli import cli
from telefeatures.provisioning.config_reader import (
    meaning_differences,
    placeholders,
    read_sep,
    read_sip79x0,
)
from telefeatures.provisioning.inventory import load_inventory
from telefeatures.provisioning.xml_checks import BOOLEAN_RULE, PHONE_LABEL_RULE

from .conftest import SITE, phone_toml

MAC_A, MAC_B = "0019E8F490AD", "0019E8F490AE"
PASSWORD = "Xq7&kP<2zR9w"  # XML specials: must survive the round trip, never be printed

SEP_FILE = """\
<device>
  <deviceProtocol>SIP</deviceProtocol>
  <devicePool>
    <dateTimeSetting>
      <dateTemplate>D.M.YY</dateTemplate>
      <timeZone>Central Europe Standard/Daylight Time</timeZone>
      <ntps><ntp><name>192.0.2.1</name><ntpMode>Unicast</ntpMode></ntp></ntps>
    </dateTimeSetting>
    <callManagerGroup><members>
      <member priority="1"><callManager><ports><sipPort>5060</sipPort></ports>
        <processNodeName>192.0.2.99</processNodeName></callManager></member>
      <member priority="0"><callManager><ports><sipPort>5070</sipPort></ports>
        <processNodeName>192.0.2.10</processNodeName></callManager></member>
    </members></callManagerGroup>
  </devicePool>
  <sipProfile>
    <phoneLabel>Werkstatt</phoneLabel>
    <natEnabled>false</natEnabled>
    <sipLines>
      <line button="1">
        <featureID>9</featureID><featureLabel></featureLabel><proxy>USECALLMANAGER</proxy><port>5070</port>
        <name>623</name><displayName>Alice</displayName><authName>624</authName>
        <authPassword>1234</authPassword><messagesNumber>*97</messagesNumber><contact>623</contact>
      </line>
      <line button="2">
        <featureID>2</featureID><featureLabel>Mobile</featureLabel><speedDialNumber>**621</speedDialNumber>
      </line>
    </sipLines>
  </sipProfile>
  <loadInformation>SIP41.9-4-2SR1-1S</loadInformation>
  <transportLayerProtocol>2</transportLayerProtocol>
</device>
"""


def one_line_file() -> str:
    """SEP_FILE without its speed dial."""
    start = SEP_FILE.index('      <line button="2">')
    return SEP_FILE[:start] + SEP_FILE[SEP_FILE.index("</line>", start) + len("</line>\n"):]


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def build(inventory: Path, tftp: Path, secrets: Path, *more: str) -> Path:
    """``provision build`` into a new TFTP root ``tftp``, which must succeed."""
    tftp.mkdir()
    result = run("provision", "build", str(inventory), "--tftp-root", str(tftp), "--secrets", str(secrets), *more)
    assert result.exit_code == 0, result.output
    return tftp


def test_reads_what_the_phone_does_with_a_sep_file():
    meaning = read_sep(SEP_FILE.encode(), "SEP0012345678DE.cnf.xml")
    assert meaning.mac == "0012345678DE"
    assert (meaning.proxy, meaning.sip_port, meaning.transport) == ("192.0.2.10", "5070", "2")  # priority 0
    assert (meaning.time_zone, meaning.date_format, meaning.nat_enabled) == (
        "Central Europe Standard/Daylight Time", "D.M.YY", False)
    assert (meaning.start_media_port, meaning.stop_media_port) == ("16384", "32766")  # the phone's defaults
    [line] = meaning.lines
    assert (line.extension, line.display_name, line.auth_user, line.password, line.messages_number) == (
        "623", "Alice", "624", "1234", "*97")
    assert line.label == "623"  # an empty featureLabel shows the line name
    assert line.proxy == "192.0.2.10" and line.port == "5070"  # USECALLMANAGER: the call manager
    [key] = meaning.keys
    assert (key.button, key.feature_id, key.label, key.number) == (2, "2", "Mobile", "**621")
    assert meaning.settings["sipProfile/sipLines/line[button=2]/speedDialNumber"][0] == "**621"
    assert placeholders(meaning) == []


def test_reads_a_7960_from_sipdefault_and_its_own_file():
    default = ('# site defaults\nproxy1_address: "192.0.2.10"   ; the PBX\nproxy1_port: 5060\n'
               'messages_uri: "*97"\ntime_zone: "CET"\ndate_format: "D/M/Y"\nnat_enable: 0\n'
               'start_media_port: 16384\nend_media_port: 32766\n')
    own = 'line1_name: 622\nline1_authname: "622"\nline1_shortname: "Shop"\nline1_password: "1234"\n' \
          'line1_displayname: "622"; the caller id\nphone_label: "Werkstatt " ; trailing space kept\n' \
          'line2_name: ""\nline2_authname: "UNPROVISIONED"\n'
    meaning = read_sip79x0([("SIPDefault.cnf", default), ("SIP0012345678AB.cnf", own)])
    assert meaning.kind == "sip79x0" and meaning.mac == "0012345678AB"
    # No dst_* keys: the firmware's documented default rule applies, and is part of what the zone means.
    assert (meaning.proxy, meaning.time_zone, meaning.date_format) == (
        "192.0.2.10", "CET, DST April week 1 Sunday 02:00 to October week 8 Sunday 02:00", "D/M/Y")
    [line] = meaning.lines  # line 2 is unprovisioned
    assert (line.extension, line.label, line.display_name, line.password, line.messages_number) == (
        "622", "Shop", "622", "1234", "*97")
    assert meaning.phone_label == "Werkstatt "


def test_differences_name_every_changed_setting_but_never_a_password():
    before = read_sep(SEP_FILE.encode(), "SEP0012345678DE.cnf.xml")
    changed = SEP_FILE.replace("<authPassword>1234", "<authPassword>9999").replace("*97", "*98") \
        .replace("**621", "**622").replace(">2</transportLayerProtocol", ">4</transportLayerProtocol")
    after = read_sep(changed.encode(), "SEP0012345678DE.cnf.xml")
    differences = meaning_differences(before, after)
    assert "transport: '2' became '4'" in differences
    assert "line button 1 password: (secret) became (secret)" in differences
    assert "line button 1 messages_number: '*97' became '*98'" in differences
    assert "key button 2 number: '**621' became '**622'" in differences
    assert not any("1234" in d or "9999" in d for d in differences)
    assert meaning_differences(before, before) == []


@pytest.fixture
def built_site(tmp_path: Path, write_inventory):
    """A site the tool built itself: two phones, one with its password in the
    inventory, one with a generated password in the secrets file."""
    inventory = write_inventory(
        SITE + phone_toml(MAC_A, "7961", "Desk1", [{"extension": "1001", "display_name": "Alice Smith",
                                                    "label": "Alice", "auth_user": "alice.s",
                                                    "password": PASSWORD},
                                                   {"extension": "1003", "display_name": "Front desk"}])
        + phone_toml(MAC_B, "7941", None, [{"extension": "1002", "display_name": "Bob"}]))
    return build(inventory, tmp_path / "tftp", tmp_path / "old.secrets.json")


def test_import_of_built_files_round_trips_to_the_same_meaning_and_settings(built_site, tmp_path):
    output = tmp_path / "imported.toml"
    result = run("provision", "import", str(built_site), "-o", str(output))
    assert result.exit_code == 0, result.output
    assert "2 phone file(s) imported" in result.output
    secrets = tmp_path / "imported.secrets.json"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    stored = json.loads(secrets.read_text())["passwords"]
    assert stored["1001"] == PASSWORD and len(stored) == 3
    # Passwords are in the secrets file only: not in the inventory, not on the screen.
    assert PASSWORD not in output.read_text() and PASSWORD not in result.output
    assert not any(password in result.output for password in stored.values())

    inventory = load_inventory(output)
    # A SIP41 load runs on the 7941 and the 7961 alike: the smallest that fits is taken, and said.
    assert [p.model for p in inventory.phones] == ["7941", "7941"]
    assert "model 7941 guessed from loadInformation 'SIP41.9-4-2SR3-1S' and 2 button(s)" in result.output
    assert inventory.site.firmware["7941"] == "SIP41.9-4-2SR3-1S"
    rebuilt = build(output, tmp_path / "rebuilt", secrets)
    for mac in (MAC_A, MAC_B):
        name = f"SEP{mac}.cnf.xml"
        before = read_sep((built_site / name).read_bytes(), name)
        after = read_sep((rebuilt / name).read_bytes(), name)
        assert meaning_differences(before, after) == []
        # Not only the compared meaning: every setting of the file, but the stamp of its content.
        differing = {path for path in before.settings.keys() | after.settings.keys()
                     if before.settings.get(path, ("",))[0] != after.settings.get(path, ("",))[0]}
        assert differing <= {"versionStamp"}, differing


def test_a_template_is_refused_with_the_placeholder_and_nothing_is_written(built_site, tmp_path):
    template = tmp_path / "in" / "SEP0019E8F490AF.cnf.xml"
    template.parent.mkdir()
    template.write_text(SEP_FILE.replace("192.0.2.10", "###SIP_SRV_IP###"))
    output = tmp_path / "out.toml"
    result = CliRunner().invoke(
        cli, ["provision", "import", str(built_site), str(template), "-o", str(output)])
    assert result.exit_code == 1
    assert "REFUSED" in result.stderr and "(a template to fill in)" in result.stderr
    assert "line 13: template placeholder '###SIP_SRV_IP###'" in result.stderr
    assert "nothing written" in result.stderr
    assert not output.exists() and not (tmp_path / "out.secrets.json").exists()
    # --partial writes the phones that import, and still reports the refused one.
    result = CliRunner().invoke(
        cli, ["provision", "import", str(built_site), str(template), "-o", str(output), "--partial"])
    assert result.exit_code == 0, result.stderr
    assert len(load_inventory(output).phones) == 2 and "REFUSED" in result.stderr


def test_a_setting_the_inventory_cannot_hold_refuses_the_phone(tmp_path):
    path = tmp_path / "SEP0012345678DE.cnf.xml"
    # The phone registers as 623 but sends Contact 700: an inventory line is one number.
    path.write_text(one_line_file().replace("<contact>623</contact>", "<contact>700</contact>"))
    result = CliRunner().invoke(cli, ["provision", "import", str(path), "-o",
                                                      str(tmp_path / "out.toml")])
    assert result.exit_code == 1
    assert "the meaning would change: line button 1 contact: '700' became '623'" in result.stderr
    assert not (tmp_path / "out.toml").exists()


def test_secrets_are_never_written_into_the_directory_imported_from(built_site):
    result = run("provision", "import", str(built_site), "-o", str(built_site / "phones.toml"))
    assert result.exit_code == 1 and "where anyone could fetch it" in result.output
    assert not (built_site / "phones.secrets.json").exists() and not (built_site / "phones.toml").exists()


def test_existing_output_is_kept_unless_forced(built_site, tmp_path):
    output = tmp_path / "inventory.toml"
    output.write_text("# the admin's own\n")
    result = run("provision", "import", str(built_site), "-o", str(output))
    assert result.exit_code == 1 and "exists" in result.output
    assert output.read_text() == "# the admin's own\n"


def test_csv_in_the_shape_of_a_bat_export_joins_an_existing_site(tmp_path, write_inventory):
    site = write_inventory(SITE + phone_toml(MAC_A, "7961", None, [{"extension": "1001", "display_name": "A"}]))
    rows = tmp_path / "phones.csv"
    rows.write_text("Device Name,Description,Device Type,Directory Number 1,Display 1,Line Text Label 1,"
                    "Directory Number 2,Display 2\n"
                    "SEP0019E8F490B0,Reception,Cisco 7961,1010,Reception,Front,1011,Reception 2\n"
                    "SEP0019E8F490B1,Store,Cisco 7911,1012,Store room,,,\n", encoding="utf-8")
    output = tmp_path / "merged.toml"
    result = run("provision", "import", "--csv", str(rows), "--site", str(site), "-o", str(output))
    assert result.exit_code == 0, result.output
    inventory = load_inventory(output)
    assert [(p.mac, p.model, [(l.extension, l.display_name, l.label) for l in p.lines])
            for p in inventory.phones] == [
        (MAC_A, "7961", [("1001", "A", None)]),
        ("0019E8F490B0", "7961", [("1010", "Reception", "Front"), ("1011", "Reception 2", None)]),
        ("0019E8F490B1", "7911", [("1012", "Store room", None)]),
    ]
    assert inventory.site.asterisk_address == "192.0.2.10"


def test_csv_row_the_inventory_refuses_names_the_row(tmp_path, write_inventory):
    site = write_inventory(SITE)
    rows = tmp_path / "phones.csv"
    rows.write_text("MAC Address,Model,Extension,Display Name\n0019E8F490B0,7961,1010,Ok\n"
                    "0019E8F490B1,7961,12x,Bad\n", encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["provision", "import", "--csv", str(rows), "--site", str(site), "-o", str(tmp_path / "o.toml")])
    assert result.exit_code == 1
    assert "CSV row 3" in result.stderr and "'12x': an extension is 2-15 digits" in result.stderr
    assert not (tmp_path / "o.toml").exists()


def test_lint_reports_file_and_line_and_fails(tmp_path):
    good = tmp_path / "dialplan.xml"
    good.write_text('<DIALTEMPLATE>\n  <!-- all -->\n  <TEMPLATE MATCH="*" TIMEOUT="5"/>\n</DIALTEMPLATE>\n')
    result = run("provision", "lint", str(good))
    assert result.exit_code == 0, result.output
    bad = tmp_path / "bad-dialplan.xml"
    bad.write_text('<DIALTEMPLATE>\n  <TEMPLATE MATCH="9XXX" Timeout="0"/>\n</DIALTEMPLATE>\n')
    broken = tmp_path / "SEP0019E8F490AD.cnf.xml"
    broken.write_text("<device>\n<deviceProtocol>SIP</deviceProtocol>\n<authPassword[== PW ==]</authPassword>\n"
                      "</device>\n")
    template = tmp_path / "SIP0019E8F490AD.cnf"
    template.write_text('line1_name: "1001"\nline1_password: "###PASSWORD###"\n')
    result = CliRunner().invoke(cli, ["provision", "lint", str(good), str(bad), str(broken),
                                                      str(template)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith(f"{bad}:2: TEMPLATE #1: MATCH '9XXX'") for line in lines), lines
    assert any(line.startswith(f"{broken}:3: not well-formed XML") for line in lines), lines
    assert f"{template}:2: template placeholder (in a password, not shown) left in the file" in lines
    assert not any(line.startswith(str(good)) for line in lines)


RICH_FILE = """\
<device>
  <devicePool>
    <dateTimeSetting>
      <dateTemplate>D/M/YA</dateTemplate>
      <timeZone>GMT Standard/Daylight Time</timeZone>
      <ntps><ntp><name>time.example.net</name><ntpMode>Unicast</ntpMode></ntp></ntps>
    </dateTimeSetting>
    <callManagerGroup><members>
      <member priority="0"><callManager><ports><sipPort>5160</sipPort></ports>
        <processNodeName>pbx.example.net</processNodeName></callManager></member>
      <member priority="1"><callManager><ports><sipPort>5160</sipPort></ports>
        <processNodeName>pbx2.example.net</processNodeName></callManager></member>
    </members></callManagerGroup>
  </devicePool>
  <sipProfile>
    <sipProxies><backupProxy>192.0.2.20</backupProxy><backupProxyPort>5061</backupProxyPort>
      <registerWithProxy>true</registerWithProxy></sipProxies>
    <sipCallFeatures><cnfJoinEnabled>false</cnfJoinEnabled><callerIdBlocking>0</callerIdBlocking>
      <dndControl>1</dndControl></sipCallFeatures>
    <sipStack><timerT1>600</timerT1><remotePartyID>false</remotePartyID></sipStack>
    <preferredCodec>g722</preferredCodec>
    <phoneLabel>Office</phoneLabel>
    <startMediaPort>10000</startMediaPort><stopMediaPort>20000</stopMediaPort>
    <natEnabled>true</natEnabled><natAddress>203.0.113.7</natAddress>
    <sipLines>
      <line button="1"><featureID>9</featureID><featureLabel>Sales</featureLabel><proxy>USECALLMANAGER</proxy>
        <port>5160</port><name>2101</name><displayName>Sales desk</displayName><callWaiting>1</callWaiting>
        <authName>sales</authName><authPassword>s3cret-sales-42</authPassword>
        <messagesNumber>*98</messagesNumber><contact>2101</contact></line>
      <line button="2"><featureID>9</featureID><featureLabel>Support</featureLabel><proxy>USECALLMANAGER</proxy>
        <port>5160</port><name>2102</name><displayName>Support</displayName><callWaiting>3</callWaiting>
        <authName>2102</authName><authPassword>s3cret-support</authPassword>
        <messagesNumber>*97</messagesNumber><contact>2102</contact></line>
      <line button="3"><featureID>21</featureID><featureLabel>Boss</featureLabel>
        <speedDialNumber>2102</speedDialNumber><featureOptionMask>1</featureOptionMask></line>
      <line button="4"><featureID>2</featureID><featureLabel>Mobile</featureLabel>
        <speedDialNumber>0044700900123</speedDialNumber></line>
      <line button="5"><featureID>20</featureID><featureLabel>Menu</featureLabel>
        <serviceURI>http://192.0.2.5/menu.xml</serviceURI></line>
    </sipLines>
  </sipProfile>
  <loadInformation>SIP42.9-4-2SR3-1S</loadInformation>
  <vendorConfig><webAccess>0</webAccess><pcPort>1</pcPort></vendorConfig>
  <userLocale><name>English_United_Kingdom</name><langCode>en_GB</langCode></userLocale>
  <directoryURL>http://192.0.2.5/dir.xml</directoryURL>
  <transportLayerProtocol>4</transportLayerProtocol>
</device>
"""


def test_every_setting_maps_onto_its_inventory_key(tmp_path):
    path = tmp_path / "SEP0019E8F490C0.cnf.xml"
    path.write_text(RICH_FILE)
    output = tmp_path / "site.toml"
    result = run("provision", "import", str(path), "-o", str(output))
    assert result.exit_code == 0, result.output
    inventory = load_inventory(output)
    site, [phone] = inventory.site, inventory.phones
    assert (site.asterisk_address, site.sip_port, site.failover_addresses) == (
        "pbx.example.net", 5160, ["pbx2.example.net"])
    assert (site.transport, site.transport_layer_protocol) == ("tcp", 4)  # 4 kept as written
    assert (site.time_zone, site.date_format, site.ntp_server) == (
        "GMT Standard/Daylight Time", "D/M/YA", "time.example.net")
    assert (site.nat_enabled, site.nat_address, site.start_media_port, site.stop_media_port) == (
        True, "203.0.113.7", 10000, 20000)
    assert (site.backup_proxy, site.backup_proxy_port, site.cnf_join_enabled, site.caller_id_blocking,
            site.dnd_control, site.timer_t1, site.remote_party_id, site.preferred_codec) == (
        "192.0.2.20", 5061, False, 0, 1, 600, False, "g722")
    assert (site.phone_web_access, site.vendor_config, site.user_locale, site.user_locale_lang_code,
            site.directory_url) == (True, {"pcPort": "1"}, "English_United_Kingdom", "en_GB",
                                    "http://192.0.2.5/dir.xml")
    assert (site.messages_number, site.call_waiting) == ("*98", 1)  # the first line's are the defaults
    assert (phone.model, phone.label) == ("7962", "Office")  # SIP42 with 5 buttons: the 6-button model
    sales, support = phone.lines
    assert (sales.extension, sales.display_name, sales.label, sales.auth_user, sales.password) == (
        "2101", "Sales desk", "Sales", "sales", None)  # the password is in the secrets file
    assert (support.messages_number, support.call_waiting) == ("*97", 3)  # line overrides
    assert [(b.type, b.button, b.label, b.target) for b in phone.buttons] == [
        ("blf", 3, "Boss", "2102"), ("speed_dial", 4, "Mobile", "0044700900123"),
        ("service", 5, "Menu", "http://192.0.2.5/menu.xml")]
    secrets = json.loads((tmp_path / "site.secrets.json").read_text())["passwords"]
    assert secrets == {"2101": "s3cret-sales-42", "2102": "s3cret-support"}


def test_phones_of_one_site_share_its_defaults_and_keep_their_own_values(tmp_path):
    first = tmp_path / "SEP0019E8F490C0.cnf.xml"
    first.write_text(RICH_FILE)
    second = tmp_path / "SEP0019E8F490C1.cnf.xml"
    second.write_text(RICH_FILE.replace("2101", "2201").replace("2102", "2202").replace("D/M/YA", "D.M.Y")
                      .replace("<timerT1>600</timerT1>", "").replace("<backupProxy>192.0.2.20</backupProxy>"
                                                                    "<backupProxyPort>5061</backupProxyPort>", ""))
    other_site = tmp_path / "SEP0019E8F490C2.cnf.xml"
    other_site.write_text(RICH_FILE.replace("pbx.example.net", "pbx.elsewhere.net").replace("21", "23"))
    output = tmp_path / "site.toml"
    result = run("provision", "import", str(first), str(second), str(other_site), "-o", str(output), "--partial")
    assert result.exit_code == 0, result.output
    assert "asterisk_address is 'pbx.elsewhere.net' but the site's is 'pbx.example.net'; one inventory is one " \
           "site" in result.output
    inventory = load_inventory(output)
    a, b = inventory.phones
    settings_b = inventory.settings_for(b)
    assert inventory.settings_for(a).date_format == "D/M/YA" and settings_b.date_format == "D.M.Y"
    assert settings_b.timer_t1 == 500  # left out of its file: the default, not the first phone's 600
    # A backup proxy the second file does not have cannot be switched off per phone: reported, not hidden.
    assert "backup_proxy: the file has none, but the site's '192.0.2.20' applies to this phone too" in result.output


SIP_DEFAULT = """\
# Site defaults (7940/7960)
image_version: P0S3-8-12-00
proxy1_address: "192.0.2.10"  ; the PBX
proxy1_port: 5060
proxy_register: 1
messages_uri: "*97"
sntp_mode: unicast
sntp_server: "192.0.2.1"
time_zone: EST
dst_auto_adjust: 1
dst_start_month: March
dst_start_week_of_month: 2
dst_start_day_of_week: Sun
dst_start_time: 02
dst_stop_month: Nov
dst_stop_week_of_month: 1
dst_stop_day_of_week: Sunday
dst_stop_time: 2
date_format: M/D/Y
time_format_24hr: 0
nat_enable: 0
start_media_port: 16384
end_media_port: 32766
telnet_level: 0
"""


def test_a_7960_imports_from_sipdefault_and_its_own_file_and_round_trips(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "SIPDefault.cnf").write_text(SIP_DEFAULT)
    (tmp_path / "in" / "SIP0012345678AB.cnf").write_text(
        'line1_name: 1001\nline1_authname: "1001"\nline1_shortname: "Shop"\nline1_password: "Werkstatt-1234"\n'
        'line1_displayname: "Shop floor"\nline2_name: 1002\nline2_displayname: "Store"\n'
        'line2_password: "Store-room-99"\nline3_name: 1003\nline3_password: "x"\nphone_label: "Workshop"\n')
    output = tmp_path / "phones.toml"
    result = run("provision", "import", str(tmp_path / "in"), "-o", str(output))
    assert result.exit_code == 0, result.output
    inventory = load_inventory(output)
    [phone] = inventory.phones
    assert phone.model == "7960"  # three lines: not a 7940
    assert inventory.site.time_zone == "Eastern Standard/Daylight Time"  # EST with the US rule
    assert inventory.site.date_format == "M/D/Ya" and inventory.site.firmware == {"7960": "P0S3-8-12-00"}
    assert [(line.extension, line.label, line.display_name) for line in phone.lines] == [
        ("1001", "Shop", "Shop floor"), ("1002", None, "Store"), ("1003", None, "1003")]
    rebuilt = build(output, tmp_path / "tftp", tmp_path / "phones.secrets.json")
    before = read_sip79x0([("SIPDefault.cnf", SIP_DEFAULT),
                           ("SIP0012345678AB.cnf", (tmp_path / "in" / "SIP0012345678AB.cnf").read_text())])
    after = read_sip79x0([(name, (rebuilt / name).read_text()) for name in ("SIPDefault.cnf", "SIP0012345678AB.cnf")])
    assert meaning_differences(before, after) == []


def import_7960(tmp_path: Path, default: str, *more: Path) -> tuple:
    """Import SIPDefault.cnf ``default`` with one SIP<MAC>.cnf (and ``more`` files), build, read both back."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "SIPDefault.cnf").write_text(default)
    own = 'line1_name: 1001\nline1_password: "Werkstatt-1234"\n'
    (tmp_path / "in" / "SIP0012345678AB.cnf").write_text(own)
    output = tmp_path / "phones.toml"
    result = run("provision", "import", str(tmp_path / "in"), *map(str, more), "-o", str(output))
    assert result.exit_code == 0, result.output
    rebuilt = build(output, tmp_path / "tftp", tmp_path / "phones.secrets.json")
    before = read_sip79x0([("SIPDefault.cnf", default), ("SIP0012345678AB.cnf", own)])
    after = read_sip79x0([(name, (rebuilt / name).read_text()) for name in ("SIPDefault.cnf", "SIP0012345678AB.cnf")])
    return result, load_inventory(output), before, after, rebuilt


def test_a_7960_on_a_rule_no_zone_has_keeps_it_as_its_daylight_saving(tmp_path):
    # The firmware's old US rule, and no time zone today has it.
    result, inventory, before, after, rebuilt = import_7960(
        tmp_path, SIP_DEFAULT.replace("dst_start_month: March", "dst_start_month: April"))
    assert inventory.site.time_zone == "Eastern Standard/Daylight Time"
    rule = inventory.site.daylight_saving
    assert (rule.start_month, rule.start_week_of_month, rule.start_day_of_week, rule.start_time) == (
        "April", 2, "Sunday", "02:00")
    assert (rule.stop_month, rule.stop_week_of_month, rule.stop_time, rule.offset) == ("November", 1, "02:00", 1)
    assert before.time_zone == "EST, DST April week 2 Sunday 02:00 to November week 1 Sunday 02:00"
    assert meaning_differences(before, after) == []
    assert 'dst_start_month: "April"' in (rebuilt / "SIPDefault.cnf").read_text()
    # The admin learns the phone does not follow the zone's current rule, and how to make it.
    assert "the phone keeps its own daylight-saving rule" in result.output
    assert 'set daylight_saving to "auto"' in result.output
    # The dst_* keys are the compared time zone, not settings "not carried over" (Sun became Sunday, 02 02:00).
    assert "dst_start_day_of_week" not in result.output


def test_a_7960_with_fixed_days_and_a_two_hour_offset_round_trips(tmp_path):
    default = SIP_DEFAULT.replace("dst_start_week_of_month: 2\n",
                                  "dst_start_day: 15\ndst_start_week_of_month: \"\"\n") \
        .replace("dst_auto_adjust: 1\n", "dst_auto_adjust: 1\ndst_offset: 02:00\n") \
        .replace("dst_stop_day_of_week: Sunday\n", "dst_stop_day_of_week: 1\n").replace("dst_stop_time: 2\n",
                                                                                   "dst_stop_time: 03/30\n")
    _, inventory, before, after, rebuilt = import_7960(tmp_path, default)
    assert before.time_zone == "EST, DST March day 15 02:00 to November week 1 Sunday 03:30, offset 2:00"
    rule = inventory.site.daylight_saving
    assert (rule.start_day, rule.start_week_of_month, rule.stop_time, rule.offset) == (15, None, "03:30", 2)
    assert meaning_differences(before, after) == []
    text = (rebuilt / "SIPDefault.cnf").read_text()
    assert 'dst_start_day: "15"\n' in text and 'dst_start_week_of_month: ""\n' in text and 'dst_offset: "2"' in text


def test_a_7960_without_daylight_saving_in_a_zone_that_has_it_gets_it_off(tmp_path):
    default = SIP_DEFAULT.replace("time_zone: EST", "time_zone: CET") \
        .replace("dst_auto_adjust: 1", "dst_auto_adjust: 0")
    _, inventory, before, after, rebuilt = import_7960(tmp_path, default)
    assert inventory.site.daylight_saving == "off" and before.time_zone == "CET, no DST"
    assert inventory.site.time_zone == "W. Europe Standard/Daylight Time"
    assert meaning_differences(before, after) == []
    assert 'dst_auto_adjust: "0"' in (rebuilt / "SIPDefault.cnf").read_text()


def test_a_7960_on_its_zones_own_rule_stays_auto(tmp_path):
    _, inventory, before, after, _ = import_7960(tmp_path, SIP_DEFAULT)
    assert inventory.site.daylight_saving == "auto"
    assert "daylight_saving" not in (tmp_path / "phones.toml").read_text()
    assert meaning_differences(before, after) == []


def test_a_79x1_joining_a_site_with_a_7960_rule_gets_no_daylight_saving(tmp_path):
    # The site's explicit rule comes from the 7960; a 7961 takes its rule from its zone table, so it gets
    # no override of it (which the inventory would refuse), whichever phone came first.
    sep = tmp_path / f"SEP{MAC_A}.cnf.xml"
    sep.write_text(one_line_file().replace("Central Europe Standard/Daylight Time", "Eastern Standard/Daylight Time")
                   .replace("D.M.YY", "M/D/Ya").replace("<port>5070", "<port>5060")
                   .replace("<sipPort>5070", "<sipPort>5060")
                   .replace("<name>623</name>", "<name>1002</name>").replace("<authName>624</authName>", "")
                   .replace("<contact>623</contact>", "").replace("<authPassword>1234", "<authPassword>Werkstatt-5678"))
    old_rule = SIP_DEFAULT.replace("dst_start_month: March", "dst_start_month: April")
    result, inventory, *_ = import_7960(tmp_path, old_rule)
    assert inventory.site.daylight_saving != "auto"
    # (The 7960 has no transport to import: the site's is the default, UDP, code 2, as the 7961's file says.)
    joined = run("provision", "import", str(sep), "--site", str(tmp_path / "phones.toml"), "--secrets",
                 str(tmp_path / "phones.secrets.json"), "-o", str(tmp_path / "more.toml"))
    assert joined.exit_code == 0, joined.output
    site_first = load_inventory(tmp_path / "more.toml")
    assert [p.model for p in site_first.phones] == ["7940", "7941"]
    assert "daylight_saving" not in site_first.phones[1].overrides()
    # Both in one import: the 7961's file is read first, so the 7960 carries its rule itself.
    (tmp_path / "in" / sep.name).write_bytes(sep.read_bytes())
    both = run("provision", "import", str(tmp_path / "in"), "-o", str(tmp_path / "both.toml"), "--secrets",
               str(tmp_path / "both.secrets.json"))
    assert both.exit_code == 0, both.output
    inventory = load_inventory(tmp_path / "both.toml")
    assert inventory.site.daylight_saving == "auto"
    rules = {p.model: p.overrides().get("daylight_saving") for p in inventory.phones}
    assert rules["7941"] is None and rules["7940"].start_month == "April"


def refused_7960(tmp_path: Path, default: str):
    """The import of SIPDefault.cnf ``default`` with one SIP<MAC>.cnf, which must be refused, writing nothing."""
    (tmp_path / "SIPDefault.cnf").write_text(default)
    (tmp_path / "SIP0012345678AB.cnf").write_text('line1_name: 1001\nline1_password: "Werkstatt-1234"\n')
    result = run("provision", "import", str(tmp_path / "SIPDefault.cnf"), str(tmp_path / "SIP0012345678AB.cnf"),
                 "-o", str(tmp_path / "phones.toml"))
    assert result.exit_code == 1 and not (tmp_path / "phones.toml").exists()
    return result


def test_a_7960_in_a_zone_no_inventory_zone_is_written_as_is_refused(tmp_path):
    result = refused_7960(tmp_path, SIP_DEFAULT.replace("time_zone: EST", "time_zone: IST"))
    assert "time zone 'IST, DST March week 2 Sunday 02:00 to November week 1 Sunday 02:00': no inventory time " \
           "zone is written 'IST' for a 7940/7960 (those written: AKST, AST, BT, CCT, CET" in result.output


def test_a_7960_template_with_lines_that_are_not_key_value_is_refused_as_a_template(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "SIPDefault.cnf").write_text(SIP_DEFAULT)
    (tmp_path / "in" / "SIP0012345678AB.cnf").write_text('line1_name: "###USERNAME###"\nproxy1_port=5060\n')
    result = run("provision", "import", str(tmp_path / "in"), "-o", str(tmp_path / "phones.toml"))
    assert result.exit_code == 1
    assert "line 2: not 'key: value' ('=' is not the separator the Cisco guides document): 'proxy1_port=5060'" \
           in result.output
    assert "it holds template placeholders: fill the template in first" in result.output


def test_lint_names_the_line_of_a_broken_sep_setting(tmp_path):
    path = tmp_path / "SEP0019E8F490AD.cnf.xml"
    path.write_text(RICH_FILE.replace("<phoneLabel>Office</phoneLabel>", "<phoneLabel>Label-of-the-office</phoneLabel>")
                    .replace("<cnfJoinEnabled>false", "<cnfJoinEnabled>False"))
    result = CliRunner().invoke(cli, ["provision", "lint", str(path)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    label_line = 1 + RICH_FILE.splitlines().index("    <phoneLabel>Office</phoneLabel>")
    assert any(line.startswith(f"{path}:{label_line}: phoneLabel 'Label-of-the-office'") for line in lines), lines
    join_line = 1 + next(n for n, text in enumerate(RICH_FILE.splitlines()) if "<cnfJoinEnabled>" in text)
    assert any(line.startswith(f"{path}:{join_line}: cnfJoinEnabled is 'False'") for line in lines), lines
    # each names the rule and its source
    assert any(line.startswith(f"{path}:{label_line}: phoneLabel") and line.endswith(f"({PHONE_LABEL_RULE})")
               for line in lines), lines
    assert any(line.startswith(f"{path}:{join_line}: cnfJoinEnabled") and line.endswith(f"({BOOLEAN_RULE})")
               for line in lines), lines


def test_an_imported_dial_plan_is_served_unchanged_from_a_template_directory(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    (source / "SEP0012345678DE.cnf.xml").write_text(one_line_file())
    plan = ('<DIALTEMPLATE>\n  <!-- internal -->\n  <TEMPLATE MATCH="6.." TIMEOUT="0"/>\n'
            '  <TEMPLATE MATCH="0,*" Timeout="5" User="phone"/>\n  <TEMPLATE MATCH="*" Timeout="5"/>\n</DIALTEMPLATE>\n')
    (source / "dialplan.xml").write_text(plan)
    templates = tmp_path / "templates"
    result = run("provision", "import", str(source), "-o", str(tmp_path / "site.toml"),
                 "--secrets", str(tmp_path / "site.secrets.json"), "--templates-out", str(templates))
    assert result.exit_code == 0, result.output
    tftp = build(tmp_path / "site.toml", tmp_path / "tftp", tmp_path / "site.secrets.json",
                 "--templates", str(templates))

    def templates_of(text: bytes) -> list[dict[str, str]]:
        from lxml import etree

        return [dict(t.attrib) for t in etree.fromstring(text) if t.tag == "TEMPLATE"]

    assert templates_of((tftp / "dialplan.xml").read_bytes()) == templates_of(plan.encode())


def test_xml_default_gives_the_firmware_of_every_model_it_names(tmp_path):
    source = tmp_path / "tftp"
    source.mkdir()
    (source / "SEP0012345678DE.cnf.xml").write_text(one_line_file())
    (source / "XMLDefault.cnf.xml").write_text(
        '<Default><callManagerGroup><members><member priority="0"><callManager>'
        "<processNodeName>192.0.2.99</processNodeName></callManager></member></members></callManagerGroup>"
        '<loadInformation434 model="Cisco IP Phone 7942">SIP42.9-4-2SR3-1S</loadInformation434>'
        '<loadInformation30018 model="Cisco IP Phone 7961">SIP41.9-4-2SR1-1S</loadInformation30018>'
        '<loadInformation495 model="Cisco 6921">SIP69xx.9-4-1-3SR2</loadInformation495></Default>')
    output = tmp_path / "site.toml"
    result = run("provision", "import", str(source), "-o", str(output), "--secrets", str(tmp_path / "s.json"))
    assert result.exit_code == 0, result.output
    assert load_inventory(output).site.firmware == {"7941": "SIP41.9-4-2SR1-1S", "7942": "SIP42.9-4-2SR3-1S",
                                                    "7961": "SIP41.9-4-2SR1-1S"}
    assert "loadInformation495 (Cisco 6921) is not a supported model" in result.output
    assert "points phones without a file at '192.0.2.99'" in result.output


def test_lint_reads_the_phone_files_of_a_directory(tmp_path):
    (tmp_path / "dialplan.xml").write_text('<DIALTEMPLATE><TEMPLATE MATCH="9X"/></DIALTEMPLATE>')
    (tmp_path / "notes.txt").write_text("not a phone file")
    result = CliRunner().invoke(cli, ["provision", "lint", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stdout.startswith(f"{tmp_path / 'dialplan.xml'}:1: TEMPLATE #1: MATCH '9X'")
    assert "notes.txt" not in result.stdout and "1 file(s), 1 problem(s)" in result.stderr


@pytest.mark.parametrize(("keys", "meaning"), [
    ("dst_start_day_of_week: Sun\ndst_start_time: 02\n", "March week 2 Sunday 02:00"),
    ("dst_start_day_of_week: 1\ndst_start_time: 02/30\n", "March week 2 Sunday 02:30"),
    ("dst_start_day_of_week: Mon\ndst_start_time: 14:30\n", "March week 2 Monday 14:30"),
    # The guide: day names are case-sensitive. Not a spelling the phone knows: kept, so no zone or rule matches.
    ("dst_start_day_of_week: sun\ndst_start_time: 2\n", "March week 2 sun 02:00"),
    ("dst_start_day: 0\ndst_start_day_of_week: Sun\ndst_start_time: 2\n", "March week 2 Sunday 02:00"),
    ("dst_start_day: 9\ndst_start_day_of_week: Sun\ndst_start_time: 2\n", "March day 9 02:00"),
])
def test_a_7960_rule_is_read_as_the_guide_spells_it(keys, meaning):
    default = SIP_DEFAULT.replace("dst_start_day_of_week: Sun\ndst_start_time: 02\n", keys)
    zone = read_sip79x0([("SIPDefault.cnf", default)]).time_zone
    assert zone == f"EST, DST {meaning} to November week 1 Sunday 02:00"


def test_a_7960_rule_the_inventory_cannot_hold_is_refused_naming_the_field(tmp_path):
    result = refused_7960(tmp_path, SIP_DEFAULT.replace("dst_start_day_of_week: Sun", "dst_start_day_of_week: sun"))
    assert "cannot be expressed: site.daylight_saving.start_day_of_week: Input should be 'Sunday'" in result.output
