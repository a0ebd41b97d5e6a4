"""``telefeatures provision build/check`` end to end, on real files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from telefeatures.cli import cli
from telefeatures.provisioning.dial_templates import check_dialplan
from telefeatures.provisioning.xml_checks import check_sep_config

from .conftest import SITE, phone_toml, snapshot
from .test_render import parse_pjsip

MAC_A, MAC_B = "0019E8F490AD", "0019E8F490AE"


def two_phones(display_a: str = "Alice", password_b: str | None = None) -> str:
    line_b = {"extension": "1002", "display_name": "Bob"} | ({"password": password_b} if password_b else {})
    return (SITE + phone_toml(MAC_A, "7961", "Desk1", [{"extension": "1001", "display_name": display_a}])
            + phone_toml(MAC_B, "7941G-GE", None, [line_b]))


@pytest.fixture
def site(tmp_path: Path):
    """A site directory holding the TFTP root and Asterisk's config directory."""
    (tmp_path / "site" / "tftpboot").mkdir(parents=True)
    (tmp_path / "site" / "asterisk").mkdir()
    return tmp_path / "site"


def build(site: Path, inventory: Path, *extra: str):
    args = ["provision", "build", str(inventory), "--tftp-root", str(site / "tftpboot"),
            "--pjsip", str(site / "asterisk" / "phones.conf"), *extra]
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def stamp(path: Path) -> str:
    return etree.parse(str(path)).findtext("versionStamp")


def test_build_writes_every_file_and_each_follows_the_rules(site, write_inventory):
    result = build(site, write_inventory(two_phones()))
    assert result.exit_code == 0, result.output
    root = site / "tftpboot"
    assert sorted(p.name for p in root.iterdir()) == [f"SEP{MAC_A}.cnf.xml", f"SEP{MAC_B}.cnf.xml",
                                                      "XMLDefault.cnf.xml", "dialplan.xml"]
    for name in (MAC_A, MAC_B):
        assert check_sep_config(etree.parse(str(root / f"SEP{name}.cnf.xml")).getroot()) == []
    assert check_dialplan((root / "dialplan.xml").read_bytes()) == []
    assert etree.parse(str(root / "XMLDefault.cnf.xml")).getroot().tag == "Default"
    sections = parse_pjsip((site / "asterisk" / "phones.conf").read_text())
    assert [(name, opts["type"]) for name, opts in sections] == [
        ("1001", "endpoint"), ("1001", "aor"), ("1001-auth", "auth"),
        ("1002", "endpoint"), ("1002", "aor"), ("1002-auth", "auth")]
    assert "5 added, 0 changed, 0 unchanged, 0 stale" in result.output
    assert stat.S_IMODE((root / f"SEP{MAC_A}.cnf.xml").stat().st_mode) == 0o644
    assert stat.S_IMODE((site / "asterisk" / "phones.conf").stat().st_mode) == 0o640


def test_generated_passwords_are_stored_0600_and_stable(site, write_inventory):
    inventory = write_inventory(two_phones(password_b="given-pass-1"))
    assert build(site, inventory).exit_code == 0
    secrets = site / "tftpboot.secrets.json"  # beside the TFTP root, not inside it
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    stored = json.loads(secrets.read_text())["passwords"]
    assert list(stored) == ["1001"]  # the inventory's own password is not copied
    password = etree.parse(str(site / "tftpboot" / f"SEP{MAC_A}.cnf.xml")).findtext(
        "sipProfile/sipLines/line/authPassword")
    assert password == stored["1001"]
    auth = {name: opts for name, opts in parse_pjsip((site / "asterisk" / "phones.conf").read_text())
            if opts["type"] == "auth"}
    assert auth["1001-auth"]["password"] == password
    assert auth["1002-auth"]["password"] == "given-pass-1"
    before = snapshot(site)
    result = build(site, inventory)
    assert result.exit_code == 0 and "0 added, 0 changed, 5 unchanged" in result.output
    assert snapshot(site) == before  # same passwords, same files, same inodes and mtimes


