"""The Python client library against the real tracker: calls, typed errors, credentials file, and
retries that never double or lose anything (answers dropped by a lossy proxy in front of the
real gateway)."""

from __future__ import annotations

import logging
import stat
import time
import uuid

import pytest
from task_tracker_client import (
    Client,
    Conflict,
    Forbidden,
    NotFound,
    PausedWorker,
    Result,
    TrackerLogHandler,
    Unauthorized,
)

from tests.client.conftest import task_rows
from tests.client.proxy import LossyProxy


def test_worker_calls_roundtrip(system, make_project, new_client, tmp_path):
    project = make_project()
    c = new_client(project, alias="roundtrip")

    tid = c.submit(project, "first", priority=5, max_retries=2, max_assign_time=60, unique_string="u-first")
    assert isinstance(tid, int)
    with pytest.raises(Conflict) as dup:
        c.submit(project, "again", unique_string="u-first")
    assert dup.value.status == 409
    items = ["a", "b", {"recipe": "c", "priority": 9}, {"recipe": "d", "unique_string": "u-first"}]
    res = c.bulk_submit(project, items, chunk=2)
    assert (res.submitted, res.duplicates) == (3, 1)

    task = c.get_task(project)
    assert task.recipe == "c" and task.priority == 9 and task.project.id == project
    assert task.max_assign_time == 600 and task.max_retries == 3  # the client's defaults
    assert c.extend(task.id, 120) is True
    assert c.release(task.id, "ok") is True
    assert c.release(task.id, Result.OK) is False  # not the holder any more

    tasks = c.get_tasks(project, count=10)
    assert [t.recipe for t in tasks] == ["first", "a", "b"]
    assert [c.release(t.id, r) for t, r in zip(tasks, ["fail", "skip", 0], strict=True)] == [True, True, True]
    assert [t.recipe for t in c.get_tasks(project, count=5)] == ["first", "a"]  # FAIL (retries left), SKIP
    assert c.get_task(project) is None  # both are held now

    assert c.project(project).id == project
    assert project in {p.id for p in c.projects()}
    assert c.request_access(project) is False  # already granted: 409 reported as "exists"
    c.log("info", "hello from the client test", scope="client-test")
    assert any(e["message"] == "hello from the client test" for e in c.logs(5, int(time.time()) - 60))

    path = tmp_path / "worker.json"
    c.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = Client.load(path)
    assert (again.worker_id, again.secret, again.url) == (c.worker_id, c.secret, c.url)
    assert again.worker()["id"] == c.worker_id
    again.close()


def test_errors_are_typed(system, admin, make_project, new_client):
    project = make_project()
    c = new_client()  # no access at all
    with pytest.raises(NotFound) as e:
        c.project(2 ** 62)
    assert e.value.status == 404 and "not found" in e.value.message.lower()
    with pytest.raises(Forbidden):
        c.submit(project, "x")
    with pytest.raises(Forbidden):
        c.get_task(project)
    bad = Client(system.url, c.worker_id, "AAAA" + c.secret[4:])
    with pytest.raises(Unauthorized):
        bad.get_task(project)
    bad.close()
    assert admin.post("/worker/set_paused", {"worker": c.worker_id, "paused": True}).status_code == 200
    with pytest.raises(PausedWorker, match="paused"):
        c.get_task(project)


def test_lost_answers_are_retried_with_the_same_key(system, make_project, new_client):
    """The proxy lets the server act, then drops the answer: the client's retry must get the first
    answer back (same Idempotency-Key), so nothing is stored twice, no task is stranded and no
    release is lost."""
    project = make_project()
    proxy = LossyProxy(("127.0.0.1", system.port))
    try:
        c = new_client(project, url=proxy.url)
        recipe = f"lost-{uuid.uuid4().hex}"
        proxy.drop("/task/submit")
        tid = c.submit(project, recipe)
        assert system.sql("SELECT id FROM task WHERE project = %s AND recipe = %s", project, recipe) == [(tid,)]

        proxy.drop("/task/bulk_submit")
        res = c.bulk_submit(project, [f"bulk-{i}" for i in range(50)])
        assert (res.submitted, res.duplicates) == (50, 0)
        assert system.sql("SELECT count(*) FROM task WHERE project = %s", project) == [(51,)]

        proxy.drop("/task/get/")
        task = c.get_task(project)
        assert task.id == tid  # the retry answered the tasks the lost answer had handed out
        rows = {r[0]: r for r in task_rows(system, project)}
        assert [i for i, r in rows.items() if r[3]] == [tid]  # held once, by us; nothing stranded

        proxy.drop("/task/release")
        assert c.release(task.id, "ok") is True  # a fresh release would have said updated: false
        assert system.sql("SELECT status FROM task WHERE id = %s", tid) == [(3,)]

        for route in ("/task/submit", "/task/bulk_submit", "/task/get/", "/task/release"):
            tries = [s for s in proxy.seen if s.path.startswith(route)]
            assert tries[0].dropped and not tries[1].dropped, route
            assert tries[0].key and tries[0].key == tries[1].key, route
        assert c.stats.retries >= 4
    finally:
        proxy.close()


def test_rate_limited_project_waits_the_advertised_delay(system, make_project, new_client):
    """assign_rate 5: each get that meets a 429 sleeps the advertised delay (+ a little jitter) and
    then succeeds — at most one 429 per task, never a sleep much longer than 1/5 s."""
    project = make_project(assign_rate=5)
    c = new_client(project)
    n = 11
    assert c.bulk_submit(project, [f"r{i}" for i in range(n)]).submitted == n
    t0 = time.monotonic()
    for _ in range(n):
        task = c.get_task(project)
        assert task is not None
        c.release(task.id, "ok")
    elapsed = time.monotonic() - t0
    assert elapsed >= (n - 1) / 5 - 0.1, elapsed  # the limit held
    assert elapsed <= (n - 1) / 5 + 1.5, elapsed  # and the client did not oversleep
    assert 1 <= c.stats.rate_limited <= n - 1, c.stats
    assert c.stats.max_rate_limit_sleep <= 0.2 + 0.05, c.stats
    assert c.stats.retries == 0  # 429s are waited out, not counted as failures


def test_log_handler_ships_python_logging(system, new_client):
    c = new_client()
    handler = TrackerLogHandler(c, scope="py-logging")
    logger = logging.getLogger("client-test.shipper")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    marker = uuid.uuid4().hex
    try:
        logger.warning("disk almost full %s", marker)
        logger.debug("not shipped %s", marker)  # below the handler's level
        handler.flush()
    finally:
        logger.removeHandler(handler)
        handler.close()
    warns = [e for e in c.logs(4, int(time.time()) - 60) if marker in e["message"]]
    assert len(warns) == 1 and '"scope": "py-logging"' in warns[0]["data"].replace('":"', '": "')
    assert not any(marker in e["message"] for e in c.logs(7, int(time.time()) - 60))
