"""The phone inventory: one TOML file describing the site and every phone.

Validation is strict (unknown keys, wrong types and out-of-range values are
errors) and every error names the phone, the line and the field, because a
typo here becomes a phone that silently fails to register.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from .devices import MAX_LINE_FIELD, MAX_PHONE_LABEL, PHONE_MODELS
from .dhcp import DhcpSection, IPv4, IPv4Net, reservation_errors
from .dial_templates import (
    DialTemplate,
    build_dial_templates,
    cut_short,
    dial_delay,
    valid_feature_code,
    valid_pattern,
)
from .timezones import cisco_time_zone

ModelName = Literal["7911", "7941", "7941G-GE", "7942", "7961", "7961G-GE", "7962"]
assert set(ModelName.__args__) == set(PHONE_MODELS)  # type: ignore[attr-defined]

_MAC_FORMS = (
    re.compile(r"(?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}"),
    re.compile(r"(?:[0-9A-Fa-f]{2}-){5}[0-9A-Fa-f]{2}"),
    re.compile(r"(?:[0-9A-Fa-f]{4}\.){2}[0-9A-Fa-f]{4}"),
    re.compile(r"[0-9A-Fa-f]{12}"),
)
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_AUTH_USER = re.compile(r"[A-Za-z0-9_.+-]{1,30}")
_EXTENSION = re.compile(r"[0-9]{2,15}")
_LOAD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_DATE_FORMAT = re.compile(r"(M|D|YY|Y)([/.-])(M|D|YY|Y)\2(M|D|YY|Y)a?")
MIN_PASSWORD = 12


def normalize_mac(value: str) -> str:
    """Any common MAC spelling -> 12 upper-case hex digits (``0019E8F490AD``)."""
    text = value.strip()
    if not any(form.fullmatch(text) for form in _MAC_FORMS):
        raise ValueError(
            f"{value!r} is not a MAC address (use 00:19:e8:f4:90:ad, 0019.E8F4.90AD, "
            "0019E8F490AD or 00-19-E8-F4-90-AD)"
        )
    mac = re.sub(r"[^0-9A-Fa-f]", "", text).upper()
    if mac in ("000000000000", "FFFFFFFFFFFF") or int(mac[:2], 16) & 1:
        raise ValueError(f"{value!r} is a broadcast, multicast or all-zero address, not a phone's")
    return mac


def _printable_ascii(value: str, what: str) -> str:
    for char in value:
        if not " " <= char <= "~":
            shown = repr(char)
            if ord(char) > 127:
                raise ValueError(f"{shown} is not ASCII; the phone cannot display it in the {what}")
            raise ValueError(f"control character {shown} is not allowed in the {what}")
    return value


def _limit(value: str, limit: int, what: str) -> str:
    if len(value) > limit:
        raise ValueError(f"{len(value)} characters; the phone allows at most {limit} in the {what}")
    if not value.strip():
        raise ValueError(f"the {what} must not be empty")
    return value


def _display_name(value: str) -> str:
    _printable_ascii(value, "display name")
    _limit(value, MAX_LINE_FIELD, "display name")
    bad = sorted(set(value) & set('"<>\\'))
    if bad:
        # These break the Asterisk callerid ("Name" <ext>) the name also goes into.
        raise ValueError(f"characters {''.join(bad)!r} are not allowed in a display name")
    if value != value.strip():
        raise ValueError("leading or trailing spaces are not allowed in a display name")
    return value


def _feature_label(value: str) -> str:
    _printable_ascii(value, "line label")
    return _limit(value, MAX_LINE_FIELD, "line label")


def _phone_label(value: str) -> str:
    _printable_ascii(value, "phone label")
    if " " in value:
        raise ValueError("the phone label must not contain spaces")
    return _limit(value, MAX_PHONE_LABEL, "phone label")


def _auth_user(value: str) -> str:
    if not _AUTH_USER.fullmatch(value):
        raise ValueError("1-30 of letters, digits and _ . + -")
    return value


def _password(value: str) -> str:
    _printable_ascii(value, "password")
    _limit(value, MAX_LINE_FIELD, "password")
    if " " in value or "\\" in value:
        # Asterisk's config parser trims blanks and treats backslash as an escape.
        raise ValueError("spaces and backslashes are not allowed in a password")
    if len(value) < MIN_PASSWORD:
        raise ValueError(f"at least {MIN_PASSWORD} characters (leave it out to have one generated)")
    return value


def _extension(value: str) -> str:
    if not _EXTENSION.fullmatch(value):
        raise ValueError(f"{value!r}: an extension is 2-15 digits")
    return value


def _host(value: str) -> str:
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    labels = value.rstrip(".").split(".")
    if len(value) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{value!r} is not an IP address or host name")
    return value


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(f"{value!r}: 1-64 of letters, digits and _ . -")
    return value


def _load_name(value: str) -> str:
    if not _LOAD.fullmatch(value):
        raise ValueError(f"{value!r} is not a load name (the .loads file name without extension)")
    return value


def _date_format(value: str) -> str:
    match = _DATE_FORMAT.fullmatch(value)
    if not match or sorted(part[0] for part in match.group(1, 3, 4)) != ["D", "M", "Y"]:
        raise ValueError(f"{value!r}: use M, D and Y (or YY) once each with / . or -, "
                         "and a trailing 'a' for a 12-hour clock, e.g. M/D/Ya or D.M.Y")
    return value


def _time_zone(value: str) -> str:
    cisco_time_zone(value)
    return value


Mac = Annotated[str, AfterValidator(normalize_mac)]
Extension = Annotated[str, AfterValidator(_extension)]
Host = Annotated[str, AfterValidator(_host)]
Name = Annotated[str, AfterValidator(_name)]
DialPattern = Annotated[str, AfterValidator(valid_pattern)]
FeatureCode = Annotated[str, AfterValidator(valid_feature_code)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class FeatureCodes(_Strict):
    call_return: FeatureCode = "*69"
    block_on: FeatureCode = "*81"
    block_off: FeatureCode = "*82"
    block_status: FeatureCode = "*83"
    per_call_block: FeatureCode = "*67"

    def simple_codes(self) -> list[tuple[str, str]]:
        """The codes dialled on their own, with what they do."""
        return [
            (self.call_return, "call return"),
            (self.block_on, "caller-ID blocking on"),
            (self.block_off, "caller-ID blocking off"),
            (self.block_status, "caller-ID blocking status"),
        ]

    @model_validator(mode="after")
    def _distinct(self) -> FeatureCodes:
        codes = [code for code, _ in self.simple_codes()] + [self.per_call_block]
        if len(set(codes)) != len(codes):
            raise ValueError("feature codes must all be different")
        return self


class DialRules(_Strict):
    """Dial rules in the phone's own pattern grammar (see dialplan.py)."""

    # Extensions are dialled as soon as this many digits are in ...
    extension_length: int = Field(4, ge=2, le=15)
    # ... unless explicit patterns are given (e.g. ["1...", "2..."]).
    extension_patterns: list[DialPattern] = Field(default_factory=list, max_length=50)
    # Outside numbers, e.g. "9.......", "91..........", "911", "9011*".
    outside_patterns: list[DialPattern] = Field(default_factory=list, max_length=100)
    # Seconds the phone waits after the last key of an open-ended number.
    interdigit_timeout: int = Field(5, ge=1, le=30)

    def extension_match_patterns(self) -> list[str]:
        return list(self.extension_patterns) or ["." * self.extension_length]


