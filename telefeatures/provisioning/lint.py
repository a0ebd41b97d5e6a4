"""Checks hand-written phone files with the rules the build applies to its own
(dial_templates, xml_checks), reporting ``FILE:LINE: message``."""

from __future__ import annotations

import re
from pathlib import Path

from lxml import etree

from .config_reader import PLACEHOLDER, ConfigReadError, parse_sip_conf, parse_xml
from .dial_templates import dialplan_problems
from .importer import file_kind
from .xml_checks import check_sep_config, check_xml_default

MAX_FILE_BYTES = 1024 * 1024  # phone files are a few KB; anything larger is the wrong file


def _where(path: Path, line: int | None) -> str:
    return f"{path}:{line}" if line else str(path)


def _placeholders(path: Path, text: str) -> list[str]:
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        for match in PLACEHOLDER.finditer(line):
            shown = "(in a password, not shown)" if "password" in line.lower() else repr(match.group(0))
            out.append(f"{_where(path, number)}: template placeholder {shown} left in the file")
    return out


_BUTTON = re.compile(r"line button='([^']*)'")
_ELEMENT = re.compile(r"([A-Za-z][A-Za-z0-9]*)\b")


def _line_of(root: etree._Element, problem: str) -> int | None:
    """The line of the element a rule message is about (the rules name the
    element, or the line key by its button), or None for a missing element."""
    if "is missing" in problem:
        return None
    button = _BUTTON.match(problem)
    if button:
        for line in root.iter("line"):
            if line.get("button") == button.group(1):
                return line.sourceline
    word = _ELEMENT.match(problem)
    if word:
        element = next(root.iter(word.group(1)), None)
        if element is not None:
            return element.sourceline
    return None


def lint_file(path: Path) -> list[str]:
    """Every problem of one file, each starting with ``path[:line]:``."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return [f"{path}: cannot read: {exc.strerror or exc}"]
    if len(data) > MAX_FILE_BYTES:
        return [f"{path}: larger than {MAX_FILE_BYTES // 1024} KB: not a phone file"]
    text = data.decode("utf-8", "replace")
    kind = file_kind(path)
    if kind == "dialplan":
        return [f"{_where(path, p.line)}: {p.message}" for p in dialplan_problems(data)]
    if kind in ("sep", "xmldefault"):
        try:
            root, warnings = parse_xml(data, str(path))
        except ConfigReadError as exc:
            return [f"{path}:{problem.removeprefix('line ')}" if problem.startswith("line ") else
                    f"{path}: {problem}" for problem in exc.problems]
        check = check_sep_config if kind == "sep" else check_xml_default
        return _placeholders(path, text) + [f"{_where(path, _line_of(root, problem))}: {problem}"
                                            for problem in check(root)]
    if kind in ("sip79x0", "sipdefault"):
        try:
            parse_sip_conf(text, str(path))
        except ConfigReadError as exc:
            return [f"{path}:{problem.removeprefix('line ')}" for problem in exc.problems]
        return _placeholders(path, text)
    return [f"{path}: not a phone file (SEP<MAC>.cnf.xml, XMLDefault.cnf.xml, dialplan.xml, SIP<MAC>.cnf, "
            "SIPDefault.cnf)"]
