"""Every phone setting: its default, its element in SEP<MAC>.cnf.xml, the
site -> phone -> line override order, and errors that name where they are."""

from __future__ import annotations

import pytest
from lxml import etree

from telefeatures.provisioning.devices import PHONE_MODELS
from telefeatures.provisioning.inventory import InventoryError, parse_inventory
from telefeatures.provisioning.render import ConfigRenderer
from telefeatures.provisioning.xml_checks import check_sep_config

from .conftest import SITE, phone_toml

ONE_LINE = [{"extension": "1001", "display_name": "A"}]


def render(text: str, phone: int = 0) -> etree._Element:
    inventory = parse_inventory(text)
    passwords = {line.extension: "p" * 12 for p in inventory.phones for line in p.lines}
    root = etree.fromstring(ConfigRenderer().render_sep_config(inventory, inventory.phones[phone], passwords))
    assert check_sep_config(root) == []
    return root


def with_site(extra: str) -> str:
    return SITE.replace("[site.firmware]", extra + "\n[site.firmware]")


def errors_of(text: str) -> list[str]:
    with pytest.raises(InventoryError) as info:
        parse_inventory(text)
    return info.value.errors


# (inventory key, TOML value, element path, what the phone gets, the default's text)
MAPPING = [
    ("ntp_mode", '"DirectedBroadcast"', "devicePool/dateTimeSetting/ntps/ntp/ntpMode", "DirectedBroadcast",
     "Unicast"),
    ("date_format", '"D/M/YA"', "devicePool/dateTimeSetting/dateTemplate", "D/M/YA", "M/D/Ya"),
    ("register_with_proxy", "false", "sipProfile/sipProxies/registerWithProxy", "false", "true"),
    ("backup_proxy", '"192.0.2.20"', "sipProfile/sipProxies/backupProxy", "192.0.2.20", None),
    ("emergency_proxy", '"sos.example.net"', "sipProfile/sipProxies/emergencyProxy", "sos.example.net", None),
    ("outbound_proxy", '"192.0.2.30"', "sipProfile/sipProxies/outboundProxy", "192.0.2.30", None),
    ("timer_register_expires", "120", "sipProfile/sipStack/timerRegisterExpires", "120", "3600"),
    ("timer_t1", "400", "sipProfile/sipStack/timerT1", "400", "500"),
    ("timer_t2", "5000", "sipProfile/sipStack/timerT2", "5000", "4000"),
    ("sip_retx", "7", "sipProfile/sipStack/sipRetx", "7", "10"),
    ("sip_invite_retx", "4", "sipProfile/sipStack/sipInviteRetx", "4", "6"),
    ("timer_invite_expires", "60", "sipProfile/sipStack/timerInviteExpires", "60", "180"),
    ("remote_party_id", "false", "sipProfile/sipStack/remotePartyID", "false", "true"),
    ("cnf_join_enabled", "false", "sipProfile/sipCallFeatures/cnfJoinEnabled", "false", "true"),
    ("semi_attended_transfer", "false", "sipProfile/sipCallFeatures/semiAttendedTransfer", "false", "true"),
    ("rfc2543_hold", "true", "sipProfile/sipCallFeatures/rfc2543Hold", "true", "false"),
    ("call_hold_ringback", "1", "sipProfile/sipCallFeatures/callHoldRingback", "1", "2"),
    ("local_cfwd_enable", "false", "sipProfile/sipCallFeatures/localCfwdEnable", "false", "true"),
    ("remote_cc_enable", "false", "sipProfile/sipCallFeatures/remoteCcEnable", "false", "true"),
    ("caller_id_blocking", "0", "sipProfile/sipCallFeatures/callerIdBlocking", "0", "2"),
    ("anonymous_call_block", "3", "sipProfile/sipCallFeatures/anonymousCallBlock", "3", "2"),
    ("dnd_control", "1", "sipProfile/sipCallFeatures/dndControl", "1", "0"),
    ("voip_control_port", "5062", "sipProfile/voipControlPort", "5062", "5060"),
    ("start_media_port", "10000", "sipProfile/startMediaPort", "10000", "16384"),
    ("stop_media_port", "20000", "sipProfile/stopMediaPort", "20000", "32766"),
    ("preferred_codec", '"g711alaw"', "sipProfile/preferredCodec", "g711alaw", "g711ulaw"),
    ("dscp_for_audio", "160", "sipProfile/dscpForAudio", "160", "184"),
    ("enable_vad", "true", "sipProfile/enableVad", "true", "false"),
    ("dtmf_out_of_band", '"avt_always"', "sipProfile/dtmfOutofBand", "avt_always", "avt"),
    ("dtmf_db_level", "4", "sipProfile/dtmfDbLevel", "4", "3"),
    ("dtmf_avt_payload", "96", "sipProfile/dtmfAvtPayload", "96", "101"),
    ("transfer_onhook_enabled", "true", "sipProfile/transferOnhookEnabled", "true", "false"),
    ("stutter_msg_waiting", "1", "sipProfile/stutterMsgWaiting", "1", "0"),
    ("call_stats", "true", "sipProfile/callStats", "true", "false"),
    ("kpml", "0", "sipProfile/kpml", "0", "3"),
    ("messages_number", '"*98"', "sipProfile/sipLines/line/messagesNumber", "*98", "*97"),
    ("message_waiting_lamp_policy", "3", "sipProfile/sipLines/line/messageWaitingLampPolicy", "3", "1"),
    ("call_waiting", "1", "sipProfile/sipLines/line/callWaiting", "1", "3"),
    ("load_information", '"SIP41.9-3-1SR1-1S"', "loadInformation", "SIP41.9-3-1SR1-1S", "SIP41.9-4-2SR3-1S"),
    ("services_url", '"http://192.0.2.5/services.xml"', "servicesURL", "http://192.0.2.5/services.xml", ""),
    ("directory_url", '"http://192.0.2.5/dir.xml"', "directoryURL", "http://192.0.2.5/dir.xml", ""),
    ("idle_url", '"http://192.0.2.5/idle.xml"', "idleURL", "http://192.0.2.5/idle.xml", ""),
    ("idle_timeout", "60", "idleTimeout", "60", "0"),
    ("information_url", '"http://192.0.2.5/help.xml"', "informationURL", "http://192.0.2.5/help.xml", ""),
    ("authentication_url", '"http://192.0.2.5/auth"', "authenticationURL", "http://192.0.2.5/auth", ""),
    ("messages_url", '"http://192.0.2.5/vm"', "messagesURL", "http://192.0.2.5/vm", ""),
    ("proxy_server_url", '"192.0.2.6:3128"', "proxyServerURL", "192.0.2.6:3128", ""),
    ("user_locale", '"German_Germany"', "userLocale/name", "German_Germany", None),
    ("user_locale_lang_code", '"de_DE"', "userLocale/langCode", "de_DE", None),
    ("network_locale", '"Germany"', "networkLocale", "Germany", None),
    ("phone_password", '"1234"', "commonProfile/phonePassword", "1234", ""),
    ("background_image_access", "false", "commonProfile/backgroundImageAccess", "false", "true"),
    ("call_log_blf_enabled", "1", "commonProfile/callLogBlfEnabled", "1", "2"),
    ("phone_web_access", "true", "vendorConfig/webAccess", "0", "1"),
]


