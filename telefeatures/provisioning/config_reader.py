"""Reads existing Cisco phone files into a neutral "meaning": what the phone
will do with them, independent of how the file spells it.

* ``SEP<MAC>.cnf.xml`` (79x1/79x2/79x5/7906/797x SIP firmware, XML);
* ``SIPDefault.cnf`` + ``SIP<MAC>.cnf`` (7940/7960 SIP firmware, ``key: value``).

The same meaning is read from an admin's file and from the file a build
writes for the imported inventory, and :func:`meaning_differences` compares
the two: that comparison is what proves an import loses nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from lxml import etree

# A phone's configuration file name carries its MAC.
SEP_FILE = re.compile(r"SEP([0-9A-Fa-f]{12})\.cnf\.xml", re.IGNORECASE)
SIP_FILE = re.compile(r"SIP([0-9A-Fa-f]{12})\.cnf", re.IGNORECASE)
SIP_DEFAULT_FILE = "SIPDefault.cnf"

# Placeholders that provisioning systems and how-tos leave for the admin to fill in.
PLACEHOLDER = re.compile(
    r"###[^#]*###|\[==.*?==\]|\[%.*?%\]|\{\$[^}]*\}|\{\{.*?\}\}|\{%.*?%\}|\*{4,}[^*]*\*{4,}"
    r"|#[A-Za-z_][^#<>]*#|\[[A-Za-z][^\]]*\]"
)
# The phone's documented defaults where a file leaves a setting out.
DEFAULT_MEDIA_PORTS = ("16384", "32766")
DEFAULT_SIP_PORT = "5060"
USECALLMANAGER = "USECALLMANAGER"
SECRET_ELEMENTS = frozenset({"authPassword", "sshPassword", "phonePassword"})
SECRET_KEYS = re.compile(r"(line\d+_password|phone_password)$")


class ConfigReadError(Exception):
    """A file cannot be read at all; ``problems`` say why, with lines."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


@dataclass(frozen=True)
class LineMeaning:
    button: int
    extension: str
    display_name: str
    label: str
    auth_user: str
    password: str = field(repr=False)
    contact: str
    messages_number: str
    proxy: str
    port: str


@dataclass(frozen=True)
class KeyMeaning:
    """A button that is not a line: speed dial (2), service URI (20), BLF speed dial (21)."""

    button: int
    feature_id: str
    label: str
    number: str


@dataclass(frozen=True)
class PhoneMeaning:
    """What a phone does with its file(s), in the terms the import round trip compares."""

    kind: str  # "sep" (79x1 XML) or "sip79x0" (7940/7960)
    mac: str | None
    proxy: str
    sip_port: str
    transport: str
    time_zone: str
    date_format: str
    nat_enabled: bool
    nat_address: str
    start_media_port: str
    stop_media_port: str
    lines: tuple[LineMeaning, ...]
    keys: tuple[KeyMeaning, ...] = ()
    # Not compared (the inventory derives them), but what an import needs.
    load: str = field(default="", compare=False)
    phone_label: str = field(default="", compare=False)
    ntp_server: str = field(default="", compare=False)
    # Every setting in the file: path -> (value, line in the file).
    settings: dict[str, tuple[str, int | None]] = field(default_factory=dict, compare=False, repr=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)


def _field_names(cls: type) -> list[str]:
    return [f.name for f in fields(cls) if f.compare]


def meaning_differences(before: PhoneMeaning, after: PhoneMeaning) -> list[str]:
    """Every compared setting whose meaning differs, as readable lines.
    Passwords are named, never shown."""
    out: list[str] = []

    def value(name: str, item: object) -> str:
        shown = getattr(item, name)
        return "(secret)" if name == "password" else repr(shown)

    for name in _field_names(PhoneMeaning):
        if name in ("lines", "keys"):
            continue
        if getattr(before, name) != getattr(after, name):
            out.append(f"{name}: {value(name, before)} became {value(name, after)}")
    for title, old_items, new_items in (("line", before.lines, after.lines), ("key", before.keys, after.keys)):
        old = {item.button: item for item in old_items}
        new = {item.button: item for item in new_items}
        for button in sorted(old.keys() | new.keys()):
            if button not in new:
                out.append(f"{title} button {button}: lost")
            elif button not in old:
                out.append(f"{title} button {button}: added")
            else:
                for name in _field_names(type(old[button])):
                    if getattr(old[button], name) != getattr(new[button], name):
                        out.append(f"{title} button {button} {name}: {value(name, old[button])} became "
                                   f"{value(name, new[button])}")
    return out


