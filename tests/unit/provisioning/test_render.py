"""Rendered files, parsed back with lxml and checked against the phone's rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree

from telefeatures.provisioning.credentials import ALPHABET, LENGTH, generate_password
from telefeatures.provisioning.dial_templates import check_dialplan, pattern_problem
from telefeatures.provisioning.inventory import parse_inventory
from telefeatures.provisioning.render import ConfigRenderer, RenderError
from telefeatures.provisioning.xml_checks import XML_DEFAULT_ROOT_RULE, check_sep_config, check_xml_default

from .conftest import SITE, phone_toml

TRICKY_PASSWORD = "a&b<c>d;]]>'"  # XML and pjsip.conf specials, and a CDATA end, in 12 characters
LINES = [
    {"extension": "1001", "display_name": "Sales & Support", "password": TRICKY_PASSWORD},
    {"extension": "1002", "display_name": "O'Brien; Desk", "label": "Line <2>", "auth_user": "obrien-2"},
]


@pytest.fixture
def inventory():
    return parse_inventory(SITE + phone_toml("0019E8F490AD", "7961", "Reception", LINES)
                           + phone_toml("0019E8F490AE", "7911", None,
                                        [{"extension": "1003", "display_name": "Lobby"}]))


@pytest.fixture
def passwords(inventory):
    return {line.extension: line.password or generate_password() for p in inventory.phones for line in p.lines}


def parse(data: bytes) -> etree._Element:
    return etree.fromstring(data, etree.XMLParser(resolve_entities=False))


def test_sep_config_parses_and_follows_the_rules(inventory, passwords):
    renderer = ConfigRenderer()
    dialplan = renderer.render_dialplan(inventory.site)
    data = renderer.render_sep_config(inventory, inventory.phones[0], passwords, dialplan)
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<device>')
    root = parse(data)
    assert check_sep_config(root) == []
    assert root.findtext("deviceProtocol") == "SIP"
    assert root.findtext("devicePool/dateTimeSetting/timeZone") == "Eastern Standard/Daylight Time"
    assert root.findtext("devicePool/dateTimeSetting/ntps/ntp/name") == "192.0.2.1"
    assert root.find("devicePool/callManagerGroup/members/member").get("priority") == "0"
    assert root.findtext("devicePool/callManagerGroup/members/member/callManager/processNodeName") == "192.0.2.10"
    assert root.findtext("devicePool/callManagerGroup/members/member/callManager/ports/sipPort") == "5060"
    assert root.findtext("sipProfile/sipProxies/registerWithProxy") == "true"
    assert root.findtext("sipProfile/dialTemplate") == "dialplan.xml"
    assert root.findtext("sipProfile/phoneLabel") == "Reception"
    assert root.findtext("loadInformation") == "SIP41.9-4-2SR3-1S"
    assert root.findtext("transportLayerProtocol") == "2"
    assert re.fullmatch(r"[0-9a-f]{32}", root.findtext("versionStamp"))
    # The phone's own web server and SSH are off (vendorConfig: 1 = disabled).
    assert root.findtext("vendorConfig/webAccess") == "1"
    assert root.findtext("vendorConfig/sshAccess") == "1"
    lines = root.findall("sipProfile/sipLines/line")
    assert [line.get("button") for line in lines] == ["1", "2"]
    first, second = lines
    assert first.findtext("featureID") == "9" and first.findtext("proxy") == "USECALLMANAGER"
    assert first.findtext("name") == first.findtext("contact") == first.findtext("authName") == "1001"
    assert first.findtext("displayName") == "Sales & Support"
    assert first.findtext("featureLabel") == "1001"
    assert second.findtext("featureLabel") == "Line <2>"
    assert second.findtext("authName") == "obrien-2"
    assert second.findtext("displayName") == "O'Brien; Desk"
    for element in root.iter():
        if (element.text or "").strip().lower() in ("true", "false"):
            assert element.text in ("true", "false")


def test_password_with_xml_specials_round_trips(inventory, passwords):
    data = ConfigRenderer().render_sep_config(inventory, inventory.phones[0], passwords)
    assert b"a&amp;b&lt;c&gt;d" in data  # escaped in the file, not raw
    assert parse(data).findtext("sipProfile/sipLines/line/authPassword") == TRICKY_PASSWORD


@pytest.mark.parametrize(("transport", "code"), [("tcp", "4"), ("udp", "2"), ("tls", "3")])
def test_transport_layer_protocol(transport, code):
    site = SITE.replace('time_zone =', f'transport = "{transport}"\ntime_zone =')
    inventory = parse_inventory(site + phone_toml("0019E8F490AD", lines=[{"extension": "1001",
                                                                          "display_name": "A"}]))
    data = ConfigRenderer().render_sep_config(inventory, inventory.phones[0], {"1001": "x" * 12})
    assert parse(data).findtext("transportLayerProtocol") == code
    assert inventory.site.pjsip_transport_name == f"transport-{transport}"


def test_version_stamp_follows_content_only(inventory, passwords):
    renderer = ConfigRenderer()
    phone = inventory.phones[0]
    dialplan = renderer.render_dialplan(inventory.site)
    first = renderer.render_sep_config(inventory, phone, passwords, dialplan)
    assert renderer.render_sep_config(inventory, phone, passwords, dialplan) == first
    changed = renderer.render_sep_config(inventory, phone, {**passwords, "1002": "another-pw-1"}, dialplan)
    new_dialplan = renderer.render_sep_config(inventory, phone, passwords, dialplan + b" ")
    stamps = {parse(d).findtext("versionStamp") for d in (first, changed, new_dialplan)}
    assert len(stamps) == 3


def test_dialplan_is_in_the_phone_grammar(inventory):
    data = ConfigRenderer().render_dialplan(inventory.site)
    assert check_dialplan(data) == []
    assert len(data) <= 8192
    root = parse(data)
    assert root.tag == "DIALTEMPLATE"
    templates = {t.get("MATCH"): t.get("Timeout") for t in root}
    assert all(t.tag == "TEMPLATE" and set(t.attrib) <= {"MATCH", "Timeout"} for t in root)
    # Feature codes, per-call blocking and fixed-length numbers dial at once.
    for match in ("\\*69", "\\*81", "\\*82", "\\*83", "\\*671...", "\\*679.......", "1...", "9.......",
                  "91..........", "911"):
        assert templates[match] == "0", match
    # Open-ended numbers wait for the inter-digit timeout.
    assert templates["9011*"] == "5" and templates["*"] == "5" and templates["\\*67*"] == "5"
    assert all(pattern_problem(match) is None for match in templates)
    assert "X" not in data.decode() and "[" not in data.decode()


def test_dialplan_with_changed_feature_codes():
    site = SITE.replace("[site.dial_rules]", '[site.feature_codes]\ncall_return = "*70"\nper_call_block = "#31#"'
                        "\n[site.dial_rules]")
    with pytest.raises(Exception, match="feature code '#31#'"):
        parse_inventory(site)
    site = site.replace('"#31#"', '"*31"')
    data = ConfigRenderer().render_dialplan(parse_inventory(site).site)
    matches = [t.get("MATCH") for t in parse(data)]
    assert "\\*70" in matches and "\\*69" not in matches and "\\*311..." in matches


def test_xml_default_lists_loads_per_device_type(inventory):
    data = ConfigRenderer().render_xml_default(inventory.site)
    root = parse(data)
    assert root.tag == "Default"
    loads = {el.tag: el.text for el in root if el.tag.startswith("loadInformation")}
    assert loads == {"loadInformation30018": "SIP41.9-4-2SR3-1S", "loadInformation115": "SIP41.9-4-2SR3-1S",
                     "loadInformation307": "SIP11.9-4-2SR3-1S"}
    assert root.findtext("callManagerGroup/members/member/callManager/processNodeName") == "192.0.2.10"


def parse_pjsip(text: str) -> list[tuple[str, dict[str, str]]]:
    """Read a pjsip.conf the way Asterisk's config parser does (for what we emit)."""
    sections: list[tuple[str, dict[str, str]]] = []
    for raw in text.splitlines():
        line = re.sub(r"(?<!\\);.*", "", raw).replace("\\;", ";").strip()
        if not line:
            continue
        if line.startswith("["):
            assert line.endswith("]"), raw
            sections.append((line[1:-1], {}))
            continue
        key, sep, value = line.partition("=")
        assert sep and not value.startswith(">"), raw
        assert key.strip() not in sections[-1][1], f"duplicate option {raw}"
        sections[-1][1][key.strip()] = value.strip()
    return sections


