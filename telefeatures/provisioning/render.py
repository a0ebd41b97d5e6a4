"""Renders the inventory into files: Jinja2 templates (package data, or a
site's own directory) -> lxml parse (proves the XML well-formed and escapes
every value) -> rule checks -> consistent serialization.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from lxml import etree

from .devices import PHONE_MODELS
from .dial_templates import check_dialplan
from .inventory import Button, DaylightSaving, Inventory, Phone, PhoneSettings, Site
from .sip_cnf import NTP_MODES, cnf_quote, sip_cnf_zone
from .timezones import cisco_time_zone
from .xml_checks import LINE_PATH, check_sep_config, check_xml_default, missing_element

SEP_TEMPLATE = "SEP.cnf.xml.j2"
DIALPLAN_TEMPLATE = "dialplan.xml.j2"
XML_DEFAULT_TEMPLATE = "XMLDefault.cnf.xml.j2"
PJSIP_TEMPLATE = "pjsip.conf.j2"
PJSIP_PHONE_TEMPLATE = "pjsip_phone.conf.j2"  # one phone's sections, included by PJSIP_TEMPLATE
PJSIP_WHAT = "PJSIP include"
HINTS_TEMPLATE = "hints.conf.j2"
SIP_CNF_TEMPLATE = "SIP.cnf.j2"
SIP_DEFAULT_TEMPLATE = "SIPDefault.cnf.j2"
SIP_SETTINGS_TEMPLATE = "sip_settings.cnf.j2"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
EMPTY_STAMP = b"<versionStamp/>"


class RenderError(Exception):
    """A rendered file is broken; ``problems`` says how."""

    def __init__(self, what: str, problems: list[str]):
        self.what = what
        self.problems = problems
        super().__init__(f"{what}: " + "; ".join(problems))

    def lines(self, prefix: str = "") -> list[str]:
        """One report line per problem."""
        return [f"{prefix}{self.what}: {p}" for p in self.problems]


_CONF_BREAK = re.compile("[\r\n\0]")


def conf_value(value: Any) -> str:
    """A value as Asterisk's config parser reads it back unchanged."""
    text = str(value)
    if _CONF_BREAK.search(text):
        raise ValueError(f"line break or NUL in a pjsip.conf value: {text!r}")
    if text != text.strip():
        raise ValueError(f"leading/trailing blanks would be stripped from a pjsip.conf value: {text!r}")
    # ';' starts a comment unless escaped.
    return text.replace(";", "\\;")