# --- SEP<MAC>.cnf.xml -------------------------------------------------------------------

def mac_from_name(name: str) -> str | None:
    match = SEP_FILE.search(name) or SIP_FILE.search(name)
    return match.group(1).upper() if match else None


def parse_xml(data: bytes, source: str) -> tuple[etree._Element, list[str]]:
    """Parse a phone XML file the way the phone does: an undeclared namespace
    prefix (``xsi:type`` without ``xmlns:xsi``, as CUCM exports have) is only a
    warning; anything else that is not well-formed is an error."""
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True, remove_comments=True)
    try:
        return etree.fromstring(data, parser), []
    except etree.XMLSyntaxError as exc:
        first = exc
    lenient = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True,
                              remove_comments=True, recover=True)
    root = etree.fromstring(data, lenient)
    errors = list(lenient.error_log)
    if root is not None and errors and all(e.type_name == "NS_ERR_UNDEFINED_NAMESPACE" for e in errors):
        return root, [f"line {errors[0].line}: {errors[0].message.strip()} (the phone ignores it)"]
    line = f"line {first.lineno}: " if isinstance(first.lineno, int) and first.lineno > 0 else ""
    raise ConfigReadError(source, [f"{line}not well-formed XML: {first.msg}"])


def _text(root: etree._Element, path: str) -> str:
    element = root.find(path)
    return (element.text or "").strip() if element is not None else ""


def _leaf_settings(root: etree._Element) -> dict[str, tuple[str, int | None]]:
    settings: dict[str, tuple[str, int | None]] = {}

    def walk(element: etree._Element, path: str) -> None:
        children = [c for c in element if isinstance(c.tag, str)]
        if not children:
            settings[path] = ((element.text or "").strip(), element.sourceline)
            return
        seen: dict[str, int] = {}
        for child in children:
            name = child.tag
            if child.get("button"):
                name += f"[button={child.get('button')}]"
            elif child.get("priority") is not None:
                name += f"[priority={child.get('priority')}]"
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                name += f"[{seen[name]}]"
            walk(child, f"{path}/{name}" if path else name)

    walk(root, "")
    return settings


def _first_member(root: etree._Element) -> etree._Element | None:
    members = root.findall("devicePool/callManagerGroup/members/member")
    if not members:
        return None
    return min(members, key=lambda m: int(m.get("priority", "0")) if m.get("priority", "0").isdigit() else 99)