def test_pjsip_matches_phone_files(inventory, passwords):
    renderer = ConfigRenderer()
    text = renderer.render_pjsip(inventory, passwords).decode()
    sections = parse_pjsip(text)
    by_type = {(name, opts["type"]): opts for name, opts in sections}
    assert len(by_type) == len(sections) == 9
    for phone in inventory.phones:
        root = parse(renderer.render_sep_config(inventory, phone, passwords))
        for line in root.findall("sipProfile/sipLines/line"):
            ext = line.findtext("name")
            endpoint = by_type[(ext, "endpoint")]
            assert endpoint == {
                "type": "endpoint", "transport": "transport-udp", "context": "tf-phones", "disallow": "all",
                "subscribe_context": "tf-hints", "allow": "ulaw", "auth": f"{ext}-auth", "aors": ext,
                "callerid": f'"{line.findtext("displayName")}" <{ext}>', "send_pai": "yes",
                "mailboxes": f"{ext}@default", "set_var": f"__TF_EXTENSION={ext}",
            }
            assert by_type[(ext, "aor")] == {"type": "aor", "max_contacts": "1", "remove_existing": "yes"}
            auth = by_type[(f"{ext}-auth", "auth")]
            assert auth == {"type": "auth", "auth_type": "userpass", "username": line.findtext("authName"),
                            "password": line.findtext("authPassword")}
    assert by_type[("1001-auth", "auth")]["password"] == TRICKY_PASSWORD


