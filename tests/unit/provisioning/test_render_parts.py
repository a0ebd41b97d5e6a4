"""SEP files checked and serialized in two parts (the site part once per
distinct settings, the phone part per phone) are byte for byte the files of
the whole-file path, and refuse exactly what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from telefeatures.provisioning.devices import XML_FORMAT
from telefeatures.provisioning.inventory import parse_inventory
from telefeatures.provisioning.render import ConfigRenderer, RenderError, SEP_TEMPLATE

from .conftest import SITE, toml_string

EXAMPLE = Path(__file__).parents[3] / "provisioning" / "inventory.example.toml"

# Per-phone settings that change the site part, in turn.
OVERRIDES = [
    "",
    'time_zone = "America/Chicago"\n',
    'nat_enabled = true\nnat_address = "198.51.100.7"\n',
    'vendor_config = { pcPort = 1, garp = true }\n',
    'phone_ssh_access = true\nssh_user_id = "admin"\nssh_password = "s3cret-pw"\n',
    'user_locale = "German_Germany"\nuser_locale_lang_code = "de_DE"\nnetwork_locale = "Germany"\n',
    'backup_proxy = "192.0.2.11"\nidle_url = "http://192.0.2.10/idle.xml?a=1&b=2"\n',
    'preferred_codec = "g722"\nphone_web_access = true\ndate_format = "D.M.Y"\n',
]
MODELS = ["7961", "7970", "7965", "7975", "7962", "7961G-GE"]
NAMES = ['Sales & Support', "O'Brien & Sons", "Lobby", "x" * 30, "Front Desk 2"]


def varied_inventory(count: int = 60) -> str:
    parts = [SITE]
    for n in range(count):
        phone = (f'\n[[phones]]\nmac = "0019E8{n:06X}"\nmodel = "{MODELS[n % len(MODELS)]}"\n'
                 + (f'label = {toml_string(["R&D", "<Lab>", "Front", "x" * 12][n % 4])}\n' if n % 5 else "")
                 + OVERRIDES[n % len(OVERRIDES)])
        for j in range(1 + n % 3):
            phone += ("[[phones.lines]]\n" f'extension = "{1000 + 3 * n + j}"\n'
                      f"display_name = {toml_string(NAMES[(n + j) % len(NAMES)])}\n")
            if n % 4 == 1:
                phone += 'call_waiting = 1\nmailbox = ""\nmessages_number = "*98"\n'
        if n % 6 == 2:
            phone += ('[[phones.buttons]]\ntype = "speed_dial"\nlabel = "Taxi & Co"\nnumber = "5550100"\n'
                      '[[phones.buttons]]\ntype = "service"\nlabel = "Menu"\nurl = "http://192.0.2.10/m.xml?x=1&y=2"\n'
                      '[[phones.buttons]]\ntype = "blf"\nlabel = "Boss"\nextension = "1000"\n')
        parts.append(phone)
    return "".join(parts)


def render_all(renderer: ConfigRenderer, inventory, split: bool) -> list[bytes | list[str]]:
    """Every SEP file of the inventory, or the problems that refused it."""
    renderer.split_sep = split
    passwords = {line.extension: f"pw-{line.extension}-x" for p in inventory.phones for line in p.lines}
    dialplan = renderer.render_dialplan(inventory.site)
    out: list[bytes | list[str]] = []
    for phone in inventory.phones:
        if phone.config_format != XML_FORMAT:
            continue
        try:
            out.append(renderer.render_sep_config(inventory, phone, passwords, dialplan))
        except RenderError as exc:
            out.append(exc.lines())
    return out


def test_varied_inventory_gives_the_same_bytes_in_parts_as_whole():
    inventory = parse_inventory(varied_inventory())
    assert len({inventory.settings_for(p).model_dump_json() for p in inventory.phones}) >= len(OVERRIDES)
    renderer = ConfigRenderer()
    split = render_all(renderer, inventory, split=True)
    assert len(split) == 60 and all(isinstance(data, bytes) for data in split)
    # The parts were used: one site part per distinct settings and firmware, all usable.
    assert len(renderer._site_parts) >= len(OVERRIDES) and None not in renderer._site_parts.values()
    assert split == render_all(ConfigRenderer(), inventory, split=False)


def test_example_inventory_gives_the_same_bytes_in_parts_as_whole():
    inventory = parse_inventory(EXAMPLE.read_text(encoding="utf-8"))
    renderer = ConfigRenderer()
    split = render_all(renderer, inventory, split=True)
    assert split and None not in renderer._site_parts.values()
    assert split == render_all(ConfigRenderer(), inventory, split=False)


def site_template(tmp_path: Path, old: str, new: str) -> Path:
    """A site's own SEP template: the packaged one with ``old`` replaced."""
    text = ConfigRenderer().template_source(SEP_TEMPLATE)
    assert old in text
    (tmp_path / SEP_TEMPLATE).write_text(text.replace(old, new), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("old, new", [
    # Per-phone data outside the phone part: a site part per phone.
    ("<deviceProtocol>SIP</deviceProtocol>", "<deviceProtocol>SIP</deviceProtocol><!-- {{ phone.mac }} -->"),
    # Text directly in sipProfile: the whole file is then written unindented there.
    ("<natEnabled>", "tf<natEnabled>"),
    # Text in sipProfile inside the phone part only.
    ("<sipLines>", "{{ phone.label }}<sipLines>"),
    # The phone part twice; a second label outside it.
    ("<stutterMsgWaiting>", "<phoneLabel>x</phoneLabel><stutterMsgWaiting>"),
    ("<voipControlPort>", "<sipLines></sipLines><voipControlPort>"),
    # A versionStamp kept by the site, none at all, and one with the empty stamp written twice.
    ("<versionStamp>{{ version_stamp }}</versionStamp>", "<versionStamp>1234</versionStamp>"),
    ("<versionStamp>{{ version_stamp }}</versionStamp>", ""),
    ("<deviceSecurityMode>", "<x><versionStamp/></x><deviceSecurityMode>"),
    # Problems: a label too long for some phones, a bad boolean in the site part, none in the phone part.
    ("<phoneLabel>{{ phone.label }}</phoneLabel>", "<phoneLabel>{{ phone.label }}{{ phone.label }}</phoneLabel>"),
    ("<autoAnswerOverride>true", "<autoAnswerOverride>TRUE"),
    ("<sharedLine>false", "<sharedLine>False"),
    ("<featureID>9</featureID>", "<featureID>{{ 9 if line.button == 1 else 'x' }}</featureID>"),
    # A default namespace would put the phone part in it.
    ("<device>", '<device xmlns="urn:x">'),
])
def test_site_templates_give_the_same_bytes_and_problems_in_parts_as_whole(tmp_path, old, new):
    templates = site_template(tmp_path, old, new)
    inventory = parse_inventory(varied_inventory(30))
    split = render_all(ConfigRenderer(templates), inventory, split=True)
    assert split == render_all(ConfigRenderer(templates), inventory, split=False)
