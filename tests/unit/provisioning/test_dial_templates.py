"""The dial-plan checker is never stricter than the phone's documentation, and
says which documented rule a refused file breaks. Proven on every real dial
plan in ../shared/cisco-corpus/ and on each documented construct."""

from __future__ import annotations

import re

import pytest

from telefeatures.provisioning.dial_templates import (
    CISCO_GUIDE,
    check_dialplan,
    dialplan_problems,
    is_complete,
    literal_count,
    pattern_problem,
)
from telefeatures.provisioning.inventory import parse_inventory
from tests.support.corpus import corpus_files

from .conftest import SITE, phone_toml

# The corpus dial plans that use constructs no documentation describes
# (Asterisk/CUCM-style X and [2-9] ranges). Every other one must pass.
UNDOCUMENTED = {
    "julianhead__CiscoPhones__dialplan.xml": "[2-9]XXXXXXX",
    "wazo-platform__wazo-provd-plugins__plugins__wazo_cisco_sip__common__var__tftpboot__dialplan.xml": "[1-8]..",
}


def test_every_documented_corpus_dial_plan_passes():
    files = corpus_files("dialplan")
    refused = {path.name: check_dialplan(path.read_bytes()) for path in files}
    refused = {name: problems for name, problems in refused.items() if problems}
    print(f"\ncorpus dial plans: {len(files) - len(refused)} of {len(files)} pass; "
          f"{len(refused)} refused for undocumented constructs: {', '.join(sorted(refused))}")
    assert set(refused) == set(UNDOCUMENTED)
    for name, problems in refused.items():
        assert any(UNDOCUMENTED[name] in problem for problem in problems), problems
        # Refused only for the pattern grammar, each time citing where it is documented.
        assert all("MATCH" in problem and CISCO_GUIDE in problem for problem in problems), problems


@pytest.mark.parametrize("document", [
    # Comments anywhere (the guide: "<!-- comment -->"), as 10 of 19 real files have them.
    b'<!-- site plan --><DIALTEMPLATE>\n  <!-- emergency -->\n  <TEMPLATE MATCH="911" Timeout="0"/> <!-- now -->'
    b"\n</DIALTEMPLATE>",
    # Attribute names in any case: TIMEOUT/REWRITE in real files, match/timeout in usecallmanager's.
    b'<DIALTEMPLATE><TEMPLATE MATCH="*#" TIMEOUT="0" REWRITE="%1"/><TEMPLATE match="*" timeout="3"/></DIALTEMPLATE>',
    # User is not case-sensitive.
    b'<DIALTEMPLATE><TEMPLATE MATCH="." TIMEOUT="15" User="phone"/><TEMPLATE MATCH="1.." User="ip"/></DIALTEMPLATE>',
    # Every documented attribute at once.
    b'<DIALTEMPLATE><TEMPLATE MATCH="9......." Timeout="0" User="Phone" Rewrite="%s" Route="emergency" '
    b'Tone="Bellcore-Outside" Line="1"/></DIALTEMPLATE>',
    # ',' plays secondary dial tone; '#', '\\*' and the rewrite substitutions from the guide's table.
    b'<DIALTEMPLATE><TEMPLATE MATCH="9,1.........." Timeout="0" Rewrite="919%1%2%3"/>'
    b'<TEMPLATE MATCH="\\*98...." Timeout="0" Rewrite="%0%%%."/><TEMPLATE MATCH="#31#*" Timeout="5"/></DIALTEMPLATE>',
    # usecallmanager's form: <dialTemplate> root with a versionStamp, and a hotline (empty match).
    b'<?xml version="1.0" encoding="UTF-8"?>\n<dialTemplate><versionStamp>83f69fbc</versionStamp>'
    b'<TEMPLATE match="" timeout="0" rewrite="300"/></dialTemplate>',
])
def test_documented_constructs_pass(document):
    assert check_dialplan(document) == []