def test_pjsip_uses_site_context_and_transport():
    site = SITE.replace("[site.firmware]", 'context = "office-phones"\npjsip_transport = "tcp-lan"\n[site.firmware]')
    inventory = parse_inventory(site + phone_toml("0019E8F490AD", lines=[{"extension": "1001",
                                                                          "display_name": "A"}]))
    sections = parse_pjsip(ConfigRenderer().render_pjsip(inventory, {"1001": "p" * 12}).decode())
    assert sections[0][1]["context"] == "office-phones" and sections[0][1]["transport"] == "tcp-lan"


def test_generated_passwords_are_strong_and_safe():
    seen = {generate_password() for _ in range(200)}
    assert len(seen) == 200
    for password in seen:
        assert len(password) == LENGTH == 12
        assert set(password) <= set(ALPHABET)
    assert not set(ALPHABET) & set("&<>\"';\\ 0O1lI")


def test_generated_password_characters_are_uniform(monkeypatch):
    from collections import Counter

    from telefeatures.provisioning import credentials

    # Every character of the alphabet, about equally often (57 x 600 expected 0.6-1.4 times the mean).
    counts = Counter("".join(generate_password(30) for _ in range(2000)))
    assert set(counts) == set(ALPHABET)
    mean = 60000 / len(ALPHABET)
    assert all(0.6 * mean < n < 1.4 * mean for n in counts.values())
    # Bytes from 228 up would favour the first 28 characters: they are drawn again, never used.
    draws = iter([bytes([255, 228, 0, 56, 57, 227] + [255] * 2), bytes([1, 2, 3, 4, 5, 6, 7, 8])])
    monkeypatch.setattr(credentials.secrets, "token_bytes", lambda n: next(draws)[:n])
    assert generate_password(4) == ALPHABET[0] + ALPHABET[56] + ALPHABET[0] + ALPHABET[227 % 57]
    assert generate_password(4) == ALPHABET[1:5]


# --- checks catch what a broken site template would produce -----------------------------------

def override(tmp_path: Path, name: str, replace: tuple[str, str]) -> Path:
    builtin = (Path(__file__).parents[3] / "telefeatures/provisioning/templates" / name).read_text()
    assert replace[0] in builtin
    directory = tmp_path / "site-templates"
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(builtin.replace(*replace))
    return directory


