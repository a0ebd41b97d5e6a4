"""Checks a rendered phone file against what Cisco 79x1 SIP firmware accepts.

Run on every file after rendering, so a site template override (or a bug
here) cannot produce a file that would leave a phone unregistered; and by
``provision lint`` on files kept by hand.

The checks are never stricter than the phone, and every rejection names the
rule it breaks and where that rule comes from. Cisco never documented the
79x1 SIP XML file element by element (its administration guides describe
the files that Unified CM writes); the element-level documentation is
usecallmanager.nz's. Where that is silent a rule rests on the corpus of real
files (``../shared/cisco-corpus/``), and the message says so. A limit that
rested only on our own choice was dropped (non-ASCII text, a featureLabel on
every line, credentials on secondary lines, a processNodeName when every
line names its own proxy): see provisioning/README.md, "Rule checks".
"""

from __future__ import annotations

from lxml import etree

from .devices import (
    FEATURE_BLF_SPEED_DIAL,
    FEATURE_LINE,
    FEATURE_SERVICE_URI,
    FEATURE_SPEED_DIAL,
    MAX_LINE_FIELD,
    MAX_PHONE_LABEL,
    MAX_URL,
)

# Where each rule comes from, quoted in every rejection.
UCM_SEP = "usecallmanager.nz SEPMAC.cnf.xml"
UCM_LINE_KEYS = "usecallmanager.nz Line Keys"
# The older transportLayerProtocol table (1 device default, 2 UDP, 4 TCP),
# quoted in msergiy87/phone_cisco_6921's README.
ACSDATA_DOCS = "docs.acsdata.co.nz"
CORPUS = "../shared/cisco-corpus"
# What the corpus shows, as tests/unit/provisioning/test_xml_check_sources.py
# measures it again: files that parse, of 37 SEP and 10 XMLDefault.
CORPUS_SEP_FILES = 36
CORPUS_XML_DEFAULT_FILES = 8
CORPUS_PRIMARY_LINES_WITH_ADDRESS = 11  # of the 36 first lines, the others say USECALLMANAGER
CORPUS_REAL_PHONE_FILES_TCP4 = 14

SEP_ROOT_RULE = (f"{UCM_SEP}: the root element is device, as in all {CORPUS_SEP_FILES} well-formed SEP files "
                 f"of {CORPUS}")
SERVER_RULE = (f"{UCM_SEP}: processNodeName names the server running Asterisk, which a USECALLMANAGER line "
               "registers with")
LINE_KEY_RULE = f"{UCM_SEP}: there must be at least one line key of featureID 9"
PROTOCOL_RULE = (f"{UCM_SEP}: deviceProtocol SIP (SIP firmware), as in all {CORPUS_SEP_FILES} well-formed SEP "
                 f"files of {CORPUS}")
TRANSPORT_RULE = (f"{UCM_SEP}: 1 TCP, 2 UDP, 3 TLS; {ACSDATA_DOCS}: 1 device default, 4 TCP, which the "
                  f"{CORPUS_REAL_PHONE_FILES_TCP4} real-phone files of {CORPUS} use")
PHONE_LABEL_RULE = f"{UCM_SEP}: phoneLabel, maximum length of {MAX_PHONE_LABEL} characters"
BOOLEAN_RULE = (f"{UCM_SEP}: the documented values are true and false, in lower case as in every file of "
                f"{CORPUS}")
URL_RULE = f"{UCM_SEP}: every URL element has a maximum length of {MAX_URL} characters"
BUTTON_RULE = (f"{UCM_SEP}: line button= is the key the definition is assigned to; every line of a "
               f"real file in {CORPUS} numbers one key")
FEATURE_RULE = f"{UCM_LINE_KEYS}: featureID is the number of the key's feature"
LINE_RULE = (f"{UCM_SEP}: a line registers as its name through its proxy, USECALLMANAGER or (in "
             f"{CORPUS_PRIMARY_LINES_WITH_ADDRESS} of the {CORPUS_SEP_FILES} first lines of {CORPUS}) an address")
CREDENTIALS_RULE = (f"{UCM_LINE_KEYS}: the primary line carries authName and authPassword, the other lines "
                    "use its credentials")
TARGET_RULE = (f"{UCM_LINE_KEYS}: a speed dial (2) and a BLF speed dial (21) dial speedDialNumber, "
               "a service URI (20) loads serviceURI")
LINE_FIELD_RULE = (f"{UCM_SEP}: featureLabel, name, displayName, authName, authPassword have a maximum "
                   f"length of {MAX_LINE_FIELD} characters")
XML_DEFAULT_ROOT_RULE = (f"{CORPUS}: all {CORPUS_XML_DEFAULT_FILES} well-formed XMLDefault.cnf.xml have a "
                         "Default root (no document describes this file's elements)")