def test_secrets_path_override_and_refusal_inside_root(site, write_inventory):
    inventory = write_inventory(two_phones())
    elsewhere = site / "private" / "phones.json"
    elsewhere.parent.mkdir()
    assert build(site, inventory, "--secrets", str(elsewhere)).exit_code == 0
    assert "1001" in json.loads(elsewhere.read_text())["passwords"]
    assert not (site / "tftpboot.secrets.json").exists()
    before = snapshot(site)
    for option, path in (("--secrets", "s.json"), ("--pjsip", "sub/phones.conf")):
        (site / "tftpboot" / "sub").mkdir(exist_ok=True)
        result = CliRunner().invoke(cli, ["provision", "build", str(inventory), "--tftp-root",
                                          str(site / "tftpboot"), option, str(site / "tftpboot" / path)])
        assert result.exit_code != 0 and "is inside the TFTP root" in result.output, option
    assert snapshot(site) == before


def test_corrupt_secrets_file_stops_the_build(site, write_inventory):
    (site / "tftpboot.secrets.json").write_text("{not json")
    inventory = write_inventory(two_phones())
    before = snapshot(site)
    result = build(site, inventory)
    assert result.exit_code == 1 and "not a telefeatures secrets file" in result.output
    assert snapshot(site) == before


def test_only_changed_files_are_rewritten_and_restamped(site, write_inventory):
    assert build(site, write_inventory(two_phones())).exit_code == 0
    root = site / "tftpboot"
    before = snapshot(site)
    stamp_a, stamp_b = stamp(root / f"SEP{MAC_A}.cnf.xml"), stamp(root / f"SEP{MAC_B}.cnf.xml")
    result = build(site, write_inventory(two_phones(display_a="Alice Cooper")))
    assert result.exit_code == 0, result.output
    after = snapshot(site)
    changed = {name for name in after if after[name] != before[name]}
    # ...and the build cache beside the root, which remembers the new file.
    assert changed == {f"tftpboot/SEP{MAC_A}.cnf.xml", "asterisk/phones.conf", "tftpboot.build-cache.json"}
    assert before[f"tftpboot/SEP{MAC_B}.cnf.xml"][:2] == after[f"tftpboot/SEP{MAC_B}.cnf.xml"][:2]  # inode, mtime
    assert stamp(root / f"SEP{MAC_A}.cnf.xml") != stamp_a
    assert stamp(root / f"SEP{MAC_B}.cnf.xml") == stamp_b
    assert "0 added, 2 changed, 3 unchanged" in result.output
    assert f"changed  {root}/SEP{MAC_A}.cnf.xml" in result.output


def test_dialplan_change_restamps_every_phone(site, write_inventory):
    assert build(site, write_inventory(two_phones())).exit_code == 0
    root = site / "tftpboot"
    stamps = {mac: stamp(root / f"SEP{mac}.cnf.xml") for mac in (MAC_A, MAC_B)}
    result = build(site, write_inventory(two_phones().replace('"9911", ', "")))
    assert result.exit_code == 0
    assert "0 added, 3 changed, 2 unchanged" in result.output  # dialplan.xml and both phones
    assert all(stamp(root / f"SEP{mac}.cnf.xml") != stamps[mac] for mac in stamps)


def test_removed_phone_is_reported_not_deleted(site, write_inventory):
    assert build(site, write_inventory(two_phones())).exit_code == 0
    only_a = SITE + phone_toml(MAC_A, "7961", "Desk1", [{"extension": "1001", "display_name": "Alice"}])
    result = build(site, write_inventory(only_a))
    assert result.exit_code == 0
    stale = site / "tftpboot" / f"SEP{MAC_B}.cnf.xml"
    assert stale.exists()
    assert f"stale    {stale}" in result.output
    assert "1 stale (phone files no longer in the inventory; not deleted)" in result.output


