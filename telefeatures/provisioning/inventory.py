"""The phone inventory: one TOML file describing the site and every phone.

Validation is strict (unknown keys, wrong types and out-of-range values are
errors) and every error names the phone, the line and the field, because a
typo here becomes a phone that silently fails to register.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import rtoml
from typing_extensions import TypeAliasType
from pydantic import (AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, create_model,
                      model_validator)

from .credentials import LENGTH as DEFAULT_PASSWORD_LENGTH
from .. import codes
from .devices import (
    FEATURE_BLF_SPEED_DIAL,
    FEATURE_SERVICE_URI,
    FEATURE_SPEED_DIAL,
    MAX_LINE_FIELD,
    MAX_PHONE_LABEL,
    MAX_URL,
    PHONE_MODELS,
    SIP_CNF_FORMAT,
    ModelName,
)
from .dhcp import DhcpSection, IPv4, IPv4Net, reservation_errors
from .dial_templates import (
    DialDecisions,
    DialTemplate,
    build_dial_templates,
    dial_delay,
    valid_feature_code,
    valid_pattern,
)
from .sip_cnf import DstRule
from .timezones import cisco_time_zone


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
_DATE_FORMAT = re.compile(r"(M|D|YY|Y)([/.-])(M|D|YY|Y)\2(M|D|YY|Y)[aA]?")
_DIAL_STRING = re.compile(r"[0-9*#+]{1,32}")
_URL = re.compile(r"(?:https?://|Application:|Key:)[!-~]+")
_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_LOCALE_NAME = re.compile(r"[A-Za-z0-9_./-]{1,64}")
_LANG_CODE = re.compile(r"[a-z]{2,3}(?:_[A-Z]{2})?")
_SSH_USER = re.compile(r"[A-Za-z0-9_.-]{1,30}")
_HOST_PORT = re.compile(r"[A-Za-z0-9.:\[\]-]{1,255}")
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
    if value != value.strip():
        raise ValueError("leading or trailing spaces are not allowed in the phone label")
    return _limit(value, MAX_PHONE_LABEL, "phone label")


def _auth_user(value: str) -> str:
    if not _AUTH_USER.fullmatch(value):
        raise ValueError("1-30 of letters, digits and _ . + -")
    return value


def _password(value: str) -> str:
    _printable_ascii(value, "password")
    _limit(value, 30, "password")
    if " " in value or "\\" in value:
        # Asterisk's config parser trims blanks and treats backslash as an escape.
        raise ValueError("spaces and backslashes are not allowed in a password")
    if len(value) < MIN_PASSWORD:
        raise ValueError(f"at least {MIN_PASSWORD} characters (leave it out to have one generated)")
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


def _date_format(value: str) -> str:
    match = _DATE_FORMAT.fullmatch(value)
    if not match or sorted(part[0] for part in match.group(1, 3, 4)) != ["D", "M", "Y"]:
        raise ValueError(f"{value!r}: use M, D and Y (or YY) once each with / . or -, "
                         "and a trailing 'a' (or 'A') for a 12-hour clock, e.g. M/D/Ya or D.M.Y")
    return value


def _url(value: str) -> str:
    if len(value) > MAX_URL:
        raise ValueError(f"{len(value)} characters; the phone allows at most {MAX_URL} in a URL")
    if not _URL.fullmatch(value):
        raise ValueError(f"{value[:60]!r} is not an http://, https://, Application: or Key: URL "
                         "(no spaces, ASCII only)")
    return value


def _pattern(regex: re.Pattern[str], what: str) -> Any:
    """A validator: the whole value matches ``regex``, else "'value' is not <what>"
    (or ``what`` itself when it has a {value} placeholder)."""
    message = what if "{value}" in what else "{value} is not " + what

    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(message.format(value=repr(value[:60])))
        return value
    return AfterValidator(check)


def _ssh_password(value: str) -> str:
    _printable_ascii(value, "password")
    _limit(value, 30, "password")
    if len(value) < 8:
        raise ValueError("at least 8 characters")
    return value


def _phone_password(value: str) -> str:
    # The settings-menu unlock code, typed on the keypad: real ones are short (cisco, 1234).
    _printable_ascii(value, "phone password")
    if " " in value:
        raise ValueError("spaces are not allowed in the phone password")
    return _limit(value, 31, "phone password")


def _vendor_value(value: str | int | bool) -> str | int | bool:
    if isinstance(value, str):
        _printable_ascii(value, "vendorConfig value")
        if len(value) > MAX_URL:
            raise ValueError(f"{len(value)} characters; at most {MAX_URL}")
    return value


def _time_zone(value: str) -> str:
    cisco_time_zone(value)
    return value


Mac = Annotated[str, AfterValidator(normalize_mac)]
Extension = Annotated[str, _pattern(_EXTENSION, "{value}: an extension is 2-15 digits")]
Host = Annotated[str, AfterValidator(_host)]
Name = Annotated[str, _pattern(_NAME, "{value}: 1-64 of letters, digits and _ . -")]
DialPattern = Annotated[str, AfterValidator(valid_pattern)]
FeatureCode = Annotated[str, AfterValidator(valid_feature_code)]
Port = Annotated[int, Field(ge=1, le=65535)]
Url = Annotated[str, AfterValidator(_url)]
DialString = Annotated[str, _pattern(_DIAL_STRING, "{value}: 1-32 of the keys 0-9 * # +")]
DateFormat = Annotated[str, AfterValidator(_date_format)]
TimeZone = Annotated[str, AfterValidator(_time_zone)]
LoadName = Annotated[str, _pattern(_LOAD, "a load name (the .loads file name without extension)")]
# The 7900-series 0-3 enums: 0 off / 1 on (user may change), 2 off / 3 on (locked).
Enum03 = Annotated[int, Field(ge=0, le=3)]
FeatureLabel = Annotated[str, AfterValidator(_feature_label)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class FeatureCodes(_Strict):
    """The site's feature codes (see telefeatures/codes.py, the one table the
    Asterisk dialplan and the phones' dial plan are both generated from).
    ``preset`` gives the defaults; any code set here wins."""

    preset: Literal["default", "nanp"] = "default"
    call_return: FeatureCode = "*69"
    block_on: FeatureCode = "*81"
    block_off: FeatureCode = "*82"
    block_status: FeatureCode = "*83"
    callblock_last: FeatureCode = "*60"
    callblock_clear: FeatureCode = "*80"
    anonreject_on: FeatureCode = "*77"
    anonreject_off: FeatureCode = "*87"
    per_call_block: FeatureCode = "*67"
    per_call_show: FeatureCode | None = None

    @model_validator(mode="before")
    @classmethod
    def _preset_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") in codes.PRESETS:
            return {**codes.preset_codes(data["preset"]), **data}
        return data

    def simple_codes(self) -> list[tuple[str, str]]:
        """The codes dialled on their own, with what they do."""
        return [(getattr(self, code.field), code.what) for code in codes.FEATURE_CODES]

    def per_call_prefixes(self) -> list[str]:
        """The codes dialled in front of a number."""
        return [code for code in (self.per_call_block, self.per_call_show) if code is not None]

    def asterisk_context(self) -> str:
        """The ``[tf-features]`` dialplan include for these codes."""
        return codes.features_context(self.model_dump(exclude={"preset"}))

    @model_validator(mode="after")
    def _distinct(self) -> FeatureCodes:
        all_codes = [code for code, _ in self.simple_codes()] + self.per_call_prefixes()
        if len(set(all_codes)) != len(all_codes):
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


MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_CLOCK = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")


def _week_of_month(value: int) -> int:
    if value not in (1, 2, 3, 4, 5, 6, 8):
        raise ValueError(f"{value} is not a week of the month: 1-6, or 8 for the last week")
    return value


WeekOfMonth = Annotated[int, AfterValidator(_week_of_month)]
DayOfMonth = Annotated[int, Field(ge=1, le=31)]
Clock = Annotated[str, _pattern(_CLOCK, "{value} is not a time of day: use HH:MM (24-hour), e.g. 02:00")]


class DaylightSaving(_Strict):
    """An explicit 7940/7960 daylight-saving rule (the ``dst_*`` keys). Each
    edge is a weekday of a week of the month (``*_week_of_month``, 8 = the
    last week), or a fixed day of the month (``*_day``)."""

    start_month: Literal[MONTHS]  # type: ignore[valid-type]
    start_week_of_month: WeekOfMonth | None = None
    start_day_of_week: Literal[WEEKDAYS] = "Sunday"  # type: ignore[valid-type]
    start_day: DayOfMonth | None = None
    start_time: Clock = "02:00"
    stop_month: Literal[MONTHS]  # type: ignore[valid-type]
    stop_week_of_month: WeekOfMonth | None = None
    stop_day_of_week: Literal[WEEKDAYS] = "Sunday"  # type: ignore[valid-type]
    stop_day: DayOfMonth | None = None
    stop_time: Clock = "02:00"
    # Hours the clock goes forward (every real rule: 1).
    offset: Annotated[int, Field(ge=1, le=2)] = 1

    @model_validator(mode="after")
    def _one_kind_per_edge(self) -> DaylightSaving:
        for edge in ("start", "stop"):
            week, day = getattr(self, f"{edge}_week_of_month"), getattr(self, f"{edge}_day")
            if week is None and day is None:
                raise ValueError(f"give {edge}_week_of_month (1-6, 8 = the last week, with {edge}_day_of_week) "
                                 f"or {edge}_day (a day of the month)")
            if day is not None and (week is not None or f"{edge}_day_of_week" in self.model_fields_set):
                raise ValueError(f"{edge}_day is a fixed day of the month: leave out {edge}_week_of_month and "
                                 f"{edge}_day_of_week (the phone ignores them)")
        return self

    def rule(self) -> DstRule:
        return DstRule(
            start_month=self.start_month, start_week_of_month=self.start_week_of_month or 0,
            start_time=self.start_time, stop_month=self.stop_month,
            stop_week_of_month=self.stop_week_of_month or 0, stop_time=self.stop_time,
            start_day_of_week=self.start_day_of_week, stop_day_of_week=self.stop_day_of_week,
            start_day=self.start_day or 0, stop_day=self.stop_day or 0, offset=self.offset)


def _daylight_saving_word(value: str) -> str:
    if value not in ("auto", "off"):
        raise ValueError(f"{value[:40]!r}: use \"auto\" (the time zone's rule), \"off\", or a table with "
                         "start_month, start_week_of_month, stop_month, stop_week_of_month, ...")
    return value


# Union tags start with "form-": error messages leave them out of the field's name.
def _daylight_saving_form(value: Any) -> str:
    return "form-table" if isinstance(value, (dict, DaylightSaving)) else "form-word"


# "auto": the zone's own rule; "off": none; or a table with an explicit rule.
# The tag keeps errors to the form given (a word, or the table's own fields).
# (An alias, so that a phone's override, the same type or None, keeps the discriminator.)
DaylightSavingSetting = TypeAliasType("DaylightSavingSetting", Annotated[
    Annotated[str, AfterValidator(_daylight_saving_word), Tag("form-word")]
    | Annotated[DaylightSaving, Tag("form-table")],
    Discriminator(_daylight_saving_form),
])


class PhoneSettings(_Strict):
    """Settings with a site default that a phone may override: each is a key
    of ``[site]`` and may be repeated in a ``[[phones]]`` entry. Names follow
    the Cisco element they set (provisioning/README.md maps every one to its
    SEP<MAC>.cnf.xml element and SIPDefault.cnf key). Defaults are the
    documented ones, else what most real-world configurations use."""

    # devicePool/dateTimeSetting
    time_zone: TimeZone
    ntp_server: Host
    ntp_mode: Literal["Unicast", "Multicast", "AnycastMulticast", "DirectedBroadcast"] = "Unicast"
    date_format: DateFormat = "M/D/Ya"
    # sipProfile/sipProxies
    register_with_proxy: bool = True
    backup_proxy: Host | None = None
    backup_proxy_port: Port = 5060
    emergency_proxy: Host | None = None
    emergency_proxy_port: Port = 5060
    outbound_proxy: Host | None = None
    outbound_proxy_port: Port = 5060
    # sipProfile/sipStack
    timer_register_expires: Annotated[int, Field(ge=1, le=3932100)] = 3600
    timer_t1: Annotated[int, Field(ge=100, le=10000)] = 500
    timer_t2: Annotated[int, Field(ge=200, le=20000)] = 4000
    sip_retx: Annotated[int, Field(ge=1, le=10)] = 10
    sip_invite_retx: Annotated[int, Field(ge=1, le=6)] = 6
    timer_invite_expires: Annotated[int, Field(ge=1, le=300)] = 180
    remote_party_id: bool = True
    # sipProfile/sipCallFeatures
    cnf_join_enabled: bool = True
    semi_attended_transfer: bool = True
    rfc2543_hold: bool = False
    call_hold_ringback: Enum03 = 2
    local_cfwd_enable: bool = True
    remote_cc_enable: bool = True
    # 2 = off and locked: caller-ID blocking is done by Asterisk (*81/*82/*67),
    # a phone-side setting would silently fight it.
    caller_id_blocking: Enum03 = 2
    anonymous_call_block: Enum03 = 2
    dnd_control: Enum03 = 0
    # sipProfile
    nat_enabled: bool = False
    nat_address: Host | None = None
    voip_control_port: Port | None = None  # default: the site's sip_port
    start_media_port: Annotated[int, Field(ge=1024, le=65534)] = 16384
    stop_media_port: Annotated[int, Field(ge=1025, le=65535)] = 32766
    preferred_codec: Literal["none", "g711ulaw", "g711alaw", "g729a", "g722"] = "g711ulaw"
    dscp_for_audio: Annotated[int, Field(ge=0, le=255)] = 184
    enable_vad: bool = False
    dtmf_out_of_band: Literal["none", "avt", "avt_always"] = "avt"
    dtmf_db_level: Annotated[int, Field(ge=1, le=5)] = 3
    dtmf_avt_payload: Annotated[int, Field(ge=96, le=127)] = 101
    transfer_onhook_enabled: bool = False
    stutter_msg_waiting: Annotated[int, Field(ge=0, le=2)] = 0
    call_stats: bool = False
    kpml: Annotated[int, Field(ge=0, le=3)] = 3
    # Per-line defaults (each line may override them)
    messages_number: DialString | Literal[""] = "*97"
    message_waiting_lamp_policy: Annotated[int, Field(ge=0, le=5)] = 1
    call_waiting: Enum03 = 3
    # Firmware (default: the site's [site.firmware] entry for the model)
    load_information: LoadName | None = None
    # URLs (device level)
    services_url: Url | None = None
    directory_url: Url | None = None
    idle_url: Url | None = None
    idle_timeout: Annotated[int, Field(ge=0, le=3600)] = 0
    information_url: Url | None = None
    authentication_url: Url | None = None
    messages_url: Url | None = None
    proxy_server_url: Annotated[str, _pattern(_HOST_PORT, "host or host:port")] | None = None
    # Locales (empty: the phone's built-in English / United States)
    user_locale: Annotated[str, _pattern(_LOCALE_NAME, "a locale name such as English_United_States")] | None = None
    user_locale_lang_code: Annotated[str, _pattern(_LANG_CODE, "a language code such as en_US")] | None = None
    user_locale_win_charset: Literal["iso-8859-1", "utf-8"] = "iso-8859-1"
    network_locale: Annotated[str, _pattern(_LOCALE_NAME, "a locale name such as United_States")] | None = None
    # commonProfile
    phone_password: Annotated[str, AfterValidator(_phone_password)] | None = None
    background_image_access: bool = True
    call_log_blf_enabled: Annotated[int, Field(ge=0, le=3)] = 2
    # Phone's own services: web server and SSH daemon stay off unless asked for
    phone_web_access: bool = False
    phone_ssh_access: bool = False
    ssh_user_id: Annotated[str, _pattern(_SSH_USER, "1-30 of letters, digits and _ . -")] | None = None
    ssh_password: Annotated[str, AfterValidator(_ssh_password)] | None = None
    # Further vendorConfig children, written as given (element name -> value)
    vendor_config: dict[Annotated[str, _pattern(_XML_NAME, "an XML element name")],
                        Annotated[str | int | bool, AfterValidator(_vendor_value)]] = Field(default_factory=dict)
    # 7940/7960 only (SIPDefault.cnf keys with no 79x1 element)
    telnet_level: Annotated[int, Field(ge=0, le=2)] = 0
    network_media_type: Literal["Auto", "Full100", "Half100", "Full10", "Half10"] = "Auto"
    autocomplete: bool = True
    logo_url: Url | None = None
    # The dst_* rule: "auto" (the time zone's), "off", or a [daylight_saving] table.
    # The 79x1 takes the rule from its zone table; a phone of that kind cannot override it.
    daylight_saving: DaylightSavingSetting = "auto"

    @model_validator(mode="after")
    def _consistent(self) -> PhoneSettings:
        if self.start_media_port >= self.stop_media_port:
            raise ValueError(f"start_media_port {self.start_media_port} must be below stop_media_port "
                             f"{self.stop_media_port}")
        if self.nat_enabled and not self.nat_address:
            raise ValueError("nat_enabled needs nat_address (the site's public address)")
        if self.phone_ssh_access and not (self.ssh_user_id and self.ssh_password):
            # Otherwise the phone's SSH daemon runs with its well-known default login.
            raise ValueError("phone_ssh_access needs ssh_user_id and ssh_password")
        clash = {"webAccess", "sshAccess", "sshUserId", "sshPassword"} & set(self.vendor_config)
        if clash:
            raise ValueError(f"vendor_config.{sorted(clash)[0]}: set it with phone_web_access, "
                             "phone_ssh_access, ssh_user_id or ssh_password instead")
        return self


def _override_model(base: type[BaseModel], name: str) -> type[BaseModel]:
    """``base`` with every field optional and unset (None): a phone's overrides."""
    fields: dict[str, Any] = {field: (info.annotation | None, None) for field, info in base.model_fields.items()}
    return create_model(name, __base__=_Strict, **fields)