def read_sep(data: bytes, source: str = "SEP file") -> PhoneMeaning:
    """The meaning of one ``SEP<MAC>.cnf.xml``."""
    root, warnings = parse_xml(data, source)
    if root.tag != "device":
        raise ConfigReadError(source, [f"line {root.sourceline}: root element is <{root.tag}>, not <device>: "
                                       "not a SEP<MAC>.cnf.xml"])
    member = _first_member(root)
    proxy = _text(member, "callManager/processNodeName") if member is not None else ""
    sip_port = (_text(member, "callManager/ports/sipPort") if member is not None else "") or DEFAULT_SIP_PORT
    profile = root.find("sipProfile")
    lines: list[LineMeaning] = []
    keys: list[KeyMeaning] = []
    for number, line in enumerate(root.findall("sipProfile/sipLines/line"), start=1):
        button = line.get("button", "")
        index = int(button) if button.isdigit() else number
        feature = _text(line, "featureID") or "9"
        if feature != "9":
            keys.append(KeyMeaning(index, feature, _text(line, "featureLabel"),
                                   _text(line, "speedDialNumber") or _text(line, "serviceURI")))
            continue
        name = _text(line, "name")
        line_proxy = _text(line, "proxy")
        lines.append(LineMeaning(
            button=index,
            extension=name,
            # The phone shows (and authenticates as) the line name where these are empty.
            display_name=_text(line, "displayName") or name,
            label=_text(line, "featureLabel") or name,
            auth_user=_text(line, "authName") or name,
            password=_text(line, "authPassword"),
            contact=_text(line, "contact") or name,
            messages_number=_text(line, "messagesNumber"),
            proxy=proxy if line_proxy in ("", USECALLMANAGER) else line_proxy,
            port=_text(line, "port") or sip_port,
        ))
    nat = _text(profile, "natEnabled") if profile is not None else ""
    return PhoneMeaning(
        kind="sep",
        mac=mac_from_name(source),
        proxy=proxy,
        sip_port=sip_port,
        transport=_text(root, "transportLayerProtocol"),
        time_zone=_text(root, "devicePool/dateTimeSetting/timeZone"),
        date_format=_text(root, "devicePool/dateTimeSetting/dateTemplate"),
        nat_enabled=nat == "true",
        nat_address=_text(root, "sipProfile/natAddress") if nat == "true" else "",
        start_media_port=_text(root, "sipProfile/startMediaPort") or DEFAULT_MEDIA_PORTS[0],
        stop_media_port=_text(root, "sipProfile/stopMediaPort") or DEFAULT_MEDIA_PORTS[1],
        lines=tuple(lines),
        keys=tuple(keys),
        load=_text(root, "loadInformation"),
        phone_label=_text(root, "sipProfile/phoneLabel"),
        ntp_server=_text(root, "devicePool/dateTimeSetting/ntps/ntp/name"),
        settings=_leaf_settings(root),
        warnings=tuple(warnings),
    )


# --- SIPDefault.cnf / SIP<MAC>.cnf (7940/7960) ----------------------------------------------

_SIP_LINE = re.compile(r"\s*([A-Za-z0-9_]+)\s*:\s*(.*)$")


def parse_sip_conf(text: str, source: str) -> dict[str, tuple[str, int]]:
    """``key: value`` lines; ``#`` starts a comment line, ``;`` a trailing
    comment; values may be double-quoted (keeping their spaces)."""
    settings: dict[str, tuple[str, int]] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith(";"):
            continue
        match = _SIP_LINE.match(raw)
        if not match:
            # Cisco's 7940/7960 guides document only "name: value" lines; what the phone makes
            # of another line is unknown, so the file's meaning cannot be proven.
            hint = " ('=' is not the separator the Cisco guides document)" if re.match(r"\s*\w+\s*=", raw) else ""
            problems.append(f"line {number}: not 'key: value'{hint}: {stripped[:60]!r}")
            continue
        key, rest = match.group(1), match.group(2).strip()
        if rest.startswith('"'):
            end = rest.find('"', 1)
            value = rest[1:end] if end > 0 else rest[1:]
        else:
            value = rest.split(";", 1)[0].strip()
        settings[key.lower()] = (value, number)
    if problems:
        raise ConfigReadError(source, problems)
    return settings


