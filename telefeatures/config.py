"""Settings, from (highest first) command-line flags, ``TELEFEATURES_*`` environment
variables, a TOML file, and the defaults below.

Nested settings use ``__`` in environment variables, e.g.
``TELEFEATURES_FEATURES__ON_STATE_ERROR=allow``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings import SettingsError as SourceError

from .state.schema import valid_prefix

_SOUND = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]{0,127}", re.ASCII)
_DIGITS = re.compile(r"[0-9*#]{1,8}", re.ASCII)


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "telefeatures"


def _check_sounds(value: list[str]) -> list[str]:
    for name in value:
        if ".." in name or not _SOUND.fullmatch(name):
            raise ValueError(f"not a sound file name: {name!r}")
    return value


Sounds = Annotated[list[str], Field(min_length=1)]


class Prompts(BaseModel):
    """Sound files played by the features, each a list played in order.

    Defaults all exist in Debian's asterisk-core-sounds-en.
    """

    model_config = ConfigDict(extra="forbid")

    error: Sounds = ["sorry", "please-try-call-later"]
    cidblock_on: Sounds = ["activated"]
    cidblock_off: Sounds = ["de-activated"]
    cidblock_status_on: Sounds = ["enabled"]
    cidblock_status_off: Sounds = ["disabled"]
    callreturn_no_record: Sounds = ["info-about-last-call", "im-sorry", "cannot-complete-as-dialed"]
    callreturn_withheld: Sounds = ["info-about-last-call", "from-unknown-caller", "unidentified-no-callback"]
    callreturn_announce: Sounds = ["info-about-last-call", "telephone-number"]
    callreturn_confirm: Sounds = ["to-call-this-number", "vm-press", "digits/1"]
    callreturn_not_dialable: Sounds = ["cannot-complete-as-dialed"]
    callreturn_declined: Sounds = ["goodbye"]
    # *60: "The last caller was... <number>. If this is correct, press 1."
    callblock_announce: Sounds = ["privacy-to-blacklist-last-caller"]
    callblock_confirm: Sounds = ["if-correct-press", "digits/1"]
    callblock_added: Sounds = ["added"]
    callblock_no_record: Sounds = ["im-sorry", "cannot-complete-as-dialed"]
    callblock_withheld: Sounds = ["privacy-to-blacklist-last-caller", "from-unknown-caller", "feature-not-avail-line"]
    callblock_declined: Sounds = ["cancelled"]
    # *80: "If this is correct, press 1." -> "Removed."
    callblock_clear_confirm: Sounds = ["if-correct-press", "digits/1"]
    callblock_cleared: Sounds = ["removed"]
    anonreject_on: Sounds = ["activated"]
    anonreject_off: Sounds = ["de-activated"]

    _names = field_validator("*")(_check_sounds)


class RewriteRule(BaseModel):
    """``match`` is a Python regular expression that must match the whole stored
    number; ``rewrite`` is its expansion (``\\g<0>``, ``\\1``...). The result is
    validated again before it is dialed."""

    model_config = ConfigDict(extra="forbid")

    match: str
    rewrite: str

    @field_validator("match")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from exc
        return value


NORTH_AMERICAN_RULES = [
    RewriteRule(match=r"[2-9][0-9]{9}", rewrite=r"1\g<0>"),  # 10 digits, as the old 1${lastcall}
    RewriteRule(match=r"1[2-9][0-9]{9}", rewrite=r"\g<0>"),
    RewriteRule(match=r"\+1([2-9][0-9]{9})", rewrite=r"1\1"),
    # Other countries via the NANP exit code. Country codes never start with 0
    # or 1, so a "+1" number that failed the rule above is not dialed abroad.
    RewriteRule(match=r"\+([2-9][0-9]{5,14})", rewrite=r"011\1"),
    RewriteRule(match=r"[2-9][0-9]{6}", rewrite=r"\g<0>"),  # 7-digit local
]


class FeatureSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    callreturn_mode: Literal["confirm", "immediate"] = "confirm"
    confirm_digit: str = "1"
    confirm_timeout_ms: int = Field(5000, ge=500, le=30000)
    callback_rules: list[RewriteRule] = Field(default_factory=lambda: list(NORTH_AMERICAN_RULES))
    per_call_block_codes: list[str] = ["*67"]
    # In front of a number: show the caller ID for this call although blocking
    # is on (the NANP *82; the dialplan passes it in this canonical form).
    per_call_show_codes: list[str] = ["*82"]
    number_min_digits: int = Field(3, ge=1, le=20)
    number_max_digits: int = Field(20, ge=1, le=32)
    # Outbound presentation
    on_state_error: Literal["withhold", "allow"] = "withhold"
    legacy_block: bool = False
    legacy_block_name: str = "Unavailable"
    legacy_block_number: str = "0-1-999"
    outbound_cid_number: str | None = None
    outbound_cid_name: str | None = None
    # *60 reject list: at most this many numbers; adding one more drops the oldest.
    callblock_max_entries: int = Field(20, ge=1, le=1000)
    # Anonymous call rejection (*77): callers whose number is merely unavailable
    # (presentation "not available", "unknown", no number) ring unless this is true.
    anonreject_unavailable: bool = False
    # *69 for groups (pre-dial handler tf-ring-hook): record internal callers too.
    record_internal: bool = False
    prompts: Prompts = Field(default_factory=Prompts)

    @field_validator("confirm_digit")
    @classmethod
    def _one_key(cls, value: str) -> str:
        if len(value) != 1 or value not in "0123456789*#":
            raise ValueError("must be one phone key: 0-9, * or #")
        return value

    @field_validator("per_call_block_codes", "per_call_show_codes")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        for code in value:
            if not _DIGITS.fullmatch(code):
                raise ValueError(f"feature code {code!r} must be 1-8 of 0-9 * #")
        return value

    @field_validator("outbound_cid_number", "outbound_cid_name", "legacy_block_name", "legacy_block_number")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 80 or any(not ch.isprintable() for ch in value)):
            raise ValueError("must be printable text of at most 80 characters")
        return value

    @model_validator(mode="after")
    def _lengths(self) -> FeatureSettings:
        if self.number_min_digits > self.number_max_digits:
            raise ValueError("number_min_digits is larger than number_max_digits")
        return self


class MetricsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    host: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address("127.0.0.1")
    port: int = Field(9573, ge=1, le=65535)


class TftpSettings(BaseModel):
    """``telefeatures tftp``; each is also a command-line flag of the same name."""

    model_config = ConfigDict(extra="forbid")

    # Peers outside these networks get no answer (and one log line). Empty: with
    # --inventory, loopback + the phones' addresses and networks; else anyone.
    allow: Annotated[list[ipaddress.IPv4Network | ipaddress.IPv6Network], NoDecode] = Field(default_factory=list)
    inventory: Path | None = None
    # Processes sharing the port; 0: one per CPU this process may use, at most 4.
    workers: int = Field(0, ge=0, le=64)
    max_transfers: int = Field(2048, ge=1, le=100000)
    per_peer_transfers: int = Field(8, ge=1, le=1000)
    requests_per_second: float = Field(50.0, gt=0, le=100000)
    request_burst: int = Field(100, ge=1, le=100000)
    timeout: float = Field(2.0, ge=0.1, le=255)
    retries: int = Field(5, ge=0, le=50)
    enumeration_limit: int = Field(8, ge=2, le=10000)
    enumeration_window: float = Field(60.0, gt=0, le=86400)
    enumeration_block: float = Field(600.0, ge=0, le=604800)
    record_fetches: bool = True

    @field_validator("allow", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TELEFEATURES_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    host: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address("127.0.0.1")
    port: int = Field(4573, ge=1, le=65535)
    # NoDecode: the environment gives "127.0.0.1,10.0.0.0/24", which is not JSON.
    allow_peers: Annotated[list[ipaddress.IPv4Network | ipaddress.IPv6Network], NoDecode] = Field(
        default_factory=lambda: [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
    )
    redis_url: str | None = None
    state_dir: Path = Field(default_factory=default_state_dir)
    key_prefix: str = "tf:"
    redis_timeout: float = Field(0.5, gt=0, le=30)
    redis_pool_size: int = Field(64, ge=1, le=10000)
    # Call-path commands pipelined on one connection (false: plain redis-py pool for everything).
    redis_pipelining: bool = True
    max_sessions: int = Field(2048, ge=1, le=100000)
    header_timeout: float = Field(5.0, gt=0, le=120)
    session_timeout: float = Field(60.0, gt=0, le=3600)
    shutdown_grace: float = Field(30.0, ge=0, le=3600)
    event_loop: Literal["auto", "asyncio", "uvloop"] = "auto"
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    tftp: TftpSettings = Field(default_factory=TftpSettings)

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        from .state.topology import parse_topology  # raises TopologyError (a ValueError) naming the bad part

        parse_topology(value)
        return value

    @field_validator("key_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not valid_prefix(value):
            raise ValueError("letters, digits, _ . - and an optional trailing ':' (at most 33 characters)")
        return value

    @field_validator("allow_peers")
    @classmethod
    def _someone_allowed(cls, value: list) -> list:
        if not value:
            raise ValueError("is empty: no Asterisk could connect (give at least one address or CIDR)")
        return value

    @field_validator("allow_peers", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        # Environment and flags give "127.0.0.1,10.0.0.0/24"; TOML gives a list.
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = settings_cls.model_config.get("toml_file")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


class SettingsError(Exception):
    """A setting is invalid; the message names the field."""


def describe_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(settings)"
        lines.append(f"setting '{field}': {err['msg']}")
    return "\n".join(lines)


def load_settings(config_file: str | os.PathLike | None = None, **overrides: Any) -> Settings:
    """Build settings; ``overrides`` are command-line values (``None`` = not given).

    The TOML file comes from ``config_file`` or ``TELEFEATURES_CONFIG``.
    """
    config_file = config_file or os.environ.get("TELEFEATURES_CONFIG") or None
    cls: type[Settings] = Settings
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise SettingsError(f"config file {str(path)!r} does not exist")
        cls = type("FileSettings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": path}})
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return cls(**given)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None
    except SourceError as exc:  # e.g. an environment value that is not the JSON a nested field needs
        raise SettingsError(str(exc)) from None
    except ValueError as exc:  # e.g. a TOML syntax error
        raise SettingsError(f"config file {str(config_file)!r}: {exc}") from None