PHONE_SETTING_NAMES = tuple(PhoneSettings.model_fields)
# Settings only SIPDefault.cnf / SIP<MAC>.cnf carry (a SEP<MAC>.cnf.xml has no element for them).
SIP_CNF_ONLY_SETTINGS = frozenset({"telnet_level", "network_media_type", "autocomplete", "logo_url",
                                   "daylight_saving"})
_PHONE_SETTING_SET = frozenset(PHONE_SETTING_NAMES)
_PhoneOverrides = _override_model(PhoneSettings, "PhoneOverrides")
TRANSPORT_CODES = {"udp": (2,), "tcp": (4, 1), "tls": (3,)}


class Site(PhoneSettings):
    asterisk_address: Host
    sip_port: Port = 5060
    # More Asterisks to fail over to, in order (callManagerGroup members with
    # priority 1, 2, ...), each reached at sip_port.
    failover_addresses: list[Host] = Field(default_factory=list, max_length=3)
    # UDP: 12 real-world sources and the only published working PJSIP set-up.
    transport: Literal["tcp", "udp", "tls"] = "udp"
    # transportLayerProtocol: 2 UDP, 3 TLS; TCP is disputed (4 at running
    # sites and in older docs, 1 in current docs): see README.
    transport_layer_protocol: Annotated[int, Field(ge=1, le=4)] | None = None
    # Longest authPassword the phones take (disputed; see README).
    auth_password_max_length: Annotated[int, Field(ge=MIN_PASSWORD, le=30)] = DEFAULT_PASSWORD_LENGTH
    firmware: dict[ModelName, LoadName] = Field(default_factory=dict)
    feature_codes: FeatureCodes = Field(default_factory=FeatureCodes)
    dial_rules: DialRules = Field(default_factory=DialRules)
    dial_template: Annotated[str, _pattern(re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,59}\.xml"),
                                           "a file name ending in .xml")] = "dialplan.xml"
    pjsip_transport: Name | None = None
    context: Name = "tf-phones"
    # Voicemail: the PJSIP endpoints' mailboxes= (<extension>@<context>), so
    # Asterisk sends the phones message-waiting NOTIFYs. "" turns it off.
    mailbox_context: Name | Literal[""] = "default"
    # Busy lamps: the dialplan context the generated hints live in (and the
    # endpoints' subscribe_context).
    hint_context: Name = "tf-hints"
    # Where phones without an ``ip`` may register and call from (PJSIP ACL);
    # default: the [dhcp] subnet, else anywhere.
    phone_networks: list[IPv4Net] = Field(default_factory=list, max_length=64)
    # 7940/7960 only
    tftp_cfg_dir: Annotated[str, _pattern(re.compile(r"[A-Za-z0-9_./-]{1,64}"), "a directory such as ./")] = "./"

    @property
    def cisco_time_zone(self) -> str:
        return cisco_time_zone(self.time_zone)

    @property
    def pjsip_transport_name(self) -> str:
        return self.pjsip_transport or f"transport-{self.transport}"

    @property
    def transport_code(self) -> int:
        return self.transport_layer_protocol or TRANSPORT_CODES[self.transport][0]

    @model_validator(mode="after")
    def _site_consistent(self) -> Site:
        allowed = TRANSPORT_CODES[self.transport]
        if self.transport_layer_protocol is not None and self.transport_layer_protocol not in allowed:
            raise ValueError(f"transport_layer_protocol {self.transport_layer_protocol} does not mean "
                             f"{self.transport}; use {' or '.join(map(str, allowed))}")
        if self.asterisk_address in self.failover_addresses:
            raise ValueError("failover_addresses must not repeat asterisk_address")
        templates = self.dial_templates()
        for code, what in self.feature_codes.simple_codes():
            delay = dial_delay(code, templates)
            if delay:
                raise ValueError(f"feature code {code} ({what}) would not dial at once: {delay}; "
                                 "fix site.dial_rules")
        return self

    def dial_templates(self) -> list[DialTemplate]:
        """The site's dial templates, worked out once: the site check, the
        inventory's cross checks and the renderer all use them."""
        return self._dial_templates

    @cached_property
    def _dial_templates(self) -> list[DialTemplate]:
        rules = self.dial_rules
        return build_dial_templates(
            [code for code, _ in self.feature_codes.simple_codes()],
            self.feature_codes.per_call_prefixes(),
            rules.extension_match_patterns(),
            list(rules.outside_patterns),
            rules.interdigit_timeout,
        )

    def phone_settings(self) -> PhoneSettings:
        """This site's defaults for every phone."""
        return PhoneSettings.model_construct(**{name: getattr(self, name) for name in PHONE_SETTING_NAMES})