def read_sip79x0(files: list[tuple[str, str]]) -> PhoneMeaning:
    """The meaning of a 7940/7960: ``SIPDefault.cnf`` then ``SIP<MAC>.cnf``
    (later files override earlier ones, as the phone reads them)."""
    merged: dict[str, tuple[str, int | None]] = {}
    mac = None
    for source, text in files:
        merged.update(parse_sip_conf(text, source))
        mac = mac_from_name(source) or mac

    def get(key: str, default: str = "") -> str:
        return merged.get(key, (default, None))[0]

    proxy = get("proxy1_address")
    sip_port = get("proxy1_port") or DEFAULT_SIP_PORT
    lines = []
    for n in range(1, 7):
        name = get(f"line{n}_name")
        if not name or name.upper() == "UNPROVISIONED":
            continue
        lines.append(LineMeaning(
            button=n, extension=name, display_name=get(f"line{n}_displayname") or name,
            label=get(f"line{n}_shortname") or name, auth_user=get(f"line{n}_authname") or name,
            password=get(f"line{n}_password"), contact=name, messages_number=get("messages_uri"),
            proxy=get(f"proxy{n}_address") or proxy, port=get(f"proxy{n}_port") or sip_port,
        ))
    date = get("date_format") or "M/D/Y"
    twelve_hour = get("time_format_24hr", "1") == "0"
    return PhoneMeaning(
        kind="sip79x0", mac=mac, proxy=proxy, sip_port=sip_port, transport="",
        time_zone=sip_cnf_time_zone(get), date_format=date + ("a" if twelve_hour else ""),
        nat_enabled=get("nat_enable") == "1", nat_address=get("nat_address") if get("nat_enable") == "1" else "",
        start_media_port=get("start_media_port") or DEFAULT_MEDIA_PORTS[0],
        stop_media_port=get("end_media_port") or DEFAULT_MEDIA_PORTS[1],
        lines=tuple(lines), load=get("image_version"), phone_label=get("phone_label"),
        ntp_server=get("sntp_server"), settings=dict(merged),
    )


# The 7940/7960's daylight-saving defaults (Cisco SIP IP Phone Administrator
# Guide, SIPDefault.cnf parameters): on, first Sunday of April to the last
# Sunday of October, 02:00, one hour.
DST_DEFAULTS = {"dst_auto_adjust": "1", "dst_offset": "1", "dst_start_month": "April", "dst_start_day": "",
                "dst_start_week_of_month": "1", "dst_start_day_of_week": "Sunday", "dst_start_time": "02:00",
                "dst_stop_month": "October", "dst_stop_day": "", "dst_stop_week_of_month": "8",
                "dst_stop_day_of_week": "Sunday", "dst_stop_time": "02:00"}
_MONTHS = ("january february march april may june july august september october november december").split()
# 1-7 = Sunday-Saturday (7960 Administrator Guide, dst_start_day_of_week).
_DAYS = "sunday monday tuesday wednesday thursday friday saturday".split()


def _long_name(value: str, names: list[str]) -> str:
    lowered = value.strip().lower()
    for name in names:
        if lowered and name.startswith(lowered[:3]):
            return name.capitalize()
    return value


def _weekday(value: str) -> str:
    """Sunday or Sun, ..., or 1-7, as the full name; the guide says the names are
    case-sensitive, so another spelling is kept as written (and means nothing known)."""
    text = value.strip()
    if text.isdigit() and 1 <= int(text) <= 7:
        return _DAYS[int(text) - 1].capitalize()
    for day in _DAYS:
        if text in (day.capitalize(), day[:3].capitalize()):
            return day.capitalize()
    return text


def _clock(value: str) -> str:
    """hh:mm, hh/mm (as the guide also allows) or hh, as HH:MM."""
    hours, _, minutes = value.strip().replace("/", ":").partition(":")
    if hours.isdigit() and (not minutes or minutes.isdigit()):
        return f"{int(hours):02d}:{int(minutes or 0):02d}"
    return value


def _offset(value: str) -> str:
    """dst_offset (hours, or hh:mm) as H:MM."""
    clock = _clock(value)
    if not re.fullmatch(r"[0-9]{2,}:[0-9]{2}", clock):
        return value
    hours, minutes = clock.split(":")
    return f"{int(hours)}:{minutes}"


def sip_cnf_dst(get) -> dict[str, str] | None:  # type: ignore[no-untyped-def]
    """The daylight-saving rule a 7940/7960 follows, normalized (firmware
    defaults filled in; names spelled out; times HH:MM; a ``*_day`` of the
    month replaces week and weekday), keyed like the dst_* keys without
    ``dst_``; None when daylight saving is off."""
    if get("dst_auto_adjust", DST_DEFAULTS["dst_auto_adjust"]) == "0":
        return None
    raw = {key: get(key, default) or default for key, default in DST_DEFAULTS.items()}
    rule = {"offset": _offset(raw["dst_offset"])}
    for edge in ("start", "stop"):
        rule[f"{edge}_month"] = _long_name(raw[f"dst_{edge}_month"], _MONTHS)
        day = raw[f"dst_{edge}_day"].strip()
        if day.isdigit() and int(day) != 0:  # absolute: the phone ignores week and weekday
            rule[f"{edge}_day"] = str(int(day))
        else:
            rule[f"{edge}_week_of_month"] = raw[f"dst_{edge}_week_of_month"].strip()
            rule[f"{edge}_day_of_week"] = _weekday(raw[f"dst_{edge}_day_of_week"])
        rule[f"{edge}_time"] = _clock(raw[f"dst_{edge}_time"])
    return rule


