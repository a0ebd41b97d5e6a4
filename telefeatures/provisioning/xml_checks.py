"""Checks a rendered phone file against what Cisco 79x1 SIP firmware accepts.

Run on every file after rendering, so a site template override (or a bug
here) cannot produce a file that would leave a phone unregistered.
"""

from __future__ import annotations

from lxml import etree

from .devices import MAX_LINE_FIELD, MAX_PHONE_LABEL, MAX_URL, TRANSPORT_LAYER_PROTOCOL

REQUIRED_PATHS = (
    "deviceProtocol",
    "devicePool/dateTimeSetting/dateTemplate",
    "devicePool/dateTimeSetting/timeZone",
    "devicePool/dateTimeSetting/ntps/ntp/name",
    "devicePool/callManagerGroup/members/member/callManager/ports/sipPort",
    "devicePool/callManagerGroup/members/member/callManager/processNodeName",
    "sipProfile/sipProxies/registerWithProxy",
    "sipProfile/sipLines/line",
    "sipProfile/dialTemplate",
    "loadInformation",
    "versionStamp",
    "transportLayerProtocol",
)
REQUIRED_LINE_FIELDS = ("featureID", "featureLabel", "proxy", "port", "name", "displayName",
                        "authName", "authPassword", "contact")
LIMITED_LINE_FIELDS = ("featureLabel", "name", "displayName", "authName", "authPassword")
# Elements the firmware reads as booleans: only lower-case true/false work.
BOOLEAN_ELEMENTS = frozenset({
    "registerWithProxy", "natEnabled", "rfc2543Hold", "semiAttendedTransfer", "remotePartyID",
    "sharedLine", "cnfJoinEnabled", "localCfwdEnable", "remoteCcEnable", "autoAnswerAltBehavior",
    "autoAnswerOverride", "transferOnhookEnabled", "enableVad", "alwaysUsePrimeLine",
    "alwaysUsePrimeLineVoiceMail", "callStats", "disableLocalSpeedDialConfig", "encrConfig",
    "callerName", "callerNumber", "redirectedNumber", "dialedNumber", "backgroundImageAccess",
    "disableSpeaker", "disableSpeakerAndHeadset",
})
TRANSPORT_CODES = {str(code) for code in TRANSPORT_LAYER_PROTOCOL.values()}


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
    if _text(root.find("deviceProtocol")) not in ("", "SIP") and root.find("deviceProtocol") is not None:
        problems.append(f"deviceProtocol is {_text(root.find('deviceProtocol'))!r}, must be SIP")
    if root.find("devicePool/callManagerGroup/members/member[@priority='0']") is None:
        problems.append('no callManagerGroup member with priority="0"')
    register = root.find("sipProfile/sipProxies/registerWithProxy")
    if register is not None and register.text != "true":
        problems.append(f"registerWithProxy is {register.text!r}, must be true")
    transport = root.find("transportLayerProtocol")
    if transport is not None and transport.text not in TRANSPORT_CODES:
        problems.append(f"transportLayerProtocol is {transport.text!r}, must be 1 (TCP), 2 (UDP) or 3 (TLS)")
    label = root.find("sipProfile/phoneLabel")
    if label is not None:
        text = _text(label)
        if len(text) > MAX_PHONE_LABEL or " " in text:
            problems.append(f"phoneLabel {text!r}: at most {MAX_PHONE_LABEL} characters and no spaces")
    buttons: set[str] = set()
    for number, line in enumerate(root.findall("sipProfile/sipLines/line"), start=1):
        button = line.get("button")
        where = f"line button={button!r}" if button else f"line #{number}"
        if not (button and button.isdigit()):
            problems.append(f"{where}: the button attribute must be a number")
        elif button in buttons:
            problems.append(f"{where}: button used twice")
        buttons.add(button or "")
        for field in REQUIRED_LINE_FIELDS:
            if line.find(field) is None:
                problems.append(f"{where}: required element {field} is missing")
        if line.find("featureID") is not None and _text(line.find("featureID")) != "9":
            problems.append(f"{where}: featureID is {_text(line.find('featureID'))!r}, must be 9 for a line")
        if line.find("proxy") is not None and _text(line.find("proxy")) != "USECALLMANAGER":
            problems.append(f"{where}: proxy is {_text(line.find('proxy'))!r}, must be USECALLMANAGER")
        for field in LIMITED_LINE_FIELDS:
            text = _text(line.find(field))
            if len(text) > MAX_LINE_FIELD:
                problems.append(f"{where}: {field} is {len(text)} characters, the limit is {MAX_LINE_FIELD}")
            if not text.isascii():
                problems.append(f"{where}: {field} is not ASCII")
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        text = element.text or ""
        if element.tag in BOOLEAN_ELEMENTS and text not in ("true", "false"):
            problems.append(f"{element.tag} is {text!r}, booleans must be true or false")
        elif len(element) == 0 and text.lower() in ("true", "false") and text not in ("true", "false"):
            problems.append(f"{element.tag} is {text!r}, booleans must be lower-case true or false")
        if element.tag.endswith("URL") and len(text) > MAX_URL:
            problems.append(f"{element.tag} is {len(text)} characters, URLs are limited to {MAX_URL}")
    return problems


def check_xml_default(root: etree._Element) -> list[str]:
    problems = []
    if root.tag != "Default":
        problems.append(f"root element is <{root.tag}>, must be <Default>")
    for path in ("callManagerGroup/members/member/callManager/ports/sipPort",
                 "callManagerGroup/members/member/callManager/processNodeName"):
        if root.find(path) is None:
            problems.append(f"required element {path} is missing")
    return problems