def xml_bool(value: Any) -> str:
    """Python booleans as the firmware reads them (lower-case); others as text."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


@dataclass(frozen=True)
class LineView:
    """One line with everything the templates need: password resolved,
    per-line settings resolved against the phone's and the site's."""

    button: int
    extension: str
    display_name: str
    feature_label: str
    auth_name: str
    password: str
    messages_number: str
    message_waiting_lamp_policy: int
    call_waiting: int
    mailbox: str

    @property
    def auth_section(self) -> str:
        return f"{self.extension}-auth"


@dataclass(frozen=True)
class ButtonView:
    button: int
    feature_id: int
    label: str
    target: str
    feature_option_mask: int


@dataclass(frozen=True)
class PhoneView:
    config_name: str
    mac: str
    model: str
    label: str
    lines: tuple[LineView, ...]
    buttons: tuple[ButtonView, ...]
    settings: PhoneSettings


def _mailbox(site: Site, line_mailbox: str | None, extension: str) -> str:
    if line_mailbox is not None:
        return line_mailbox
    return f"{extension}@{site.mailbox_context}" if site.mailbox_context else ""


def phone_view(site: Site, settings: PhoneSettings, phone: Phone, passwords: dict[str, str]) -> PhoneView:
    lines = tuple(
        LineView(
            n, line.extension, line.display_name, line.feature_label, line.auth_name,
            passwords[line.extension],
            settings.messages_number if line.messages_number is None else line.messages_number,
            line.message_waiting_lamp_policy if line.message_waiting_lamp_policy is not None
            else settings.message_waiting_lamp_policy,
            settings.call_waiting if line.call_waiting is None else line.call_waiting,
            _mailbox(site, line.mailbox, line.extension),
        )
        for n, line in enumerate(phone.lines, start=1)
    )
    buttons = tuple(
        ButtonView(position, key.feature_id, key.label, key.target, key.feature_option_mask)
        for key, position in zip(phone.buttons, phone.button_positions())
    )
    return PhoneView(phone.config_name, phone.mac, phone.model, phone.label or "", lines, buttons, settings)


def site_view(site: Site) -> dict[str, Any]:
    """The values every phone of the site shares."""
    return {
        "asterisk_address": site.asterisk_address,
        "call_managers": [site.asterisk_address, *site.failover_addresses],
        "sip_port": site.sip_port,
        "transport": site.transport,
        "transport_layer_protocol": site.transport_code,
        "dial_template": site.dial_template,
        "pjsip_transport": site.pjsip_transport_name,
        "context": site.context,
        "hint_context": site.hint_context,
    }


# PJSIP codec names of the phones' preferredCodec; G.711 mu-law is always offered.
_PJSIP_CODECS = {"g711alaw": "alaw", "g729a": "g729", "g722": "g722"}


def pjsip_codecs(preferred: str) -> str:
    first = _PJSIP_CODECS.get(preferred)
    return f"{first},ulaw" if first else "ulaw"


def load_information(site: Site, settings: PhoneSettings, model: str) -> str:
    return settings.load_information or site.firmware.get(model, "")  # type: ignore[call-overload]


def _parser() -> etree.XMLParser:
    return etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)


def _parse(text: str, what: str) -> etree._Element:
    try:
        return etree.fromstring(text.encode("utf-8"), _parser())
    except etree.XMLSyntaxError as exc:
        raise RenderError(what, [f"template produced malformed XML: {exc}"]) from None


def _serialize(root: etree._Element, declaration: bool = True) -> bytes:
    body = etree.tostring(root, encoding="UTF-8", xml_declaration=False, pretty_print=True)
    return (XML_DECLARATION + body) if declaration else body


# A SEP file's phone part: from the phone's label to the end of its line keys;
# everything around it depends only on the site, the phone's settings and model.
PHONE_PART_START = "<phoneLabel>"
PHONE_PART_END = "</sipLines>"
PHONE_PART_PLACEHOLDER = "<tfPhonePart/>"
# The phone part alone, at its depth in the file, with what the checks require
# outside it (a callManager) so that only its own problems are reported.
PHONE_PART_WRAPPER = ("<device><devicePool><callManagerGroup><members><member><callManager><processNodeName>"
                      "x</processNodeName></callManager></member></members></callManagerGroup></devicePool>"
                      "<sipProfile>", "</sipProfile></device>")
MAX_SITE_PARTS = 256  # distinct settings remembered; beyond, files are done whole


def _site_part(head: str, tail: str) -> tuple[bytes, bytes] | None:
    """The serialized file before and after the phone part, for a site part
    that passes every check once the phone part is in place; None when the
    phone part's place cannot be shown to hold nothing but it."""
    if "<!DOCTYPE" in head or "xmlns" in head or "xmlns" in tail:  # entities, namespaces
        return None
    try:
        root = etree.fromstring((head + PHONE_PART_PLACEHOLDER + tail).encode("utf-8"), _parser())
    except etree.XMLSyntaxError:
        return None
    profile = root.find("sipProfile")
    placeholder = root.find("sipProfile/tfPhonePart")
    # The only problem may be the missing line keys (the phone part has them);
    # none of what the phone part is checked for may be here as well.
    if placeholder is None or placeholder.getparent() is not profile \
            or check_sep_config(root) != [missing_element(LINE_PATH)] \
            or root.find("sipProfile/phoneLabel") is not None:
        return None
    stamp = root.find("versionStamp")
    if stamp is None:
        return None
    stamp.text = None
    data = _serialize(root)
    line = b"\n    " + PHONE_PART_PLACEHOLDER.encode() + b"\n"
    if data.count(line) != 1 or data.count(PHONE_PART_PLACEHOLDER.encode()) != 1:
        return None
    head_bytes, tail_bytes = data.split(line)
    return head_bytes + b"\n", tail_bytes


