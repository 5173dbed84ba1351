"""NOTES.txt renders for every ci/ values file and tells the operator what matters.

`helm template` skips NOTES.txt and `helm install --dry-run` needs a cluster, so a copy of the
chart renders the notes through `tpl` into a ConfigMap.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from helm_support import CHART, CI_VALUES, KUBE_VERSION, NAMESPACE, RELEASE, merged_values

PROBE = """apiVersion: v1
kind: ConfigMap
metadata:
  name: notes
data:
  notes: {{ tpl (.Files.Get "files/NOTES.txt") . | quote }}
"""


@pytest.fixture(scope="module")
def notes_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chart = tmp_path_factory.mktemp("chart") / "brownout"
    shutil.copytree(CHART, chart)
    shutil.copy(chart / "templates" / "NOTES.txt", chart / "files" / "NOTES.txt")
    (chart / "templates" / "zz-notes.yaml").write_text(PROBE)
    return chart


def notes(helm: str, chart: Path, values: Path | None, *sets: str) -> str:
    cmd = [helm, "template", RELEASE, str(chart), "-n", NAMESPACE, "--kube-version", KUBE_VERSION, "--show-only", "templates/zz-notes.yaml"]
    cmd += ["-f", str(values)] if values else []
    for s in sets:
        cmd += ["--set", s]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)["data"]["notes"]


@pytest.mark.parametrize("values", CI_VALUES, ids=[p.stem for p in CI_VALUES])
def test_notes_render_and_state_the_partition_bound(helm: str, notes_chart: Path, values: Path) -> None:
    text = notes(helm, notes_chart, values)
    v = merged_values(values)
    assert v["kafka"]["bootstrapServers"] in text
    assert f"{v['kafka']['partitions']} partitions" in text
    assert "caps replicas at kafka.partitions" in text
    assert "<no value>" not in text
    assert ("control records are not signed" in text) == (not v["signing"]["existingSecret"])


def test_notes_say_which_rules_and_autoscaler_are_in_use(helm: str, notes_chart: Path) -> None:
    assert "built-in default pack" in notes(helm, notes_chart, None)
    assert "from values" in notes(helm, notes_chart, None, "rules=rules: {}")
    assert "KEDA scales 1..3" in notes(helm, notes_chart, None, "keda.enabled=true")
    assert "HPA scales 1..3" in notes(helm, notes_chart, None, "autoscaling.enabled=true")
