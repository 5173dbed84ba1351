"""Shared pieces of the chart tests: paths, finding Helm, the documents of a rendered chart."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "brownout"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
RELEASE = "brownout"
NAMESPACE = "llm-observability"
KUBE_VERSION = "1.37.0"


def find_helm() -> str | None:
    if os.environ.get("HELM"):
        return os.environ["HELM"]
    script = ROOT / "scripts" / "helm"
    if script.exists():
        done = subprocess.run(["bash", str(script), "--cached"], capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip().splitlines()[-1]
    return shutil.which("helm")


@dataclass(frozen=True)
class Rendered:
    """The documents of one ``helm template`` run."""

    docs: tuple[dict[str, Any], ...]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str, name_suffix: str = "") -> dict[str, Any]:
        found = [d for d in self.of_kind(kind) if d["metadata"]["name"].endswith(name_suffix)]
        assert len(found) == 1, f"expected one {kind} named *{name_suffix}, got {[d['metadata']['name'] for d in found]}"
        return found[0]

    def collector_config_map(self) -> dict[str, Any]:
        return next(d for d in self.of_kind("ConfigMap") if "config.yaml" in d.get("data", {})
                    and "helm.sh/hook" not in d["metadata"].get("annotations", {}))

    def config(self) -> dict[str, Any]:
        return yaml.safe_load(self.collector_config_map()["data"]["config.yaml"])

    def pod_specs(self) -> list[tuple[str, dict[str, Any]]]:
        return [(f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"])
                for d in self.docs if d["kind"] in ("Deployment", "Job")]


class HelmFailed(Exception):
    """``helm template`` refused the values; the message is Helm's."""


def merged_values(path: Path | None) -> dict[str, Any]:
    """The chart's values.yaml with a values file deep-merged over it, as Helm does."""

    def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        return out

    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    return merge(defaults, (yaml.safe_load(path.read_text()) or {}) if path else {})
