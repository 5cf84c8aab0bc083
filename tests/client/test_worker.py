"""The ``Worker`` loop against the real tracker: a fleet surviving a killed gateway process, the lease
keeper, handler outcomes, and a graceful stop."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
from task_tracker_client import Fail, Skip, Worker

from tests.client.conftest import task_rows
from tests.harness import gateway_worker_pids


@pytest.mark.slow  # a 5,000-task drain with a gateway process killed midway: chaos-like
def test_fleet_drains_5000_tasks_through_a_killed_gateway(system, make_project, new_client):
    """8 client workers (concurrency 4 each) drain 5,000 tasks while a gateway process is SIGKILLed
    midway: every task ends CLOSED, closed exactly once, and no release was lost or refused."""
    project = make_project()
    submitter = new_client(project)
    assert submitter.bulk_submit(project, (f"t{i}" for i in range(5000)), chunk=2500).submitted == 5000
    clients = [new_client(project, alias=f"fleet-{i}") for i in range(8)]
    handled: list[int] = []
    lock = threading.Lock()

    def handler(task):
        with lock:
            handled.append(task.id)

    workers = [Worker(c, project, handler, concurrency=4, handle_signals=False) for c in clients]
    results: list = [None] * len(workers)

    def run(i: int) -> None:
        results[i] = workers[i].run(until_empty=True)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(handled) < 1500 and time.monotonic() < deadline:
        time.sleep(0.05)
    victim = gateway_worker_pids(system)[0]
    os.kill(victim, signal.SIGKILL)
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)

    rows = task_rows(system, project)
    assert len(rows) == 5000
    assert {r[1] for r in rows} == {3}  # every task CLOSED
    assert system.sql("SELECT count(*) FROM task_verification WHERE task_id IN "
                      "(SELECT id FROM task WHERE project = %s)", project) == [(0,)]
    assert submitter.project(project).closed_task_count == 5000  # each closure counted exactly once
    assert sum(s.ok for s in results) == 5000 and sum(s.not_updated for s in results) == 0
    assert sum(s.failed + s.skipped + s.abandoned for s in results) == 0
    assert len(handled) >= 5000
    assert sum(c.stats.retries for c in clients) >= 1  # the kill was felt, and survived
    assert victim not in gateway_worker_pids(system)


def test_lease_keeper_keeps_a_slow_task(system, make_project, new_client):
    """A 2 s lease, a 5 s handler: the keeper extends it, so another worker never gets the task."""
    project = make_project()
    c1, c2 = new_client(project, alias="slow"), new_client(project, alias="thief")
    tid = c1.submit(project, "slow one", max_assign_time=2)
    started = threading.Event()

    def handler(task):
        started.set()
        time.sleep(5)
        return "done"

    worker = Worker(c1, project, handler, concurrency=1, wait=0, handle_signals=False)
    out: list = []
    t = threading.Thread(target=lambda: out.append(worker.run(max_tasks=1)))
    t.start()
    assert started.wait(10)
    stolen = []
    while t.is_alive():
        task = c2.get_task(project)
        if task is not None:
            stolen.append(task.id)
        time.sleep(0.25)
    t.join()
    assert stolen == []
    assert out[0].ok == 1 and out[0].not_updated == 0 and out[0].lease_extensions >= 2
    assert system.sql("SELECT status, assignee FROM task WHERE id = %s", tid) == [(3, c1.worker_id)]


def test_handler_outcomes_and_failure_logs(system, make_project, new_client):
    project = make_project()
    c = new_client(project)
    c.bulk_submit(project, ["ok", "skip", "boom", "fail"], max_retries=1)
    seen: dict[str, int] = {}

    def handler(task):
        seen[task.recipe] = seen.get(task.recipe, 0) + 1
        if task.recipe == "skip":
            if seen["skip"] == 1:
                raise Skip()
            return 7
        if task.recipe == "boom":
            raise RuntimeError("handler exploded")
        if task.recipe == "fail":
            raise Fail("told to fail")
        return None

    since = int(time.time()) - 1
    stats = Worker(c, project, handler, concurrency=2, handle_signals=False).run(until_empty=True)
    assert (stats.ok, stats.skipped, stats.failed) == (2, 1, 2)
    assert seen == {"ok": 1, "skip": 2, "boom": 1, "fail": 1}
    status = dict(system.sql("SELECT recipe, status FROM task WHERE project = %s", project))
    assert status == {"ok": 3, "skip": 3, "boom": 2, "fail": 2}  # max_retries 1: FAILED after one failure
    errors = [e["message"] for e in c.logs(3, since) if json.loads(e["data"])["worker"] == c.worker_id]
    assert any("Traceback" in m and "handler exploded" in m for m in errors), errors
    assert any("told to fail" in m and "Traceback" not in m for m in errors), errors


def test_stop_releases_tasks_still_running_after_the_grace_period(system, make_project, new_client):
    project = make_project()
    c = new_client(project)
    c.bulk_submit(project, ["a", "b", "c", "d", "e"])
    release = threading.Event()
    running = threading.Semaphore(0)

    def handler(task):
        running.release()
        if task.recipe == "a":
            return None  # finishes at once
        release.wait(30)  # the others hang until the test ends
        return None

    worker = Worker(c, project, handler, concurrency=3, grace=0.5, handle_signals=False)
    out: list = []
    t = threading.Thread(target=lambda: out.append(worker.run()))
    t.start()
    for _ in range(4):  # a, b, c, then d in the slot "a" freed
        assert running.acquire(timeout=10)
    worker.stop()
    t.join(timeout=20)
    release.set()
    assert not t.is_alive()
    stats = out[0]
    assert stats.ok == 1 and stats.abandoned == 3
    rows = task_rows(system, project)
    assert not any(r[3] for r in rows)  # nothing left held
    assert system.sql("SELECT count(*) FROM task WHERE project = %s AND status = 1 AND retries = 0 "
                      "AND assignee IS NULL", project) == [(4,)]


@pytest.mark.parametrize("concurrency", [1, 3])
def test_max_tasks(system, make_project, new_client, concurrency):
    project = make_project()
    c = new_client(project)
    c.bulk_submit(project, [str(i) for i in range(10)])
    stats = Worker(c, project, lambda t: None, concurrency=concurrency, handle_signals=False).run(max_tasks=4)
    assert stats.ok == 4
    assert system.sql("SELECT count(*) FROM task WHERE project = %s AND status = 3", project) == [(4,)]
