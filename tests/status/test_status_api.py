"""The status package's public surface, and what importing its URL helper costs the exporters."""

from __future__ import annotations

import subprocess
import sys

import brownout.status


def test_public_api_is_pinned() -> None:
    assert sorted(brownout.status.__all__) == ["FIELDS", "HistoryRecorder", "StatusPage", "bytes_per_key",
                                               "key_path", "key_state", "key_url"]
    for name in brownout.status.__all__:
        assert getattr(brownout.status, name) is not None


def test_the_alert_exporters_link_keys_without_loading_numpy() -> None:
    code = ("import sys, brownout.status.urls, brownout.exporters.slack, brownout.exporters.pagerduty; "
            "print('numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