@pytest.mark.parametrize(("key", "value", "path", "expected", "default"), MAPPING, ids=[m[0] for m in MAPPING])
def test_site_setting_reaches_its_element(key, value, path, expected, default):
    assert render(with_site("") + phone_toml("0019E8F490AD", lines=ONE_LINE)).findtext(path) == default
    assert render(with_site(f"{key} = {value}") + phone_toml("0019E8F490AD", lines=ONE_LINE)).findtext(path) \
        == expected


@pytest.mark.parametrize(("key", "value", "path", "expected", "default"), MAPPING, ids=[m[0] for m in MAPPING])
def test_phone_overrides_the_site(key, value, path, expected, default):
    text = with_site("") + phone_toml("0019E8F490AD", lines=ONE_LINE) + f"{key} = {value}\n" \
        + phone_toml("0019E8F490AE", lines=[{"extension": "1002", "display_name": "B"}])
    # The [[phones.lines]] table was opened last, so put the key on the phone itself.
    text = text.replace('model = "7961"\n[[phones.lines]]\nextension = "1001"',
                        f'model = "7961"\n{key} = {value}\n[[phones.lines]]\nextension = "1001"', 1)
    text = text.replace(f'display_name = "A"\n{key} = {value}\n', 'display_name = "A"\n')
    assert render(text, 0).findtext(path) == expected
    assert render(text, 1).findtext(path) == default


