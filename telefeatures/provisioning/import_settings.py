"""Which inventory key each SEP<MAC>.cnf.xml element sets, for the import.

Only elements the build writes from an inventory key are listed; the value
is converted and validated by that key's own rules, and a value the inventory
would refuse is left out (the import reports it as not carried over) instead
of refusing the phone over a setting outside the compared meaning.
Passwords other than the lines' (``phonePassword``, ``sshPassword``) and the
SSH login are not imported: an inventory is often kept in version control.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError

from .config_reader import PhoneMeaning


def _bool(text: str) -> bool:
    if text not in ("true", "false"):
        raise ValueError(text)
    return text == "true"


def _flag(text: str) -> bool:
    """7940/7960 switches: 1 on, 0 off."""
    if text not in ("0", "1"):
        raise ValueError(text)
    return text == "1"


def _inverted(text: str) -> bool:
    """vendorConfig flags: 0 = enabled, 1 = disabled."""
    return not _flag(text)


def _on_off_enum(text: str) -> int:
    """A 7940/7960 0/1 switch as the 79x1 0-3 enum (0 off, 1 on; user may change)."""
    return int(_flag(text))


# element path (as config_reader names it) -> (inventory key, converter)
PHONE_ELEMENTS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "devicePool/dateTimeSetting/ntps/ntp/ntpMode": ("ntp_mode", str),
    "sipProfile/sipProxies/registerWithProxy": ("register_with_proxy", _bool),
    "sipProfile/sipProxies/backupProxy": ("backup_proxy", str),
    "sipProfile/sipProxies/backupProxyPort": ("backup_proxy_port", int),
    "sipProfile/sipProxies/emergencyProxy": ("emergency_proxy", str),
    "sipProfile/sipProxies/emergencyProxyPort": ("emergency_proxy_port", int),
    "sipProfile/sipProxies/outboundProxy": ("outbound_proxy", str),
    "sipProfile/sipProxies/outboundProxyPort": ("outbound_proxy_port", int),
    "sipProfile/sipStack/timerRegisterExpires": ("timer_register_expires", int),
    "sipProfile/sipStack/timerT1": ("timer_t1", int),
    "sipProfile/sipStack/timerT2": ("timer_t2", int),
    "sipProfile/sipStack/sipRetx": ("sip_retx", int),
    "sipProfile/sipStack/sipInviteRetx": ("sip_invite_retx", int),
    "sipProfile/sipStack/timerInviteExpires": ("timer_invite_expires", int),
    "sipProfile/sipStack/remotePartyID": ("remote_party_id", _bool),
    "sipProfile/sipCallFeatures/cnfJoinEnabled": ("cnf_join_enabled", _bool),
    "sipProfile/sipCallFeatures/semiAttendedTransfer": ("semi_attended_transfer", _bool),
    "sipProfile/sipCallFeatures/rfc2543Hold": ("rfc2543_hold", _bool),
    "sipProfile/sipCallFeatures/callHoldRingback": ("call_hold_ringback", int),
    "sipProfile/sipCallFeatures/localCfwdEnable": ("local_cfwd_enable", _bool),
    "sipProfile/sipCallFeatures/remoteCcEnable": ("remote_cc_enable", _bool),
    "sipProfile/sipCallFeatures/callerIdBlocking": ("caller_id_blocking", int),
    "sipProfile/sipCallFeatures/anonymousCallBlock": ("anonymous_call_block", int),
    "sipProfile/sipCallFeatures/dndControl": ("dnd_control", int),
    "sipProfile/voipControlPort": ("voip_control_port", int),
    "sipProfile/preferredCodec": ("preferred_codec", str),
    "sipProfile/dscpForAudio": ("dscp_for_audio", int),
    "sipProfile/enableVad": ("enable_vad", _bool),
    "sipProfile/dtmfOutofBand": ("dtmf_out_of_band", str),
    "sipProfile/dtmfDbLevel": ("dtmf_db_level", int),
    "sipProfile/dtmfAvtPayload": ("dtmf_avt_payload", int),
    "sipProfile/transferOnhookEnabled": ("transfer_onhook_enabled", _bool),
    "sipProfile/stutterMsgWaiting": ("stutter_msg_waiting", int),
    "sipProfile/callStats": ("call_stats", _bool),
    "sipProfile/kpml": ("kpml", int),
    "commonProfile/backgroundImageAccess": ("background_image_access", _bool),
    "commonProfile/callLogBlfEnabled": ("call_log_blf_enabled", int),
    "vendorConfig/webAccess": ("phone_web_access", _inverted),
    "servicesURL": ("services_url", str),
    "directoryURL": ("directory_url", str),
    "idleURL": ("idle_url", str),
    "idleTimeout": ("idle_timeout", int),
    "informationURL": ("information_url", str),
    "authenticationURL": ("authentication_url", str),
    "messagesURL": ("messages_url", str),
    "proxyServerURL": ("proxy_server_url", str),
    "userLocale/name": ("user_locale", str),
    "userLocale/langCode": ("user_locale_lang_code", str),
    "userLocale/winCharSet": ("user_locale_win_charset", str),
    "networkLocale": ("network_locale", str),
}
# SIPDefault.cnf / SIP<MAC>.cnf key -> (inventory key, converter), as sip_settings.cnf.j2 writes them.
SIP_CNF_KEYS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "proxy_register": ("register_with_proxy", _flag),
    "proxy_emergency": ("emergency_proxy", str),
    "proxy_emergency_port": ("emergency_proxy_port", int),
    "proxy_backup": ("backup_proxy", str),
    "proxy_backup_port": ("backup_proxy_port", int),
    "outbound_proxy": ("outbound_proxy", str),
    "outbound_proxy_port": ("outbound_proxy_port", int),
    "voip_control_port": ("voip_control_port", int),
    "timer_register_expires": ("timer_register_expires", int),
    "preferred_codec": ("preferred_codec", str),
    "enable_vad": ("enable_vad", _flag),
    "network_media_type": ("network_media_type", str),
    "autocomplete": ("autocomplete", _flag),
    "telnet_level": ("telnet_level", int),
    "cnf_join_enable": ("cnf_join_enabled", _flag),
    "semi_attended_transfer": ("semi_attended_transfer", _flag),
    "transfer_onhook_enabled": ("transfer_onhook_enabled", _flag),
    "call_waiting": ("call_waiting", _on_off_enum),
    "anonymous_call_block": ("anonymous_call_block", _on_off_enum),
    "callerid_blocking": ("caller_id_blocking", _on_off_enum),
    "dnd_control": ("dnd_control", int),
    "call_hold_ringback": ("call_hold_ringback", _on_off_enum),
    "stutter_msg_waiting": ("stutter_msg_waiting", int),
    "call_stats": ("call_stats", _flag),
    "remote_party_id": ("remote_party_id", _flag),
    "dtmf_outofband": ("dtmf_out_of_band", str),
    "dtmf_db_level": ("dtmf_db_level", int),
    "dtmf_avt_payload": ("dtmf_avt_payload", int),
    "timer_t1": ("timer_t1", int),
    "timer_t2": ("timer_t2", int),
    "sip_retx": ("sip_retx", int),
    "sip_invite_retx": ("sip_invite_retx", int),
    "timer_invite_expires": ("timer_invite_expires", int),
    "services_url": ("services_url", str),
    "directory_url": ("directory_url", str),
    "logo_url": ("logo_url", str),
}
# Per line (sipProfile/sipLines/line[button=N]/<element>).
LINE_ELEMENTS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "callWaiting": ("call_waiting", int),
    "messageWaitingLampPolicy": ("message_waiting_lamp_policy", int),
}
# vendorConfig children the build writes from their own keys (or never writes).
VENDOR_OWN_KEYS = frozenset({"webAccess", "sshAccess", "sshUserId", "sshPassword"})


@cache
def _adapter(model: type, key: str) -> TypeAdapter[Any]:
    info = model.model_fields[key]
    if not info.metadata:
        return TypeAdapter(info.annotation)
    return TypeAdapter(Annotated[(info.annotation, *info.metadata)])  # type: ignore[misc]


def convert(model: type, key: str, converter: Callable[[str], Any], text: str) -> tuple[bool, Any]:
    """(True, value) if ``text`` is a value ``model.key`` accepts, else (False, None)."""
    if key not in model.model_fields or text == "":
        return False, None
    try:
        value = converter(text)
        _adapter(model, key).validate_python(value, strict=True)
    except (ValueError, ValidationError, TypeError):
        return False, None
    return True, value


def phone_settings(meaning: PhoneMeaning, model: type) -> dict[str, Any]:
    """The inventory keys ``meaning``'s file sets, where the inventory takes the value."""
    values: dict[str, Any] = {}
    table = SIP_CNF_KEYS if meaning.kind == "sip79x0" else PHONE_ELEMENTS
    for path, (key, converter) in table.items():
        if path in meaning.settings:
            ok, value = convert(model, key, converter, meaning.settings[path][0])
            if ok:
                values[key] = value
    vendor = {}
    for path, (text, _) in meaning.settings.items():
        name = path.removeprefix("vendorConfig/")
        if path.startswith("vendorConfig/") and "/" not in name and name not in VENDOR_OWN_KEYS and text:
            vendor[name] = text
    if vendor:
        ok, _ = convert(model, "vendor_config", dict, vendor) if "vendor_config" in model.model_fields else (False, 0)
        if ok:
            values["vendor_config"] = vendor
    return values


def line_settings(meaning: PhoneMeaning, button: int, model: type) -> dict[str, Any]:
    values = {}
    for element, (key, converter) in LINE_ELEMENTS.items():
        found = meaning.settings.get(f"sipProfile/sipLines/line[button={button}]/{element}")
        if found:
            ok, value = convert(model, key, converter, found[0])
            if ok:
                values[key] = value
    return values


def failover_addresses(meaning: PhoneMeaning) -> list[str]:
    """The callManagerGroup members after the first, in priority order."""
    members = []
    for path, (text, _) in meaning.settings.items():
        if path.startswith("devicePool/callManagerGroup/members/member[priority=") and \
                path.endswith("/callManager/processNodeName") and text:
            priority = path.split("[priority=", 1)[1].split("]", 1)[0]
            if priority.isdigit():
                members.append((int(priority), text))
    members.sort()
    return [text for _, text in members[1:]]