class Line(_Strict):
    extension: Extension
    display_name: Annotated[str, AfterValidator(_display_name)]
    label: FeatureLabel | None = None
    auth_user: Annotated[str, AfterValidator(_auth_user)] | None = None
    password: Annotated[str, AfterValidator(_password)] | None = None
    # Overrides of the site's / phone's per-line defaults.
    messages_number: DialString | Literal[""] | None = None
    message_waiting_lamp_policy: Annotated[int, Field(ge=0, le=5)] | None = None
    call_waiting: Enum03 | None = None
    # Voicemail box for MWI (default <extension>@<site.mailbox_context>; "" = none).
    mailbox: Annotated[str, _pattern(re.compile(r"[A-Za-z0-9_.-]{1,40}(?:@[A-Za-z0-9_.-]{1,40})?"),
                                     "a mailbox such as 1001@default")] | Literal[""] | None = None

    @property
    def feature_label(self) -> str:
        return self.label or self.extension

    @property
    def auth_name(self) -> str:
        return self.auth_user or self.extension


class Button(_Strict):
    """A line key that is not a line: speed dial (featureID 2), busy-lamp
    speed dial (21, watches an inventory extension) or service URL (20)."""

    type: Literal["speed_dial", "blf", "service"]
    label: FeatureLabel
    # Position (button attribute); default: the next free key after the lines.
    button: Annotated[int, Field(ge=1, le=8)] | None = None
    number: DialString | None = None  # speed_dial
    extension: Extension | None = None  # blf
    url: Url | None = None  # service
    # BLF featureOptionMask (1 in every real-world file that has one).
    feature_option_mask: Annotated[int, Field(ge=0, le=15)] = 1

    @model_validator(mode="after")
    def _fields_for_type(self) -> Button:
        needed = {"speed_dial": "number", "blf": "extension", "service": "url"}[self.type]
        if getattr(self, needed) is None:
            raise ValueError(f"a {self.type} button needs {needed}")
        extra = [name for name in ("number", "extension", "url") if name != needed and getattr(self, name)]
        if extra:
            raise ValueError(f"a {self.type} button takes {needed}, not {extra[0]}")
        return self

    @property
    def feature_id(self) -> int:
        return {"speed_dial": FEATURE_SPEED_DIAL, "blf": FEATURE_BLF_SPEED_DIAL,
                "service": FEATURE_SERVICE_URI}[self.type]

    @property
    def target(self) -> str:
        return self.number or self.extension or self.url or ""