class Site(_Strict):
    asterisk_address: Host
    sip_port: int = Field(5060, ge=1, le=65535)
    transport: Literal["tcp", "udp", "tls"] = "tcp"
    time_zone: Annotated[str, AfterValidator(_time_zone)]
    ntp_server: Host
    date_format: Annotated[str, AfterValidator(_date_format)] = "M/D/Ya"
    firmware: dict[ModelName, Annotated[str, AfterValidator(_load_name)]] = Field(default_factory=dict)
    feature_codes: FeatureCodes = Field(default_factory=FeatureCodes)
    dial_rules: DialRules = Field(default_factory=DialRules)
    pjsip_transport: Name | None = None
    context: Name = "tf-phones"
    # The phones' own web server and SSH daemon stay off unless asked for.
    phone_web_access: bool = False
    phone_ssh_access: bool = False
    # Where phones without an ``ip`` may register and call from (PJSIP ACL);
    # default: the [dhcp] subnet, else anywhere.
    phone_networks: list[IPv4Net] = Field(default_factory=list, max_length=64)

    @property
    def cisco_time_zone(self) -> str:
        return cisco_time_zone(self.time_zone)

    @property
    def pjsip_transport_name(self) -> str:
        return self.pjsip_transport or f"transport-{self.transport}"

    @model_validator(mode="after")
    def _codes_dial_at_once(self) -> Site:
        templates = self.dial_templates()
        for code, what in self.feature_codes.simple_codes():
            delay = dial_delay(code, templates)
            if delay:
                raise ValueError(f"feature code {code} ({what}) would not dial at once: {delay}; "
                                 "fix site.dial_rules")
        return self

    def dial_templates(self) -> list[DialTemplate]:
        rules = self.dial_rules
        return build_dial_templates(
            [code for code, _ in self.feature_codes.simple_codes()],
            self.feature_codes.per_call_block,
            rules.extension_match_patterns(),
            list(rules.outside_patterns),
            rules.interdigit_timeout,
        )


