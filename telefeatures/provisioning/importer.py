"""Imports the phone files an admin already has into an inventory.

Each phone file is read into its meaning (config_reader), mapped onto the
inventory's fields, and then proven: the inventory is built in memory and the
file the build would write is read back; a phone is imported only if every
compared setting means the same (lines, names, auth user, password, messages
number, speed dials, proxy and port, transport, time zone, date format, NAT,
media ports). Everything else the file set that the build will not write the
same way is listed in the report, never dropped silently. Passwords go to
the secrets file, never into the inventory or the report.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from .build import BuildError, plan_build
from .config_reader import (
    PLACEHOLDER,
    SIP_DEFAULT_FILE,
    ConfigReadError,
    LineMeaning,
    PhoneMeaning,
    classify,
    is_imported_setting,
    is_secret,
    meaning_differences,
    parse_xml,
    placeholders,
    read_sep,
    read_sip79x0,
    sip_cnf_dst,
    sip_cnf_time_zone,
)
from .credentials import CredentialStore
from .devices import PHONE_MODELS
from .dial_templates import dialplan_problems
from .inventory import (SIP_CNF_ONLY_SETTINGS, TRANSPORT_CODES, Inventory, InventoryError, Line, Phone, Site,
                        normalize_mac, parse_inventory)
from .import_settings import convert, failover_addresses, line_settings, phone_settings
from .render import ConfigRenderer

MIN_SAFE_PASSWORD = 12
MAX_PASSWORD = 30  # authPassword limit per usecallmanager
# Firmware load name prefix -> (model with few buttons, model with many).
LOAD_MODELS = {
    "SIP11": ("7911", "7911"), "SIP41": ("7941", "7961"), "SIP42": ("7942", "7962"),
    "SIP45": ("7945", "7965"), "SIP70": ("7970", "7970"), "SIP75": ("7975", "7975"),
    "TERM41": ("7941", "7961"), "TERM61": ("7961", "7961"), "TERM42": ("7942", "7962"),
    "TERM62": ("7962", "7962"), "TERM45": ("7945", "7965"), "TERM65": ("7965", "7965"),
    "TERM11": ("7911", "7911"), "TERM06": ("7906", "7906"), "P0S3": ("7940", "7960"),
}
TRANSPORT_NAMES = {"1": "tcp", "2": "udp", "3": "tls", "4": "tcp"}
_ALL_CAPS_WORDS = re.compile(r"[A-Z][A-Z0-9_/-]*(?: +[A-Z0-9_/-]+)+")


class ImportProblem(Exception):
    """The import as a whole cannot be done (no site, bad CSV, ...)."""


@dataclass
class Source:
    """One phone as found: its file(s) and their meaning."""

    files: list[Path]
    meaning: PhoneMeaning

    @property
    def name(self) -> str:
        return " + ".join(str(path) for path in self.files)


@dataclass
class Refused:
    source: str
    reasons: list[str]
    template: bool = False  # refused for template placeholders / blanks


@dataclass
class Imported:
    source: Source
    phone: dict[str, Any]
    notes: list[str] = field(default_factory=list)


@dataclass
class ImportResult:
    raw: dict[str, Any]
    inventory: Inventory | None
    passwords: dict[str, str]
    imported: list[Imported]
    refused: list[Refused]
    notes: list[str]  # about the import as a whole (dial plans, XMLDefault, ...)
    dialplans: list[Path] = field(default_factory=list)  # those that follow the documented rules

    def toml(self) -> str:
        return tomli_w.dumps(self.raw)


# --- reading the inputs ------------------------------------------------------------------------

def collect_files(paths: Iterable[Path]) -> list[Path]:
    """The files named, and in named directories the phone files by name."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and classify(p))
        else:
            files.append(path)
    return files


def file_kind(path: Path) -> str | None:
    """classify() by name, else by content (a file named on the command line
    may have any name, e.g. a template's)."""
    kind = classify(path)
    if kind:
        return kind
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096).decode("utf-8", "replace")
    except OSError:
        return None
    if "<device" in head:
        return "sep"
    if "<DIALTEMPLATE" in head or "<dialTemplate" in head:
        return "dialplan"
    if "<Default" in head:
        return "xmldefault"
    if re.search(r"^\s*(image_version|proxy1_address|line1_name)\s*:", head, re.MULTILINE):
        return "sip79x0"
    return None