@pytest.mark.parametrize(("text", "message"), [
    (two_phones().replace('model = "7941G-GE"', 'model = "7912"'),
     "phone #2 (mac 0019E8F490AE), model: Input should be"),
    (two_phones() + phone_toml("00:19:e8:f4:90:ad", "7911", None, [{"extension": "1003", "display_name": "C"}]),
     "phone #3 (mac 00:19:e8:f4:90:ad), mac: duplicate MAC, already used by phone #1"),
    (two_phones(display_a="x" * 31), "phone #1 (mac 0019E8F490AD, label Desk1), line #1 (extension 1001), "
                                     "display_name: 31 characters"),
    (two_phones().replace('time_zone = "America/New_York"', 'time_zone = "Atlantis/Capital"'),
     "site.time_zone: unknown time zone 'Atlantis/Capital'"),
    (two_phones() + "[[phones\n", "TOML syntax error"),
    (two_phones() + "# " + "x" * (33 * 2**20) + "\n", "larger than 32 MiB: not a phone inventory"),
    (two_phones().replace("[site]", "[site]\x00\x01"), "TOML syntax error"),
])
def test_bad_inventory_writes_nothing(site, write_inventory, text, message):
    assert build(site, write_inventory(two_phones())).exit_code == 0
    inventory = write_inventory(text)
    before = snapshot(site)
    result = build(site, inventory)
    assert result.exit_code == 1
    assert "nothing written" in result.output and message in result.output, result.output
    assert snapshot(site) == before


def test_bad_inventory_on_first_run_leaves_directories_empty(site, write_inventory):
    result = build(site, write_inventory(two_phones(display_a="Zoë")))
    assert result.exit_code == 1 and "'ë' is not ASCII" in result.output
    assert list((site / "tftpboot").iterdir()) == [] and list((site / "asterisk").iterdir()) == []
    assert not (site / "tftpboot.secrets.json").exists()


def test_broken_site_template_writes_nothing(site, write_inventory, tmp_path):
    templates = tmp_path / "site-templates"
    templates.mkdir()
    (templates / "SEP.cnf.xml.j2").write_text(
        (Path(__file__).parents[3] / "telefeatures/provisioning/templates/SEP.cnf.xml.j2").read_text()
        .replace("<proxy>USECALLMANAGER</proxy>", "<proxy>{{ line.extension[5:] }}</proxy>"))
    result = build(site, write_inventory(two_phones()), "--templates", str(templates))
    assert result.exit_code == 1
    assert (f"phone #1 (mac 00:19:e8:f4:90:ad, label Desk1): SEP{MAC_A}.cnf.xml: line button='1': proxy is "
            "empty (USECALLMANAGER or a proxy address)") in result.output
    assert f"phone #2 (mac 00:19:e8:f4:90:ae): SEP{MAC_B}.cnf.xml" in result.output
    assert list((site / "tftpboot").iterdir()) == []


def test_check_lints_without_writing(site, write_inventory, tmp_path):
    good = write_inventory(two_phones())
    result = CliRunner().invoke(cli, ["provision", "check", str(good)])
    assert result.exit_code == 0 and "ok, 2 phone(s), 2 line(s), 5 file(s)" in result.output
    bad = write_inventory(two_phones(display_a="a" * 40) + phone_toml("zz", "7961", None, []), "bad.toml")
    before = snapshot(tmp_path)
    result = CliRunner().invoke(cli, ["provision", "check", str(bad)])
    assert result.exit_code == 1
    assert "3 error(s)" in result.output and "display_name: 40 characters" in result.output
    assert snapshot(tmp_path) == before


def test_existing_file_mode_is_kept(site, write_inventory):
    inventory = write_inventory(two_phones())
    assert build(site, inventory).exit_code == 0
    pjsip = site / "asterisk" / "phones.conf"
    os.chmod(pjsip, 0o600)
    assert build(site, write_inventory(two_phones(display_a="Alicia"))).exit_code == 0
    assert stat.S_IMODE(pjsip.stat().st_mode) == 0o600
    assert '"Alicia" <1001>' in pjsip.read_text()


