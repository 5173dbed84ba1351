"""`brownout rules check FILE` and `brownout rules show`."""

from __future__ import annotations

import json
import pathlib

from click.testing import CliRunner

from brownout.rules.cli import rules
from brownout.rules.loader import default_text

BAD = pathlib.Path(__file__).parent / "bad"


def test_check_accepts_a_good_file(tmp_path):
    p = tmp_path / "rules.yaml"
    p.write_text("overrides:\n  - match: {model: '*copilot*'}\n    rules: {ttft_drift: {limit: 0.2}}\n")
    r = CliRunner().invoke(rules, ["check", str(p)])
    assert r.exit_code == 0, r.output
    assert "ok" in r.output and "1 overrides" in r.output


def test_check_accepts_the_default_pack(tmp_path):
    p = tmp_path / "default.yaml"
    p.write_text(default_text())
    assert CliRunner().invoke(rules, ["check", str(p)]).exit_code == 0


def test_check_names_field_and_line_and_exits_1():
    r = CliRunner().invoke(rules, ["check", str(BAD / "rate-out-of-range.yaml")])
    assert r.exit_code == 1
    assert "rate-out-of-range.yaml:3: rules.error_rate.fire_rate" in r.output


def test_check_missing_file_exits_1(tmp_path):
    r = CliRunner().invoke(rules, ["check", str(tmp_path / "missing.yaml")])
    assert r.exit_code == 1 and "cannot read" in r.output


def test_show_prints_every_rule():
    r = CliRunner().invoke(rules, ["show"])
    assert r.exit_code == 0
    for name in ("error_rate", "error_breaker", "ttft_drift", "latency_p95", "latency_breaker", "throughput",
                 "itl", "goodput"):
        assert name in r.output


def test_show_json_with_overrides(tmp_path):
    p = tmp_path / "rules.yaml"
    p.write_text("overrides:\n  - match: 'openai/*/gpt-4o*'\n    rules: {ttft_drift: {limit: 0.5}}\n")
    r = CliRunner().invoke(rules, ["show", "--rules", str(p), "--json"])
    assert r.exit_code == 0
    rows = [json.loads(line) for line in r.output.splitlines()]
    assert any(row["scope"] == "openai/*/gpt-4o*" and row["limit"] == 0.5 for row in rows)
    assert {row["rule"] for row in rows if row["scope"] == "*/*/*"} >= {"error_rate", "goodput"}
