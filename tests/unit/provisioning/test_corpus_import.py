"""``provision import`` over every real SEP<MAC>.cnf.xml and 7940/7960 file in ../shared/cisco-corpus/:
how many import, why the rest are refused, and the round trip through the real
build (import -> build -> read back) changes nothing the phone does."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from click.testing import CliRunner

from telefeatures.cli import cli
from telefeatures.provisioning.config_reader import mac_from_name, meaning_differences, read_sep, read_sip79x0
from telefeatures.provisioning.importer import import_phones
from tests.support.corpus import corpus_files

TARGET = 0.9  # of the files without template placeholders
# Templates whose placeholders are plain words, which the importer cannot tell
# from real values (it flags ###X###, [== X ==], {$x}, {{ x }}, #X#, [X], blanks
# and ALL-CAPS descriptions itself). Reviewed by reading each file; the quoted
# values are checked to be in the file.
WORD_PLACEHOLDERS = {
    "dannymcc__Cisco-7906G-SIP__SEP000000000000.cnf.xml": ["pbx-username", "Pa$$w0rd", "sip.provider.com",
                                                           "123.123.123.123"],
    "undone37__Cisco-7962G-3rd-Party-Config__SEPMAC.cnf.xml": ["<name>Label</name>", "pbx-username", "Pa$$w0rd"],
    "zheltovanton__cisco79xx-to-asterisk__SEP44E4D9444A29.cnf.xml": ["sipauth", "<authName>name</authName>",
                                                                     "sippass", "SERVERIP"],
    "zheltovanton__cisco79xx-to-asterisk__SEP0025459538B5.cnf.xml": ["SERVERIP"],
    # Portuguese "your name" / "your password"
    "alvijunior__provisionarCisco7942__SEPMACDOSEUTELEFONE.cnf.xml": ["seunome", "suasenha"],
    "Tsukuba-Telegraph-Telephone__CISCO7941__SEPXXXXXXXXXXXX.cnf.xml": ["EXT NAME",
                                                                        "<authPassword>password</authPassword>"],
}
# Files whose model the load does not tell (an admin gives --model), per PROVENANCE.md's notes.
MODELS = {"dannymcc__Cisco-7906G-SIP__SEP000000000000.cnf.xml": "7906"}


def stand_in_mac(path: Path) -> str | None:
    """A MAC for a file whose name has a placeholder instead of one (SEPMAC,
    SEPXXXXXXXXXXXX, SEP000000000000): what the admin's real file name carries."""
    mac = mac_from_name(path.name)
    if mac and mac != "000000000000":
        return None
    return "0019E8" + hashlib.sha256(path.name.encode()).hexdigest()[:6].upper()


def test_corpus_sep_files_import_and_round_trip_unchanged(tmp_path):
    files = corpus_files("sep", "sep-ktt-ol")
    imported, templates, refused, template_reasons = [], set(), {}, {}
    for path in files:
        result = import_phones([path], mac=stand_in_mac(path), model=MODELS.get(path.name))
        for placeholder in WORD_PLACEHOLDERS.get(path.name, []):
            assert placeholder in path.read_text(), (path.name, placeholder)
        if path.name in WORD_PLACEHOLDERS or (result.refused and all(r.template for r in result.refused)):
            templates.add(path.name)
        if result.imported:
            imported.append((path, result))
        elif path.name not in templates:
            refused[path.name] = [reason for r in result.refused for reason in r.reasons]
        else:
            template_reasons[path.name] = [reason for r in result.refused for reason in r.reasons]
        for refusal in result.refused:
            assert refusal.reasons, refusal.source  # a refusal always says why

    differences = 0
    for path, result in imported:
        # The real round trip: the import command writes, the build command builds, the phone file is read back.
        site = tmp_path / path.name
        (site / "tftp").mkdir(parents=True)
        inventory, secrets = site / "inventory.toml", site / "secrets.json"
        args = ["provision", "import", str(path), "-o", str(inventory), "--secrets", str(secrets)]
        args += ["--mac", stand_in_mac(path)] if stand_in_mac(path) else []
        args += ["--model", MODELS[path.name]] if path.name in MODELS else []
        written = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert written.exit_code == 0, written.output
        built = CliRunner().invoke(cli, ["provision", "build", str(inventory), "--tftp-root", str(site / "tftp"),
                                         "--secrets", str(secrets)], catch_exceptions=False)
        assert built.exit_code == 0, built.output
        [phone] = result.inventory.phones
        name = phone.config_name
        after = read_sep((site / "tftp" / name).read_bytes(), name)
        before = read_sep(path.read_bytes(), name)
        found = meaning_differences(before, after)
        differences += len(found)
        assert found == [], (path.name, found)

    usable = len(files) - len(templates)
    real = [path for path, _ in imported if path.name not in templates]
    print(f"\ncorpus SEP files: {len(files)}, {len(templates)} of them templates with placeholders; "
          f"{len(imported)} import in all, {len(real)} of the {usable} without placeholders "
          f"({len(real) / usable:.0%}); {differences} differences in meaning after import -> build")
    for name, reasons in sorted(refused.items()):
        print(f"  refused {name}: {reasons[0]}")
    for name in sorted(WORD_PLACEHOLDERS):
        if name not in {path.name for path, _ in imported}:
            print(f"  template refused {name}: {template_reasons[name][0]}")
    assert len(real) >= TARGET * usable, refused
    # What provisioning/README.md reports: 24 templates; all 13 others import; 14 of 37 in all.
    assert (len(files), len(templates), len(real), len(imported)) == (37, 24, 13, 14), refused