class Line(_Strict):
    extension: Extension
    display_name: Annotated[str, AfterValidator(_display_name)]
    label: Annotated[str, AfterValidator(_feature_label)] | None = None
    auth_user: Annotated[str, AfterValidator(_auth_user)] | None = None
    password: Annotated[str, AfterValidator(_password)] | None = None

    @property
    def feature_label(self) -> str:
        return self.label or self.extension

    @property
    def auth_name(self) -> str:
        return self.auth_user or self.extension


class Phone(_Strict):
    mac: Mac
    model: ModelName
    label: Annotated[str, AfterValidator(_phone_label)] | None = None
    # Reserved address (DHCP); the phone's PJSIP endpoints accept it alone.
    ip: IPv4 | None = None
    lines: list[Line] = Field(min_length=1)

    @model_validator(mode="after")
    def _fits(self) -> Phone:
        buttons = PHONE_MODELS[self.model].line_buttons
        if len(self.lines) > buttons:
            raise ValueError(f"{len(self.lines)} lines, but a {self.model} has {buttons} line button(s)")
        return self

    @property
    def config_name(self) -> str:
        return f"SEP{self.mac}.cnf.xml"

    @property
    def mac_display(self) -> str:
        return ":".join(self.mac[i:i + 2] for i in range(0, 12, 2)).lower()


class Inventory(_Strict):
    site: Site
    dhcp: DhcpSection | None = None
    phones: list[Phone] = Field(default_factory=list)

    def phone_networks(self) -> list[str]:
        """Where phones without a reserved address may register from; [] = anywhere."""
        if self.site.phone_networks:
            return list(self.site.phone_networks)
        return [self.dhcp.subnet] if self.dhcp else []

    def sip_sources(self, phone: Phone) -> list[str]:
        """The networks ``phone``'s endpoints accept REGISTERs and calls from
        (its reserved address, else the phone networks); [] = anywhere."""
        return [f"{phone.ip}/32"] if phone.ip else self.phone_networks()


class InventoryError(Exception):
    """The inventory is unusable; ``errors`` lists every problem found."""

    def __init__(self, source: str, errors: list[str]):
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: {len(errors)} error(s)\n" + "\n".join(f"  {e}" for e in errors))


def _phone_name(raw: Any, index: int) -> str:
    phone = raw.get("phones", [])[index] if isinstance(raw.get("phones"), list) else None
    parts = []
    if isinstance(phone, dict):
        # As the admin wrote them (they may be what is wrong), shortened for the message.
        if "mac" in phone:
            parts.append(f"mac {str(phone['mac'])[:40]}")
        if "label" in phone:
            parts.append(f"label {str(phone['label'])[:40]}")
    return f"phone #{index + 1}" + (f" ({', '.join(parts)})" if parts else "")


