"""The Cisco SIP dial-template grammar (``dialplan.xml``): patterns, the rules the
phone enforces, and a checker for a finished document.

Pattern grammar (Cisco SIP IP Phone Administrator Guide, "Creating Dial Plans",
and the usecallmanager.nz dial-template documentation):

* ``0``-``9``, ``#``, ``+``: that key;
* ``.``: exactly one key;
* ``*``: one or more keys;
* ``\\*``: a literal star (so ``\\*69`` is star-six-nine);
* ``,``: play secondary dial tone here (matches no key).

There is no ``X`` and no range such as ``[2-9]``. The checker is never
stricter than that documentation: everything it documents passes (comments,
attribute names in any case, ``Rewrite``, ``Route``, ``Tone``, ``Line``), and
every rejection names the documented rule it breaks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from lxml import etree

MAX_DIALPLAN_BYTES = 8192
USER_VALUES = frozenset({"phone", "ip"})

# Where each rule comes from, quoted in every rejection.
CISCO_GUIDE = "Cisco SIP IP Phone Administrator Guide, Creating Dial Plans"
UCM_DOCS = "usecallmanager.nz dial-template-xml"
GRAMMAR_RULE = f"{CISCO_GUIDE}: the wildcards are . * , and \\*"

# One token of a MATCH pattern: a literal star, a wildcard, a key, or the
# secondary-dial-tone mark (which matches no key).
_TOKEN = re.compile(r"\\\*|[.*,]|[0-9#+]")
_FEATURE_CODE = re.compile(r"[0-9*]{1,8}")


@lru_cache(maxsize=1024)
def _keys(pattern: str) -> tuple[str, ...]:
    """The tokens of ``pattern`` that match keys (``,`` only plays a tone)."""
    return tuple(token for token in _TOKEN.findall(pattern) if token != ",")


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a valid MATCH value, or None if it is."""
    if not pattern:
        return "empty pattern"
    if len(pattern) > 64:
        return "longer than 64 characters"
    pos = 0
    while pos < len(pattern):
        token = _TOKEN.match(pattern, pos)
        if token is None:
            char = pattern[pos]
            if char in "xX":
                return (f"{char!r} is not part of the phone's grammar (use '.' for one digit); "
                        f"{GRAMMAR_RULE}")
            if char in "[]":
                return f"ranges like [2-9] are not part of the phone's grammar; {GRAMMAR_RULE}"
            if char == "\\":
                return f"a backslash may only escape a star (\\*); {GRAMMAR_RULE}"
            return f"character {char!r} at position {pos + 1} is not allowed; {GRAMMAR_RULE}"
        pos = token.end()
    return None


def valid_pattern(pattern: str) -> str:
    problem = pattern_problem(pattern)
    if problem:
        raise ValueError(f"dial pattern {pattern!r}: {problem}")
    return pattern


def valid_feature_code(code: str) -> str:
    if not _FEATURE_CODE.fullmatch(code):
        raise ValueError(f"feature code {code!r} must be 1-8 of 0-9 and *")
    return code


def escape_code(code: str) -> str:
    """A dialled string (``*69``) as a MATCH pattern matching exactly it (``\\*69``)."""
    return code.replace("*", "\\*")


