"""The Dockerfile agrees with the chart (user, port, entry point) and pins every runtime dependency.

No Docker engine here: these read the Dockerfile; the chart side comes from values.yaml.
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import yaml

from helm_support import CHART, ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())


def instructions(name: str) -> list[str]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    return [line.split(None, 1)[1].strip() for line in joined.splitlines()
            if line.strip().upper().startswith(name + " ")]


def canonical(requirement: str) -> str:
    name = re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def test_multi_stage_build_on_slim_python_311() -> None:
    stages = instructions("FROM")
    assert len(stages) >= 2
    (default,) = [a.split("=", 1)[1] for a in instructions("ARG") if a.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"python:3\.11[.\d]*-slim(-\w+)?(@sha256:[0-9a-f]{64})?", default)
    assert all(s.startswith("${PYTHON_IMAGE}") for s in stages)
    assert "COPY --from=build /opt/brownout /opt/brownout" in DOCKERFILE


def test_image_runs_as_the_non_root_user_the_chart_expects() -> None:
    (user,) = instructions("USER")
    uid, gid = user.split(":")
    assert int(uid) == VALUES["podSecurityContext"]["runAsUser"] == VALUES["securityContext"]["runAsUser"] != 0
    assert int(gid) == VALUES["podSecurityContext"]["runAsGroup"]


def test_image_exposes_the_metrics_port_and_runs_the_collector() -> None:
    assert instructions("EXPOSE") == [str(VALUES["metrics"]["port"])]
    assert json.loads(instructions("ENTRYPOINT")[0]) == ["brownout"]
    assert json.loads(instructions("CMD")[0]) == ["collect"]
    (healthcheck,) = instructions("HEALTHCHECK")
    assert f":{VALUES['metrics']['port']}/healthz" in healthcheck


def test_every_runtime_dependency_is_pinned() -> None:
    pyproject: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
    lines = [ln.strip() for ln in (ROOT / "constraints.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    pins = {canonical(ln): ln for ln in lines}
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[A-Za-z0-9_.+!]+", ln) for ln in lines), "pins are name==version"
    missing = sorted(canonical(d) for d in pyproject["project"]["dependencies"] if canonical(d) not in pins)
    assert not missing, (f"constraints.txt lacks {missing}: regenerate it (see its header) so the image stays pinned")
    assert "pip install --only-binary=:all: -r constraints.txt" in DOCKERFILE
    assert "pip install --no-deps ." in DOCKERFILE and "pip check" in DOCKERFILE


def test_dockerignore_sends_only_what_the_build_copies() -> None:
    patterns = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    assert patterns[0] == "*"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied = {part for a in instructions("COPY") if not a.startswith("--from")
              for part in a.split()[:-1]}
    assert copied <= allowed, f"COPY uses {sorted(copied - allowed)} which .dockerignore leaves out"