class Phone(_PhoneOverrides):  # type: ignore[misc,valid-type]
    mac: Mac
    model: ModelName
    label: Annotated[str, AfterValidator(_phone_label)] | None = None
    # Reserved address (DHCP); the phone's PJSIP endpoints accept it alone.
    ip: IPv4 | None = None
    lines: list[Line] = Field(min_length=1)
    buttons: list[Button] = Field(default_factory=list)

    @model_validator(mode="after")
    def _fits(self) -> Phone:
        keys = PHONE_MODELS[self.model].buttons
        if PHONE_MODELS[self.model].config_format == SIP_CNF_FORMAT and self.buttons:
            raise ValueError(f"a {self.model} (SIPDefault format) has no speed dial, busy-lamp or "
                             "service keys in its configuration; leave out buttons")
        if PHONE_MODELS[self.model].config_format != SIP_CNF_FORMAT and self.daylight_saving not in (None, "auto"):
            # Its file has no such setting: the rule would silently not apply.
            raise ValueError(f"daylight_saving: a {self.model} takes its daylight-saving rule from its time zone's "
                             "table (set time_zone); daylight_saving is for the 7940/7960")
        if len(self.lines) > keys:
            raise ValueError(f"{len(self.lines)} lines, but a {self.model} has {keys} line button(s)")
        taken = set(range(1, len(self.lines) + 1))
        for n, key in enumerate(self.buttons, start=1):
            if key.button is not None and key.button in taken:
                raise ValueError(f"buttons #{n} ({key.label}): button {key.button} is already taken")
            if key.button is not None:
                taken.add(key.button)
        positions = self.button_positions()
        for n, (key, position) in enumerate(zip(self.buttons, positions), start=1):
            if position > keys:
                raise ValueError(f"buttons #{n} ({key.label}): a {self.model} has {keys} buttons, "
                                 f"this one would be button {position}")
        return self

    def button_positions(self) -> list[int]:
        """The button attribute of each entry of ``buttons``."""
        if not self.buttons:
            return []
        taken = set(range(1, len(self.lines) + 1)) | {key.button for key in self.buttons if key.button}
        positions = []
        free = 1
        for key in self.buttons:
            if key.button is not None:
                positions.append(key.button)
                continue
            while free in taken:
                free += 1
            taken.add(free)
            positions.append(free)
        return positions

    def overrides(self) -> dict[str, Any]:
        """The site settings this phone sets itself."""
        return {name: getattr(self, name) for name in self.model_fields_set & _PHONE_SETTING_SET}

    @property
    def config_format(self) -> str:
        return PHONE_MODELS[self.model].config_format

    @property
    def config_name(self) -> str:
        if self.config_format == SIP_CNF_FORMAT:
            return f"SIP{self.mac}.cnf"
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

    def settings_for(self, phone: Phone) -> PhoneSettings:
        """The site's settings with the phone's overrides applied (validated
        by parse_inventory, which names the phone if the mix is inconsistent)."""
        overrides = phone.overrides()
        if not overrides:
            return self._site_settings
        return PhoneSettings.model_validate({**self._site_settings.__dict__, **overrides})

    def settings_for_site(self) -> PhoneSettings:
        return self._site_settings

    @cached_property
    def _site_settings(self) -> PhoneSettings:
        return self.site.phone_settings()


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