def test_corpus_7940_7960_files_import_or_say_why(tmp_path):
    """Each source's SIPDefault.cnf with its SIP<MAC>.cnf (as a TFTP server holds them)."""
    by_source: dict[str, list[Path]] = {}
    for path in corpus_files("sip79x0"):
        by_source.setdefault("__".join(path.name.split("__")[:2]), []).append(path)
    imported, templates, reasons, differences = [], [], {}, 0
    for source, paths in sorted(by_source.items()):
        phones = [p for p in paths if "SIPDefault" not in p.name]
        mac = stand_in_mac(phones[0]) if len(phones) == 1 else None
        result = import_phones(paths, mac=mac)
        assert all(r.reasons for r in result.refused)
        if result.refused and all(r.template for r in result.refused):
            templates.append(source)
        if not result.imported:
            reasons[source] = result.refused[0].reasons[0]
            continue
        imported.append(source)
        [item] = result.imported
        assert not any("would change" in note for note in item.notes)
        # The real round trip: the import command writes, the build command builds, the files are read back.
        site = tmp_path / source
        (site / "tftp").mkdir(parents=True)
        inventory, secrets = site / "inventory.toml", site / "secrets.json"
        written = CliRunner().invoke(cli, ["provision", "import", *map(str, paths), "-o", str(inventory),
                                           "--secrets", str(secrets), *(["--mac", mac] if mac else [])],
                                     catch_exceptions=False)
        assert written.exit_code == 0, written.output
        built = CliRunner().invoke(cli, ["provision", "build", str(inventory), "--tftp-root", str(site / "tftp"),
                                         "--secrets", str(secrets)], catch_exceptions=False)
        assert built.exit_code == 0, built.output
        [phone] = result.inventory.phones
        in_order = sorted(paths, key=lambda p: "SIPDefault" not in p.name)  # as the phone reads them
        before = read_sip79x0([(p.name, p.read_text()) for p in in_order])
        after = read_sip79x0([(name, (site / "tftp" / name).read_text())
                              for name in ("SIPDefault.cnf", phone.config_name)])
        found = meaning_differences(replace(before, mac=phone.mac), after)
        differences += len(found)
        assert found == [], (source, found)
        # Both sites still keep the firmware's old default rule (April to October), now as daylight_saving.
        assert "April week 1" in after.time_zone and "daylight_saving" in inventory.read_text()
    print(f"\ncorpus 7940/7960 sources: {len(by_source)}, {len(templates)} of them templates; {len(imported)} import "
          f"({len(imported)} of the {len(by_source) - len(templates)} without placeholders); {differences} "
          "differences in meaning after import -> build")
    for source, reason in reasons.items():
        print(f"  refused {source}{' (template)' if source in templates else ''}: {reason[:160]}")
    # As provisioning/README.md reports: 2 of the 7 import, with their own daylight-saving rule (the firmware's
    # old default); 3 are templates (2 of them also have lines that are not 'key: value'); one site has NAT on
    # with no NAT address, one a 32-character password.
    assert (len(by_source), len(templates), len(imported), differences) == (7, 3, 2, 0), reasons
    assert sorted(templates) == ["NamoDev__Cisco-IP-Phone-Provisioning-Files", "provisioner__Provisioner",
                                 "staskobzar__cisco_prov"]
    assert "not 'key: value'" in reasons["provisioner__Provisioner"]
    assert "'=' is not the separator" in reasons["staskobzar__cisco_prov"]
    assert "nat_enabled needs nat_address" in reasons["dbaldree__cisco_sip_voipfone"]
    assert "password has 32 characters" in reasons["julianhead__CiscoPhones"]