@pytest.mark.parametrize(("replace", "problem"), [
    (("<featureID>9</featureID>", "<featureID>nine</featureID>"), "featureID is 'nine', must be a number"),
    (("<proxy>USECALLMANAGER</proxy>", "<proxy></proxy>"), "proxy is empty"),
    (("<authName>{{ line.auth_name }}</authName>", ""), "required element authName is missing"),
    (("<registerWithProxy>{{ s.register_with_proxy|xbool }}", "<registerWithProxy>True"),
     "registerWithProxy is 'True', booleans must be"),
    (("<natEnabled>{{ s.nat_enabled|xbool }}", "<natEnabled>0"), "natEnabled is '0', booleans must be"),
    (("<transportLayerProtocol>{{ site.transport_layer_protocol }}", "<transportLayerProtocol>5"),
     "transportLayerProtocol is '5'"),
    (("<displayName>{{ line.display_name }}</displayName>",
      "<displayName>{{ line.display_name }} {{ line.display_name }}</displayName>"),
     "displayName is 31 characters, the limit is 30"),
    (("<processNodeName>{{ address }}</processNodeName>", ""),
     "required element devicePool/callManagerGroup/members/member/callManager/processNodeName is missing"),
    (("<contact>{{ line.extension }}</contact>", "<contact>{{ line.extension }}</contact><bogus>"),
     "template produced malformed XML"),
    (("{{ line.password }}", "{{ line.pasword }}"), "LineView object' has no attribute 'pasword'"),
])
def test_rule_violations_in_a_site_template_name_the_phone(tmp_path, replace, problem):
    directory = override(tmp_path, "SEP.cnf.xml.j2", replace)
    inventory = parse_inventory(SITE + phone_toml("0019E8F490AD", lines=[
        {"extension": "1001", "display_name": "Fifteen Chars!!"}]))
    with pytest.raises(RenderError) as info:
        ConfigRenderer(directory).render_sep_config(inventory, inventory.phones[0], {"1001": "p" * 12})
    assert info.value.what == "SEP0019E8F490AD.cnf.xml"
    assert any(problem in p for p in info.value.problems), info.value.problems


def test_site_template_override_is_used(tmp_path):
    directory = override(tmp_path, "SEP.cnf.xml.j2", ("<dtmfAvtPayload>{{ s.dtmf_avt_payload }}</dtmfAvtPayload>",
                                                      "<dtmfAvtPayload>96</dtmfAvtPayload>"))
    inventory = parse_inventory(SITE + phone_toml("0019E8F490AD", lines=[{"extension": "1001",
                                                                          "display_name": "A"}]))
    data = ConfigRenderer(directory).render_sep_config(inventory, inventory.phones[0], {"1001": "p" * 12})
    assert parse(data).findtext("sipProfile/dtmfAvtPayload") == "96"


def test_broken_dialplan_template_is_caught(tmp_path):
    directory = override(tmp_path, "dialplan.xml.j2", ('Timeout="{{ template.timeout }}"',
                                                       'Timeout="{{ template.timeout }}" Foo="1"'))
    with pytest.raises(RenderError) as info:
        ConfigRenderer(directory).render_dialplan(parse_inventory(SITE).site)
    assert "attribute 'Foo' is not allowed" in info.value.problems[0]


def test_checks_still_catch_what_breaks_a_phone():
    root = etree.fromstring(b"<device><devicePool/><sipProfile><sipLines><line button='1'><featureID>9"
                            b"</featureID><featureLabel>x</featureLabel><proxy>USECALLMANAGER</proxy><name>1</name>"
                            b"<authName>1</authName><authPassword>p</authPassword><natEnabled>yes</natEnabled>"
                            b"</line><line button='1'><featureID>21</featureID></line></sipLines></sipProfile>"
                            b"</device>")
    problems = check_sep_config(root)
    assert any("processNodeName is missing" in p for p in problems)
    assert any("button used twice" in p for p in problems)
    assert any("featureID 21 needs speedDialNumber" in p for p in problems)
    assert any("natEnabled is 'yes'" in p for p in problems)
    assert check_xml_default(etree.fromstring(b"<Defaults/>")) == [
        f"root element is <Defaults>, must be <Default> ({XML_DEFAULT_ROOT_RULE})"]
