"""A `brownout collect` process killed with -9 and started again at once, beside a second member,
on the real broker: with static membership (``kafka.group_instance_id``) it gets its partitions
back as soon as it asks; without, it waits for the dead member's session to time out.

Prints, per mode: how long the restarted process took from its start to its partitions (``join``)
and how long its partitions had no owner (``unowned``: from the kill to the new assignment,
Python's start-up included). ``pytest -s`` shows the table; the only bound asserted is generous.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from support import create_collector_topics
from _state_support import CollectProcess, wait_for


pytestmark = pytest.mark.integration

ASSIGNED = re.compile(r"^(\S+ \S+) INFO brownout.collector: partitions (\[.*\]) assigned ([\d.]+) s after the "
                      r"collector started", re.M)


def assignments(proc: CollectProcess) -> list[tuple[float, str, float]]:
    """(unix time, partitions, seconds after start) of every assignment the process logged."""
    out = []
    for stamp, parts, after in ASSIGNED.findall(proc.log()):
        when = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        out.append((when, parts, float(after)))
    return out


async def restart_after_kill(kafka_bootstrap: str, topic_name, tmp_path: Path, static: bool) -> dict[str, float]:
    topics = await create_collector_topics(kafka_bootstrap, topic_name, 4)
    group = f"members-{uuid.uuid4().hex[:8]}"
    mode = "static" if static else "dynamic"

    def env(name: str) -> dict[str, str]:
        # the group's defaults: 30 s sessions with an instance id, 10 s without
        return {"BROWNOUT_KAFKA_GROUP_INSTANCE_ID": name if static else "", "BROWNOUT_STATUS_HISTORY_MINUTES": "0"}

    a = CollectProcess(kafka_bootstrap, topics, group, tmp_path / f"{mode}-a.log", env("collector-a"))
    b = CollectProcess(kafka_bootstrap, topics, group, tmp_path / f"{mode}-b.log", env("collector-b"))
    again = None
    try:
        # both members hold partitions (b's join may have moved some of a's)
        await wait_for(lambda: assignments(b), 60, "b's partitions")
        await wait_for(lambda: assignments(a) and assignments(a)[-1][0] >= assignments(b)[0][0] - 0.5
                       and assignments(a)[-1][1] != "[]", 60, "a's partitions after b joined")
        await asyncio.sleep(2)
        b_before = len(assignments(b))
        a.kill()
        killed = time.time()
        again = CollectProcess(kafka_bootstrap, topics, group, tmp_path / f"{mode}-a2.log", env("collector-a"))
        got = await wait_for(lambda: [x for x in assignments(again) if x[1] != "[]"], 90,
                             f"the restarted member's partitions ({mode})")
        when, parts, join = got[0]
        return {"join_s": join, "unowned_s": when - killed, "b_rebalances": len(assignments(b)) - b_before}
    finally:
        for p in (again, b):
            if p is not None:
                p.stop()


async def test_a_static_member_gets_its_partitions_back_at_once_after_a_kill(kafka_bootstrap, topic_name, tmp_path):
    static = await restart_after_kill(kafka_bootstrap, topic_name, tmp_path, static=True)
    dynamic = await restart_after_kill(kafka_bootstrap, topic_name, tmp_path, static=False)
    print("\nrestart after kill -9, beside a second member (4 partitions):")
    print(f"{'membership':<12}{'join':>8}{'unowned':>10}{'rebalances seen by the other':>32}")
    for name, r in (("static", static), ("dynamic", dynamic)):
        print(f"{name:<12}{r['join_s']:>7.2f}s{r['unowned_s']:>9.2f}s{r['b_rebalances']:>32}")
    assert static["join_s"] < 10.0, static  # generous: about a second here
    assert static["b_rebalances"] == 0, "a static member's return must not rebalance the others"
    assert dynamic["b_rebalances"] >= 1


async def test_a_static_member_stopped_cleanly_hands_its_partitions_over_at_once(kafka_bootstrap, topic_name,
                                                                                 tmp_path):
    """A rolling update gives new pods new names: a clean stop must not leave the partitions
    unowned for the 30 s session, so a static member leaves the group on SIGTERM."""
    topics = await create_collector_topics(kafka_bootstrap, topic_name, 4)
    group = f"members-{uuid.uuid4().hex[:8]}"
    a = CollectProcess(kafka_bootstrap, topics, group, tmp_path / "a.log", {"BROWNOUT_KAFKA_GROUP_INSTANCE_ID": "a"})
    b = CollectProcess(kafka_bootstrap, topics, group, tmp_path / "b.log", {"BROWNOUT_KAFKA_GROUP_INSTANCE_ID": "b"})
    try:
        await wait_for(lambda: assignments(b), 60, "b's partitions")
        await wait_for(lambda: assignments(a) and assignments(a)[-1][1] != "[]", 60, "a's partitions")
        await asyncio.sleep(2)
        stopped = time.time()
        assert a.stop() == 0
        every = str([(topics["events"], p) for p in range(4)])
        when = await wait_for(lambda: next((t for t, parts, _ in assignments(b) if parts == every and t >= stopped),
                                           None), 60, "b to own every partition")
        print(f"\nstatic member stopped with SIGTERM: the other owned its partitions {when - stopped:.2f} s later "
              "(session timeout 30 s)")
        assert when - stopped < 20.0, "the partitions waited for the session timeout: the member did not leave"
    finally:
        a.stop()
        b.stop()
