"""The files users copy must stay true to the code."""

from __future__ import annotations

from pathlib import Path

from telefeatures.config import Settings, load_settings

PROJECT = Path(__file__).resolve().parents[2]


def test_example_settings_load_and_document_the_real_defaults():
    example = load_settings(PROJECT / "contrib" / "telefeatures.example.toml")
    defaults = Settings()
    # The example narrows allow_peers on purpose; everything documented as a
    # default must be the default.
    assert [str(n) for n in example.allow_peers] == ["127.0.0.1/32"]
    assert example.features == defaults.features
    assert example.metrics == defaults.metrics
    assert example.tftp == defaults.tftp
    for name in ("host", "port", "key_prefix", "redis_timeout", "redis_pipelining", "max_sessions", "header_timeout",
                 "session_timeout", "shutdown_grace", "event_loop", "log_format", "log_level"):
        assert getattr(example, name) == getattr(defaults, name), name


def test_readme_commands_exist():
    readme = (PROJECT / "README.md").read_text()
    assert "pip install -e . && telefeatures serve" in readme
    assert "./scripts/test" in readme
    assert (PROJECT / ".ci" / "run").read_text().strip().endswith("exec ./scripts/test")