@dataclass
class Inputs:
    phones: list[Source] = field(default_factory=list)
    dialplans: list[Path] = field(default_factory=list)
    xml_defaults: list[Path] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _unreadable(path: Path, error: ConfigReadError, texts: list[str]) -> Refused:
    """A file that cannot be read, and whether it is a template still to be filled in."""
    template = any(PLACEHOLDER.search(text) for text in texts)
    return Refused(str(path), error.problems + (
        ["it holds template placeholders: fill the template in first"] if template else []), template)


def read_inputs(files: list[Path]) -> Inputs:
    inputs = Inputs()
    sip_default: tuple[Path, str] | None = None
    sip_phones: list[Path] = []
    for path in files:
        kind = file_kind(path)
        try:
            if kind == "sep":
                inputs.phones.append(Source([path], read_sep(path.read_bytes(), path.name)))
            elif kind == "sipdefault":
                sip_default = (path, path.read_text(encoding="utf-8", errors="replace"))
            elif kind == "sip79x0":
                sip_phones.append(path)
            elif kind == "dialplan":
                inputs.dialplans.append(path)
            elif kind == "xmldefault":
                inputs.xml_defaults.append(path)
            else:
                inputs.refused.append(Refused(str(path), ["not a phone file this import knows (SEP<MAC>.cnf.xml, "
                                                          "SIP<MAC>.cnf, SIPDefault.cnf, dialplan.xml, "
                                                          "XMLDefault.cnf.xml)"]))
        except ConfigReadError as exc:
            inputs.refused.append(_unreadable(path, exc, [path.read_bytes().decode("utf-8", "replace")]))
        except OSError as exc:
            inputs.refused.append(Refused(str(path), [f"cannot read: {exc.strerror or exc}"]))
    for path in sip_phones:
        parts = ([sip_default] if sip_default else []) + [(path, path.read_text(encoding="utf-8", errors="replace"))]
        try:
            meaning = read_sip79x0([(str(p.name), text) for p, text in parts])
        except ConfigReadError as exc:
            inputs.refused.append(_unreadable(path, exc, [text for _, text in parts]))
            continue
        inputs.phones.append(Source([p for p, _ in parts], meaning))
    if sip_default and not sip_phones:
        inputs.notes.append(f"{sip_default[0]}: a {SIP_DEFAULT_FILE} without any SIP<MAC>.cnf describes no phone; "
                            "its settings are used only together with SIP<MAC>.cnf files")
    return inputs


# --- what the inventory can hold ------------------------------------------------------------------

def _knows(model: type, name: str) -> bool:
    return name in model.model_fields


def _default(model: type, name: str) -> Any:
    return model.model_fields[name].default


def _template_problems(meaning: PhoneMeaning) -> list[str]:
    """Why the file is a template still to be filled in, or []."""
    problems = []
    for path, text, line in placeholders(meaning):
        if not is_imported_setting(path):
            continue  # not imported; listed among the settings not carried over
        problems.append(f"line {line}: template placeholder {text!r} in {path}" if line else
                        f"template placeholder {text!r} in {path}")
    if not meaning.proxy:
        problems.append("the SIP server (processNodeName / proxy1_address) is empty: a template to fill in")
    elif _ALL_CAPS_WORDS.fullmatch(meaning.proxy):
        problems.append(f"the SIP server {meaning.proxy!r} is a description, not an address: a template")
    for line in meaning.lines:
        if not line.extension:
            problems.append(f"line button {line.button}: the line name is empty: a template to fill in")
        elif _ALL_CAPS_WORDS.fullmatch(line.extension):
            problems.append(f"line button {line.button}: name {line.extension!r} is a description: a template")
    return problems


def guess_model(meaning: PhoneMeaning) -> str | None:
    load = meaning.load.upper()
    for prefix, (small, large) in LOAD_MODELS.items():
        if load.startswith(prefix):
            buttons = max([*(line.button for line in meaning.lines), *(key.button for key in meaning.keys), 1])
            for name in (small, large):
                if name in PHONE_MODELS and PHONE_MODELS[name].buttons >= buttons:
                    return name
            return large if large in PHONE_MODELS else None
    return None