def _button_name(raw: Any, phone: int, button: int) -> str:
    try:
        label = raw["phones"][phone]["buttons"][button]["label"]
    except (KeyError, IndexError, TypeError):
        label = None
    return f"buttons #{button + 1}" + (f" ({str(label)[:40]})" if label is not None else "")


def _known_keys() -> set[str]:
    """Every key an inventory table may have, for "did you mean"."""
    keys: set[str] = set()
    stack: list[type] = [Inventory]
    seen: set[type] = set()
    while stack:
        model = stack.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            keys.add(info.alias or name)
            for inner in _types_in(info.annotation):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    stack.append(inner)
    return keys


def _types_in(annotation: Any) -> list[Any]:
    from typing import get_args

    found = [annotation]
    for arg in get_args(annotation):
        found += _types_in(arg)
    return found


def _suggest_keys(errors: list[dict]) -> list[dict]:
    """A typo'd key gives pydantic's "Extra inputs are not permitted" for it
    and, when the key was required, "Field required" for the real one: say it
    once, as an unknown key, with the key it was probably meant to be."""
    import difflib

    missing = {tuple(e["loc"]): e for e in errors if e["type"] == "missing"}
    known = None
    dropped: set[tuple] = set()
    out = []
    for err in errors:
        if err["type"] != "extra_forbidden" or not isinstance(err["loc"][-1], str):
            out.append(err)
            continue
        key, parent = err["loc"][-1], tuple(err["loc"][:-1])
        siblings = [loc[-1] for loc in missing if loc[:-1] == parent and isinstance(loc[-1], str)]
        close = difflib.get_close_matches(key, siblings, n=1, cutoff=0.6)
        if close:
            dropped.add(parent + (close[0],))
        else:
            known = known if known is not None else sorted(_known_keys())
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        out.append({**err, "msg": f"unknown key{hint}"})
    return [e for e in out if not (e["type"] == "missing" and tuple(e["loc"]) in dropped)]


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
        elif rest[:1] == ["buttons"] and len(rest) >= 2 and isinstance(rest[1], int):
            where.append(_button_name(raw, loc[1], rest[1]))
            rest = rest[2:]
        # Validators and union tags add their own loc parts ("function-after", "form-table"); drop them.
        field = ".".join(str(p) for p in rest if not str(p).startswith(("function-", "form-")))
    else:
        field = ".".join(str(p) for p in loc if not str(p).startswith(("function-", "form-")))
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
    site = inventory.site
    decisions = DialDecisions(site.dial_templates())
    for i, phone in enumerate(inventory.phones):
        name = phone_title(phone, i)
        if phone.mac in seen_mac:
            errors.append(f"{name}, mac: duplicate MAC, already used by phone #{seen_mac[phone.mac] + 1}")
        else:
            seen_mac[phone.mac] = i
        try:
            inventory.settings_for(phone)
        except ValidationError as exc:
            errors += [f"{name}, " + _describe(err, {}) for err in exc.errors()]
        for j, line in enumerate(phone.lines):
            where = f"{name}, line #{j + 1} (extension {line.extension})"
            if line.password and len(line.password) > site.auth_password_max_length:
                errors.append(f"{where}, password: {len(line.password)} characters, longer than "
                              f"site.auth_password_max_length ({site.auth_password_max_length})")
            if line.extension in seen_ext:
                p, q = seen_ext[line.extension]
                errors.append(f"{where}, extension: duplicate extension, already on phone #{p + 1} line #{q + 1}")
                continue
            seen_ext[line.extension] = (i, j)
            # A dial plan that sends the call early makes the extension unreachable.
            short = decisions.cut_short(line.extension)
            if short:
                errors.append(f"{where}, extension: cannot be dialled, the dial plan sends {short[0]!r} as soon "
                              f"as it is complete (template {short[1]!r}); fix site.dial_rules")
            elif delay := decisions.dial_delay(line.extension):
                errors.append(f"{where}, extension: would not dial at once: {delay}; fix site.dial_rules")
    errors += reservation_errors(inventory.dhcp, [(phone_title(p, i), p.ip) for i, p in enumerate(inventory.phones)])
    for i, phone in enumerate(inventory.phones):
        if phone.config_format == SIP_CNF_FORMAT and site.transport != "udp":
            # The 7940/7960 SIP firmware registers over UDP; the endpoints would not match.
            errors.append(f"{phone_title(phone, i)}, model: a {phone.model} registers over UDP, but "
                          f"site.transport is {site.transport}")
        for n, key in enumerate(phone.buttons, start=1):
            if key.type == "blf" and key.extension not in seen_ext:
                # Asterisk gets hints only for the inventory's extensions.
                errors.append(f"{phone_title(phone, i)}, buttons #{n} ({key.label}), extension: "
                              f"{key.extension} is not a line in the inventory, so no lamp could follow it")
    return errors


def parse_inventory(text: str, source: str = "inventory") -> Inventory:
    """Validate inventory TOML text; raise InventoryError listing every problem."""
    try:
        raw = rtoml.loads(text)  # five times tomllib's speed on a large inventory
    except rtoml.TomlParsingError:
        # The standard parser's message names line and column in the usual words.
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InventoryError(source, [f"TOML syntax error: {exc}"]) from None
        raise InventoryError(source, ["TOML syntax error: the file is not valid TOML"]) from None
    try:
        inventory = Inventory.model_validate(raw)
    except ValidationError as exc:
        raise InventoryError(source, [_describe(err, raw) for err in _suggest_keys(exc.errors())]) from None
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
