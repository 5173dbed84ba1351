"""BreakerConfig: defaults, overlay, and one bad mapping per failure, each naming its field."""

import pytest

from brownout.breakers import BreakerConfig


def test_defaults_follow_design():
    cfg = BreakerConfig()
    assert 30 <= cfg.cooldown_min <= 60
    assert 0 < cfg.probe_fraction < 1
    assert cfg.record_ttl > cfg.heartbeat_interval


def test_overlay_keeps_other_defaults():
    cfg = BreakerConfig.from_mapping({"cooldown_max": 120, "probes_needed": 3})
    assert cfg.cooldown_max == 120.0 and cfg.probes_needed == 3
    assert cfg.cooldown_min == BreakerConfig().cooldown_min


def test_none_and_empty_give_defaults():
    assert BreakerConfig.from_mapping(None) == BreakerConfig() == BreakerConfig.from_mapping({})


@pytest.mark.parametrize("mapping, field", [
    ({"cooldown_min": 0}, "cooldown_min"),
    ({"cooldown_min": 100, "cooldown_max": 50}, "cooldown_max"),
    ({"growth": 0.5}, "growth"),
    ({"growth": 100}, "growth"),
    ({"jitter": 1.5}, "jitter"),
    ({"probe_fraction": 0}, "probe_fraction"),
    ({"probes_needed": 0}, "probes_needed"),
    ({"probes_needed": 2.5}, "probes_needed"),
    ({"probe_failures": 0}, "probe_failures"),
    ({"heartbeat_interval": 10, "record_ttl": 5}, "record_ttl"),
    ({"rearm_after": -1}, "rearm_after"),
    ({"cooldown_min": "30s"}, "cooldown_min"),
    ({"cooldown_min": True}, "cooldown_min"),
    ({"cooldown_min": float("nan")}, "cooldown_min"),
    ({"cooldwn_min": 30}, "cooldwn_min"),
])
def test_bad_field_is_named(mapping, field):
    with pytest.raises(ValueError, match=rf"^rules\.breaker\.{field}:"):
        BreakerConfig.from_mapping(mapping, path="rules.breaker")


def test_not_a_mapping():
    with pytest.raises(ValueError, match="breaker: must be a mapping"):
        BreakerConfig.from_mapping([1, 2])  # type: ignore[arg-type]


def test_the_removed_guard_setting_says_what_to_do():
    with pytest.raises(ValueError, match=r"^breaker\.max_open_share: no longer a setting: .*each key's true state"):
        BreakerConfig.from_mapping({"max_open_share": 0.5})


def test_a_rule_file_that_still_sets_the_guard_is_refused_naming_field_and_line():
    from brownout.rules import RuleError, parse_rules

    with pytest.raises(RuleError) as info:
        parse_rules("breaker:\n  cooldown_min: 30\n  max_open_share: 0.5\n", source="old-rules.yaml")
    err = info.value
    assert (err.field, err.line, err.source) == ("breaker.max_open_share", 3, "old-rules.yaml")
    assert "no longer a setting" in err.message and "routers decide where to go" in err.message
