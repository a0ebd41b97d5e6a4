"""Checks a rendered phone file against what Cisco 79x1 SIP firmware accepts.

Run on every file after rendering, so a site template override (or a bug
here) cannot produce a file that would leave a phone unregistered.
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

# Only what a phone cannot work without: everything else (versionStamp, sipPort,
# transportLayerProtocol, dialTemplate, loadInformation, ...) has a firmware
# default, and real working files leave them out.
REQUIRED_PATHS = (
    "devicePool/callManagerGroup/members/member/callManager/processNodeName",
    "sipProfile/sipLines/line",
)
# A line key of featureID 9 (a line) needs these; other keys (2 speed dial,
# 20 service URI, 21 BLF speed dial, ...) carry their own few elements.
REQUIRED_LINE_FIELDS = ("featureLabel", "proxy", "name", "authName", "authPassword")
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


def check_sep_config(root: etree._Element) -> list[str]:
    """Every rule the ``<device>`` document breaks ([] if none)."""
    problems: list[str] = []
    if root.tag != "device":
        return [f"root element is <{root.tag}>, must be <device>"]
    for path in REQUIRED_PATHS:
        if root.find(path) is None:
            problems.append(f"required element {path} is missing")
    protocol = root.find("deviceProtocol")
    if protocol is not None and _text(protocol).strip() not in ("", "SIP"):
        problems.append(f"deviceProtocol is {_text(protocol)!r}, must be SIP")
    transport = root.find("transportLayerProtocol")
    if transport is not None and _text(transport).strip() not in TRANSPORT_CODES:
        problems.append(f"transportLayerProtocol is {transport.text!r}, must be 1, 2 (UDP), 3 (TLS) or 4 (TCP)")
    label = root.find("sipProfile/phoneLabel")
    if label is not None:
        text = _text(label)
        if len(text) > MAX_PHONE_LABEL:
            problems.append(f"phoneLabel {text!r}: at most {MAX_PHONE_LABEL} characters")
    problems += _check_line_keys(root.findall("sipProfile/sipLines/line"))
    for element in root.iter(*BOOLEAN_ELEMENTS):
        text = element.text or ""
        if text.strip() not in _BOOLEANS and text.strip():
            problems.append(f"{element.tag} is {text!r}, booleans must be true or false")
    # One cheap pass over every element: this runs on every file of a build.
    for element in root.iter(etree.Element):
        text = element.text
        if not text:
            continue
        size = len(text)
        if size > MAX_URL and element.tag.endswith("URL"):
            problems.append(f"{element.tag} is {size} characters, URLs are limited to {MAX_URL}")
        elif (size == 4 or size == 5) and text not in _BOOLEANS and text.lower() in _BOOLEANS \
                and element.tag not in BOOLEAN_ELEMENTS and not len(element):
            problems.append(f"{element.tag} is {text!r}, booleans must be lower-case true or false")
    return problems


def _check_line_keys(keys: list[etree._Element]) -> list[str]:
    problems: list[str] = []
    buttons: set[str] = set()
    for number, line in enumerate(keys, start=1):
        button = line.get("button")
        where = f"line button={button!r}" if button else f"line #{number}"
        if not (button and button.strip().isdigit()):
            problems.append(f"{where}: the button attribute must be a number")
        elif button in buttons:
            problems.append(f"{where}: button used twice")
        buttons.add(button or "")
        # The first child of each name, as line.find(name) gives it, in one
        # pass instead of a dozen finds: this runs for every line of every file.
        fields: dict[str, etree._Element] = {}
        for child in line:
            if isinstance(child.tag, str):
                fields.setdefault(child.tag, child)
        feature = _text(fields.get("featureID")).strip() or str(FEATURE_LINE)
        if not feature.isdigit():
            problems.append(f"{where}: featureID is {feature!r}, must be a number")
        elif feature == str(FEATURE_LINE):
            for field in REQUIRED_LINE_FIELDS:
                if field not in fields:
                    problems.append(f"{where}: required element {field} is missing")
            if "proxy" in fields and not _text(fields["proxy"]).strip():
                problems.append(f"{where}: proxy is empty (USECALLMANAGER or a proxy address)")
        elif feature in FEATURE_TARGETS and FEATURE_TARGETS[feature] not in fields:
            problems.append(f"{where}: featureID {feature} needs {FEATURE_TARGETS[feature]}")
        for field in LIMITED_LINE_FIELDS:
            text = _text(fields.get(field))
            if len(text) > MAX_LINE_FIELD:
                problems.append(f"{where}: {field} is {len(text)} characters, the limit is {MAX_LINE_FIELD}")
            if not text.isascii():
                problems.append(f"{where}: {field} is not ASCII")
    return problems


def check_xml_default(root: etree._Element) -> list[str]:
    """XMLDefault.cnf.xml: a <Default> document. Real ones often name only the
    server (9 of 10 real-world files have no sipPort: the phone uses 5060)."""
    if root.tag != "Default":
        return [f"root element is <{root.tag}>, must be <Default>"]
    problems = []
    members = root.findall("callManagerGroup/members/member")
    for member in members:
        if member.find("callManager/processNodeName") is None and member.find("callManager/name") is None:
            problems.append(f"callManagerGroup member priority={member.get('priority')!r} names no server "
                            "(processNodeName)")
    return problems