def test_no_temporary_files_left_behind(site, write_inventory):
    assert build(site, write_inventory(two_phones())).exit_code == 0
    assert build(site, write_inventory(two_phones(display_a="B"))).exit_code == 0
    leftovers = [p for p in site.rglob(".*") if p.is_file()]
    assert leftovers == []


def test_build_cache_renders_only_what_changed_and_repairs_edited_files(site, write_inventory, tmp_path):
    inventory = write_inventory(two_phones())
    assert build(site, inventory).exit_code == 0
    root = site / "tftpboot"
    cache = site / "tftpboot.build-cache.json"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    secrets = json.loads((site / "tftpboot.secrets.json").read_text())["passwords"]
    assert not any(password in cache.read_text() for password in secrets.values())  # digests only
    # A file edited by hand (its inputs unchanged) is rendered again and restored.
    good = (root / f"SEP{MAC_B}.cnf.xml").read_bytes()
    (root / f"SEP{MAC_B}.cnf.xml").write_bytes(good.replace(b"<natEnabled>false", b"<natEnabled>true"))
    result = build(site, inventory)
    assert result.exit_code == 0 and f"changed  {root}/SEP{MAC_B}.cnf.xml" in result.output, result.output
    assert (root / f"SEP{MAC_B}.cnf.xml").read_bytes() == good
    # A site template override counts as an input: every phone file is rendered from it.
    templates = tmp_path / "site-templates"
    templates.mkdir()
    (templates / "SEP.cnf.xml.j2").write_text(
        (Path(__file__).parents[3] / "telefeatures/provisioning/templates/SEP.cnf.xml.j2").read_text()
        .replace("<kpml>{{ s.kpml }}</kpml>", "<kpml>0</kpml>"))
    result = build(site, inventory, "--templates", str(templates))
    assert result.exit_code == 0 and "0 added, 2 changed" in result.output, result.output
    # A damaged cache only costs time.
    cache.write_text("{not json")
    result = build(site, inventory, "--templates", str(templates))
    assert result.exit_code == 0 and "0 added, 0 changed" in result.output, result.output
    assert json.loads(cache.read_text())["format"] == 2


def test_dial_templates_are_worked_out_once_per_build(site, write_inventory, monkeypatch):
    from telefeatures.provisioning import inventory as inventory_module

    calls = []
    real = inventory_module.build_dial_templates
    monkeypatch.setattr(inventory_module, "build_dial_templates", lambda *a, **k: calls.append(1) or real(*a, **k))
    result = build(site, write_inventory(two_phones()))
    assert result.exit_code == 0, result.output
    assert len(calls) == 1  # (was 3: the site check, the cross checks and the renderer)


def test_the_build_step_itself_refuses_secrets_or_pjsip_inside_the_tftp_root(site, write_inventory):
    """Every caller of the build gets the path checks, not only the command line."""
    from telefeatures.provisioning.build import BuildError, apply_plan, plan_build
    from telefeatures.provisioning.credentials import CredentialStore
    from telefeatures.provisioning.inventory import load_inventory
    from telefeatures.provisioning.render import ConfigRenderer

    inv = load_inventory(write_inventory(two_phones()))
    root = site / "tftpboot"
    before = snapshot(site)
    for secrets, pjsip, problem in (
            (root / "secrets.json", None, "secrets file"),
            (site / "secrets.json", root / "phones.conf", "--pjsip"),
            (site / "missing" / "secrets.json", None, "does not exist")):
        plan = plan_build(inv, root, ConfigRenderer(), CredentialStore(secrets), pjsip)
        with pytest.raises(BuildError) as info:
            apply_plan(plan)
        assert any(problem in error for error in info.value.errors), info.value.errors
    assert snapshot(site) == before