XML_DEFAULT_SERVER_RULE = (f"{UCM_SEP}: a callManagerGroup member names the server (processNodeName); every "
                           f"member in {CORPUS}'s {CORPUS_XML_DEFAULT_FILES} well-formed XMLDefault.cnf.xml "
                           "names one")

# Every rule with its source, as provisioning/README.md lists them.
SEP_RULES = (SEP_ROOT_RULE, SERVER_RULE, LINE_KEY_RULE, PROTOCOL_RULE, TRANSPORT_RULE, PHONE_LABEL_RULE,
             BOOLEAN_RULE, URL_RULE, BUTTON_RULE, FEATURE_RULE, LINE_RULE, CREDENTIALS_RULE, TARGET_RULE,
             LINE_FIELD_RULE)
XML_DEFAULT_RULES = (XML_DEFAULT_ROOT_RULE, XML_DEFAULT_SERVER_RULE)

SERVER_PATH = "devicePool/callManagerGroup/members/member/callManager/processNodeName"
LINE_PATH = "sipProfile/sipLines/line"
# What a phone cannot work without: everything else (versionStamp, sipPort,
# transportLayerProtocol, dialTemplate, loadInformation, ...) has a firmware
# default, and real working files leave them out. The server is needed only
# when a line registers through it (proxy USECALLMANAGER).
REQUIRED_PATHS = (SERVER_PATH, LINE_PATH)
_REQUIRED_RULES = {SERVER_PATH: SERVER_RULE, LINE_PATH: LINE_KEY_RULE}
USE_CALL_MANAGER = "USECALLMANAGER"
# A line key of featureID 9 (a line) needs these; other keys (2 speed dial,
# 20 service URI, 21 BLF speed dial, ...) carry their own few elements.
REQUIRED_LINE_FIELDS = ("proxy", "name")
PRIMARY_LINE_FIELDS = ("authName", "authPassword")
LIMITED_LINE_FIELDS = ("featureLabel", "name", "displayName", "authName", "authPassword")
FEATURE_TARGETS = {str(FEATURE_SPEED_DIAL): "speedDialNumber", str(FEATURE_BLF_SPEED_DIAL): "speedDialNumber",
                   str(FEATURE_SERVICE_URI): "serviceURI"}
# Elements the firmware reads as booleans: only lower-case true/false work.
BOOLEAN_ELEMENTS = frozenset({
    "registerWithProxy", "natEnabled", "rfc2543Hold", "semiAttendedTransfer", "remotePartyID",
    "sharedLine", "cnfJoinEnabled", "localCfwdEnable", "remoteCcEnable", "autoAnswerAltBehavior",
    "autoAnswerOverride", "transferOnhookEnabled", "enableVad", "alwaysUsePrimeLine",
    "alwaysUsePrimeLineVoiceMail", "callStats", "disableLocalSpeedDialConfig", "encrConfig",
    "callerName", "callerNumber", "redirectedNumber", "dialedNumber", "backgroundImageAccess",
    "disableSpeaker", "disableSpeakerAndHeadset",
})
# 1 TCP (current usecallmanager docs) or device default (older docs), 2 UDP,
# 3 TLS, 4 TCP (older docs; the real phones of a running site).
TRANSPORT_CODES = {"1", "2", "3", "4"}


_BOOLEANS = frozenset({"true", "false"})


def _text(element: etree._Element | None) -> str:
    return (element.text or "") if element is not None else ""


def missing_element(path: str) -> str:
    """The rejection of a SEP file that lacks a required element."""
    return f"required element {path} is missing ({_REQUIRED_RULES[path]})"


def check_sep_config(root: etree._Element) -> list[str]:
    """Every rule the ``<device>`` document breaks ([] if none)."""
    problems: list[str] = []
    if root.tag != "device":
        return [f"root element is <{root.tag}>, must be <device> ({SEP_ROOT_RULE})"]
    keys = root.findall(LINE_PATH)
    line_problems, every_line_names_a_proxy = _line_key_problems(keys)
    if not every_line_names_a_proxy and root.find(SERVER_PATH) is None:
        problems.append(missing_element(SERVER_PATH))
    if not keys:
        problems.append(missing_element(LINE_PATH))
    protocol = root.find("deviceProtocol")
    if protocol is not None and _text(protocol).strip() not in ("", "SIP"):
        problems.append(f"deviceProtocol is {_text(protocol)!r}, must be SIP ({PROTOCOL_RULE})")
    transport = root.find("transportLayerProtocol")
    if transport is not None and _text(transport).strip() not in TRANSPORT_CODES:
        problems.append(f"transportLayerProtocol is {transport.text!r}, must be 1, 2 (UDP), 3 (TLS) or 4 (TCP) "
                        f"({TRANSPORT_RULE})")
    label = root.find("sipProfile/phoneLabel")
    if label is not None:
        text = _text(label)
        if len(text) > MAX_PHONE_LABEL:
            problems.append(f"phoneLabel {text!r}: at most {MAX_PHONE_LABEL} characters ({PHONE_LABEL_RULE})")
    problems += line_problems
    for element in root.iter(*BOOLEAN_ELEMENTS):
        text = element.text or ""
        if text.strip() not in _BOOLEANS and text.strip():
            problems.append(f"{element.tag} is {text!r}, booleans must be true or false ({BOOLEAN_RULE})")
    # One cheap pass over every element: this runs on every file of a build.
    for element in root.iter(etree.Element):
        text = element.text
        if not text:
            continue
        size = len(text)
        if size > MAX_URL and element.tag.endswith("URL"):
            problems.append(f"{element.tag} is {size} characters, URLs are limited to {MAX_URL} ({URL_RULE})")
        elif (size == 4 or size == 5) and text not in _BOOLEANS and text.lower() in _BOOLEANS \
                and element.tag not in BOOLEAN_ELEMENTS and not len(element):
            problems.append(f"{element.tag} is {text!r}, booleans must be lower-case true or false "
                            f"({BOOLEAN_RULE})")
    return problems


