"""Fixtures for the chart tests: a Helm binary and a cached ``helm template``.

Helm comes from ``$HELM``, else the binary ``scripts/helm`` built and cached under
``~/.cache/brownout``, else ``helm`` on PATH. CI runs ``scripts/helm`` before pytest; with
``CI=true`` a missing Helm fails these tests with that instruction, elsewhere they are skipped.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from helm_support import CHART, CI_VALUES, KUBE_VERSION, NAMESPACE, RELEASE, HelmFailed, Rendered, find_helm


@pytest.fixture(scope="session")
def helm() -> str:
    path = find_helm()
    if path is None:
        message = "helm not found: run scripts/helm first (it builds Helm with `go install` and caches it), or set HELM"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def render(helm: str) -> Callable[..., Rendered]:
    """``render(values_file=None, *sets)`` -> Rendered; raises HelmFailed with Helm's message."""
    cache: dict[tuple[Any, ...], Rendered | HelmFailed] = {}

    def run(values_file: Path | None = None, *sets: str) -> Rendered:
        key = (values_file, sets)
        if key not in cache:
            cmd = [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION]
            if values_file is not None:
                cmd += ["-f", str(values_file)]
            for s in sets:
                cmd += ["--set", s]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            if done.returncode != 0:
                cache[key] = HelmFailed(done.stderr.strip())
            else:
                docs = tuple(d for d in yaml.safe_load_all(done.stdout) if d)
                cache[key] = Rendered(docs)
        result = cache[key]
        if isinstance(result, HelmFailed):
            raise result
        return result

    return run


@pytest.fixture(params=CI_VALUES, ids=[p.stem for p in CI_VALUES])
def ci_values(request: pytest.FixtureRequest) -> Iterator[Path]:
    yield request.param