def sip_cnf_time_zone(get) -> str:  # type: ignore[no-untyped-def]
    """A 7940/7960's zone with the daylight-saving rule it follows, normalized
    (``CET, DST March week 8 Sunday 02:00 to October week 8 Sunday 03:00``;
    ``, offset 2:00`` is added when the clock goes forward by other than 1:00)."""
    zone = get("time_zone")
    rule = sip_cnf_dst(get)
    if rule is None:
        return f"{zone}, no DST"
    parts = []
    for edge in ("start", "stop"):
        when = (f"day {rule[f'{edge}_day']}" if f"{edge}_day" in rule else
                f"week {rule[f'{edge}_week_of_month']} {rule[f'{edge}_day_of_week']}")
        parts.append(f"{rule[f'{edge}_month']} {when} {rule[f'{edge}_time']}")
    offset = "" if rule["offset"] == "1:00" else f", offset {rule['offset']}"
    return f"{zone}, DST {parts[0]} to {parts[1]}{offset}"


# --- finding placeholders ---------------------------------------------------------------------

def is_secret(path: str) -> bool:
    leaf = path.rsplit("/", 1)[-1].split("[", 1)[0]
    return leaf in SECRET_ELEMENTS or bool(SECRET_KEYS.search(leaf))


# The settings an import carries into the inventory (a placeholder in one of
# these makes the file a template; elsewhere it is only reported).
IMPORTED_ELEMENTS = frozenset({
    "processNodeName", "sipPort", "dateTemplate", "timeZone", "phoneLabel", "loadInformation",
    "transportLayerProtocol", "natEnabled", "natAddress", "startMediaPort", "stopMediaPort", "featureID",
    "featureLabel", "name", "displayName", "authName", "contact", "messagesNumber", "proxy", "port",
    "speedDialNumber", "serviceURI",
})
IMPORTED_KEYS = re.compile(
    r"(proxy\d_(address|port)|line\d+_(name|displayname|shortname|authname)|messages_uri|sntp_server|time_zone"
    r"|date_format|phone_label|image_version|nat_enable|nat_address|start_media_port|end_media_port)$")


def is_imported_setting(path: str) -> bool:
    leaf = path.rsplit("/", 1)[-1].split("[", 1)[0]
    if leaf == "name":  # only the NTP server's and the lines' names
        return path.startswith("devicePool/dateTimeSetting/ntps/") or "/sipLines/" in path
    return leaf in IMPORTED_ELEMENTS or bool(IMPORTED_KEYS.match(leaf))


def placeholders(meaning: PhoneMeaning) -> list[tuple[str, str, int | None]]:
    """(setting, placeholder, line) for each template placeholder left in the file."""
    found = []
    for path, (value, line) in meaning.settings.items():
        match = PLACEHOLDER.search(value)
        if match:
            found.append((path, match.group(0), line))
    return found


def classify(path: Path) -> str | None:
    """What kind of phone file ``path`` is by its name: sep, sip79x0,
    sipdefault, dialplan, xmldefault, or None."""
    name = path.name
    lowered = name.lower()
    if lowered.endswith("xmldefault.cnf.xml"):
        return "xmldefault"
    if lowered.endswith(SIP_DEFAULT_FILE.lower()):
        return "sipdefault"
    if lowered.endswith(".cnf.xml") or lowered.endswith(".cfg.xml"):
        return "sep"
    if lowered.endswith(".cnf"):
        return "sip79x0"
    if lowered.endswith(".xml") and ("dial" in lowered):
        return "dialplan"
    return None
