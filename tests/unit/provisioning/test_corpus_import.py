"""``provision import`` over every real SEP<MAC>.cnf.xml in ../shared/cisco-corpus/:
how many import, why the rest are refused, and the round trip through the real
build (import -> build -> read back) changes nothing the phone does."""

from __future__ import annotations

import hashlib
from pathlib import Path

from click.testing import CliRunner

from telefeatures.cli import cli
from telefeatures.provisioning.config_reader import mac_from_name, meaning_differences, read_sep
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
    imported, reasons = 0, {}
    for source, paths in sorted(by_source.items()):
        phones = [p for p in paths if "SIPDefault" not in p.name]
        result = import_phones(paths, mac=stand_in_mac(phones[0]) if len(phones) == 1 else None)
        assert all(r.reasons for r in result.refused)
        if result.imported:
            imported += 1
            [item] = result.imported
            # The importer itself proved the round trip; nothing it reports may be a difference in meaning.
            assert not any("would change" in note for note in item.notes)
        else:
            reasons[source] = result.refused[0].reasons[0]
    print(f"\ncorpus 7940/7960 sources: {len(by_source)}; {imported} import")
    for source, reason in reasons.items():
        print(f"  refused {source}: {reason[:160]}")
    # The firmware's default daylight rule (April to October) is no zone's current rule: such a phone is
    # refused with that reason instead of silently getting another clock.
    kinds = sorted("daylight-saving" if "daylight-saving" in r else "placeholder" if "placeholder" in r
                   else "syntax" if "not 'key: value'" in r else r for r in reasons.values())
    # As provisioning/README.md reports: none of the 7 imports; 4 on the old default daylight rule, 3 templates
    # or not 'key: value'.
    assert (len(by_source), imported) == (7, 0)
    assert kinds == ["daylight-saving"] * 4 + ["placeholder"] + ["syntax"] * 2, reasons
