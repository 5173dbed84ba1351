"""Hostile timestamps in a replay file: one line must not take the event-time clock with it."""

from __future__ import annotations

import io
import json


from brownout.replay import replay


def _line(t: float, region: str, error: str | None = None) -> str:
    return json.dumps({"start": t, "duration": 0.1, "gen_ai.provider.name": "openai", "cloud.region": region,
                       "gen_ai.request.model": "gpt-4o", "error.type": error})


def _incident_file(extra: dict[int, str]) -> str:
    """Two regions at 2 req/s each; eastus fails every request from t=1600 on."""
    lines = [_line(1000.0 + i / 2, region, "503" if region == "eastus" and i >= 1200 else None)
             for i in range(1400) for region in ("eastus", "westus")]
    for at, line in sorted(extra.items(), reverse=True):
        lines.insert(at, line)
    return "\n".join(lines)


def _decisions(text: str) -> list[tuple[str, str]]:
    out = io.StringIO()
    replay(io.StringIO(text), out)
    return [(d["kind"], d["state"]) for d in map(json.loads, out.getvalue().splitlines())]


def test_the_incident_opens_a_breaker_in_a_clean_file():
    assert ("breaker", "open") in _decisions(_incident_file({}))


def test_one_far_future_line_does_not_silence_the_rest_of_the_file():
    assert ("breaker", "open") in _decisions(_incident_file({100: _line(1e10, "westus")}))
