"""The committed example inventory builds cleanly."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from telefeatures.cli import cli
from telefeatures.provisioning.inventory import load_inventory

EXAMPLE = Path(__file__).parents[3] / "provisioning" / "inventory.example.toml"


def test_example_inventory_is_valid_and_builds(tmp_path):
    inventory = load_inventory(EXAMPLE)
    assert [p.model for p in inventory.phones] == ["7961", "7941G-GE", "7911"]
    assert inventory.phones[1].lines[0].display_name == "Sales & Support"
    result = CliRunner().invoke(cli, ["provision", "check", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    root = tmp_path / "tftp"
    root.mkdir()
    result = CliRunner().invoke(cli, ["provision", "build", str(EXAMPLE), "--tftp-root", str(root),
                                      "--pjsip", str(tmp_path / "phones.conf")])
    assert result.exit_code == 0, result.output
    assert "6 added, 0 changed" in result.output
    default = (root / "XMLDefault.cnf.xml").read_text()
    for device_type in (30018, 308, 115, 309, 307):
        assert f"<loadInformation{device_type} " in default
