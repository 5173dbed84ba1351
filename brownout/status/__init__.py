"""What people look at: the collector's status page, its per-minute history, and incident reports.

- :class:`HistoryRecorder`: the last hours of each key at one-minute resolution, bounded per key.
- :class:`StatusPage`: ``/status``, ``/status/key/...`` and ``/status.json`` on the metrics port.
- :func:`brownout.status.report.write_reports`: one self-contained HTML file (and PNG charts) per
  incident, from a replay file or the events topic (``brownout report``).

Names load on first use, so the alert exporters can import :mod:`brownout.status.urls` without numpy.

>>> from brownout.status import HistoryRecorder, StatusPage
>>> HistoryRecorder(minutes=60).keys()
[]
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["FIELDS", "HistoryRecorder", "StatusPage", "bytes_per_key", "key_path", "key_state", "key_url"]

_WHERE = {"FIELDS": "history", "HistoryRecorder": "history", "bytes_per_key": "history", "StatusPage": "page",
          "key_state": "page", "key_path": "urls", "key_url": "urls"}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'brownout.status' has no attribute {name!r}")
    return getattr(importlib.import_module(f"brownout.status.{where}"), name)
