"""The PBX keeps dialing when the feature server or Redis is down, and the
classic telefeatures-agi entry point runs the same features."""

from __future__ import annotations

from tests.integration.e2e import assert_anonymous, assert_presented, outbound, played, star
from tests.testbed.services import KEYS, KEY_PREFIX


def test_outbound_still_dials_when_the_feature_server_is_down(asterisk, feature_server, provider, sipp, redis_state):
    assert redis_state.get(KEYS.cidblock("1000")) is None  # unblocked: the server would show the ID
    assert feature_server.stop() == 0
    try:
        offset = asterisk.log_offset()
        invite = outbound(sipp, provider, "1000")
        # TF_FALLBACK_PRES defaults to prohib: privacy first.
        assert_anonymous(invite, "1000")
        assert "fallback presentation" in asterisk.log_since(offset)

        offset = asterisk.log_offset()
        star(sipp, "1000", "*81", hold_ms=8000)
        assert played(asterisk, offset, "sorry") and played(asterisk, offset, "please-try-call-later")
        assert redis_state.get(KEYS.cidblock("1000")) is None
    finally:
        feature_server.start()
    assert_presented(outbound(sipp, provider, "1000"), "1000", "Alice")


def test_outbound_still_dials_when_redis_is_down(asterisk, feature_server, redis_server, provider, sipp, redis_state):
    redis_state.close()
    redis_server.stop()
    try:
        log_at = feature_server.log_offset()
        # on_state_error = withhold: an unblocked phone still goes out withheld.
        assert_anonymous(outbound(sipp, provider, "1000"), "1000")
        assert any("route=outbound ext=1000 status=ERROR reason=state-error" in s
                   for s in feature_server.sessions_since(log_at))

        offset, log_at = asterisk.log_offset(), feature_server.log_offset()
        star(sipp, "1000", "*81", hold_ms=8000)
        assert played(asterisk, offset, "sorry") and not played(asterisk, offset, "activated")
        assert any("route=cidblock/on ext=1000 status=ERROR reason=state-error" in s
                   for s in feature_server.sessions_since(log_at))
    finally:
        redis_server.start()
    # The server reconnects by itself: no restart needed.
    star(sipp, "1000", "*81")
    assert redis_server.client().get(KEYS.cidblock("1000")) == "1"


def test_classic_agi_runs_the_same_features(asterisk, feature_server, provider, sipp, redis_state):
    """Phone 1002 has set_var=TF_AGI_MODE=classic: every route runs through
    the telefeatures-agi script that Asterisk forks, not the FastAGI server."""
    log_at, offset = feature_server.log_offset(), asterisk.log_offset()
    star(sipp, "1002", "*81")
    assert redis_state.get(KEYS.cidblock("1002")) == "1"
    log = asterisk.log_since(offset)
    assert "telefeatures-agi" in log and "agi://" not in log
    assert played(asterisk, offset, "activated")
    assert_anonymous(outbound(sipp, provider, "1002"), "1002")

    star(sipp, "1002", "*82")
    assert redis_state.get(KEYS.cidblock("1002")) is None
    assert_presented(outbound(sipp, provider, "1002"), "1002", "Carol")
    assert feature_server.sessions_since(log_at) == []  # nothing went through FastAGI


def test_keys_follow_the_documented_schema(asterisk, feature_server, phone_1001, sipp, redis_state):
    star(sipp, "1000", "*81")
    result = sipp.trunk_call("1001", "5551234567", "Pat Caller")
    assert result.returncode == 0, result.output
    keys = sorted(redis_state.scan_iter(f"{KEY_PREFIX}*"))
    assert keys == [KEYS.cidblock("1000"), KEYS.last_caller("1001")]
    assert redis_state.type(KEYS.last_caller("1001")) == "hash"
    record = redis_state.hgetall(KEYS.last_caller("1001"))
    assert set(record) == {"number", "name", "pres", "time", "withheld", "reason"}
    assert record["pres"] == "0" and float(record["time"]) > 1.7e9


def test_every_default_prompt_exists_in_the_asterisk_sounds(asterisk):
    """Asterisk's own sound index must know every default prompt in English."""
    from telefeatures.config import Settings

    prompts = Settings().features.prompts.model_dump()
    names = {name for group in prompts.values() for name in group}
    globals_file = (asterisk.run_dir / "etc" / "telefeatures" / "telefeatures-globals.conf").read_text()
    for line in globals_file.splitlines():
        if line.startswith("TF_") and line.split("=", 1)[0].endswith("_PROMPT"):
            names |= set(line.split("=", 1)[1].split("&"))
    assert {"privacy-unident", "vm-nobodyavail", "privacy-to-blacklist-last-caller"} <= names
    missing = []
    for name in sorted(names):
        try:
            shown = asterisk.cli(f"core show sound {name}")
        except Exception:  # the CLI answers "failed" for a sound it does not have
            shown = ""
        if "Language en:" not in shown:
            missing.append(name)
    assert not missing, f"default prompts missing from asterisk-core-sounds-en: {missing}"
