"""Feature codes from one table: the shipped Asterisk [tf-features], the
phones' dial plan, ``provision build --codes``, the NANP preset and the
server's per-call codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from telefeatures.cli import cli
from telefeatures.codes import FEATURE_CODES, check_codes, features_context, preset_codes
from telefeatures.features.base import Status
from telefeatures.features.numbers import InvalidNumber, NumberRules, parse_dialed_choice
from telefeatures.provisioning.inventory import parse_inventory
from telefeatures.provisioning.render import ConfigRenderer
from tests.support.asterisk_peer import scripted_channel
from tests.unit.provisioning.conftest import SITE, phone_toml
from tests.unit.provisioning.test_render import parse

PROJECT = Path(__file__).resolve().parents[2]
NANP_SITE = SITE.replace("[site.dial_rules]", '[site.feature_codes]\npreset = "nanp"\n[site.dial_rules]')


def test_shipped_codes_file_is_the_table_with_default_codes():
    shipped = (PROJECT / "dialplan" / "telefeatures-codes.conf").read_text()
    assert shipped == features_context(preset_codes("default"))
    assert "#include telefeatures/telefeatures-codes.conf" in (PROJECT / "dialplan" / "telefeatures.conf").read_text()


def test_every_route_has_a_code():
    from telefeatures.app import ROUTES

    spoken = {code.route for code in FEATURE_CODES}
    assert spoken <= set(ROUTES)
    assert {"callblock/last", "callblock/clear", "anonreject/on", "anonreject/off"} <= spoken


def test_presets():
    default, nanp = preset_codes("default"), preset_codes("nanp")
    assert (default["block_off"], default["per_call_show"]) == ("*82", None)
    assert (nanp["block_off"], nanp["per_call_show"], nanp["block_on"]) == ("*86", "*82", "*81")
    assert (default["callblock_last"], default["callblock_clear"]) == ("*60", "*80")
    assert (default["anonreject_on"], default["anonreject_off"]) == ("*77", "*87")
    with pytest.raises(ValueError, match="unknown preset"):
        preset_codes("uk")


def test_nanp_context_passes_per_call_codes_in_canonical_form():
    text = features_context(preset_codes("nanp"))
    assert "exten => *86,1,Gosub(tf-feature,s,1(cidblock/off))" in text
    assert "exten => _*82X.,1,Gosub(tf-outbound-call,s,1(*82${EXTEN:3}))" in text
    assert "exten => *82,1" not in text
    custom = {**preset_codes("default"), "per_call_block": "*99"}
    assert "exten => _*99X.,1,Gosub(tf-outbound-call,s,1(*67${EXTEN:3}))" in features_context(custom)


@pytest.mark.parametrize(("codes", "message"), [
    ({"a": "*82", "b": "*82"}, "given to both a and b"),
    ({"a": "*6#"}, "must be 1-8 of 0-9 and *"),
    ({"a": "*1,1"}, "must be 1-8"),
    ({"a": "*60&PJSIP/x"}, "must be 1-8"),
    ({"a": ""}, "must be 1-8"),
])
def test_bad_codes_refused(codes, message):
    with pytest.raises(ValueError, match=message):
        check_codes(codes)


# --------------------------------------------------------------------------- phones' dial plan


def test_default_phone_dial_plan_dials_the_new_codes_at_once():
    matches = [t.get("MATCH") for t in parse(ConfigRenderer().render_dialplan(parse_inventory(SITE).site))]
    for code in ("\\*60", "\\*80", "\\*77", "\\*87", "\\*82"):
        assert code in matches
    assert not any(m.startswith("\\*82") and m != "\\*82" for m in matches)


def test_nanp_phone_dial_plan():
    inv = parse_inventory(NANP_SITE)
    assert inv.site.feature_codes.block_off == "*86" and inv.site.feature_codes.per_call_show == "*82"
    matches = [t.get("MATCH") for t in parse(ConfigRenderer().render_dialplan(inv.site))]
    assert "\\*86" in matches and "\\*82" not in matches
    assert "\\*829......." in matches and "\\*82*" in matches  # *82 + an outside number
    assert "\\*679......." in matches


def test_a_code_set_in_the_inventory_beats_the_preset():
    site = NANP_SITE.replace('preset = "nanp"', 'preset = "nanp"\nblock_off = "*85"')
    assert parse_inventory(site).site.feature_codes.block_off == "*85"
    clash = NANP_SITE.replace('preset = "nanp"', 'preset = "nanp"\nanonreject_on = "*82"')
    with pytest.raises(Exception, match="feature codes must all be different"):
        parse_inventory(clash)


def test_build_writes_the_asterisk_codes_the_phones_have(tmp_path):
    inventory = tmp_path / "phones.toml"
    inventory.write_text(NANP_SITE + phone_toml("0019E8F490AD", "7961", "A", [
        {"extension": "1000", "display_name": "Alice", "password": "x" * 12}]))
    root = tmp_path / "tftp"
    root.mkdir()
    codes = tmp_path / "telefeatures-codes.conf"
    result = CliRunner().invoke(cli, ["provision", "build", str(inventory), "--tftp-root", str(root),
                                      "--codes", str(codes)])
    assert result.exit_code == 0, result.output
    assert codes.read_text() == features_context(preset_codes("nanp"))
    result = CliRunner().invoke(cli, ["provision", "build", str(inventory), "--tftp-root", str(root),
                                      "--codes", str(tmp_path / "missing" / "c.conf")])
    assert result.exit_code != 0 and "directory of --codes" in result.output


# --------------------------------------------------------------------------- the server's per-call codes


RULES = NumberRules()


@pytest.mark.parametrize(("dialed", "number", "choice"), [
    ("*675552345678", "5552345678", True),
    ("*825552345678", "5552345678", False),
    ("5552345678", "5552345678", None),
])
def test_parse_dialed_choice(dialed, number, choice):
    assert parse_dialed_choice(dialed, ["*67"], ["*82"], RULES) == (number, choice)


@pytest.mark.parametrize("dialed", ["*82", "*82*675552345678", "*82555&PJSIP/x", "*82٥٥٥١٢٣٤٥٦٧"])
def test_parse_dialed_choice_refuses(dialed):
    with pytest.raises(InvalidNumber):
        parse_dialed_choice(dialed, ["*67"], ["*82"], RULES)


async def run_outbound(app, dialed):
    channel, asterisk = scripted_channel("outbound", ["1000", dialed])
    call = app.describe("outbound", channel.request)
    return await app.handle(channel, call), asterisk


async def test_star82_shows_caller_id_for_one_call_although_blocking_is_on(backend, make_app):
    app = make_app(backend.repository)
    await backend.repository.set_blocked("1000", True)
    outcome, ast = await run_outbound(app, "*825552345678")
    assert (outcome.status, outcome.dial) == (Status.OK, "5552345678")
    assert ast.variables["CALLERID(pres)"] == "allowed"
    outcome, ast = await run_outbound(app, "5552345678")
    assert ast.variables["CALLERID(pres)"] == "prohib"  # the next call is withheld again


async def test_star82_needs_no_redis(down_backend, make_app):
    outcome, ast = await run_outbound(make_app(down_backend.repository), "*825552345678")
    assert outcome.status is Status.OK and ast.variables["CALLERID(pres)"] == "allowed"
