"""Settings precedence (flags > environment > TOML file > defaults) and validation messages."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from telefeatures.config import NORTH_AMERICAN_RULES, Settings, SettingsError, load_settings


@pytest.fixture
def toml(tmp_path):
    def write(text: str, name: str = "telefeatures.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


def test_defaults():
    s = load_settings()
    assert str(s.host) == "127.0.0.1" and s.port == 4573
    assert s.allow_peers == [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
    assert s.redis_url is None
    assert s.key_prefix == "tf:"
    assert s.features.on_state_error == "withhold"
    assert s.features.callreturn_mode == "confirm"
    assert s.features.per_call_block_codes == ["*67"]
    assert s.features.callback_rules == NORTH_AMERICAN_RULES
    assert s.metrics.enabled is False


def test_default_state_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert load_settings().state_dir == tmp_path / "telefeatures"


def test_toml_over_defaults(toml):
    path = toml('port = 5000\nkey_prefix = "site1:"\n[features]\nlegacy_block = true\n'
                'on_state_error = "allow"\n[features.prompts]\nerror = ["custom/err"]\n')
    s = load_settings(path)
    assert s.port == 5000 and s.key_prefix == "site1:"
    assert s.features.legacy_block is True
    assert s.features.on_state_error == "allow"
    assert s.features.prompts.error == ["custom/err"]
    assert s.features.prompts.cidblock_on == ["activated"]  # untouched prompts keep their default


def test_env_over_toml(toml, monkeypatch):
    path = toml('port = 5000\nredis_url = "redis://127.0.0.1:6379/1"\n[features]\nlegacy_block = true\n'
                'on_state_error = "allow"\n')
    monkeypatch.setenv("TELEFEATURES_PORT", "6000")
    monkeypatch.setenv("TELEFEATURES_FEATURES__ON_STATE_ERROR", "withhold")
    s = load_settings(path)
    assert s.port == 6000
    assert s.features.on_state_error == "withhold"
    assert s.features.legacy_block is True  # nested env merges with the file's table
    assert s.redis_url == "redis://127.0.0.1:6379/1"


def test_flags_over_env(toml, monkeypatch):
    path = toml("port = 5000\n")
    monkeypatch.setenv("TELEFEATURES_PORT", "6000")
    monkeypatch.setenv("TELEFEATURES_KEY_PREFIX", "env:")
    s = load_settings(path, port=7000, key_prefix=None)  # None = flag not given
    assert s.port == 7000
    assert s.key_prefix == "env:"


def test_config_file_from_environment(toml, monkeypatch):
    monkeypatch.setenv("TELEFEATURES_CONFIG", str(toml("port = 5001\n")))
    assert load_settings().port == 5001
    # an explicit file wins over the variable
    assert load_settings(toml("port = 5002\n", name="other.toml")).port == 5002


def test_nested_env_variables(monkeypatch):
    monkeypatch.setenv("TELEFEATURES_FEATURES__CALLRETURN_MODE", "immediate")
    monkeypatch.setenv("TELEFEATURES_FEATURES__PER_CALL_BLOCK_CODES", '["*67", "141"]')
    monkeypatch.setenv("TELEFEATURES_METRICS__ENABLED", "true")
    monkeypatch.setenv("TELEFEATURES_METRICS__PORT", "9999")
    s = load_settings()
    assert s.features.callreturn_mode == "immediate"
    assert s.features.per_call_block_codes == ["*67", "141"]
    assert s.metrics.enabled is True and s.metrics.port == 9999


@pytest.mark.parametrize(
    ("value", "nets"),
    [
        ("127.0.0.1,10.0.0.0/24", ["127.0.0.1/32", "10.0.0.0/24"]),
        (" 192.0.2.0/24 , ::1 ", ["192.0.2.0/24", "::1/128"]),
        ('["10.0.0.0/8"]', ["10.0.0.0/8"]),
    ],
)
def test_allow_peers_from_environment(monkeypatch, value, nets):
    monkeypatch.setenv("TELEFEATURES_ALLOW_PEERS", value)
    assert load_settings().allow_peers == [ipaddress.ip_network(n) for n in nets]


def test_allow_peers_from_toml_and_flags(toml):
    path = toml('allow_peers = ["10.1.0.0/16"]\n')
    assert load_settings(path).allow_peers == [ipaddress.ip_network("10.1.0.0/16")]
    assert load_settings(path, allow_peers=["127.0.0.1"]).allow_peers == [ipaddress.ip_network("127.0.0.1/32")]


def test_callback_rules_from_toml(toml):
    path = toml('[[features.callback_rules]]\nmatch = "[0-9]{4}"\nrewrite = "9\\\\g<0>"\n')
    rules = load_settings(path).features.callback_rules
    assert len(rules) == 1 and rules[0].match == "[0-9]{4}" and rules[0].rewrite == "9\\g<0>"


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"TELEFEATURES_FEATURES__ON_STATE_ERROR": "maybe"}, "features.on_state_error"),
        ({"TELEFEATURES_PORT": "0"}, "port"),
        ({"TELEFEATURES_PORT": "65536"}, "port"),
        ({"TELEFEATURES_PORT": "abc"}, "port"),
        ({"TELEFEATURES_REDIS_URL": "http://127.0.0.1:6379"}, "redis_url"),
        ({"TELEFEATURES_KEY_PREFIX": "a*b"}, "key_prefix"),
        ({"TELEFEATURES_ALLOW_PEERS": "not-a-network"}, "allow_peers"),
        ({"TELEFEATURES_ALLOW_PEERS": ""}, "allow_peers"),  # nobody could connect
        ({"TELEFEATURES_HEADER_TIMEOUT": "0"}, "header_timeout"),
        ({"TELEFEATURES_EVENT_LOOP": "trio"}, "event_loop"),
        ({"TELEFEATURES_FEATURES__CONFIRM_DIGIT": "12"}, "features.confirm_digit"),
        ({"TELEFEATURES_FEATURES__PER_CALL_BLOCK_CODES": '["*67&"]'}, "features.per_call_block_codes"),
        ({"TELEFEATURES_FEATURES__OUTBOUND_CID_NAME": "x\ty"}, "features.outbound_cid_name"),
        ({"TELEFEATURES_FEATURES__NUMBER_MIN_DIGITS": "12", "TELEFEATURES_FEATURES__NUMBER_MAX_DIGITS": "5"},
         "features"),
        ({"TELEFEATURES_FEATURES": "{not json"}, "features"),
    ],
)
def test_bad_env_value_names_the_field(monkeypatch, env, field):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert field in str(info.value)
    assert "config file" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('redis_url = "http://localhost"\n', "redis_url"),
        ("port = 70000\n", "port"),
        ("[features]\non_state_error = 1\n", "features.on_state_error"),
        ("[features]\nbogus = 1\n", "features.bogus"),
        ("unknown_setting = 1\n", "unknown_setting"),
        ('[features.prompts]\nerror = ["../../etc/passwd"]\n', "features.prompts.error"),
        ('[features.prompts]\nerror = []\n', "features.prompts.error"),
        ("[features.prompts]\nnot_a_prompt = [\"x\"]\n", "features.prompts.not_a_prompt"),
        ('[[features.callback_rules]]\nmatch = "("\nrewrite = ""\n', "features.callback_rules.0.match"),
        ('[metrics]\nport = "x"\n', "metrics.port"),
    ],
)
def test_bad_toml_value_names_the_field(toml, text, field):
    with pytest.raises(SettingsError) as info:
        load_settings(toml(text))
    assert f"'{field}'" in str(info.value)


def test_bad_flag_value_names_the_field():
    with pytest.raises(SettingsError) as info:
        load_settings(redis_url="http://127.0.0.1:6379")
    assert "redis_url" in str(info.value)
    assert "redis://" in str(info.value)


def test_several_bad_values_all_reported(monkeypatch):
    monkeypatch.setenv("TELEFEATURES_PORT", "0")
    monkeypatch.setenv("TELEFEATURES_FEATURES__ON_STATE_ERROR", "maybe")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "'port'" in str(info.value) and "'features.on_state_error'" in str(info.value)


def test_missing_config_file(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(SettingsError) as info:
        load_settings(missing)
    assert str(missing) in str(info.value)


def test_missing_config_file_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TELEFEATURES_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings()


def test_config_path_is_a_directory(tmp_path):
    with pytest.raises(SettingsError):
        load_settings(tmp_path)


def test_toml_syntax_error(toml):
    path = toml("port = \n[features\n")
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    assert str(path) in str(info.value)


def test_empty_redis_url_means_embedded(monkeypatch):
    monkeypatch.setenv("TELEFEATURES_REDIS_URL", "")
    assert load_settings().redis_url is None


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://example.invalid:6380", "unix:///run/r.sock"])
def test_redis_url_schemes(url):
    assert load_settings(redis_url=url).redis_url == url


def test_unrelated_environment_is_ignored(monkeypatch):
    monkeypatch.setenv("TELEFEATURES_SOMETHING_ELSE", "1")
    monkeypatch.setenv("PORT", "1")
    assert load_settings().port == 4573


def test_settings_class_direct_defaults_validate():
    assert Settings().port == 4573