def _check_line_keys(keys: list[etree._Element]) -> list[str]:
    """Every rule the line keys break ([] if none)."""
    return _line_key_problems(keys)[0]


def _line_key_problems(keys: list[etree._Element]) -> tuple[list[str], bool]:
    """The line keys' problems, and whether there are lines (featureID 9)
    and every one names its own proxy address, so that none registers through
    the callManagerGroup server (USECALLMANAGER)."""
    problems: list[str] = []
    buttons: set[str] = set()
    lines: list[tuple[str, str | None, dict[str, etree._Element]]] = []
    every_line_names_a_proxy = True
    for number, line in enumerate(keys, start=1):
        button = line.get("button")
        where = f"line button={button!r}" if button else f"line #{number}"
        if not (button and button.strip().isdigit()):
            problems.append(f"{where}: the button attribute must be a number ({BUTTON_RULE})")
        elif button in buttons:
            problems.append(f"{where}: button used twice ({BUTTON_RULE})")
        buttons.add(button or "")
        # The first child of each name, as line.find(name) gives it, in one
        # pass instead of a dozen finds: this runs for every line of every file.
        fields: dict[str, etree._Element] = {}
        for child in line:
            if isinstance(child.tag, str):
                fields.setdefault(child.tag, child)
        feature = _text(fields.get("featureID")).strip() or str(FEATURE_LINE)
        if not feature.isdigit():
            problems.append(f"{where}: featureID is {feature!r}, must be a number ({FEATURE_RULE})")
        elif feature == str(FEATURE_LINE):
            lines.append((where, button, fields))
            for field in REQUIRED_LINE_FIELDS:
                if field not in fields:
                    problems.append(f"{where}: required element {field} is missing ({LINE_RULE})")
            proxy = _text(fields.get("proxy")).strip()
            if "proxy" in fields and not proxy:
                problems.append(f"{where}: proxy is empty (USECALLMANAGER or a proxy address) ({LINE_RULE})")
            if not proxy or proxy.upper() == USE_CALL_MANAGER:
                every_line_names_a_proxy = False
        elif feature in FEATURE_TARGETS and FEATURE_TARGETS[feature] not in fields:
            problems.append(f"{where}: featureID {feature} needs {FEATURE_TARGETS[feature]} ({TARGET_RULE})")
        for field in LIMITED_LINE_FIELDS:
            size = len(_text(fields.get(field)))
            if size > MAX_LINE_FIELD:
                problems.append(f"{where}: {field} is {size} characters, the limit is {MAX_LINE_FIELD} "
                                f"({LINE_FIELD_RULE})")
    if lines:
        # The primary line: the lowest-numbered key of featureID 9.
        where, _, fields = min(lines, key=lambda item: int(item[1]) if (item[1] or "").strip().isdigit()
                               else float("inf"))
        for field in PRIMARY_LINE_FIELDS:
            if field not in fields:
                problems.append(f"{where}: required element {field} is missing ({CREDENTIALS_RULE})")
    return problems, every_line_names_a_proxy and bool(lines)


def check_xml_default(root: etree._Element) -> list[str]:
    """XMLDefault.cnf.xml: a <Default> document. Real ones often name only the
    server (9 of 10 real-world files have no sipPort: the phone uses 5060)."""
    if root.tag != "Default":
        return [f"root element is <{root.tag}>, must be <Default> ({XML_DEFAULT_ROOT_RULE})"]
    problems = []
    members = root.findall("callManagerGroup/members/member")
    for member in members:
        if member.find("callManager/processNodeName") is None and member.find("callManager/name") is None:
            problems.append(f"callManagerGroup member priority={member.get('priority')!r} names no server "
                            f"(processNodeName) ({XML_DEFAULT_SERVER_RULE})")
    return problems
