"""PostgreSQL failover under load: the primary is lost (kill -9), its streaming standby is promoted,
and the tracker, given both in one multi-host URL (``target_session_attrs=read-write``), carries on
on the new primary.

The workload and checks are test_chaos.py's (tests/chaos/workload.py): 16 workers cycle tasks while
a submitter adds bulks; the one event is the failover. The primary (postmaster and every server
process) is SIGKILLed at ``TT_FAILOVER_AT`` seconds; ``TT_FAILOVER_PROMOTE_AFTER`` seconds later
(the time an operator or CloudNativePG takes to notice) the standby is promoted with ``pg_ctl
promote``. The old primary stays dead.

What the clients were told before the promote is compared with what the promoted standby starts
from (read from it, once it has replayed everything it received, just before the promote):

- every bulk answered 200 has all its tasks there;
- every release answered ``updated: true`` left its task CLOSED there;
- every task a get handed out (verification_count 1) whose release was not answered yet is there,
  held by that worker.

Two runs:

- **synchronous** replication (``synchronous_standby_names = 'standby'``, ``synchronous_commit =
  on``): nothing acknowledged may be lost, and every check of test_chaos.py holds at the end;
- **asynchronous** (PostgreSQL's default): what was lost is counted and reported (the terminal
  summary, ``failover_summary.json``); only what must hold whatever the replication is asserted
  (no 500, nothing stored twice or held twice, counters that agree with the tasks, recovery).

Also checked: the gateway's LISTEN connections (long-poll wake-ups) are back, on the new primary.
The time to recover (first successful get or release after the kill) is printed and recorded.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from tests.chaos.workload import (
    CLOSED,
    NEW,
    Recorder,
    Run,
    Sizes,
    cast,
    failure_details,
    print_compact,
    run_workload,
    wait_recovered,
)
from tracker.wording import TASK_READY_CHANNEL

SIZES = Sizes.from_env("TT_FAILOVER", limit=900, stall=45)
FAILOVER_AT = float(os.environ.get("TT_FAILOVER_AT", "15"))
PROMOTE_AFTER = float(os.environ.get("TT_FAILOVER_PROMOTE_AFTER", "2"))
LISTENING = f"SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN {TASK_READY_CHANNEL}'"

# Checks that hold whatever the replication: an asynchronous failover may lose acknowledged
# writes, but never answers 500, stores a task twice, hands one task to two workers at once or
# lets the counters disagree with the tasks.
MUST_HOLD = (
    "every bulk answered 200",
    "no task stored that was not accepted",
    "bulk answers add up (no replayed bulk answered 'duplicates')",
    "no task stored twice",
    "project closed_task_count == CLOSED tasks",
    "workers' closed_task_count sum == CLOSED tasks",
    "no task held by two workers at once",
    "no 500",
    "no unexpected status",
    "every chaos event recovered",
    "no worker thread stuck",
    "the old primary stays dead",
    "the gateway's LISTEN connections are back, on the new primary",
)


def start_listeners(stack, people, project: int) -> int:
    """Long-polls on an empty project until every gateway process has opened its LISTEN connection
    (each opens it at its first parked request). The number of LISTEN connections."""
    count = 0
    for _ in range(30):
        threads = [threading.Thread(target=lambda w=w: w.http.get(
            f"{stack.system.url}/task/get/{project}?wait=1", timeout=10)) for w in people.workers[:8]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        count = stack.pg.sql(LISTENING, db=stack.system.name)[0][0]
        if count >= stack.system.gateway_workers:
            break
    return count


def failover(run: Run, stack, t0: float, results: list[dict], seen: dict) -> None:
    """At FAILOVER_AT: crash the primary, read what the standby has, promote it, wait for the
    tracker to be whole again."""
    if run.stop.wait(max(0.0, t0 + FAILOVER_AT - time.monotonic())):
        return
    rec = run.rec
    begin = rec.event("failover")
    killed = stack.pg.crash()
    seen["kill"] = stack.pg.crashed_at
    rec.event("primary killed (SIGKILL)", pids=len(killed), at=round(seen["kill"] - t0, 2))
    time.sleep(PROMOTE_AFTER)
    stack.standby.wait_replayed()
    received = stack.standby.sql("SELECT pg_last_wal_receive_lsn()::text")[0][0]
    seen["unreceived"] = stack.pg.wal_after(received)
    seen["standby_rows"] = stack.standby.sql(
        f"SELECT id, hash64, status, assignee, verification_count FROM task WHERE project = {run.project}",
        db=stack.system.name)
    seen["promote"] = time.monotonic()
    stack.standby.promote()
    rec.event("standby promoted", seconds=round(time.monotonic() - seen["kill"], 2))
    done = wait_recovered(stack, rec, "failover", seen["kill"])
    results.append({**begin, "recovery": done})


def acknowledged_but_lost(run: Run, rows: list, before: float) -> dict[str, list]:
    """What the clients were told before ``before`` (the promote) that the promoted standby's
    ``rows`` (id, hash64, status, assignee, verification_count) do not hold."""
    by_hash = {r[1] for r in rows}
    by_id = {r[0]: r for r in rows}
    submits = [h for b in run.bulks if b.status == 200 and b.received < before for h in b.hashes
               if h not in by_hash]
    closures = [h.task for h in run.holds if h.updated is True and h.release_received is not None
                and h.release_received < before and (by_id.get(h.task) or (0, 0, None))[2] != CLOSED]
    assignments = []
    for h in run.holds:
        answered_before = h.release_received is not None and h.release_received < before
        if h.vc != 1 or h.got >= before or answered_before:
            continue
        row = by_id.get(h.task)
        # held by that worker, or closed by its release (committed; the answer came after the promote)
        if row is None or not (row[2] == CLOSED or (row[2] == NEW and row[3] == h.worker)):
            assignments.append(h.task)
    return {"submitted_tasks": submits, "closures": closures, "assignments": assignments}


def first_success_after(rec: Recorder, t: float) -> float | None:
    """Seconds from ``t`` (monotonic) until the first get (handing out a task) or release sent
    after it was answered 200 with ``ok: true``."""
    since = t - rec.t0
    ends = [row["t"] + row["dt"] for row in rec.rows
            if row["route"] in ("get", "release") and row["status"] == 200 and row["ok"] and row["t"] >= since]
    return round(min(ends) - since, 2) if ends else None


@pytest.mark.parametrize("failover_stack", ["sync", "async"], indirect=True)
def test_db_failover(failover_stack, tmp_path, chaos_summary):
    stack = failover_stack
    system = stack.system
    mode = stack.replication
    people = cast(system, SIZES.workers, name="failover")
    r = people.admin.post("/project/create", {"name": "idle", "public": True})
    assert r.status_code == 200, r.text
    listeners_before = start_listeners(stack, people, r.json()["content"]["id"])
    assert listeners_before == system.gateway_workers, f"LISTEN connections before the failover: {listeners_before}"

    seen: dict = {}
    setup = {"replication": mode, "workers": SIZES.workers, "bulks": SIZES.bulks, "bulk_size": SIZES.bulk_size,
             "replicas": system.replicas, "gateway_workers": system.gateway_workers, "failover_at": FAILOVER_AT,
             "promote_after": PROMOTE_AFTER}
    outcome = run_workload(system, people, SIZES, lambda run, t0, results: failover(run, stack, t0, results, seen),
                           tmp_path=tmp_path, setup=setup)
    run, rec, summary, checks = outcome.run, outcome.run.rec, outcome.summary, outcome.checks
    assert "promote" in seen, f"the failover did not happen: {rec.events}"
    lost = acknowledged_but_lost(run, seen["standby_rows"], seen["promote"])
    listeners_after = stack.standby.sql(LISTENING, db=system.name)[0][0]
    summary["failover"] = {
        "replication": mode,
        "recovery_s_from_kill": first_success_after(rec, seen["kill"]),
        "recovery_s_from_promote": first_success_after(rec, seen["promote"]),
        "acknowledged_before_promote": {
            "bulks_200": sum(b.status == 200 and b.received < seen["promote"] for b in run.bulks),
            "releases_updated_true": sum(h.updated is True and h.release_received is not None
                                         and h.release_received < seen["promote"] for h in run.holds)},
        "acknowledged_but_lost": {k: len(v) for k, v in lost.items()},
        # the old primary's WAL past what the standby received: commits lost, acknowledged or not
        "wal_never_received": seen.get("unreceived"),
        "lost_examples": {k: v[:10] for k, v in lost.items()},
        "listen_connections": {"before": listeners_before, "after_on_new_primary": listeners_after},
    }
    checks["no task stored twice"] = not summary["tasks"]["duplicated"]
    checks["nothing acknowledged before the promote is missing from the promoted standby"] = not any(lost.values())
    checks["the old primary stays dead"] = not stack.pg.running
    checks["the gateway's LISTEN connections are back, on the new primary"] = \
        listeners_after == system.gateway_workers
    summary["checks"] = checks
    path = chaos_summary(summary, tmp_path / "failover_summary.json")
    print_compact(summary, path, title=f"FAILOVER SUMMARY ({mode})", extra=("failover",))

    asserted = checks if mode == "sync" else {name: checks[name] for name in MUST_HOLD}
    failed = [name for name, ok in asserted.items() if not ok]
    assert not failed, (f"failover ({mode}) checks failed: {failed}; failover: {summary['failover']}; "
                        f"{failure_details(summary)}; summary: {path}")


pytestmark = pytest.mark.timeout(int(SIZES.limit) + 600)