def _line_name(raw: Any, phone: int, line: int) -> str:
    try:
        ext = raw["phones"][phone]["lines"][line]["extension"]
    except (KeyError, IndexError, TypeError):
        ext = None
    return f"line #{line + 1}" + (f" (extension {ext})" if ext is not None else "")


def _describe(err: dict, raw: dict) -> str:
    loc = list(err["loc"])
    msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    where: list[str] = []
    if loc[:1] == ["phones"] and len(loc) >= 2 and isinstance(loc[1], int):
        where.append(_phone_name(raw, loc[1]))
        rest = loc[2:]
        if rest[:1] == ["lines"] and len(rest) >= 2 and isinstance(rest[1], int):
            where.append(_line_name(raw, loc[1], rest[1]))
            rest = rest[2:]
        # Literal/typed validators add their own loc parts (e.g. "function-after"); drop them.
        field = ".".join(str(p) for p in rest if not str(p).startswith("function-"))
    else:
        field = ".".join(str(p) for p in loc if not str(p).startswith("function-"))
    if field:
        where.append(field)
    return (", ".join(where) or "inventory") + ": " + msg


def phone_title(phone: Phone, index: int) -> str:
    """How messages name a phone: position in the file, MAC and label."""
    return f"phone #{index + 1} (mac {phone.mac_display}" + (f", label {phone.label})" if phone.label else ")")


def _cross_checks(inventory: Inventory) -> list[str]:
    errors: list[str] = []
    seen_mac: dict[str, int] = {}
    seen_ext: dict[str, tuple[int, int]] = {}
    templates = inventory.site.dial_templates()
    for i, phone in enumerate(inventory.phones):
        name = phone_title(phone, i)
        if phone.mac in seen_mac:
            errors.append(f"{name}, mac: duplicate MAC, already used by phone #{seen_mac[phone.mac] + 1}")
        else:
            seen_mac[phone.mac] = i
        for j, line in enumerate(phone.lines):
            where = f"{name}, line #{j + 1} (extension {line.extension})"
            if line.extension in seen_ext:
                p, q = seen_ext[line.extension]
                errors.append(f"{where}, extension: duplicate extension, already on phone #{p + 1} line #{q + 1}")
                continue
            seen_ext[line.extension] = (i, j)
            # A dial plan that sends the call early makes the extension unreachable.
            short = cut_short(line.extension, templates)
            if short:
                errors.append(f"{where}, extension: cannot be dialled, the dial plan sends {short[0]!r} as soon "
                              f"as it is complete (template {short[1]!r}); fix site.dial_rules")
            elif delay := dial_delay(line.extension, templates):
                errors.append(f"{where}, extension: would not dial at once: {delay}; fix site.dial_rules")
    errors += reservation_errors(inventory.dhcp, [(phone_title(p, i), p.ip) for i, p in enumerate(inventory.phones)])
    return errors


def parse_inventory(text: str, source: str = "inventory") -> Inventory:
    """Validate inventory TOML text; raise InventoryError listing every problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(source, [f"TOML syntax error: {exc}"]) from None
    try:
        inventory = Inventory.model_validate(raw)
    except ValidationError as exc:
        raise InventoryError(source, [_describe(err, raw) for err in exc.errors()]) from None
    errors = _cross_checks(inventory)
    if errors:
        raise InventoryError(source, errors)
    return inventory


# 10,000 phones take about 2 MB of TOML; anything far beyond that is a
# mistake (a wrong file, /dev/zero) and must not be read into memory.
MAX_INVENTORY_BYTES = 32 * 1024 * 1024


def load_inventory(path: str | Path) -> Inventory:
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_INVENTORY_BYTES + 1)
    except OSError as exc:
        raise InventoryError(str(path), [f"cannot read: {exc.strerror or exc}"]) from None
    if len(data) > MAX_INVENTORY_BYTES:
        raise InventoryError(str(path), [f"larger than {MAX_INVENTORY_BYTES // 2**20} MiB: not a phone inventory"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InventoryError(str(path), [f"not UTF-8 text (byte {exc.start})"]) from None
    return parse_inventory(text, str(path))