def test_per_line_settings_override_phone_and_site():
    lines = [{"extension": "1001", "display_name": "A"},
             {"extension": "1002", "display_name": "B"}]
    text = with_site('messages_number = "*98"\ncall_waiting = 1') + phone_toml("0019E8F490AD", lines=lines)
    text += 'messages_number = "8500"\ncall_waiting = 0\nmessage_waiting_lamp_policy = 3\n'  # on line 2
    first, second = render(text).findall("sipProfile/sipLines/line")
    assert (first.findtext("messagesNumber"), first.findtext("callWaiting"),
            first.findtext("messageWaitingLampPolicy")) == ("*98", "1", "1")
    assert (second.findtext("messagesNumber"), second.findtext("callWaiting"),
            second.findtext("messageWaitingLampPolicy")) == ("8500", "0", "3")


def test_failover_members_have_priorities_in_order():
    root = render(with_site('failover_addresses = ["192.0.2.11", "pbx2.example.net"]')
                  + phone_toml("0019E8F490AD", lines=ONE_LINE))
    members = root.findall("devicePool/callManagerGroup/members/member")
    assert [(m.get("priority"), m.findtext("callManager/processNodeName"),
             m.findtext("callManager/ports/sipPort")) for m in members] == [
        ("0", "192.0.2.10", "5060"), ("1", "192.0.2.11", "5060"), ("2", "pbx2.example.net", "5060")]


def test_nat_ssh_and_vendor_config():
    root = render(with_site('nat_enabled = true\nnat_address = "203.0.113.7"\nphone_ssh_access = true\n'
                            'ssh_user_id = "admin"\nssh_password = "s3cret-ssh"\n'
                            'vendor_config = { pcPort = 1, daysDisplayNotActive = "1,7", enableVad = false }')
                  + phone_toml("0019E8F490AD", lines=ONE_LINE))
    assert root.findtext("sipProfile/natEnabled") == "true"
    assert root.findtext("sipProfile/natAddress") == "203.0.113.7"
    assert (root.findtext("sshUserId"), root.findtext("sshPassword")) == ("admin", "s3cret-ssh")
    assert root.findtext("vendorConfig/sshAccess") == "0"
    assert root.findtext("vendorConfig/pcPort") == "1"
    assert root.findtext("vendorConfig/daysDisplayNotActive") == "1,7"
    assert root.findtext("vendorConfig/enableVad") == "false"


def test_phone_vendor_config_replaces_the_sites():
    text = with_site("vendor_config = { pcPort = 1 }") + phone_toml("0019E8F490AD", lines=ONE_LINE)
    text = text.replace('model = "7961"\n', 'model = "7961"\nvendor_config = { garp = 1 }\n')
    root = render(text)
    assert root.findtext("vendorConfig/garp") == "1" and root.find("vendorConfig/pcPort") is None


def test_twelve_hour_clock_and_no_locale_by_default():
    root = render(with_site("") + phone_toml("0019E8F490AD", lines=ONE_LINE))
    assert root.findtext("devicePool/dateTimeSetting/dateTemplate").endswith("a")
    assert root.find("userLocale") is None and root.find("networkLocale") is None
    assert root.find("sshUserId") is None


@pytest.mark.parametrize(("extra", "message"), [
    ("start_media_port = 20000\nstop_media_port = 10000", "start_media_port 20000 must be below stop_media_port"),
    ("nat_enabled = true", "nat_enabled needs nat_address"),
    ("phone_ssh_access = true", "phone_ssh_access needs ssh_user_id and ssh_password"),
    ('vendor_config = { webAccess = 0 }', "vendor_config.webAccess: set it with phone_web_access"),
    ("timer_t1 = 5", "timer_t1: Input should be greater than or equal to 100"),
    ('messages_number = "voicemail"', "messages_number"),
    ('services_url = "ftp://x/y"', "is not an http://, https://"),
    ('transport = "udp"\ntransport_layer_protocol = 4', "transport_layer_protocol 4 does not mean udp; use 2"),
    ('date_format = "M/D/Yb"', "use M, D and Y"),
    ("auth_password_max_length = 40", "auth_password_max_length: Input should be less than or equal to 30"),
])
def test_bad_site_settings_name_the_field(extra, message):
    errors = errors_of(with_site(extra))
    assert any(message in e for e in errors), errors


def test_bad_phone_override_names_the_phone():
    text = with_site("") + phone_toml("0019E8F490AD", "7961", "Desk", ONE_LINE)
    text = text.replace('label = "Desk"\n', 'label = "Desk"\nnat_enabled = true\ntimer_t2 = "x"\n')
    errors = errors_of(text)
    assert "phone #1 (mac 0019E8F490AD, label Desk), timer_t2: Input should be a valid integer" in errors, errors
    text = text.replace('timer_t2 = "x"\n', "")
    [error] = errors_of(text)
    assert error.startswith("phone #1 (mac 00:19:e8:f4:90:ad, label Desk), ") and "nat_enabled needs" in error


