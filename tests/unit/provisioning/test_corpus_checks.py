"""The SEP and XMLDefault rule checks (xml_checks) are never stricter than the
phone: every real file in ../shared/cisco-corpus/ that is well-formed XML and
holds no template placeholder passes them; the counts are printed."""

from __future__ import annotations

from telefeatures.provisioning.config_reader import PLACEHOLDER, ConfigReadError, parse_xml
from telefeatures.provisioning.xml_checks import SEP_RULES, check_sep_config, check_xml_default
from tests.support.corpus import corpus_files

# Not well-formed as found (PROVENANCE.md, "Malformed as found").
MALFORMED = {
    "NamoDev__Cisco-IP-Phone-Provisioning-Files__7942.cnf.xml",  # <authPassword[== SIP PASSWORD ==]</authPassword>
    "provisioner__Provisioner__endpoint__cisco__sip79x1G__XMLDefault.cnf.xml",  # mismatched loadInformation tags
    "waynemerricks__Cisco7942FreePBX__tftpboot__XMLDefault.cnf.xml",  # mismatched loadInformation tags
}


def _measure(subdirectories: tuple[str, ...], check) -> tuple[int, list[str], dict[str, list[str]], list[str]]:
    files = corpus_files(*subdirectories)
    passed, malformed, refused = [], [], {}
    for path in files:
        data = path.read_bytes()
        try:
            root, _ = parse_xml(data, path.name)  # an undeclared xsi: prefix is only a warning, as on the phone
        except ConfigReadError:
            malformed.append(path.name)
            continue
        problems = check(root)
        if problems:
            refused[path.name] = problems
        else:
            passed.append(path.name)
    return len(files), malformed, refused, passed


def test_corpus_sep_files_pass_the_checks_unless_they_are_templates():
    total, malformed, refused, passed = _measure(("sep", "sep-ktt-ol"), check_sep_config)
    print(f"\ncorpus SEP files: {total}; {len(malformed)} not well-formed; {len(passed)} pass the "
          f"checks; {len(refused)} refused, each a template whose placeholders break a documented limit")
    for name, problems in sorted(refused.items()):
        print(f"  {name}: {problems[0]}")
    assert set(malformed) <= MALFORMED
    for name, problems in refused.items():
        text = next(p for p in corpus_files("sep", "sep-ktt-ol") if p.name == name).read_text(errors="replace")
        assert PLACEHOLDER.search(text), (name, problems)  # only templates may fail
        # and each refusal cites the documented rule (or corpus evidence) it rests on
        assert all(any(p.endswith(f"({rule})") for rule in SEP_RULES) for p in problems), problems
    # Every well-formed file whose values are real passes: 14 real-phone files among them.
    assert sum(1 for name in passed if "ktt-ol" in name or "zheltovanton" in name) == 14
    # The corpus today: 37 files, one not well-formed, 9 templates whose placeholders break a limit.
    assert (total, len(malformed), len(refused), len(passed)) == (37, 1, 9, 27)


def test_corpus_xml_default_files_pass_the_checks():
    total, malformed, refused, passed = _measure(("xmldefault",), check_xml_default)
    print(f"\ncorpus XMLDefault files: {total}; {len(malformed)} not well-formed; {len(passed)} pass the checks")
    assert set(malformed) <= MALFORMED
    assert refused == {}
    assert len(passed) == total - len(malformed) == 8