def _site_values(meaning: PhoneMeaning) -> dict[str, Any]:
    """Site keys for the settings in ``meaning`` that the inventory has. A
    setting it lacks is left out: the round trip shows whether that loses
    anything (it does not when the file holds the phone's default)."""
    values: dict[str, Any] = {"asterisk_address": meaning.proxy}
    if meaning.sip_port.isdigit():
        values["sip_port"] = int(meaning.sip_port)
    if meaning.transport in TRANSPORT_NAMES:
        values["transport"] = TRANSPORT_NAMES[meaning.transport]
        values["transport_layer_protocol"] = int(meaning.transport)
    for key in ("time_zone", "ntp_server", "date_format", "nat_address"):
        if getattr(meaning, key):
            values[key] = getattr(meaning, key)
    if meaning.kind == "sip79x0":
        zone = sip_cnf_zone_settings(meaning)
        if zone:
            values["time_zone"] = zone[0]
            if zone[1] != "auto":
                values["daylight_saving"] = zone[1]
    values["nat_enabled"] = meaning.nat_enabled
    for key in ("start_media_port", "stop_media_port"):
        if getattr(meaning, key).isdigit():
            values[key] = int(getattr(meaning, key))
    values.update(phone_settings(meaning, Site))
    if meaning.kind == "sep":
        failover = [a for a in failover_addresses(meaning) if a != meaning.proxy]
        if failover and convert(Site, "failover_addresses", list, failover)[0]:
            values["failover_addresses"] = failover
        dial_template = meaning.settings.get("sipProfile/dialTemplate", ("", None))[0]
        if convert(Site, "dial_template", str, dial_template)[0]:
            values["dial_template"] = dial_template
    if meaning.lines:  # the first line's per-line settings are the defaults
        values.update(line_settings(meaning, meaning.lines[0].button, Site))
    return {key: value for key, value in values.items() if _knows(Site, key)}


# Site keys a phone cannot override: a phone that differs in one it is
# compared on is refused (one inventory is one site), in another it is reported.
SITE_ONLY = ("asterisk_address", "sip_port", "transport", "transport_layer_protocol")
SITE_ONLY_REPORTED = ("failover_addresses", "dial_template")
LINE_KEYS = ("call_waiting", "message_waiting_lamp_policy", "messages_number")  # set on each line


def sip_cnf_cisco_zone(zone: str) -> str | None:
    """The inventory zone whose 7940/7960 rendering is ``zone`` (with its DST rule)."""
    from .sip_cnf import SIP_CNF_ZONES

    for cisco, (abbreviation, rule) in SIP_CNF_ZONES.items():
        settings = {"time_zone": abbreviation, "dst_auto_adjust": "1" if rule else "0"}
        if rule:
            for edge in ("start", "stop"):  # as sip_settings.cnf.j2 writes the rule
                settings.update({f"dst_{edge}_month": getattr(rule, f"{edge}_month"),
                                 f"dst_{edge}_week_of_month": str(getattr(rule, f"{edge}_week_of_month")),
                                 f"dst_{edge}_day_of_week": "Sunday", f"dst_{edge}_time": getattr(rule, f"{edge}_time")})
        if sip_cnf_time_zone(lambda key, default="": settings.get(key, default)) == zone:
            return cisco
    return None


def _cnf_get(meaning: PhoneMeaning):  # type: ignore[no-untyped-def]
    return lambda key, default="": meaning.settings.get(key, (default, None))[0]


def sip_cnf_zone_settings(meaning: PhoneMeaning) -> tuple[str, Any] | None:
    """(time_zone, daylight_saving) that give a 7940/7960 the zone and
    daylight-saving rule of its file: a zone whose own rule it is ("auto"),
    else a zone the phone is given under the same name, with the file's rule
    as an explicit table (or "off"). None if no inventory zone has the name."""
    from .sip_cnf import SIP_CNF_ZONES

    cisco = sip_cnf_cisco_zone(meaning.time_zone)
    if cisco:
        return cisco, "auto"
    get = _cnf_get(meaning)
    named = [(zone, rule) for zone, (abbreviation, rule) in SIP_CNF_ZONES.items() if abbreviation == get("time_zone")]
    if not named:
        return None
    rule = sip_cnf_dst(get)
    # The zone that observes daylight saving when the file does (GMT: the UK's, not Greenwich's), else the first.
    zone = next((zone for zone, zone_rule in named if (zone_rule is None) == (rule is None)), named[0][0])
    if rule is None:
        return zone, "off"
    table: dict[str, Any] = {}
    for key, value in rule.items():
        if key == "offset":
            hours, _, minutes = value.partition(":")
            if value != "1:00":
                table[key] = int(hours) if minutes == "00" and hours.isdigit() else value
        elif key.endswith(("_week_of_month", "_day")) and value.isdigit():
            table[key] = int(value)
        else:
            table[key] = value  # a value the inventory refuses is named by its check
    return zone, table