def test_password_longer_than_the_site_limit():
    text = with_site("") + phone_toml("0019E8F490AD", lines=[
        {"extension": "1001", "display_name": "A", "password": "thirteen-char"}])
    [error] = errors_of(text)
    assert error == ("phone #1 (mac 00:19:e8:f4:90:ad), line #1 (extension 1001), password: 13 characters, "
                     "longer than site.auth_password_max_length (12)")
    assert "thirteen" not in error  # never print a secret
    assert parse_inventory(with_site("auth_password_max_length = 13") + text[len(with_site("")):])


# --- line keys ------------------------------------------------------------------------------

BUTTONS = """
[[phones.buttons]]
type = "speed_dial"
label = "Mobile"
number = "0049123456"

[[phones.buttons]]
type = "blf"
label = "Reception"
extension = "1002"

[[phones.buttons]]
type = "service"
label = "Menu"
url = "http://192.0.2.5/menu.xml"
button = 6
"""


def test_speed_dial_blf_and_service_keys():
    text = with_site("") + phone_toml("0019E8F490AD", "7961", None, ONE_LINE) + BUTTONS \
        + phone_toml("0019E8F490AE", "7911", None, [{"extension": "1002", "display_name": "B"}])
    keys = {line.get("button"): line for line in render(text).findall("sipProfile/sipLines/line")}
    assert sorted(keys, key=int) == ["1", "2", "3", "6"]
    assert keys["2"].findtext("featureID") == "2" and keys["2"].findtext("speedDialNumber") == "0049123456"
    assert keys["2"].findtext("featureLabel") == "Mobile"
    assert keys["3"].findtext("featureID") == "21" and keys["3"].findtext("speedDialNumber") == "1002"
    assert keys["3"].findtext("featureOptionMask") == "1"
    assert keys["6"].findtext("featureID") == "20"
    assert keys["6"].findtext("serviceURI") == "http://192.0.2.5/menu.xml"


@pytest.mark.parametrize(("model", "buttons", "message"), [
    ("7911", BUTTONS, "buttons #1 (Mobile): a 7911 has 1 buttons, this one would be button 2"),
    ("7942", BUTTONS, "buttons #2 (Reception): a 7942 has 2 buttons, this one would be button 3"),
    ("7961", BUTTONS.replace('button = 6', 'button = 1'), "buttons #3 (Menu): button 1 is already taken"),
    ("7961", BUTTONS.replace('extension = "1002"', 'extension = "4711"'),
     "buttons #2 (Reception), extension: 4711 is not a line in the inventory"),
    ("7961", BUTTONS.replace('number = "0049123456"', 'url = "http://x/y"'), "a speed_dial button needs number"),
    ("7961", BUTTONS.replace('number = "0049123456"', 'number = "0049 123"'), "1-32 of the keys 0-9 * # +"),
    ("7960", BUTTONS, "has no speed dial, busy-lamp or service keys"),
])
def test_button_errors_name_the_button(model, buttons, message):
    text = with_site("") + phone_toml("0019E8F490AD", model, None, ONE_LINE) + buttons \
        + phone_toml("0019E8F490AE", "7911", None, [{"extension": "1002", "display_name": "B"}])
    errors = errors_of(text)
    assert any(e.startswith("phone #1 (mac ") and message in e for e in errors), errors


@pytest.mark.parametrize("model", sorted(PHONE_MODELS))
def test_every_model_takes_as_many_lines_as_buttons(model):
    keys = PHONE_MODELS[model].buttons
    lines = [{"extension": f"10{n:02d}", "display_name": f"L{n}"} for n in range(keys)]
    parse_inventory(with_site("") + phone_toml("0019E8F490AD", model, None, lines))
    lines.append({"extension": "1099", "display_name": "one too many"})
    [error] = errors_of(with_site("") + phone_toml("0019E8F490AD", model, None, lines))
    assert f"{keys + 1} lines, but a {model} has {keys} line button(s)" in error


def test_device_type_ids_match_the_corpus_and_usecallmanager():
    ids = {name: model.device_type_id for name, model in PHONE_MODELS.items()}
    assert ids == {"7906": 369, "7911": 307, "7941": 115, "7941G-GE": 309, "7942": 434, "7945": 435,
                   "7961": 30018, "7961G-GE": 308, "7962": 404, "7965": 436, "7970": 30006, "7971": 119,
                   "7975": 437, "7940": 8, "7960": 7}
