"""Line keys are checked by their first child of each name, as the firmware
(and ElementTree's find) reads them; comments among them change nothing."""

from __future__ import annotations

from lxml import etree

from telefeatures.provisioning.xml_checks import LINE_FIELD_RULE, LINE_RULE, TARGET_RULE, _check_line_keys

LINE = ('<line button="1"><featureID>9</featureID><!-- note --><featureLabel>{first}</featureLabel>'
        '<featureLabel>{second}</featureLabel><proxy>{proxy}</proxy><proxy>USECALLMANAGER</proxy>'
        '<name>1001</name><authName>1001</authName><authPassword>pw</authPassword></line>')


def problems(**values: str) -> list[str]:
    return _check_line_keys([etree.fromstring(LINE.format(**values))])


def test_the_first_of_two_children_is_the_one_checked():
    assert problems(first="Front", second="x" * 50, proxy="USECALLMANAGER") == []
    assert problems(first="x" * 50, second="Front", proxy="USECALLMANAGER") == [
        f"line button='1': featureLabel is 50 characters, the limit is 30 ({LINE_FIELD_RULE})"]
    assert problems(first="Front", second="Front", proxy=" ") == [
        f"line button='1': proxy is empty (USECALLMANAGER or a proxy address) ({LINE_RULE})"]


def test_a_comment_or_instruction_is_no_field():
    line = etree.fromstring('<line button="2"><featureID>2</featureID><!-- speedDialNumber --><?speedDialNumber?></line>')
    assert _check_line_keys([line]) == [f"line button='2': featureID 2 needs speedDialNumber ({TARGET_RULE})"]