def test_large_build_shows_progress_on_a_terminal_only(tmp_path):
    """A big build draws a progress bar when stderr is a terminal (and its
    phones render in worker processes); piped, it prints only the summary."""
    import pty
    import select
    import subprocess
    import sys
    import time
    from concurrent.futures import ThreadPoolExecutor

    from .conftest import fleet_toml

    inventory = tmp_path / "phones.toml"
    inventory.write_text(fleet_toml(600))
    telefeatures = Path(sys.executable).with_name("telefeatures")
    outputs = []
    for name in ("tty", "pipe"):
        root = tmp_path / f"tftp-{name}"
        root.mkdir()
        command = [str(telefeatures), "provision", "build", str(inventory), "--tftp-root", str(root)]
        if name == "tty":
            # The terminal is read while the build runs: a pty holds only a
            # few KiB, and a progress bar redrawn on a slow machine fills it,
            # which would stop the build until someone reads.
            leader, follower = pty.openpty()
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=follower)
            os.close(follower)
            stdout_reader = ThreadPoolExecutor(1).submit(proc.stdout.read)
            seen, deadline = b"", time.monotonic() + 120
            while select.select([leader], [], [], max(0.0, deadline - time.monotonic()))[0]:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the build closed the terminal's last end
                    break
                if not chunk:
                    break
                seen += chunk
            else:
                proc.kill()
            os.close(leader)
            stdout = stdout_reader.result(timeout=120)
            returncode = proc.wait(timeout=120)
        else:
            done = subprocess.run(command, capture_output=True, timeout=120)
            stdout, seen, returncode = done.stdout, done.stderr, done.returncode
        assert returncode == 0, stdout + seen
        assert b"602 added" in stdout  # 600 phones, dialplan.xml, XMLDefault.cnf.xml
        assert len(list(root.glob("SEP*.cnf.xml"))) == 600
        outputs.append(seen)
    assert b"rendering" in outputs[0] and b"100%" in outputs[0], outputs[0][-500:]
    assert b"rendering" not in outputs[1]


def label_too_long_for_phones_ending_in_7(templates: Path) -> Path:
    """Site templates whose SEP file breaks for some phones (labels ending in 7)."""
    templates.mkdir()
    (templates / "SEP.cnf.xml.j2").write_text(
        (Path(__file__).parents[3] / "telefeatures/provisioning/templates/SEP.cnf.xml.j2").read_text()
        .replace("<phoneLabel>{{ phone.label }}</phoneLabel>",
                 "<phoneLabel>{{ phone.label }}{% if phone.label.endswith('7') %}-far-too-long{% endif %}"
                 "</phoneLabel>"))
    return templates


def test_parallel_rendering_gives_the_same_files_and_errors(tmp_path, monkeypatch):
    from telefeatures.provisioning import build as build_module
    from telefeatures.provisioning.build import BuildError, plan_build
    from telefeatures.provisioning.credentials import CredentialStore
    from telefeatures.provisioning.inventory import parse_inventory
    from telefeatures.provisioning.render import ConfigRenderer

    from .conftest import fleet_toml

    inventory = parse_inventory(fleet_toml(40))
    passwords = CredentialStore(tmp_path / "s.json", {str(1000 + n): f"password-{n:03d}" for n in range(40)})
    monkeypatch.setattr(build_module, "PARALLEL_FROM", 10**6)
    serial = plan_build(inventory, tmp_path, ConfigRenderer(), passwords)
    monkeypatch.setattr(build_module, "PARALLEL_FROM", 1)
    monkeypatch.setattr(build_module, "CHUNK", 7)
    parallel = plan_build(inventory, tmp_path, ConfigRenderer(), passwords)
    assert [(f.path, f.data) for f in parallel.files] == [(f.path, f.data) for f in serial.files]
    # A template that breaks for some phones: the errors come back from the workers, naming them.
    templates = label_too_long_for_phones_ending_in_7(tmp_path / "templates")
    with pytest.raises(BuildError) as info:
        plan_build(inventory, tmp_path, ConfigRenderer(templates), passwords)
    assert len(info.value.errors) == 4  # P7, P17, P27, P37
    assert info.value.errors[0].startswith("phone #8 (mac 00:19:e8:00:00:07, label P7): SEP0019E8000007.cnf.xml: "
                                           "phoneLabel 'P7-far-too-long'")


