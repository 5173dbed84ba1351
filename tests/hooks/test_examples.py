"""The hooks' examples run offline and print one event per call."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script, keys", [
    ("openai_app.py", ["openai/eastus/gpt-4o-mini"] * 3),
    ("anthropic_app.py", ["anthropic/us-east-1/claude-sonnet-4"] * 3),
    ("gemini_app.py", ["gcp.gemini/europe-west1/gemini-2.5-flash"] * 3),
    ("bedrock_app.py", ["aws.bedrock/us-west-2/anthropic.claude-3-5-sonnet-20240620-v1:0"] * 4),
    ("observe_any_client.py", ["aws.bedrock/us-west-2/mistral-large", "gcp.vertex_ai/europe-west4/gemini-2.5-pro"]),
])
def test_example_prints_its_events(script, keys):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / script)], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line.split(" ", 1) for line in out.stdout.splitlines() if "/" in line.split(" ", 1)[0]]
    assert sorted(k for k, _ in lines) == sorted(keys)
    for _, flat in lines:
        assert json.loads(flat)["gen_ai.request.model"]