def _daylight_note(meaning: PhoneMeaning, values: dict[str, Any]) -> list[str]:
    """Says when a 7940/7960 keeps a rule of its own rather than its zone's."""
    from .sip_cnf import sip_cnf_zone

    own = values.get("daylight_saving")
    if meaning.kind != "sip79x0" or own is None or "time_zone" not in values:
        return []
    _, rule = sip_cnf_zone(values["time_zone"])
    current = "no daylight saving" if rule is None else \
        f"{rule.start_month} week {rule.start_week_of_month} to {rule.stop_month} week {rule.stop_week_of_month}"
    kept = "daylight saving off" if own == "off" else "its own daylight-saving rule"
    return [f"daylight_saving: the phone keeps {kept} ({meaning.time_zone.partition(', ')[2]}); the zone "
            f"{values['time_zone']} has {current} today: set daylight_saving to \"auto\" to follow the zone"]


def _line_values(line: LineMeaning, meaning: PhoneMeaning, site_raw: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {"extension": line.extension, "display_name": line.display_name or line.extension}
    if line.label and line.label != line.extension:
        values["label"] = line.label
    if line.auth_user and line.auth_user != line.extension:
        values["auth_user"] = line.auth_user
    if line.messages_number != site_raw.get("messages_number"):
        values["messages_number"] = line.messages_number
    for key, value in line_settings(meaning, line.button, Line).items():
        if value != site_raw.get(key, _default(Site, key)):
            values[key] = value
    return values


def _button_values(meaning: PhoneMeaning) -> tuple[list[dict[str, Any]], list[str]]:
    """The inventory's buttons for the file's non-line keys, and the keys it has no type for."""
    keys: list[dict[str, Any]] = []
    missing: list[str] = []
    kinds = {"2": ("speed_dial", "number"), "21": ("blf", "extension"), "20": ("service", "url")}
    for key in meaning.keys:
        if key.feature_id not in kinds:
            missing.append(f"button {key.button}: featureID {key.feature_id} is not a speed dial (2), "
                           "busy lamp (21) or service URL (20)")
            continue
        kind, target = kinds[key.feature_id]
        keys.append({"type": kind, "label": key.label or key.number, "button": key.button, target: key.number})
    return keys, missing


# --- the import --------------------------------------------------------------------------------

def _phone_index(message: str) -> int | None:
    match = re.match(r"phone #(\d+)", message)
    return int(match.group(1)) - 1 if match else None


def _validate(raw: dict[str, Any]) -> tuple[Inventory | None, list[str]]:
    try:
        return parse_inventory(tomli_w.dumps(raw), "imported inventory"), []
    except InventoryError as exc:
        return None, exc.errors


def _built_meanings(inventory: Inventory, passwords: dict[str, str]) -> tuple[dict[str, bytes], list[str]]:
    credentials = CredentialStore(Path("(import)"), dict(passwords))
    try:
        plan = plan_build(inventory, Path("/tftp"), ConfigRenderer(), credentials)
    except BuildError as exc:
        return {}, exc.errors
    return {planned.path.name: planned.data for planned in plan.files}, []


def _read_built(files: dict[str, bytes], phone: Phone) -> PhoneMeaning:
    name = phone.config_name
    if name.endswith(".cnf.xml"):
        return read_sep(files[name], name)
    parts = [(n, files[n].decode()) for n in (SIP_DEFAULT_FILE, name) if n in files]
    return read_sip79x0(parts)


def _not_carried(source: PhoneMeaning, built: PhoneMeaning) -> list[str]:
    """Settings the file had that the built file does not have the same way."""
    notes = []
    for path, (value, line) in source.settings.items():
        if built.settings.get(path, (None, None))[0] == value or value == "":
            continue
        if source.kind == "sip79x0" and path.startswith("dst_"):
            continue  # part of the time zone's meaning, which the round trip compared
        shown = "(secret)" if is_secret(path) else repr(value[:60])
        now = built.settings.get(path)
        after = ("not written" if now is None else
                 "written as (secret)" if is_secret(path) else f"written as {now[0][:60]!r}")
        notes.append(f"{path} = {shown}" + (f" (line {line})" if line else "") + f": {after}")
    return notes


def import_phones(
    files: list[Path],
    *,
    site: dict[str, Any] | None = None,
    existing_phones: list[dict[str, Any]] | None = None,
    csv_rows: list[dict[str, Any]] | None = None,
    model: str | None = None,
    mac: str | None = None,
) -> ImportResult:
    """Read ``files`` (and CSV rows) into an inventory, proving each phone's
    round trip. Nothing is written here."""
    inputs = read_inputs(files)
    refused = list(inputs.refused)
    notes = list(inputs.notes)
    if mac and len(inputs.phones) > 1:
        raise ImportProblem("--mac names the MAC of one phone file; give exactly one SEP/SIP file with it")
    site_raw: dict[str, Any] = dict(site or {})
    firmware: dict[str, str] = dict(site_raw.get("firmware", {}))
    xml_default_addresses = _read_xml_defaults(inputs.xml_defaults, firmware, notes)
    notes += _check_dialplans(inputs.dialplans)
    valid_dialplans = [path for path in inputs.dialplans if not dialplan_problems(path.read_bytes())]

    fixed_site = bool(site_raw.get("asterisk_address"))
    candidates: list[tuple[Source, dict[str, Any]]] = []
    for source in inputs.phones:
        screened = _screen(source, mac, model)
        if isinstance(screened, Refused):
            refused.append(screened)
            continue
        values = _site_values(source.meaning)
        if not site_raw.get("asterisk_address"):
            errors = _validate({"site": {**values, **site_raw}, "phones": []})[1]
            if errors:
                refused.append(Refused(source.name, [f"cannot be expressed: {e}" for e in errors]))
                continue
            site_raw = {**values, **site_raw}
        candidates.append((source, {"mac": screened[0], "model": screened[1], "values": values}))
    if not fixed_site and candidates:
        site_raw.setdefault("messages_number", _common_messages_number(candidates))
    for path, address in xml_default_addresses:
        if site_raw.get("asterisk_address") not in (None, address):
            notes.append(f"{path}: points phones without a file at {address!r}, the inventory's site uses "
                         f"{site_raw['asterisk_address']!r}; the build writes XMLDefault.cnf.xml for the latter")

    passwords: dict[str, str] = {}
    accepted: list[Imported] = []
    for source, phone_info in candidates:
        meaning = source.meaning
        overrides, reasons, notes_site = _overrides(phone_info["values"], site_raw, meaning.kind)
        phone: dict[str, Any] = {"mac": phone_info["mac"], "model": phone_info["model"]}
        if meaning.phone_label.strip():
            # A label is shown, not compared; padding ("looks neater") is not kept and is reported as not carried.
            phone["label"] = meaning.phone_label.strip()
        phone.update(overrides)
        phone["lines"] = [_line_values(line, meaning, site_raw) for line in meaning.lines]
        keys, key_missing = _button_values(meaning)
        reasons += key_missing
        reasons += [f"line button {line.button} (extension {line.extension}): its password has {len(line.password)} "
                    f"characters, more than the {MAX_PASSWORD} the inventory keeps; the build would replace it"
                    for line in meaning.lines if len(line.password) > MAX_PASSWORD]
        if keys:
            phone["buttons"] = keys
        if reasons:
            refused.append(Refused(source.name, [f"cannot be expressed: {r}" for r in reasons]))
            continue
        if meaning.load:
            firmware.setdefault(phone_info["model"], meaning.load)
        guessed = [] if model else [f"model {phone_info['model']} guessed from loadInformation {meaning.load!r} "
                                    f"and {len(meaning.lines) + len(meaning.keys)} button(s); give --model "
                                    "if it is another of the same firmware family"]
        accepted.append(Imported(source, phone, guessed + notes_site + _daylight_note(meaning, phone_info["values"])))
        for line in meaning.lines:
            passwords[line.extension] = line.password

    if firmware:
        site_raw["firmware"] = dict(sorted(firmware.items()))
    longest = min(max((len(pw) for pw in passwords.values()), default=0), MAX_PASSWORD)
    if not fixed_site and longest > _default(Site, "auth_password_max_length"):
        # The site's phones take passwords this long; keep the build from replacing them.
        site_raw["auth_password_max_length"] = longest
    csv_phones = [(row["row"], _phone_from_row(row)) for row in csv_rows or []]
    if not fixed_site and accepted:
        phones = [item.phone for item in accepted] + [phone for _, phone in csv_phones]
        rules = extension_dial_rules([line["extension"] for phone in phones for line in phone["lines"]])
        if rules:
            site_raw["dial_rules"] = rules
    if not site_raw.get("asterisk_address"):
        if csv_rows:
            raise ImportProblem("the CSV names phones but no site: give an inventory with --site, or import "
                               "a SEP<MAC>.cnf.xml together with it")
        return ImportResult({}, None, {}, [], refused, notes, valid_dialplans)
    raw, inventory = _settle(site_raw, existing_phones or [], accepted, csv_phones, passwords, refused)
    if accepted and "dial_rules" in site_raw and not fixed_site:
        notes.append(f"site.dial_rules: extension_patterns {site_raw['dial_rules']['extension_patterns']} derived "
                     "from the imported extensions so each dials at once; add outside_patterns for outside numbers")
    return ImportResult(raw, inventory, {k: v for k, v in passwords.items() if v}, accepted, refused, notes,
                        valid_dialplans)


def _screen(source: Source, mac: str | None, model: str | None) -> Refused | tuple[str, str]:
    """The phone's (MAC, model), or why it cannot be imported at all."""
    meaning = source.meaning
    problems = _template_problems(meaning)
    if problems:
        return Refused(source.name, problems, template=True)
    phone_mac, why = _phone_mac(mac or meaning.mac)
    if phone_mac is None:
        return Refused(source.name, [f"{why}: name the file SEP<12 hex digits>.cnf.xml (or SIP<MAC>.cnf), or "
                                     "give --mac for a single file"])
    phone_model = model or guess_model(meaning)
    if phone_model is None:
        return Refused(source.name, [f"model unknown (loadInformation {meaning.load!r}); give --model"])
    if phone_model not in PHONE_MODELS:
        return Refused(source.name, [f"model {phone_model!r} is not supported"])
    if meaning.kind == "sip79x0" and not sip_cnf_zone_settings(meaning):
        from .sip_cnf import SIP_CNF_ZONES

        names = sorted({abbreviation for abbreviation, _ in SIP_CNF_ZONES.values()})
        return Refused(source.name, [
            f"cannot be expressed: time zone {meaning.time_zone!r}: no inventory time zone is written "
            f"{_cnf_get(meaning)('time_zone')!r} for a 7940/7960 (those written: {', '.join(names)})"])
    return phone_mac, phone_model


def _overrides(mine: dict[str, Any], site_raw: dict[str, Any],
               kind: str) -> tuple[dict[str, Any], list[str], list[str]]:
    """A phone's values against the site's: (its overrides, why it cannot join the site, notes)."""
    overrides: dict[str, Any] = {}
    reasons: list[str] = []
    notes: list[str] = []
    for key in sorted(set(mine) | set(site_raw)):
        if key in LINE_KEYS:
            continue  # set on each line
        if kind == "sep" and key in SIP_CNF_ONLY_SETTINGS:
            continue  # nothing in a SEP<MAC>.cnf.xml: the site's value does not reach it
        if key not in mine:
            if key in SITE_ONLY + SITE_ONLY_REPORTED or not _knows(Phone, key):
                continue
            default = _default(Site, key)
            if site_raw[key] == default:
                continue
            if default is None:
                notes.append(f"{key}: the file has none, but the site's {site_raw[key]!r} applies to this "
                             "phone too (a phone cannot switch it off)")
                continue
            value = default  # the file leaves it to the phone: the default, not the first phone's value
        else:
            value = mine[key]
        site_value = _site_value(site_raw, key)
        if site_value == value:
            continue
        if key in SITE_ONLY:
            reasons.append(f"{key} is {value!r} but the site's is {site_value!r}; one inventory is "
                           "one site (import it separately)")
        elif key in SITE_ONLY_REPORTED or not _knows(Phone, key):
            notes.append(f"{key} is {value!r} here but the site's is {site_value!r}")
        else:
            overrides[key] = value
    return overrides, reasons, notes


def _site_value(site_raw: dict[str, Any], key: str) -> Any:
    """What the site means for ``key``: its value, else the default (a 7940/7960's site has no transport)."""
    if key in site_raw or not _knows(Site, key):
        return site_raw.get(key)
    if key == "transport_layer_protocol":  # None: the transport's own code
        return TRANSPORT_CODES[_site_value(site_raw, "transport")][0]
    return _default(Site, key)


def extension_dial_rules(extensions: list[str]) -> dict[str, Any]:
    """Dial rules under which every one of ``extensions`` dials the moment it
    is complete: one pattern per first digit and length (``2.``, ``6..``)."""
    patterns = sorted({ext[0] + "." * (len(ext) - 1) for ext in extensions if ext.isdigit()})
    return {"extension_patterns": patterns} if patterns else {}


def _phone_mac(value: str | None) -> tuple[str | None, str]:
    if not value:
        return None, "no MAC address in the file name"
    try:
        return normalize_mac(value), ""
    except ValueError as exc:
        return None, str(exc)


def _common_messages_number(candidates: list[tuple[Source, dict[str, Any]]]) -> str:
    counts: dict[str, int] = {}
    for source, _ in candidates:
        for line in source.meaning.lines:
            counts[line.messages_number] = counts.get(line.messages_number, 0) + 1
    return max(counts, key=lambda k: counts[k]) if counts else ""


def _settle(site_raw: dict[str, Any], existing: list[dict[str, Any]], accepted: list[Imported],
            csv_phones: list[tuple[int, dict[str, Any]]], passwords: dict[str, str],
            refused: list[Refused]) -> tuple[dict[str, Any], Inventory | None]:
    """Validate and round-trip; drop (and report) phones until the rest is clean."""
    while True:
        phones = existing + [item.phone for item in accepted] + [phone for _, phone in csv_phones]
        raw = {"site": site_raw, "phones": phones}
        inventory, errors = _validate(raw)
        if inventory is None:
            if not _drop_named(errors, existing, accepted, csv_phones, passwords, refused):
                raise InventoryError("imported inventory", errors)
            continue
        built, errors = _built_meanings(inventory, passwords)
        if errors:
            if not _drop_named(errors, existing, accepted, csv_phones, passwords, refused):
                raise InventoryError("imported inventory (build)", errors)
            continue
        first = len(existing)
        dropped = False
        for index, item in enumerate(list(accepted)):
            phone = inventory.phones[first + index]
            after = _read_built(built, phone)
            before = item.source.meaning
            differences = meaning_differences(_with_mac(before, phone.mac), after)
            if differences:
                _refuse(item, differences, accepted, passwords, refused, "the meaning would change: ")
                dropped = True
            else:
                item.notes += list(before.warnings) + _password_notes(before) + _not_carried(before, after)
        if not dropped:
            return raw, inventory


def _with_mac(meaning: PhoneMeaning, mac: str) -> PhoneMeaning:
    from dataclasses import replace

    return replace(meaning, mac=mac)


def _password_notes(meaning: PhoneMeaning) -> list[str]:
    notes = []
    for line in meaning.lines:
        if line.password and len(line.password) < MIN_SAFE_PASSWORD:
            notes.append(f"line button {line.button} (extension {line.extension}): its password is shorter than "
                         f"{MIN_SAFE_PASSWORD} characters; kept so the phone keeps registering, rotate it soon")
        if line.password and re.fullmatch(r"#[^#]+#|\W*[A-Z ]+\W*", line.password):
            notes.append(f"line button {line.button} (extension {line.extension}): its password looks like a "
                         "template placeholder; kept as written (the phone uses it literally)")
        if not line.password:
            notes.append(f"line button {line.button} (extension {line.extension}): no password in the file; "
                         "the build generates one")
    return notes


def _refuse(item: Imported, reasons: list[str], accepted: list[Imported], passwords: dict[str, str],
            refused: list[Refused], prefix: str = "") -> None:
    accepted.remove(item)
    for line in item.source.meaning.lines:
        passwords.pop(line.extension, None)
    refused.append(Refused(item.source.name, [prefix + reason for reason in reasons]))


def _drop_named(errors: list[str], existing: list[dict[str, Any]], accepted: list[Imported],
                csv_phones: list[tuple[int, dict[str, Any]]], passwords: dict[str, str],
                refused: list[Refused]) -> bool:
    """Refuse the imported phones the errors name; False if they name none."""
    by_phone: dict[int, list[str]] = {}
    for error in errors:
        index = _phone_index(error)
        if index is not None:
            by_phone.setdefault(index, []).append(error)
    first = len(existing)
    dropped = False
    for index in sorted(by_phone, reverse=True):
        if first <= index < first + len(accepted):
            _refuse(accepted[index - first], [f"cannot be expressed: {e}" for e in by_phone[index]],
                    accepted, passwords, refused)
            dropped = True
        elif index >= first + len(accepted):
            row, _ = csv_phones.pop(index - first - len(accepted))
            refused.append(Refused(f"CSV row {row}", by_phone[index]))
            dropped = True
    return dropped


# --- XMLDefault and dial plans ---------------------------------------------------------------------

def _read_xml_defaults(paths: list[Path], firmware: dict[str, str], notes: list[str]) -> list[tuple[Path, str]]:
    """Firmware loads per model from XMLDefault files; returns their server addresses."""
    addresses = []
    by_id = {info.device_type_id: name for name, info in PHONE_MODELS.items()}
    for path in paths:
        try:
            root, _ = parse_xml(path.read_bytes(), path.name)
        except ConfigReadError as exc:
            notes.append(f"{path}: not read: {'; '.join(exc.problems)}")
            continue
        address = (root.findtext("callManagerGroup/members/member/callManager/processNodeName") or "").strip()
        if address:
            addresses.append((path, address))
        for element in root:
            if not isinstance(element.tag, str):
                continue
            match = re.fullmatch(r"loadInformation(\d+)", element.tag)
            if match and (element.text or "").strip():
                model = by_id.get(int(match.group(1)))
                if model:
                    firmware.setdefault(model, element.text.strip())
                else:
                    notes.append(f"{path}: {element.tag} ({element.get('model', 'unknown model')}) is not a "
                                 "supported model; not imported")
    return addresses


def dialplan_template(path: Path) -> str:
    """A dial plan as a site template that renders to exactly its own text."""
    text = path.read_text(encoding="utf-8")
    return (f"{{#- Imported by 'telefeatures provision import' from {path.name}; served as it was. -#}}\n"
            f"{{% raw %}}{text}{{% endraw %}}")


def _check_dialplans(paths: list[Path]) -> list[str]:
    notes = []
    for path in paths:
        problems = dialplan_problems(path.read_bytes())
        state = "breaks documented rules: " + "; ".join(map(str, problems[:3])) if problems else "valid"
        notes.append(f"{path}: dial plan {state}. The inventory generates its dial plan from site.dial_rules "
                     "and feature codes; --templates-out DIR keeps this one as DIR/dialplan.xml.j2 for "
                     "'provision build --templates DIR'")
    return notes


# --- CSV (Cisco BAT export shape) -----------------------------------------------------------------

_CSV_COLUMNS = {
    "mac": ("mac", "macaddress", "devicename", "mac address"),
    "model": ("model", "devicetype", "phonetype", "product"),
    "extension": ("extension", "directorynumber1", "directorynumber", "dn", "line1", "number"),
    "display_name": ("displayname", "display1", "display", "alertingname1", "alertingname", "name"),
    "label": ("linetextlabel1", "linetextlabel", "label", "label1"),
    "auth_user": ("authuser", "digestuser", "authname"),
}


def _column_key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def read_csv(text: str, source: str = "CSV") -> list[dict[str, Any]]:
    """Rows of a BAT-style phone export: MAC (or SEP device name), model or
    device type, extension (directory number), display name, line label, ..."""
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise ImportProblem(f"{source}: empty CSV")
    columns = {_column_key(h): h for h in reader.fieldnames}
    chosen = {}
    for key, names in _CSV_COLUMNS.items():
        for name in names:
            if _column_key(name) in columns:
                chosen[key] = columns[_column_key(name)]
                break
    for needed in ("mac", "model", "extension"):
        if needed not in chosen:
            raise ImportProblem(f"{source}: no {needed} column (looked for {', '.join(_CSV_COLUMNS[needed])})")
    rows = []
    for number, row in enumerate(reader, start=2):
        values = {key: (row.get(header) or "").strip() for key, header in chosen.items()}
        extra = {}
        for n in range(2, 9):
            ext = row.get(columns.get(f"directorynumber{n}", ""), "") if columns.get(f"directorynumber{n}") else ""
            if ext and ext.strip():
                extra[n] = {"extension": ext.strip(),
                            "display_name": (row.get(columns.get(f"display{n}", ""), "") or "").strip()}
        values["more_lines"] = extra
        values["row"] = number
        rows.append(values)
    return rows


def _model_name(value: str) -> str:
    match = re.search(r"79\d\d(?:G-GE)?", value.upper().replace("G-GE", "G-GE"))
    if not match:
        return value
    name = match.group(0)
    return name if name in PHONE_MODELS else name.removesuffix("G-GE")


def _phone_from_row(row: dict[str, Any]) -> dict[str, Any]:
    mac = row["mac"]
    if mac.upper().startswith("SEP"):
        mac = mac[3:]
    line = {"extension": row["extension"], "display_name": row.get("display_name") or row["extension"]}
    if row.get("label"):
        line["label"] = row["label"]
    if row.get("auth_user"):
        line["auth_user"] = row["auth_user"]
    lines = [line] + [{"extension": more["extension"], "display_name": more["display_name"] or more["extension"]}
                      for _, more in sorted(row.get("more_lines", {}).items())]
    phone: dict[str, Any] = {"mac": mac, "model": _model_name(row["model"]), "lines": lines}
    return phone


def load_site(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The [site] table and phones of an existing inventory (validated)."""
    from .inventory import load_inventory

    load_inventory(path)  # raises InventoryError naming every problem
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    return raw["site"], raw.get("phones", [])