def test_pjsip_include_rendered_while_the_workers_render_is_the_same(tmp_path, monkeypatch):
    """The parent renders the PJSIP include while the worker processes render the phone files: the same
    bytes as when everything is rendered in one process, and with problems in both, the same errors in the
    same order (the phones' first, then the include's)."""
    from telefeatures.provisioning import build as build_module
    from telefeatures.provisioning.build import BuildError, plan_build
    from telefeatures.provisioning.credentials import CredentialStore
    from telefeatures.provisioning.inventory import parse_inventory
    from telefeatures.provisioning.render import ConfigRenderer, conf_value

    from .conftest import fleet_toml

    inventory = parse_inventory(fleet_toml(40))
    passwords = CredentialStore(tmp_path / "s.json", {str(1000 + n): f"password-{n:03d}" for n in range(40)})
    templates = label_too_long_for_phones_ending_in_7(tmp_path / "templates")

    def refuse_user_3(value):
        if str(value).startswith("User 3"):
            raise ValueError(f"refused {value!r}")
        return conf_value(value)

    files, errors = {}, {}
    for name, parallel_from in (("serial", 10**6), ("parallel", 1)):
        monkeypatch.setattr(build_module, "PARALLEL_FROM", parallel_from)
        monkeypatch.setattr(build_module, "CHUNK", 7)
        plan = plan_build(inventory, tmp_path / "tftp", ConfigRenderer(), passwords, tmp_path / "phones.conf")
        files[name] = [(f.path, f.data) for f in plan.files]
        broken = ConfigRenderer(templates)
        broken.env.filters["conf"] = refuse_user_3
        with pytest.raises(BuildError) as info:
            plan_build(inventory, tmp_path / "tftp", broken, passwords, tmp_path / "phones.conf")
        errors[name] = info.value.errors
    assert files["parallel"] == files["serial"]
    assert files["parallel"][-1][0] == tmp_path / "phones.conf" and b"[1039]" in files["parallel"][-1][1]
    assert errors["parallel"] == errors["serial"]
    assert len(errors["parallel"]) == 5 and errors["parallel"][-1].startswith("PJSIP include: refused 'User 3")


def test_a_build_ended_by_a_signal_leaves_no_worker_behind(tmp_path):
    """SIGTERM (a timeout, a service manager) ends a big build at once; its
    worker processes, waiting on a queue they hold open themselves, end too."""
    import signal
    import subprocess
    import sys
    import time

    from .conftest import fleet_toml
    from tests.support.processes import kill_leftovers, running

    inventory = tmp_path / "phones.toml"
    inventory.write_text(fleet_toml(900))
    (tmp_path / "tftp").mkdir()
    telefeatures = Path(sys.executable).with_name("telefeatures")
    build = subprocess.Popen([str(telefeatures), "provision", "build", str(inventory), "--tftp-root",
                              str(tmp_path / "tftp")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children: list[str] = []
    deadline = time.monotonic() + 60
    while len(children) < 2 and build.poll() is None and time.monotonic() < deadline:
        children = Path(f"/proc/{build.pid}/task/{build.pid}/children").read_text().split()
        time.sleep(0.002)
    try:
        assert len(children) >= 2, "the build never started its workers"
        build.send_signal(signal.SIGTERM)
        build.wait(30)
        deadline = time.monotonic() + 30
        while (alive := [pid for pid in children if running(pid)]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert alive == []
    finally:
        kill_leftovers(children)
