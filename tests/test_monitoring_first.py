"""Monitoring from the first minute: a new project has a snapshot at once, not after an interval
(the session system runs the default 120 s interval, so only creation can have taken it)."""

from __future__ import annotations

import time

from tests.harness import assert_ok


def test_a_new_project_has_a_snapshot_at_once(admin, make_project):
    created = int(time.time())
    pid = make_project()
    snapshots = assert_ok(admin.get(f"/project/monitoring/{pid}?count=10"))["content"]["snapshots"]
    assert len(snapshots) == 1, snapshots
    first = snapshots[0]
    assert created - 1 <= first["time_stamp"] <= int(time.time()) + 1
    assert {k: v for k, v in first.items() if k != "time_stamp"} == {
        "new_task_count": 0, "failed_task_count": 0, "closed_task_count": 0, "worker_access_count": 0,
        "awaiting_verification_count": 0}