def version_stamp(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()[:32]


_PACKAGED_LOADER = jinja2.PackageLoader("telefeatures.provisioning", "templates")
PJSIP_FRAME_TAIL = "\n"  # after the packaged PJSIP include's loop over the phones


class ConfigRenderer:
    def __init__(self, templates_dir: Path | None = None):
        loaders: list[jinja2.BaseLoader] = []
        if templates_dir is not None:
            loaders.append(jinja2.FileSystemLoader(str(templates_dir)))
        loaders.append(jinja2.PackageLoader("telefeatures.provisioning", "templates"))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            # Every value in an XML template is escaped; pjsip.conf uses |conf instead.
            autoescape=jinja2.select_autoescape(enabled_extensions=("xml.j2",), default=False),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )
        self.env.filters["conf"] = conf_value
        self.env.filters["xbool"] = xml_bool
        self.env.filters["pjsip_codecs"] = pjsip_codecs
        self.env.filters["q"] = cnf_quote
        # SEP files are checked and serialized in two parts when that is
        # provably the same (see _sep_from_parts); False: always whole.
        self.split_sep = True
        self._site_parts: dict[tuple[str, str], tuple[bytes, bytes] | None] = {}

    def phone_templates(self) -> tuple[str, ...]:
        """The templates a phone file is rendered from."""
        return (SEP_TEMPLATE, SIP_CNF_TEMPLATE, SIP_SETTINGS_TEMPLATE)

    def template_source(self, name: str) -> str:
        """A template's text, the site's override if there is one."""
        return self.env.loader.get_source(self.env, name)[0]  # type: ignore[union-attr]

    def _render(self, name: str, what: str, **context: Any) -> str:
        try:
            return self.env.get_template(name).render(**context)
        except jinja2.TemplateError as exc:
            raise RenderError(what, [f"template {name}: {exc}"]) from None
        except ValueError as exc:
            raise RenderError(what, [str(exc)]) from None

    def render_dialplan(self, site: Site) -> bytes:
        text = self._render(DIALPLAN_TEMPLATE, "dialplan.xml", templates=site.dial_templates())
        data = _serialize(_parse(text, "dialplan.xml"), declaration=False)
        problems = check_dialplan(data)
        if problems:
            raise RenderError("dialplan.xml", problems)
        return data

    def render_sep_config(self, inventory: Inventory, phone: Phone, passwords: dict[str, str],
                          dialplan: bytes = b"") -> bytes:
        """The phone's SEP<MAC>.cnf.xml. Its versionStamp is a hash of the file
        without the stamp plus the dial plan it uses, so it changes exactly when
        the phone has something new to fetch, with no state kept anywhere."""
        site = inventory.site
        settings = inventory.settings_for(phone)
        view = phone_view(site, settings, phone, passwords)
        what = phone.config_name
        text = self._render(SEP_TEMPLATE, what, site=site_view(site), s=settings, phone=view,
                            lines=view.lines, buttons=view.buttons,
                            time_zone=cisco_time_zone(settings.time_zone),
                            load_information=load_information(site, settings, phone.model),
                            version_stamp="")
        if self.split_sep:
            data = self._sep_from_parts(text, dialplan)
            if data is not None:
                return data
        root = _parse(text, what)
        problems = check_sep_config(root)
        if problems:
            raise RenderError(what, problems)
        stamp = root.find("versionStamp")
        if stamp is None:  # a site template may leave it out: the phone then always re-reads
            return _serialize(root)
        stamp.text = None
        data = _serialize(root)
        stamped = f"<versionStamp>{version_stamp(data, dialplan)}</versionStamp>".encode()
        if data.count(EMPTY_STAMP) == 1:  # one serialization instead of two
            return data.replace(EMPTY_STAMP, stamped)
        stamp.text = stamped[14:-15].decode()
        return _serialize(root)

    def _sep_from_parts(self, text: str, dialplan: bytes) -> bytes | None:
        """The SEP file of ``text`` built from a site part parsed, checked and
        serialized once per distinct settings and a phone part (phoneLabel to
        the end of sipLines) done per phone; None when that cannot be shown
        to give the very bytes of the whole-file path (which then runs, and
        reports any problem in its own words)."""
        start = text.find(PHONE_PART_START)
        end = text.rfind(PHONE_PART_END)
        if start < 0 or end < start:
            return None
        end += len(PHONE_PART_END)
        key = (text[:start], text[end:])
        site_part = self._site_parts.get(key)
        if site_part is None:
            if key in self._site_parts or len(self._site_parts) >= MAX_SITE_PARTS:
                return None
            site_part = self._site_parts[key] = _site_part(*key)
            if site_part is None:
                return None
        head, tail = site_part
        try:
            wrapper = etree.fromstring((PHONE_PART_WRAPPER[0] + text[start:end] + PHONE_PART_WRAPPER[1])
                                       .encode("utf-8"), _parser())
        except etree.XMLSyntaxError:
            return None
        profile = wrapper[1]
        # Text directly in sipProfile turns off its indentation in the whole
        # file: the wrapper would then indent differently.
        if check_sep_config(wrapper) or profile.text is not None \
                or any(not isinstance(child.tag, str) or child.tail is not None for child in profile):
            return None
        body = _serialize(wrapper, declaration=False)
        first = body.index(b"<sipProfile>\n") + len(b"<sipProfile>\n")
        data = head + body[first:body.rindex(b"  </sipProfile>\n")] + tail
        if data.count(EMPTY_STAMP) != 1:
            return None
        return data.replace(EMPTY_STAMP, f"<versionStamp>{version_stamp(data, dialplan)}</versionStamp>".encode())

    def render_xml_default(self, site: Site) -> bytes:
        loads = [
            {"model": name, "device_type_id": model.device_type_id, "description": model.description,
             "load": site.firmware[name]}
            for name, model in PHONE_MODELS.items() if name in site.firmware
        ]
        text = self._render(XML_DEFAULT_TEMPLATE, "XMLDefault.cnf.xml", site=site_view(site), loads=loads)
        root = _parse(text, "XMLDefault.cnf.xml")
        problems = check_xml_default(root)
        if problems:
            raise RenderError("XMLDefault.cnf.xml", problems)
        return _serialize(root)

    def _sip_cnf_context(self, site: Site, settings: PhoneSettings, first_line: LineView | None) -> dict[str, Any]:
        """What the 7940/7960 key: value files need beyond the settings."""
        try:
            zone, dst = sip_cnf_zone(cisco_time_zone(settings.time_zone))
        except ValueError as exc:
            raise RenderError("time_zone", [str(exc)]) from None
        if isinstance(settings.daylight_saving, DaylightSaving):
            dst = settings.daylight_saving.rule()
        elif settings.daylight_saving == "off":
            dst = None
        date = settings.date_format
        cnf = {
            "sntp_mode": NTP_MODES[settings.ntp_mode],
            "date_format": date.rstrip("aA"),
            "time_format_24hr": 0 if date[-1] in "aA" else 1,
            "dial_template": site.dial_template.removesuffix(".xml"),
            # One Messages key and one call-waiting switch per phone: line 1's.
            "messages_uri": first_line.messages_number if first_line else settings.messages_number,
            "call_waiting": first_line.call_waiting if first_line else settings.call_waiting,
        }
        return {"site": site_view(site) | {"tftp_cfg_dir": site.tftp_cfg_dir}, "s": settings, "zone": zone,
                "dst": dst, "cnf": cnf}

    def render_sip_default(self, inventory: Inventory) -> bytes:
        """SIPDefault.cnf: the site's settings for the 7940/7960."""
        site = inventory.site
        try:
            context = self._sip_cnf_context(site, inventory.settings_for_site(), None)
        except RenderError as exc:
            raise RenderError("SIPDefault.cnf", exc.problems) from None
        return self._render(SIP_DEFAULT_TEMPLATE, "SIPDefault.cnf", **context).encode("ascii")

    def render_sip_cnf(self, inventory: Inventory, phone: Phone, passwords: dict[str, str]) -> bytes:
        """SIP<MAC>.cnf: one 7940/7960's lines, firmware and settings."""
        site = inventory.site
        settings = inventory.settings_for(phone)
        view = phone_view(site, settings, phone, passwords)
        try:
            context = self._sip_cnf_context(site, settings, view.lines[0])
        except RenderError as exc:
            raise RenderError(phone.config_name, exc.problems) from None
        return self._render(SIP_CNF_TEMPLATE, phone.config_name, phone=view, lines=view.lines,
                            load_information=load_information(site, settings, phone.model),
                            **context).encode("ascii")

    def render_hints(self, inventory: Inventory) -> bytes:
        """The dialplan include with a hint per line (busy-lamp keys watch them)."""
        return self._render(HINTS_TEMPLATE, "hints include", site=site_view(inventory.site),
                            phones=inventory.phones).encode("utf-8")

    def render_pjsip(self, inventory: Inventory, passwords: dict[str, str]) -> bytes:
        site = inventory.site
        views = [phone_view(site, inventory.settings_for(phone), phone, passwords) for phone in inventory.phones]
        # config name -> the networks its endpoints accept (endpoint permit/deny ACL).
        sources = {phone.config_name: inventory.sip_sources(phone) for phone in inventory.phones}
        return self._render(PJSIP_TEMPLATE, PJSIP_WHAT, site=site_view(site), phones=views,
                            sources=sources).encode("utf-8")

    def pjsip_by_phone(self) -> bool:
        """True when the PJSIP include's templates are the packaged ones: a fixed
        head, then pjsip_phone.conf.j2 once per phone in order, then a newline
        (a site's own templates are rendered whole). Its bytes
        are then head + each phone's sections + tail, so each phone's sections
        can be rendered (or reused) on their own."""
        return all(self.template_source(name) == _PACKAGED_LOADER.get_source(self.env, name)[0]
                   for name in (PJSIP_TEMPLATE, PJSIP_PHONE_TEMPLATE))

    def render_pjsip_frame(self, inventory: Inventory) -> tuple[bytes, bytes]:
        """The PJSIP include's head and tail (see :meth:`pjsip_by_phone`)."""
        text = self._render(PJSIP_TEMPLATE, PJSIP_WHAT, site=site_view(inventory.site), phones=[], sources={})
        if not text.endswith(PJSIP_FRAME_TAIL):
            raise RenderError(PJSIP_WHAT, [f"template {PJSIP_TEMPLATE} does not end in a newline"])
        return text[:-len(PJSIP_FRAME_TAIL)].encode("utf-8"), PJSIP_FRAME_TAIL.encode("utf-8")

    def render_pjsip_phones(self, inventory: Inventory, phones: list[Phone], passwords: dict[str, str]
                            ) -> list[bytes]:
        """Each phone's sections of the PJSIP include, as the whole include
        renders them (same context, same error message for the first phone
        that fails)."""
        site = site_view(inventory.site)
        try:
            template = self.env.get_template(PJSIP_PHONE_TEMPLATE)  # once: every lookup stats the file
            return [template.render(site=site, phone=phone_view(inventory.site, inventory.settings_for(phone),
                                                                phone, passwords),
                                    sources={phone.config_name: inventory.sip_sources(phone)}).encode("utf-8")
                    for phone in phones]
        except jinja2.TemplateError as exc:
            raise RenderError(PJSIP_WHAT, [f"template {PJSIP_TEMPLATE}: {exc}"]) from None
        except ValueError as exc:
            raise RenderError(PJSIP_WHAT, [str(exc)]) from None