@pytest.mark.parametrize(("document", "problem", "cited"), [
    (b'<DIALTEMPLATE><TEMPLATE MATCH="9XXX" Timeout="0"/></DIALTEMPLATE>', "'X' is not part of the phone's grammar",
     CISCO_GUIDE),
    (b'<DIALTEMPLATE><TEMPLATE MATCH="9[2-9]" /></DIALTEMPLATE>', "ranges like [2-9]", CISCO_GUIDE),
    (b'<DIALTEMPLATE><TEMPLATE MATCH="9!" /></DIALTEMPLATE>', "character '!' at position 2", CISCO_GUIDE),
    (b'<DIALTEMPLATE><TEMPLATE MATCH="9" Foo="1"/></DIALTEMPLATE>', "attribute 'Foo' is not allowed", CISCO_GUIDE),
    (b'<DIALTEMPLATE><template MATCH="9"/></DIALTEMPLATE>', "element <template> is not allowed (the element name "
     "must be upper-case)", "usecallmanager"),
    (b'<DIALPLAN><TEMPLATE MATCH="9"/></DIALPLAN>', "root element is <DIALPLAN>", CISCO_GUIDE),
    (b'<DIALTEMPLATE><TEMPLATE MATCH="9"><X/></TEMPLATE></DIALTEMPLATE>', "<TEMPLATE> must be empty", CISCO_GUIDE),
    (b'<DIALTEMPLATE>9<TEMPLATE MATCH="9"/></DIALTEMPLATE>', "no text", CISCO_GUIDE),
    (b'<DIALTEMPLATE><TEMPLATE Timeout="0"/></DIALTEMPLATE>', "MATCH is required", CISCO_GUIDE),
    (b'<DIALTEMPLATE><TEMPLATE MATCH="9" Timeout="soon"/></DIALTEMPLATE>', "Timeout 'soon'", CISCO_GUIDE),
    (b'<DIALTEMPLATE><TEMPLATE MATCH="9" User="pstn"/></DIALTEMPLATE>', "User 'pstn' must be Phone or IP",
     CISCO_GUIDE),
    (b'<DIALTEMPLATE><TEMPLATE MATCH="9" Rewrite="%9"/></DIALTEMPLATE>', "'%9' is not a substitution", CISCO_GUIDE),
    (b'<DIALTEMPLATE><TEMPLATE MATCH="9" Line="0"/></DIALTEMPLATE>', "Line '0' must be a line number",
     "usecallmanager"),
    (b'<DIALTEMPLATE><TEMPLATE MATCH="9" Timeout="0" TIMEOUT="5"/></DIALTEMPLATE>', "Timeout given twice", ""),
    (b"<DIALTEMPLATE><!-- nothing --></DIALTEMPLATE>", "no <TEMPLATE> elements", ""),
    (b'<DIALTEMPLATE><TEMPLATE MATCH="9"/>', "not well-formed XML", ""),
    (b"<DIALTEMPLATE>" + b'<TEMPLATE MATCH="9......." Timeout="0"/>' * 250 + b"</DIALTEMPLATE>",
     "the phone accepts at most 8192", ""),
])
def test_violations_name_the_rule(document, problem, cited):
    problems = check_dialplan(document)
    assert any(problem in p and cited in p for p in problems), problems


def test_problems_carry_the_line_of_the_template():
    document = b'<DIALTEMPLATE>\n  <TEMPLATE MATCH="1..."/>\n  <!-- x -->\n  <TEMPLATE MATCH="9XX"/>\n</DIALTEMPLATE>'
    [problem] = dialplan_problems(document)
    assert problem.line == 4 and str(problem).startswith("line 4: TEMPLATE #2: MATCH '9XX'")
    [broken] = dialplan_problems(b"<DIALTEMPLATE>\n<TEMPLATE MATCH='1'>\n</DIALTEMPLATE>")
    assert broken.line == 3 and "not well-formed" in broken.message


def test_secondary_dial_tone_mark_matches_no_key():
    assert pattern_problem("9,1..........") is None
    assert is_complete("9,.......", "95551234") and not is_complete("9,.......", "9,5551234")
    assert literal_count("9,1...") == literal_count("91...") == 2


def test_phone_grammar_matching():
    from telefeatures.provisioning.dial_templates import build_dial_templates, can_extend, dial_delay, is_complete

    assert is_complete("1...", "1001") and not can_extend("1...", "1001")
    assert is_complete("9011*", "90114") and can_extend("9011*", "90114") and not is_complete("9011*", "9011")
    assert is_complete("\\*69", "*69") and not is_complete("\\*69", "169")
    assert is_complete(".", "*")  # '.' takes any key, star included
    assert is_complete("1*5", "1225") and can_extend("1*5", "1225") and not is_complete("1*5", "15")
    templates = build_dial_templates(["*69"], "*67", ["1..."], ["9.......", "9011*"], 5)
    assert [dial_delay(n, templates) for n in ("1001", "*69", "95551234", "*6795551234")] == [None] * 4
    assert dial_delay("90114420", templates) == "the longer match '9011*' wins over '9.......' and waits 5 s"


# --- the templates an inventory's site gives ---


