"""The outbox: ordered, durable across reopening, atomic per transaction."""

from __future__ import annotations

from pathlib import Path

import pytest
from exporters_support import decision

from brownout.exporters import Outbox
from brownout.exporters.alerts import Alert


def alert(t: float, state: str = "firing") -> Alert:
    a = Alert.from_decision(decision(t, state=state))
    assert a is not None
    return a


def test_order_and_content_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "outbox.db"
    box = Outbox(path)
    ids = [box.put("pagerduty", "openai/eastus", [alert(float(i))], created=100.0 + i) for i in range(5)]
    box.ack(ids[1])
    box.set_sent("pagerduty", "abc", "firing")
    box.save_alert(alert(1.0))
    box.close()

    again = Outbox(path)
    pending = again.pending()
    assert [n.id for n in pending] == [ids[0], *ids[2:]]
    assert [n.alerts[0].starts_at for n in pending] == [0.0, 2.0, 3.0, 4.0]
    assert [n.created for n in pending] == [100.0, 102.0, 103.0, 104.0]
    assert again.sent() == {("pagerduty", "abc"): "firing"}
    assert [a.starts_at for a in again.alerts()] == [1.0]
    assert again.pending("slack") == []


def test_a_failed_transaction_leaves_nothing_behind(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db")
    with pytest.raises(RuntimeError), box.transaction():
        box.put("slack", "g", [alert(0.0)], created=1.0)
        box.set_sent("slack", "fp", "firing")
        raise RuntimeError("crash between the two writes")
    assert box.pending() == [] and box.sent() == {}
    with box.transaction():
        box.put("slack", "g", [alert(0.0)], created=1.0)
    assert len(box.pending()) == 1


def test_forgetting_a_sent_entry(tmp_path: Path) -> None:
    box = Outbox()
    box.set_sent("slack", "fp", "firing")
    box.set_sent("slack", "fp", None)
    assert box.sent() == {}
