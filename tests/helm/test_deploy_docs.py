"""docs/deploy.md documents every value the chart takes."""

from __future__ import annotations

from typing import Any, Iterator

import yaml

from helm_support import CHART, ROOT

DOC = (ROOT / "docs" / "deploy.md").read_text()
# Values documented as one row (whole objects passed through to the pod spec).
WHOLE = {"strategy", "resources", "podSecurityContext", "securityContext", "livenessProbe", "readinessProbe",
         "startupProbe", "initTopics.resources", "grafanaDashboard.labels"}


def leaves(values: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in values.items():
        path = prefix + key
        if isinstance(value, dict) and value and path not in WHOLE:
            yield from leaves(value, path + ".")
        else:
            yield path


def test_every_value_has_a_row_in_the_values_table() -> None:
    rows = [line.split("|")[1] for line in DOC.splitlines() if line.startswith("| `")]
    missing = []
    for path in leaves(yaml.safe_load((CHART / "values.yaml").read_text())):
        parent, _, leaf = path.rpartition(".")
        if any(f"`{path}`" in cell for cell in rows):
            continue
        if parent and any(f"`{parent}." in cell and f"`{leaf}`" in cell for cell in rows):
            continue
        missing.append(path)
    assert not missing, f"docs/deploy.md has no values-table row for {missing}"
