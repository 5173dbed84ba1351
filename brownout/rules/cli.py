"""``brownout rules``: check a rule file, show the effective rule table.

>>> from click.testing import CliRunner
>>> r = CliRunner().invoke(rules, ["show"])
>>> r.exit_code, "error_rate" in r.output
(0, True)
"""

from __future__ import annotations

import json
from typing import Any

import click

from brownout.rules.loader import load_rules
from brownout.rules.model import RuleError

__all__ = ["rules"]


@click.group("rules")
def rules() -> None:
    """Check and show detection rules (the default pack plus your file)."""


@rules.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def check(file: str) -> None:
    """Validate FILE over the default pack; exit 1 naming the bad field and line."""
    try:
        rs = load_rules(file)
    except RuleError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    click.echo(f"{file}: ok ({len(rs.rules)} rules, {len(rs.overrides)} overrides)")


@rules.command("show")
@click.option("--rules", "rules_file", type=click.Path(dir_okay=False), default=None,
              help="Rule file over the default pack (default: the pack alone).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per row.")
def show(rules_file: str | None, as_json: bool) -> None:
    """Print the effective rule table: every rule's settings, then each override."""
    try:
        rs = load_rules(rules_file)
    except RuleError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    rows = rs.table()
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, default=list))
        return
    click.echo(f"engine: step {rs.step:g}s, allowed lateness {rs.allowed_lateness:g}s")
    click.echo("baseline: " + ", ".join(f"{k} {v}" for k, v in rs.baseline.items()))
    width = max(len(r["scope"]) for r in rows)
    for row in rows:
        settings = ", ".join(f"{k}={_fmt(v)}" for k, v in row.items() if k not in ("scope", "rule"))
        click.echo(f"{row['scope']:<{width}}  {row['rule']:<16} {settings}")


def _fmt(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}={_fmt(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (tuple, list)):
        return "[" + ",".join(_fmt(x) for x in v) + "]"
    if v is None:
        return "-"
    return f"{v:g}" if isinstance(v, float) else str(v)
