"""The SEP and XMLDefault rule checks are never stricter than the phone: every
real-world file of the corpus that is well-formed (as the phone parses it)
and not a template with placeholders passes them."""

from __future__ import annotations

from lxml import etree

from telefeatures.provisioning.config_reader import PLACEHOLDER, ConfigReadError, parse_xml
from telefeatures.provisioning.xml_checks import check_sep_config, check_xml_default
from tests.support.corpus import corpus_files


def judge(directories: tuple[str, ...], check) -> tuple[list[str], list[str], list[str], list[str]]:
    """(passed, templates with placeholders refused, not well-formed, real files refused)"""
    passed, templates, malformed, failed = [], [], [], []
    for path in corpus_files(*directories):
        data = path.read_bytes()
        try:
            root, _warnings = parse_xml(data, path.name)
        except ConfigReadError:
            malformed.append(path.name)  # the phone cannot parse these either
            continue
        problems = check(root)
        if not problems:
            passed.append(path.name)
        elif PLACEHOLDER.search(data.decode("utf-8", "replace")):
            templates.append(path.name)
        else:
            failed.append(f"{path.name}: {problems}")
    return passed, templates, malformed, failed


def test_every_real_sep_file_passes():
    passed, templates, malformed, failed = judge(("sep", "sep-ktt-ol"), check_sep_config)
    print(f"\nSEP files: {len(passed)} pass, {len(templates)} templates with placeholders refused, "
          f"{len(malformed)} not well-formed, {len(failed)} real files refused")
    assert not failed, failed
    # The 12 files named after real phones at a running site are among those passing.
    assert sum(name.startswith("ktt-ol__") for name in passed) == 12
    assert len(passed) >= 20


def test_every_real_xml_default_passes():
    passed, templates, malformed, failed = judge(("xmldefault",), check_xml_default)
    print(f"\nXMLDefault files: {len(passed)} pass, {len(templates)} templates, {len(malformed)} not well-formed, "
          f"{len(failed)} refused")
    assert not failed and len(passed) == 8 and len(malformed) == 2, failed


def test_checks_still_catch_what_breaks_a_phone():
    root = etree.fromstring(b"<device><devicePool/><sipProfile><sipLines><line button='1'><featureID>9"
                            b"</featureID><featureLabel>x</featureLabel><proxy>USECALLMANAGER</proxy><name>1</name>"
                            b"<authName>1</authName><authPassword>p</authPassword><natEnabled>yes</natEnabled>"
                            b"</line><line button='1'><featureID>21</featureID></line></sipLines></sipProfile>"
                            b"</device>")
    problems = check_sep_config(root)
    assert any("processNodeName is missing" in p for p in problems)
    assert any("button used twice" in p for p in problems)
    assert any("featureID 21 needs speedDialNumber" in p for p in problems)
    assert any("natEnabled is 'yes'" in p for p in problems)
    assert check_xml_default(etree.fromstring(b"<Defaults/>")) == ["root element is <Defaults>, must be <Default>"]