def test_outside_pattern_with_more_exact_keys_keeps_extension_pattern_from_firing():
    # "9......." (one exact key) must not fire on a 4-digit prefix matched by "...." (none):
    # the phone waits for the longer, more specific template.
    site = SITE.replace('extension_patterns = ["1..."]', "extension_length = 4")
    inventory = parse_inventory(site + phone_toml("0019E8F490AD", lines=[{"extension": "1001",
                                                                          "display_name": "A"}]))
    from telefeatures.provisioning.dial_templates import cut_short

    templates = inventory.site.dial_templates()
    assert cut_short("95551234", templates) is None
    assert cut_short("1001", templates) is None
    assert cut_short("99115", templates) == ("9911", "9911")


def test_an_extension_is_not_cut_short_while_a_longer_template_may_still_match():
    """'55' is complete, but '551.' names as many exact keys and could still
    match: the phone waits, so extension 5500 dials whole."""
    from telefeatures.provisioning.dial_templates import cut_short, dial_delay

    site = SITE.replace('extension_patterns = ["1..."]', 'extension_patterns = ["5..."]')
    site = re.sub(r"outside_patterns = \[[^]]*\]", 'outside_patterns = ["55", "551."]', site)
    inventory = parse_inventory(site + phone_toml("0019E8F490AD", lines=[{"extension": "5500",
                                                                          "display_name": "A"}]))
    templates = inventory.site.dial_templates()
    assert dial_delay("55", templates) is not None
    assert cut_short("5500", templates) is None


# --- the remembered decisions against the rule itself ---

# Pattern tokens (',' plays a tone only; 'x' is outside the grammar and ignored by matching).
_PATTERN_TOKENS = ["0", "1", "5", "9", "#", "+", ".", "*", "\\*", ",", "x"]
_DIALLED_KEYS = "0159#+*2"


def _templates_strategy():
    from hypothesis import strategies as st

    from telefeatures.provisioning.dial_templates import DialTemplate

    pattern = st.lists(st.sampled_from(_PATTERN_TOKENS), min_size=0, max_size=6).map("".join)
    return st.lists(st.builds(DialTemplate, pattern, st.sampled_from([0, 0, 3, 5])), min_size=1, max_size=20)


def _assert_same_decisions(templates, numbers) -> None:
    """DialDecisions (templates narrowed by the first key, remembered) decides
    every number and prefix exactly as the rule over all templates does: the
    same template object fired, the same reason word for word."""
    from telefeatures.provisioning.dial_templates import DialDecisions, _decide

    decisions = DialDecisions(templates)
    for number in numbers:
        for end in range(len(number) + 1):
            prefix = number[:end]
            fired, why = decisions._decide(prefix)
            expected_fired, expected_why = _decide(prefix, templates)
            assert fired is expected_fired and why == expected_why, (prefix, templates)
        expected_short = next(((number[:end], f.match) for end in range(1, len(number))
                               if (f := _decide(number[:end], templates)[0]) is not None), None)
        assert decisions.cut_short(number) == expected_short
        assert decisions.dial_delay(number) == _decide(number, templates)[1]


def test_remembered_decisions_equal_the_rule_for_random_templates_and_numbers():
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    numbers = st.lists(st.text(_DIALLED_KEYS, min_size=0, max_size=7), min_size=1, max_size=12)

    @settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_templates_strategy(), numbers)
    def check(templates, dialled):
        _assert_same_decisions(templates, dialled)

    check()


def test_remembered_decisions_equal_the_rule_for_site_dial_plans():
    """The templates real sites get (extension patterns, outside patterns,
    feature codes), over every number of up to four keys and a spread of longer ones."""
    import itertools

    sites = [SITE,
             SITE.replace('extension_patterns = ["1..."]', "extension_length = 4"),
             re.sub(r"outside_patterns = \[[^]]*\]", 'outside_patterns = ["55", "551.", "0*", "+*"]',
                    SITE.replace('extension_patterns = ["1..."]', 'extension_patterns = ["5...", "2.."]'))]
    numbers = ["".join(keys) for size in range(1, 5) for keys in itertools.product("0125689*#", repeat=size)]
    numbers += [f"{n:07d}" for n in range(0, 10_000_000, 99_991)] + ["95551234", "90114420123", "*72", "*#"]
    for text in sites:
        inventory = parse_inventory(text + phone_toml("0019E8F490AD", lines=[{"extension": "1001" if "1..." in text
                                                                              else "5001", "display_name": "A"}]))
        _assert_same_decisions(inventory.site.dial_templates(), numbers)
