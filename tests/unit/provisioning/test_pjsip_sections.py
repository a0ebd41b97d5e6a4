"""The PJSIP include built from each phone's sections (an unchanged phone's
taken from the include on disk, the others rendered) is byte for byte the
include rendered whole, and refuses exactly what it refuses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from telefeatures.provisioning.build import BuildError, apply_plan, plan_build
from telefeatures.provisioning.build_cache import BuildCache, default_cache_path
from telefeatures.provisioning.credentials import CredentialStore
from telefeatures.provisioning.inventory import parse_inventory
from telefeatures.provisioning.render import PJSIP_PHONE_TEMPLATE, ConfigRenderer, RenderError, conf_value

from .conftest import fleet_toml
from .test_render_parts import EXAMPLE, varied_inventory


class CountingRenderer(ConfigRenderer):
    """Counts the phones whose PJSIP sections are rendered (not reused)."""

    def __init__(self, templates_dir: Path | None = None):
        super().__init__(templates_dir)
        self.templates_dir = templates_dir
        self.sections_rendered = 0

    def render_pjsip_phones(self, inventory, phones, passwords) -> list[bytes]:
        self.sections_rendered += len(phones)
        return super().render_pjsip_phones(inventory, phones, passwords)


def build(tmp_path: Path, text: str, renderer: ConfigRenderer | None = None) -> tuple[bytes, ConfigRenderer]:
    """Build ``text`` (with the build cache) and return the include written
    and the renderer; assert it is the include rendered whole."""
    root, pjsip, secrets = tmp_path / "tftp", tmp_path / "phones.conf", tmp_path / "secrets.json"
    root.mkdir(exist_ok=True)
    renderer = renderer or CountingRenderer()
    inventory = parse_inventory(text)
    credentials = CredentialStore.load(secrets)
    plan = plan_build(inventory, root, renderer, credentials, pjsip,
                      cache=BuildCache.load(default_cache_path(root)))
    apply_plan(plan)
    passwords = {line.extension: credentials.password_for(line.extension, inventory.site.auth_password_max_length)
                 for phone in inventory.phones for line in phone.lines}
    passwords |= {line.extension: line.password for phone in inventory.phones for line in phone.lines
                  if line.password}
    whole = ConfigRenderer(getattr(renderer, "templates_dir", None)).render_pjsip(inventory, passwords)
    written = pjsip.read_bytes()
    assert written == whole
    return written, renderer


INVENTORIES = {
    "varied": lambda: varied_inventory(60),
    "example": lambda: EXAMPLE.read_text(),
    "fleet": lambda: fleet_toml(40),
}


@pytest.mark.parametrize("name", sorted(INVENTORIES))
def test_reused_sections_give_the_include_rendered_whole(tmp_path, name):
    text = INVENTORIES[name]()
    count = len(parse_inventory(text).phones)
    first, renderer = build(tmp_path, text)
    assert renderer.sections_rendered == count
    again, renderer = build(tmp_path, text)
    assert again == first and renderer.sections_rendered == 0  # every phone's sections reused
    # One phone's display name changed: only its sections are rendered again.
    changed = text.replace('display_name = "', 'display_name = "New ', 1)
    assert changed != text
    third, renderer = build(tmp_path, changed)
    assert third != first and renderer.sections_rendered == 1


def test_phones_added_removed_and_reordered(tmp_path):
    text = fleet_toml(30)
    build(tmp_path, text)
    head, *phones = text.split("\n[[phones]]")
    reordered = head + "".join("\n[[phones]]" + p for p in reversed(phones[5:] + phones[:3]))
    _, renderer = build(tmp_path, reordered)
    assert renderer.sections_rendered == 0
    added = reordered + fleet_toml(3, start=1900).split("\n[[phones]]", 1)[1].join(["\n[[phones]]", ""]) \
        .replace("0019E8", "0019E9")
    _, renderer = build(tmp_path, added)
    assert renderer.sections_rendered == 3


def test_what_only_the_include_uses_renders_the_sections_again(tmp_path):
    """The networks an endpoint accepts come from [dhcp] (not part of a phone
    file's inputs): a new subnet must reach every section."""
    text = EXAMPLE.read_text()
    first, _ = build(tmp_path, text)
    moved = text.replace('subnet = "192.0.2.0/24"', 'subnet = "192.0.0.0/16"')
    assert moved != text
    second, renderer = build(tmp_path, moved)
    assert second != first and b"192.0.0.0/16" in second
    assert renderer.sections_rendered == len([p for p in parse_inventory(moved).phones if not p.ip])


def test_an_include_changed_on_disk_is_not_reused(tmp_path):
    text = varied_inventory(20)
    first, _ = build(tmp_path, text)
    pjsip = tmp_path / "phones.conf"
    for damaged in (first.replace(b"type = aor", b"type = AOR", 1), first[:-1], first + b"; edited\n"):
        pjsip.write_bytes(damaged)
        again, renderer = build(tmp_path, text)
        assert again == first and renderer.sections_rendered == 20
    # Same size and modification time, but a recorded section no longer adds up: rendered again.
    cache = BuildCache.load(default_cache_path(tmp_path / "tftp"))
    entry = cache.sections["phones.conf"]
    entry[4][0][1] += 1
    entry[4][1][1] -= 1
    head = first[:entry[3]]
    assert cache.reusable_sections(pjsip, head, b"\n") != {}  # the lengths still add up ...
    entry[4][0][1] += 10_000_000
    assert cache.reusable_sections(pjsip, head, b"\n") == {}  # ... these do not
    os.utime(pjsip, ns=(1, 1))
    assert BuildCache.load(default_cache_path(tmp_path / "tftp")).reusable_sections(pjsip, head, b"\n") == {}


def test_a_sites_own_pjsip_templates_are_rendered_whole(tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / PJSIP_PHONE_TEMPLATE).write_text(
        "{% for line in phone.lines %}\n[{{ line.extension|conf }}] ; #{{ loop.index }} of {{ phones|length }}\n"
        "type = endpoint\n{% endfor %}")
    renderer = CountingRenderer(templates)
    assert not renderer.pjsip_by_phone() and ConfigRenderer().pjsip_by_phone()
    text = fleet_toml(5)
    first, renderer = build(tmp_path, text, renderer)
    assert renderer.sections_rendered == 0 and b"of 5\n" in first


def test_the_same_error_as_the_whole_include(tmp_path):
    """A value the include cannot hold stops the build with the message the
    whole include's render gives, while the other phones' sections are reused."""
    text = fleet_toml(12)
    build(tmp_path, text)
    errors = []
    for renderer in (ConfigRenderer(), ConfigRenderer()):
        def refuse_user_7(value, _conf=conf_value):
            if str(value).startswith("User 7"):
                raise ValueError(f"refused {value!r}")
            return _conf(value)
        renderer.env.filters["conf"] = refuse_user_7
        inventory = parse_inventory(text.replace("User 3", "User 3b").replace("User 7", "User 7b"))
        if not errors:
            passwords = {line.extension: "pw" for phone in inventory.phones for line in phone.lines}
            with pytest.raises(RenderError) as whole:
                renderer.render_pjsip(inventory, passwords)
            errors.append(whole.value.lines())
            continue
        root = tmp_path / "tftp"
        with pytest.raises(BuildError) as info:
            plan_build(inventory, root, renderer, CredentialStore.load(tmp_path / "secrets.json"),
                       tmp_path / "phones.conf", cache=BuildCache.load(default_cache_path(root)))
        errors.append(info.value.errors)
    assert errors[0] == errors[1] == ["PJSIP include: refused 'User 7b'"]