@lru_cache(maxsize=1024)
def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A Python regex accepting exactly the key sequences ``pattern`` matches."""
    parts = []
    for token in _keys(pattern):
        if token == "\\*":
            parts.append(r"\*")
        elif token == ".":
            parts.append(r"[0-9*#+]")
        elif token == "*":
            parts.append(r"[0-9*#+]+")
        else:
            parts.append(re.escape(token))
    return re.compile("".join(parts))


@lru_cache(maxsize=1024)
def literal_count(pattern: str) -> int:
    """How many keys ``pattern`` names exactly. The phone prefers, among the
    templates that fit what was dialled so far, the one with most exact keys:
    a complete template only wins over an incomplete one with more of them."""
    return sum(1 for token in _keys(pattern) if token not in (".", "*"))


def is_open_ended(pattern: str) -> bool:
    return "*" in pattern.replace("\\*", "")


@dataclass(frozen=True)
class DialTemplate:
    """One ``<TEMPLATE>``: dial ``match`` once it is complete, after ``timeout`` s."""

    match: str
    timeout: int


def build_dial_templates(
    feature_codes: list[str],
    per_call_block: str | list[str],
    extension_patterns: list[str],
    outside_patterns: list[str],
    interdigit_timeout: int,
) -> list[DialTemplate]:
    """The site's templates, most specific first, ending with a catch-all so any
    other number still dials after the inter-digit timeout. ``per_call_block``:
    the code(s) dialled in front of a number (*67, and *82 under the NANP preset)."""
    templates = [DialTemplate(escape_code(code), 0) for code in feature_codes]
    prefixes = [escape_code(code) for code in ([per_call_block] if isinstance(per_call_block, str)
                                               else per_call_block)]
    for prefix in prefixes:
        for pattern in [*extension_patterns, *outside_patterns]:
            timeout = interdigit_timeout if is_open_ended(pattern) else 0
            templates.append(DialTemplate(prefix + pattern, timeout))  # caller ID for one call
    templates += [DialTemplate(p, 0) for p in extension_patterns]
    templates += [DialTemplate(p, interdigit_timeout if is_open_ended(p) else 0) for p in outside_patterns]
    for prefix in prefixes:
        templates.append(DialTemplate(prefix + "*", interdigit_timeout))  # *67 and any other number
    templates.append(DialTemplate("*", interdigit_timeout))  # anything else, after the inter-digit timeout
    seen: set[str] = set()
    unique = []
    for template in templates:
        if template.match not in seen:
            seen.add(template.match)
            unique.append(template)
    return unique


_KEYS = frozenset("0123456789*#+")


def _positions(pattern: str, dialled: str) -> set[tuple[int, bool]]:
    """Where matching ``dialled`` against ``pattern`` can stand: (next token,
    inside a ``*`` that has taken at least one key)."""
    tokens = _keys(pattern)
    states = {(0, False)}
    for key in dialled:
        following: set[tuple[int, bool]] = set()
        for index, inside in states:
            if inside:
                following.add((index, True))  # the star takes this key too
                index += 1  # ... or is finished
            if index >= len(tokens) or key not in _KEYS:
                continue
            token = tokens[index]
            if token == "*":
                following.add((index, True))
            elif token == "." or token == key or (token == "\\*" and key == "*"):
                following.add((index + 1, False))
        states = following
    return states


def is_complete(pattern: str, dialled: str) -> bool:
    return pattern_regex(pattern).fullmatch(dialled) is not None


def _first_key_differs(tokens: tuple[str, ...], dialled: str) -> bool:
    """True if ``dialled``'s first key rules the pattern out: its first token
    names one exact key (every exact token is one key, or ``\\*``), another one.
    Such a pattern is neither complete (its regex starts with that key) nor
    extendable (nothing after the first key changes it)."""
    return bool(dialled) and bool(tokens) and tokens[0] not in (".", "*") and tokens[0] != dialled[0] \
        and not (tokens[0] == "\\*" and dialled[0] == "*")


def can_extend(pattern: str, dialled: str) -> bool:
    """True if more keys after ``dialled`` could still complete ``pattern``."""
    tokens = _keys(pattern)
    if _first_key_differs(tokens, dialled):
        return False  # the first key already differs (the common case, decided without the walk)
    size = len(tokens)
    return any(inside or index < size for index, inside in _positions(pattern, dialled))


def _decide(number: str, templates: list[DialTemplate]) -> tuple[DialTemplate | None, str | None]:
    """The firmware's rule for ``number`` as dialled so far: (the template it
    fires, None), or (None, why it does not fire yet).

    Among complete templates the firmware takes the one naming most exact keys
    (its "longest match"), and acts on it only if it names more exact keys than
    every template still waiting for keys (incomplete but extendable)."""
    complete = {id(t) for t in templates if is_complete(t.match, number)}
    at_once = [t for t in templates if t.timeout == 0 and id(t) in complete]
    if not at_once:
        return None, "no template with Timeout 0 matches it"
    best = max(at_once, key=lambda t: literal_count(t.match))
    exact = literal_count(best.match)
    for template in templates:
        if id(template) in complete:
            if literal_count(template.match) > exact:
                return None, (f"the longer match {template.match!r} wins over {best.match!r} and waits "
                              f"{template.timeout} s")
        elif literal_count(template.match) >= exact and can_extend(template.match, number):
            return None, (f"template {template.match!r} could still match with more keys and names as many "
                          f"exact keys as {best.match!r}, so the phone waits")
    return best, None


class DialDecisions:
    """The firmware's decisions for one template list, remembered per number
    dialled so far: checking a large inventory walks the same prefixes
    thousands of times."""

    def __init__(self, templates: list[DialTemplate]):
        self.templates = templates
        self._memo: dict[str, tuple[DialTemplate | None, str | None]] = {}
        self._by_first_key: dict[str, list[DialTemplate]] = {}

    def _candidates(self, number: str) -> list[DialTemplate]:
        """The templates, in order, less those whose first key differs from
        ``number``'s: they are neither complete nor extendable, so :func:`_decide`
        passes over them and decides the same without them."""
        if not number:
            return self.templates
        candidates = self._by_first_key.get(number[0])
        if candidates is None:
            candidates = self._by_first_key[number[0]] = [
                t for t in self.templates if not _first_key_differs(_keys(t.match), number)]
        return candidates

    def _decide(self, number: str) -> tuple[DialTemplate | None, str | None]:
        decision = self._memo.get(number)
        if decision is None:
            decision = self._memo[number] = _decide(number, self._candidates(number))
        return decision

    def dial_delay(self, number: str) -> str | None:
        """Why the phone would not dial ``number`` the moment it is complete, or None."""
        return self._decide(number)[1]

    def cut_short(self, number: str) -> tuple[str, str] | None:
        """If the phone would place the call before ``number`` is fully dialled,
        the prefix it would send and the template responsible; else None."""
        for end in range(1, len(number)):
            fired, _ = self._decide(number[:end])
            if fired is not None:
                return number[:end], fired.match
        return None


def dial_delay(number: str, templates: list[DialTemplate]) -> str | None:
    """Why the phone would not dial ``number`` the moment it is complete, or None."""
    return DialDecisions(templates).dial_delay(number)


def cut_short(number: str, templates: list[DialTemplate]) -> tuple[str, str] | None:
    """If the phone would place the call before ``number`` is fully dialled,
    the prefix it would send and the template responsible; else None."""
    return DialDecisions(templates).cut_short(number)


# Attribute names as documented; the phone reads them in any case (real files
# write TIMEOUT, REWRITE; usecallmanager's samples match, timeout).
TEMPLATE_ATTRIBUTES = {"match": "MATCH", "timeout": "Timeout", "user": "User", "rewrite": "Rewrite",
                       "route": "Route", "tone": "Tone", "line": "Line"}
ROOT_ELEMENTS = ("DIALTEMPLATE", "dialTemplate")  # Cisco's guide; usecallmanager's samples
_REWRITE_ESCAPE = re.compile(r"%(.?)")
_REWRITE_ESCAPES = frozenset("s012345%.")


@dataclass(frozen=True)
class DialplanProblem:
    """One broken rule; ``line`` is the line in the document (None if unknown)."""

    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


def _rewrite_problem(rewrite: str) -> str | None:
    for escape in _REWRITE_ESCAPE.finditer(rewrite):
        if escape.group(1) not in _REWRITE_ESCAPES:
            return (f"'%{escape.group(1)}' is not a substitution; {CISCO_GUIDE} and {UCM_DOCS} document "
                    "%s and %0 (all dialled), %1-%5 (groups), %% and %. (literal % and .)")
    return None


def _template_problems(template: etree._Element, where: str) -> list[str]:
    problems: list[str] = []
    if any(isinstance(child.tag, str) for child in template) or (template.text or "").strip():
        problems.append(f"{where}: <TEMPLATE> must be empty ({CISCO_GUIDE}: all of a template is in its attributes)")
    values: dict[str, str] = {}
    for name, value in template.attrib.items():
        key = name.lower()
        if key not in TEMPLATE_ATTRIBUTES:
            problems.append(f"{where}: attribute {name!r} is not allowed; {CISCO_GUIDE} documents only "
                            f"{', '.join(TEMPLATE_ATTRIBUTES.values())} (in any case)")
        elif key in values:
            problems.append(f"{where}: attribute {TEMPLATE_ATTRIBUTES[key]} given twice in different case")
        else:
            values[key] = value
    match = values.get("match")
    if match is None:
        problems.append(f"{where}: MATCH is required ({CISCO_GUIDE}: TEMPLATE MATCH=\"pattern\")")
    elif match:  # an empty pattern is a hotline (usecallmanager), dialled at once
        if problem := pattern_problem(match):
            problems.append(f"{where}: MATCH {match!r}: {problem}")
    timeout = values.get("timeout")
    if timeout is not None and not timeout.strip().isdigit():
        problems.append(f"{where}: Timeout {timeout!r} must be a whole number of seconds "
                        f"({CISCO_GUIDE}: time in seconds, 0 dials at once)")
    user = values.get("user")
    if user is not None and user.strip().lower() not in USER_VALUES:
        problems.append(f"{where}: User {user!r} must be Phone or IP ({CISCO_GUIDE}; not case-sensitive)")
    rewrite = values.get("rewrite")
    if rewrite is not None and (problem := _rewrite_problem(rewrite)):
        problems.append(f"{where}: Rewrite {rewrite!r}: {problem}")
    line = values.get("line")
    if line is not None and not (line.strip().isdigit() and int(line) >= 1):
        problems.append(f"{where}: Line {line!r} must be a line number ({UCM_DOCS}: apply to that line only)")
    for name in ("route", "tone"):
        if name in values and not values[name].strip():
            problems.append(f"{where}: {TEMPLATE_ATTRIBUTES[name]} is empty ({CISCO_GUIDE}: leave it out instead)")
    return problems


def dialplan_problems(document: bytes) -> list[DialplanProblem]:
    """Every way ``document`` breaks the documented dial-template rules ([] if none)."""
    problems: list[DialplanProblem] = []
    if len(document) > MAX_DIALPLAN_BYTES:
        problems.append(DialplanProblem(None, f"{len(document)} bytes; the phone accepts at most "
                                              f"{MAX_DIALPLAN_BYTES}"))
    try:
        root = etree.fromstring(document, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if isinstance(exc.lineno, int) and exc.lineno > 0 else None
        return problems + [DialplanProblem(line, f"not well-formed XML: {exc.msg}")]
    if root.tag not in ROOT_ELEMENTS:
        problems.append(DialplanProblem(root.sourceline, f"root element is <{root.tag}>, must be <DIALTEMPLATE> "
                                                         f"({CISCO_GUIDE}) or <dialTemplate> ({UCM_DOCS})"))
    if root.attrib:
        problems.append(DialplanProblem(root.sourceline, f"<{root.tag}> takes no attributes ({CISCO_GUIDE})"))
    if (root.text or "").strip() or any((child.tail or "").strip() for child in root):
        problems.append(DialplanProblem(root.sourceline, f"<{root.tag}> must hold only <TEMPLATE> elements "
                                                         f"and comments, no text ({CISCO_GUIDE})"))
    count = 0
    stamps = 0
    for child in root:
        if not isinstance(child.tag, str):
            continue  # comments are documented ("<!-- comment -->"); processing instructions are harmless
        if child.tag == "versionStamp" and len(child) == 0:
            stamps += 1  # usecallmanager's samples carry one
            if stamps > 1:
                problems.append(DialplanProblem(child.sourceline, f"more than one <versionStamp> ({UCM_DOCS})"))
            continue
        if child.tag != "TEMPLATE":
            hint = " (the element name must be upper-case)" if child.tag.upper() == "TEMPLATE" else ""
            problems.append(DialplanProblem(child.sourceline, f"element <{child.tag}> is not allowed{hint}; "
                                                              f"{CISCO_GUIDE} and {UCM_DOCS} document only "
                                                              "<TEMPLATE> (and <versionStamp>)"))
            continue
        count += 1
        problems += [DialplanProblem(child.sourceline, message)
                     for message in _template_problems(child, f"TEMPLATE #{count}")]
    if count == 0:
        problems.append(DialplanProblem(root.sourceline, "no <TEMPLATE> elements: the phone would dial nothing"))
    return problems


def check_dialplan(document: bytes) -> list[str]:
    """Every way ``document`` breaks the phone's dial-template rules ([] if none)."""
    return [str(problem) for problem in dialplan_problems(document)]
