"""Rule file: defaults, then the file, then validation naming the field and its line."""

from __future__ import annotations

import pathlib

import pytest

from brownout.model import Key
from brownout.rules import RuleError, RuleSet, load_rules, parse_rules
from brownout.rules.loader import default_text

BAD = pathlib.Path(__file__).parent / "bad"

# one bad fixture per failure: (file, the field the error must name, its line)
CASES = {
    "rate-out-of-range.yaml": ("rules.error_rate.fire_rate", 3),
    "unknown-field.yaml": ("rules.ttft_drift.fire_ration", 4),
    "unknown-rule.yaml": ("rules.latency_p99", 2),
    "clear-above-fire.yaml": ("rules.error_rate.clear_rate", 4),
    "override-bad-glob-field.yaml": ("overrides[0].match.modle", 2),
    "override-wrong-type.yaml": ("overrides[0].rules.ttft_drift.limit", 5),
    "not-yaml.yaml": ("<yaml>", 3),
    "unknown-section.yaml": ("alerts", 1),
    "step-negative.yaml": ("engine.step", 2),
    "goodput-short-longer-than-long.yaml": ("rules.goodput.page.short", 3),
    "min-requests-not-integer.yaml": ("rules.error_breaker.min_requests", 3),
    "breaker-unknown-field.yaml": ("breaker.cooldwn_max", 6),
}


def test_every_bad_fixture_has_a_case():
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_file_names_field_and_line(name):
    field, line = CASES[name]
    with pytest.raises(RuleError) as info:
        load_rules(str(BAD / name))
    assert info.value.field == field
    assert info.value.line == line
    assert name in str(info.value) and field in str(info.value)


def test_defaults_load_and_match_the_design_table():
    rs = load_rules()
    assert isinstance(rs, RuleSet)
    assert rs.rule("ttft_drift").fire_ratio == 1.2 and rs.rule("ttft_drift").clear_ratio == 1.1
    assert rs.rule("latency_p95").fire_ratio == 1.5 and rs.rule("latency_p95").window == 300
    assert rs.rule("latency_breaker").ratio == 2.0 and rs.rule("latency_breaker").hold == 300
    assert rs.rule("error_rate").fire_rate == 0.05 and rs.rule("error_rate").clear_rate == 0.025
    assert rs.rule("error_breaker").rate == 0.25 and rs.rule("error_breaker").window == 60
    assert rs.rule("throughput").fire_ratio == 0.5 and rs.rule("throughput").clear_ratio == 0.7
    assert rs.rule("itl").limit == 0.1 and rs.rule("itl").clear_limit == 0.08
    g = rs.rule("goodput")
    assert (g.page.burn, g.page.long, g.page.short) == (14.4, 3600, 300)
    assert (g.ticket.burn, g.ticket.long, g.ticket.short) == (6.0, 21600, 1800)
    assert rs.rule("ttft_p95").fire_ratio == 1.5 and rs.rule("ttft_p95").quantile == 0.95
    assert rs.rule("stall_breaker").share == 0.25


def test_the_default_pack_sets_every_field_at_its_class_default():
    """default.yaml is the documentation of every setting: it may not drift from the code."""
    import yaml

    from brownout.detectors.registry import RULES
    from brownout.detectors.settings import BaselineSettings, EngineSettings

    pack = yaml.safe_load(default_text())
    for section, cls in (("engine", EngineSettings), ("baseline", BaselineSettings)):
        assert pack[section] == cls().as_dict(), section
    assert list(pack["rules"]) == list(RULES)
    for name, det in RULES.items():
        assert pack["rules"][name] == det.Settings().as_dict(), name


def test_settings_are_checked_when_built():
    from brownout.detectors.error_rate import ErrorRateSettings
    from brownout.detectors.settings import SettingError

    with pytest.raises(SettingError) as info:
        ErrorRateSettings(fire_rate=0.01, clear_rate=0.02)
    assert info.value.field == "clear_rate"
    with pytest.raises(SettingError) as info:
        ErrorRateSettings(window=-1.0)
    assert info.value.field == "window"


def test_file_overlays_defaults_field_by_field():
    rs = parse_rules("rules:\n  error_rate:\n    fire_rate: 0.1\n")
    assert rs.rule("error_rate").fire_rate == 0.1
    assert rs.rule("error_rate").clear_rate == 0.025  # untouched default


def test_missing_file_is_a_rule_error(tmp_path):
    with pytest.raises(RuleError) as info:
        load_rules(str(tmp_path / "nope.yaml"))
    assert "cannot read" in str(info.value)


def test_empty_file_means_defaults(tmp_path):
    p = tmp_path / "empty.yaml"
    p.write_text("")
    assert load_rules(str(p)).rules == load_rules().rules


def test_the_default_pack_parses_as_its_own_file(tmp_path):
    p = tmp_path / "copy.yaml"
    p.write_text(default_text())
    assert load_rules(str(p)).rules == load_rules().rules


def test_per_key_overrides_by_glob_later_entries_win():
    rs = parse_rules(
        "overrides:\n"
        "  - match: {model: '*copilot*'}\n"
        "    rules: {ttft_drift: {limit: 0.2}}\n"
        "  - match: 'azure.ai.openai/*/gpt-4o*'\n"
        "    rules: {ttft_drift: {limit: 0.5, fire_ratio: 1.3}}\n"
        "  - match: {provider: azure.ai.openai, model: gpt-4o-copilot}\n"
        "    rules: {ttft_drift: {limit: 0.25}}\n"
    )
    copilot = Key("openai", "eastus", "gpt-4o-copilot")
    chat = Key("azure.ai.openai", "swedencentral", "gpt-4o")
    both = Key("azure.ai.openai", "eastus", "gpt-4o-copilot")
    other = Key("anthropic", "us-east-1", "claude")
    assert rs.rule("ttft_drift", copilot).limit == 0.2
    assert rs.rule("ttft_drift", chat).limit == 0.5
    assert rs.rule("ttft_drift", chat).fire_ratio == 1.3
    assert rs.rule("ttft_drift", both).limit == 0.25
    assert rs.rule("ttft_drift", both).fire_ratio == 1.3
    assert rs.rule("ttft_drift", other).limit is None
    assert rs.rule("ttft_drift", copilot).clear_ratio == 1.1


def test_table_lists_defaults_and_overrides():
    rs = parse_rules("overrides:\n  - match: {model: '*copilot*'}\n    rules: {ttft_drift: {limit: 0.2}}\n")
    rows = rs.table()
    assert {r["rule"] for r in rows if r["scope"] == "*/*/*"} >= {"error_rate", "ttft_drift", "goodput"}
    assert any(r["scope"] == "*/*/*copilot*" and r["limit"] == 0.2 for r in rows)
