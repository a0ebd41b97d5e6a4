"""Every rejection of a SEP or XMLDefault file names the rule it breaks and
where the rule comes from (usecallmanager.nz, docs.acsdata.co.nz or the corpus
of real files); what the corpus is cited for is measured again here; what no
document or real file supports is not refused; and the README lists each rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree

from telefeatures.provisioning import xml_checks
from telefeatures.provisioning.config_reader import ConfigReadError, parse_xml
from telefeatures.provisioning.xml_checks import (
    BOOLEAN_ELEMENTS,
    BOOLEAN_RULE,
    BUTTON_RULE,
    CREDENTIALS_RULE,
    FEATURE_RULE,
    LINE_FIELD_RULE,
    LINE_KEY_RULE,
    LINE_RULE,
    PHONE_LABEL_RULE,
    PROTOCOL_RULE,
    SEP_ROOT_RULE,
    SEP_RULES,
    SERVER_RULE,
    TARGET_RULE,
    TRANSPORT_RULE,
    URL_RULE,
    XML_DEFAULT_ROOT_RULE,
    XML_DEFAULT_RULES,
    XML_DEFAULT_SERVER_RULE,
    check_sep_config,
    check_xml_default,
)
from tests.support.corpus import corpus_files

README = Path(__file__).parents[3] / "provisioning" / "README.md"
SOURCES = ("usecallmanager.nz SEPMAC.cnf.xml", "usecallmanager.nz Line Keys", "docs.acsdata.co.nz",
           "../shared/cisco-corpus")

SERVER = ("<devicePool><callManagerGroup><members><member priority=\"0\"><callManager>"
          "<processNodeName>pbx</processNodeName></callManager></member></members></callManagerGroup></devicePool>")
PRIMARY = ('<line button="1"><featureID>9</featureID><featureLabel>1001</featureLabel><proxy>USECALLMANAGER</proxy>'
           "<name>1001</name><authName>1001</authName><authPassword>pw</authPassword></line>")


def sep(body: str = "", lines: str = PRIMARY, server: str = SERVER) -> etree._Element:
    return etree.fromstring(f"<device>{server}<sipProfile>{body}<sipLines>{lines}</sipLines></sipProfile></device>")


def test_the_minimal_document_passes():
    assert check_sep_config(sep()) == []


# (document, the start of the message naming the phone file's field, the rule it must cite)
SEP_CASES = [
    (etree.fromstring("<Device/>"), "root element is <Device>, must be <device>", SEP_ROOT_RULE),
    (sep(server=""), "required element devicePool/callManagerGroup/members/member/callManager/processNodeName "
     "is missing", SERVER_RULE),
    (sep(lines=""), "required element sipProfile/sipLines/line is missing", LINE_KEY_RULE),
    (etree.fromstring(f"<device><deviceProtocol>SCCP</deviceProtocol>{SERVER}<sipProfile><sipLines>{PRIMARY}"
                      "</sipLines></sipProfile></device>"), "deviceProtocol is 'SCCP', must be SIP", PROTOCOL_RULE),
    (etree.fromstring(f"<device>{SERVER}<transportLayerProtocol>5</transportLayerProtocol><sipProfile><sipLines>"
                      f"{PRIMARY}</sipLines></sipProfile></device>"), "transportLayerProtocol is '5'", TRANSPORT_RULE),
    (sep("<phoneLabel>ThirteenChars</phoneLabel>"), "phoneLabel 'ThirteenChars': at most 12", PHONE_LABEL_RULE),
    (sep("<natEnabled>yes</natEnabled>"), "natEnabled is 'yes', booleans must be true or false", BOOLEAN_RULE),
    (sep("<sipCallFeatures><unknownFlag>True</unknownFlag></sipCallFeatures>"),
     "unknownFlag is 'True', booleans must be lower-case", BOOLEAN_RULE),
    (sep(f"<directoryURL>http://x/{'d' * 260}</directoryURL>"), "directoryURL is 269 characters", URL_RULE),
    (sep(lines=PRIMARY.replace(' button="1"', "")), "line #1: the button attribute must be a number", BUTTON_RULE),
    (sep(lines=PRIMARY + PRIMARY), "line button='1': button used twice", BUTTON_RULE),
    (sep(lines=PRIMARY.replace("<featureID>9", "<featureID>nine")), "line button='1': featureID is 'nine'",
     FEATURE_RULE),
    (sep(lines=PRIMARY.replace("<name>1001</name>", "")), "line button='1': required element name is missing",
     LINE_RULE),
    (sep(lines=PRIMARY.replace("USECALLMANAGER", " ")), "line button='1': proxy is empty", LINE_RULE),
    (sep(lines=PRIMARY.replace("<authPassword>pw</authPassword>", "")),
     "line button='1': required element authPassword is missing", CREDENTIALS_RULE),
    (sep(lines=PRIMARY + '<line button="2"><featureID>21</featureID></line>'),
     "line button='2': featureID 21 needs speedDialNumber", TARGET_RULE),
    (sep(lines=PRIMARY + '<line button="2"><featureID>20</featureID></line>'),
     "line button='2': featureID 20 needs serviceURI", TARGET_RULE),
    (sep(lines=PRIMARY.replace("<authName>1001", f"<authName>{'a' * 31}")),
     "line button='1': authName is 31 characters, the limit is 30", LINE_FIELD_RULE),
]
XML_DEFAULT_CASES = [
    (etree.fromstring("<Defaults/>"), "root element is <Defaults>, must be <Default>", XML_DEFAULT_ROOT_RULE),
    (etree.fromstring('<Default><callManagerGroup><members><member priority="0"><callManager><ports/>'
                      "</callManager></member></members></callManagerGroup></Default>"),
     "callManagerGroup member priority='0' names no server", XML_DEFAULT_SERVER_RULE),
]


@pytest.mark.parametrize(("root", "start", "rule"), SEP_CASES)
def test_each_sep_rejection_names_the_field_and_cites_its_rule(root, start, rule):
    problems = check_sep_config(root)
    matching = [p for p in problems if p.startswith(start)]
    assert matching and all(p.endswith(f"({rule})") for p in matching), problems


@pytest.mark.parametrize(("root", "start", "rule"), XML_DEFAULT_CASES)
def test_each_xml_default_rejection_names_the_field_and_cites_its_rule(root, start, rule):
    problems = check_xml_default(root)
    assert len(problems) == 1 and problems[0].startswith(start) and problems[0].endswith(f"({rule})"), problems


def test_every_rule_is_exercised_and_every_message_cites_a_known_source():
    assert {rule for _, _, rule in SEP_CASES} == set(SEP_RULES)
    assert {rule for _, _, rule in XML_DEFAULT_CASES} == set(XML_DEFAULT_RULES)
    for rule in SEP_RULES + XML_DEFAULT_RULES:
        assert rule.startswith(SOURCES), rule
    for root, _, _ in SEP_CASES:
        for problem in check_sep_config(root):
            assert any(problem.endswith(f"({rule})") for rule in SEP_RULES), problem
    for root, _, _ in XML_DEFAULT_CASES:
        for problem in check_xml_default(root):
            assert any(problem.endswith(f"({rule})") for rule in XML_DEFAULT_RULES), problem


# --- what rested on nothing documented is not refused ------------------------------------------------------

SECONDARY = ('<line button="2"><featureID>9</featureID><proxy>USECALLMANAGER</proxy><name>1002</name>'
             "<displayName>Zoë Müller</displayName></line>")


def test_a_secondary_line_uses_the_primary_lines_credentials_and_needs_no_label():
    # usecallmanager.nz Line Keys: "For secondary lines, do not include authName and authPassword".
    assert check_sep_config(sep(lines=PRIMARY + SECONDARY)) == []
    # The primary line is the lowest-numbered line key, wherever it stands in the file.
    assert check_sep_config(sep(lines=SECONDARY + PRIMARY)) == []
    swapped = sep(lines=PRIMARY.replace('button="1"', 'button="3"') + SECONDARY)
    assert check_sep_config(swapped) == [
        f"line button='2': required element authName is missing ({CREDENTIALS_RULE})",
        f"line button='2': required element authPassword is missing ({CREDENTIALS_RULE})"]


def test_text_need_not_be_ascii_and_a_line_need_not_have_a_label():
    # The firmware reads UTF-8 (usecallmanager.nz documents userLocale winCharSet utf-8).
    line = PRIMARY.replace("<featureLabel>1001</featureLabel>", "").replace(
        "<name>", "<displayName>Ærø</displayName><name>")
    assert check_sep_config(sep(lines=line)) == []


def test_lines_that_name_their_proxy_need_no_call_manager_server():
    own_proxy = PRIMARY.replace("USECALLMANAGER", "pbx.example.org")
    assert check_sep_config(sep(lines=own_proxy, server="")) == []
    # One line through USECALLMANAGER, or none at all, and the server is required again.
    assert check_sep_config(sep(lines=own_proxy + SECONDARY, server="")) == [
        f"required element {xml_checks.SERVER_PATH} is missing ({SERVER_RULE})"]
    assert f"required element {xml_checks.SERVER_PATH} is missing ({SERVER_RULE})" in check_sep_config(
        sep(lines="", server=""))


# --- what the corpus is cited for holds ----------------------------------------------------------------------

def _parsed(*subdirectories: str) -> list[tuple[str, etree._Element]]:
    out = []
    for path in corpus_files(*subdirectories):
        try:
            out.append((path.name, parse_xml(path.read_bytes(), path.name)[0]))
        except ConfigReadError:
            continue
    return out


def test_the_corpus_evidence_the_messages_cite_holds():
    seps = _parsed("sep", "sep-ktt-ol")
    assert len(seps) == xml_checks.CORPUS_SEP_FILES
    assert all(root.tag == "device" for _, root in seps)
    assert all(root.findtext("deviceProtocol").strip() == "SIP" for _, root in seps)
    first_lines = []
    for name, root in seps:
        lines = root.findall(xml_checks.LINE_PATH)
        buttons = [line.get("button", "") for line in lines]
        assert len(set(buttons)) == len(buttons), name  # one definition per key
        first_lines.append(next(line for line in lines if (line.findtext("featureID") or "9").strip() == "9"))
        for element in root.iter(*BOOLEAN_ELEMENTS):
            assert (element.text or "").strip() in ("true", "false", ""), (name, element.tag, element.text)
        for element in root.iter(etree.Element):
            text = (element.text or "").strip()
            assert not (text.lower() in ("true", "false") and text != text.lower()), (name, element.tag)
    # Every line of a file that is not a template numbers its key.
    assert all(re.fullmatch(r"[0-9]+", line.get("button", "")) for name, root in seps
               for line in root.findall(xml_checks.LINE_PATH) if "{" not in line.get("button", "{"))
    addresses = [line for line in first_lines if line.findtext("proxy").strip() != "USECALLMANAGER"]
    assert len(first_lines) == xml_checks.CORPUS_SEP_FILES
    assert len(addresses) == xml_checks.CORPUS_PRIMARY_LINES_WITH_ADDRESS
    real_phones = [root for name, root in seps if "ktt-ol" in name or "zheltovanton" in name]
    assert len(real_phones) == xml_checks.CORPUS_REAL_PHONE_FILES_TCP4
    assert {root.findtext("transportLayerProtocol") for root in real_phones} == {"4"}
    defaults = _parsed("xmldefault")
    assert len(defaults) == xml_checks.CORPUS_XML_DEFAULT_FILES
    assert all(root.tag == "Default" for _, root in defaults)
    for name, root in defaults:
        members = root.findall("callManagerGroup/members/member")
        assert members and all(m.find("callManager/processNodeName") is not None for m in members), name


def test_the_readme_lists_every_rule_with_its_source():
    text = README.read_text()
    for rule in SEP_RULES + XML_DEFAULT_RULES:
        assert f"| {rule} |" in text, rule
