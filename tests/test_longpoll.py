"""Long-polling task get, `GET /task/get/:project?wait=S` (contract §6.5, §3.1).

If nothing is assignable the request waits up to S seconds and answers as soon as a task becomes
assignable (submitted, released, expired), else "No task available" after S seconds.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest
import requests

from gateway.longpoll import WAKE_AT_ONCE
from tests.harness import Api, gateway_worker_pids

NO_TASK = {"ok": False, "message": "No task available"}
FAR_ID = 10 ** 12


def submit(w, pid, **fields):
    r = w.post("/task/submit", {"project": pid, "recipe": fields.pop("recipe", "r"), **fields})
    assert r.status_code == 200, r.text
    return r


def take(w, pid, query: str = ""):
    r = w.get(f"/task/get/{pid}{query}")
    assert r.status_code == 200, r.text
    return r.json()


@dataclass
class Waiter:
    """A get running in its own thread (own HTTP connection); records when it answered."""

    worker: Api
    path: str
    started: float = 0.0
    answered: float | None = None
    status: int | None = None
    body: dict | None = None
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self.api = Api(self.worker.base, dict(self.worker.http.headers))
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            r = self.api.http.get(self.api.base + self.path, timeout=60)
            self.answered = time.monotonic()
            self.status, self.body = r.status_code, r.json()
        except BaseException as e:  # noqa: BLE001 - checked by the test
            self.answered = time.monotonic()
            self.error = e

    def start(self) -> Waiter:
        self.started = time.monotonic()
        self.thread.start()
        return self

    def join(self, timeout: float = 40) -> Waiter:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"{self.path} did not answer in time"
        assert self.error is None, self.error
        return self

    @property
    def task(self) -> dict:
        assert self.status == 200 and self.body["ok"] is True, (self.status, self.body)
        return self.body["content"]["task"]


@pytest.fixture
def queue(api, make_project, grant):
    """An empty public project and a worker with SUBMIT+ASSIGN on it."""
    pid = make_project(public=True)
    w = api.new_worker("lp-submitter")
    grant(w, pid)
    return pid, w


# --- validation ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["31", "-1", "abc", "1.5", "1e1", "9" * 40])
def test_wait_out_of_range_is_400(queue, value):
    pid, w = queue
    r = w.get(f"/task/get/{pid}?wait={value}")
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["ok"] is False and "wait" in body["message"], body
    r = w.get(f"/task/get/{pid}?wait={value}&count=2")
    assert r.status_code == 400 and "wait" in r.json()["message"], r.text


def test_wait_check_order(api, queue):
    pid, w = queue
    r = api.get(f"/task/get/{pid}?wait=31")
    assert r.status_code == 401 and r.json()["ok"] is False, r.text  # authentication before query syntax
    r = w.get(f"/task/get/{FAR_ID}?wait=31")
    assert r.status_code == 400 and "wait" in r.json()["message"], r.text  # syntax before existence
    t0 = time.monotonic()
    r = w.get(f"/task/get/{FAR_ID}?wait=5")
    assert r.status_code == 404 and r.json()["ok"] is False, r.text
    assert time.monotonic() - t0 < 2  # an unknown project is not waited on


def test_refused_gets_are_not_waited_on(api, admin, make_project, grant):
    private = make_project()
    stranger = api.new_worker("lp-stranger")
    t0 = time.monotonic()
    r = stranger.get(f"/task/get/{private}?wait=5")
    assert r.status_code == 403 and r.json()["ok"] is False, r.text
    paused = api.new_worker("lp-paused")
    grant(paused, private)
    assert admin.post("/worker/set_paused", {"worker": paused.id, "paused": True}).status_code == 200
    r = paused.get(f"/task/get/{private}?wait=5")
    assert r.status_code == 400 and r.json() == {"ok": False, "message": "A manager has paused you"}, r.text
    r = paused.get(f"/task/get/{private}?wait=31")
    assert r.status_code == 400 and r.json()["message"] == "A manager has paused you", r.text  # paused first
    assert time.monotonic() - t0 < 3


@pytest.mark.parametrize("value", ["0", "30"])
def test_wait_bounds_accepted(queue, value):
    pid, w = queue
    submit(w, pid, recipe="ready")
    body = take(w, pid, f"?wait={value}")
    assert body["ok"] is True and body["content"]["task"]["recipe"] == "ready", body


def test_wait_zero_answers_at_once(queue):
    pid, w = queue
    t0 = time.monotonic()
    assert take(w, pid, "?wait=0") == NO_TASK
    assert take(w, pid, "?wait=0&count=3") == {**NO_TASK, "content": {"tasks": []}}
    assert time.monotonic() - t0 < 1.5


def test_available_task_is_answered_at_once(queue):
    pid, w = queue
    submit(w, pid, recipe="here")
    t0 = time.monotonic()
    body = take(w, pid, "?wait=10")
    assert body["ok"] is True and body["content"]["task"]["recipe"] == "here"
    assert time.monotonic() - t0 < 1.5


# --- timeouts ----------------------------------------------------------------------------------------
def test_wait_that_sees_nothing_answers_after_the_wait(queue):
    pid, w = queue
    t0 = time.monotonic()
    assert take(w, pid, "?wait=2") == NO_TASK
    assert 1.8 <= time.monotonic() - t0 <= 4.0
    t0 = time.monotonic()
    assert take(w, pid, "?wait=2&count=4") == {**NO_TASK, "content": {"tasks": []}}
    assert 1.8 <= time.monotonic() - t0 <= 4.0


def test_submit_to_another_project_does_not_end_the_wait(api, queue, make_project, grant):
    pid, w = queue
    other = make_project(public=True)
    grant(w, other)
    waiter = Waiter(w, f"/task/get/{pid}?wait=3").start()
    time.sleep(1)
    submit(w, other, recipe="elsewhere")
    waiter.join()
    assert waiter.status == 200 and waiter.body == NO_TASK, waiter.body
    assert 2.7 <= waiter.answered - waiter.started <= 5.0


def test_paused_project_answers_no_task_without_error(admin, queue):
    pid, w = queue
    submit(w, pid, recipe="paused")
    assert admin.post(f"/project/update/{pid}", {"paused": True}).status_code == 200
    t0 = time.monotonic()
    r = w.get(f"/task/get/{pid}?wait=2")
    assert r.status_code == 200 and r.json() == NO_TASK, r.text
    assert time.monotonic() - t0 <= 4.0  # at once or after the wait, never longer


# --- wake-ups -----------------------------------------------------------------------------------------
def test_submit_wakes_a_waiter(api, queue):
    pid, w = queue
    consumer = api.new_worker("lp-consumer")  # public project: ASSIGN without a grant
    waiter = Waiter(consumer, f"/task/get/{pid}?wait=10").start()
    time.sleep(2)
    assert waiter.answered is None, ("answered before the submit", waiter.status, waiter.body)
    submitted = time.monotonic()
    submit(w, pid, recipe="wake up", priority=5)
    waiter.join()
    assert waiter.answered >= submitted, "answered before the submit"
    assert waiter.answered - submitted < 1.0, f"answered {waiter.answered - submitted:.2f} s after the submit"
    task = waiter.task
    assert task["recipe"] == "wake up" and task["priority"] == 5
    assert task["assignee"] == consumer.id and task["project"]["id"] == pid


def test_bulk_submit_wakes_a_batch_waiter(api, queue):
    pid, w = queue
    consumer = api.new_worker("lp-batch")
    waiter = Waiter(consumer, f"/task/get/{pid}?wait=10&count=5").start()
    time.sleep(1.5)
    assert waiter.answered is None
    submitted = time.monotonic()
    r = w.post("/task/bulk_submit", [{"project": pid, "recipe": f"b{i}", "priority": i} for i in range(3)])
    assert r.status_code == 200, r.text
    waiter.join()
    assert waiter.answered - submitted < 1.0
    assert waiter.status == 200 and waiter.body["ok"] is True, waiter.body
    tasks = waiter.body["content"]["tasks"]
    assert 1 <= len(tasks) <= 3
    assert len({t["id"] for t in tasks}) == len(tasks)
    assert all(t["assignee"] == consumer.id for t in tasks)
    assert [t["priority"] for t in tasks] == sorted((t["priority"] for t in tasks), reverse=True)


@pytest.mark.parametrize("result, fields", [(2, {}), (1, {"max_retries": 3}), (0, {"verification_count": 2})],
                         ids=["skip", "fail-back-to-new", "ok-awaiting-verification"])
def test_release_back_to_new_wakes_a_waiter(api, queue, result, fields):
    pid, w = queue
    submit(w, pid, recipe="bounce", **fields)
    held = take(w, pid)["content"]["task"]
    consumer = api.new_worker("lp-released")
    waiter = Waiter(consumer, f"/task/get/{pid}?wait=10").start()
    time.sleep(1.5)
    assert waiter.answered is None, waiter.body
    released = time.monotonic()
    r = w.post("/task/release", {"task_id": held["id"], "result": result, "verification": 1})
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    waiter.join()
    assert waiter.answered - released < 1.0, f"{waiter.answered - released:.2f} s after the release"
    assert waiter.task["id"] == held["id"] and waiter.task["assignee"] == consumer.id


def test_lease_expiry_wakes_a_waiter(api, queue):
    pid, w = queue
    submit(w, pid, recipe="leased", max_assign_time=2)
    before = time.monotonic()
    held = take(w, pid)["content"]["task"]
    after = time.monotonic()
    consumer = api.new_worker("lp-expiry")
    waiter = Waiter(consumer, f"/task/get/{pid}?wait=10").start()
    waiter.join()
    # the deadline lies in [before + 2, after + 2]
    assert waiter.answered >= before + 2 - 0.05, "handed out before the lease expired"
    assert waiter.answered <= after + 2 + 1.5, f"answered {waiter.answered - after - 2:.2f} s after the deadline"
    assert waiter.task["id"] == held["id"] and waiter.task["assignee"] == consumer.id
    r = w.post("/task/release", {"task_id": held["id"]})
    assert r.status_code == 200 and r.json()["content"]["updated"] is False  # re-assigned: the old holder lost it


def test_one_task_goes_to_exactly_one_of_two_waiters(api, queue):
    pid, w = queue
    waiters = [Waiter(api.new_worker(f"lp-race{i}"), f"/task/get/{pid}?wait=4").start() for i in range(2)]
    time.sleep(1)
    submit(w, pid, recipe="only one")
    for waiter in waiters:
        waiter.join()
    got = [x for x in waiters if x.body["ok"]]
    empty = [x for x in waiters if not x.body["ok"]]
    assert len(got) == 1 and len(empty) == 1, [x.body for x in waiters]
    assert got[0].task["recipe"] == "only one"
    assert empty[0].status == 200 and empty[0].body == NO_TASK
    assert empty[0].answered - empty[0].started >= 3.5  # still waited its full time


# --- many parked waiters ---------------------------------------------------------------------------------
def test_hundred_parked_waiters_do_not_block_other_requests(api, make_project, grant, system):
    empty = make_project(public=True)
    busy = make_project(public=True)
    submitter = api.new_worker("lp-many-submitter")
    grant(submitter, empty)
    grant(submitter, busy)
    r = submitter.post("/task/bulk_submit", [{"project": busy, "recipe": f"busy{i}"} for i in range(10)])
    assert r.status_code == 200, r.text
    consumers = [api.new_worker(f"lp-many{i}") for i in range(10)]
    normal = api.new_worker("lp-normal")

    def get_and_release() -> tuple[bool, requests.Response]:
        r = normal.get(f"/task/get/{busy}")
        if not (r.status_code == 200 and r.json()["ok"] is True):
            return False, r
        r = normal.post("/task/release", {"task_id": r.json()["content"]["task"]["id"], "result": 2})
        return r.status_code == 200 and r.json()["content"]["updated"] is True, r

    # wait=25 leaves room on a loaded 2-core machine: each waiter first asks once like any get (100 asks
    # at once); what this test is about is the parked state afterwards.
    waiters = [Waiter(consumers[i % 10], f"/task/get/{empty}?wait=25") for i in range(100)]
    parked_at = time.monotonic()
    for waiter in waiters:
        waiter.start()
    time.sleep(2)
    quick = 0  # three quick get+release cycles in a row: the first asks have drained, the waiters are parked
    while quick < 3:
        settle = time.monotonic() - parked_at
        assert settle < 15, f"100 parked long-polls still slow down other requests after {settle:.1f} s"
        t0 = time.monotonic()
        ok, r = get_and_release()
        assert ok, (r.status_code, r.text)
        quick = quick + 1 if time.monotonic() - t0 < 1 else 0
    assert all(x.answered is None for x in waiters), [x.body for x in waiters if x.answered][:3]

    slow = []
    for i in range(20):
        t0 = time.monotonic()
        kind = i % 4
        if kind == 0:
            r = api.get("/")
            ok = r.status_code == 200 and r.json()["ok"] is True
        elif kind == 1:
            r = api.get(f"/project/get/{busy}")
            ok = r.status_code == 200 and r.json()["content"]["project"]["id"] == busy
        elif kind == 2:
            ok, r = get_and_release()
        else:
            r = api.get(f"/worker/get/{normal.id}")
            ok = r.status_code == 200 and r.json()["content"]["worker"]["id"] == normal.id
        elapsed = time.monotonic() - t0
        assert ok, (i, r.status_code, r.text)
        if elapsed >= 2:
            slow.append((i, round(elapsed, 2)))
    assert not slow, f"requests slowed down by parked long-polls: {slow}"
    assert all(x.answered is None for x in waiters), "a waiter answered before any task was submitted"
    assert time.monotonic() - parked_at < 20, "machine too slow: the waits would time out before the submit"

    submitted = time.monotonic()
    r = submitter.post("/task/bulk_submit", [{"project": empty, "recipe": f"e{i}"} for i in range(100)])
    assert r.status_code == 200 and r.json()["content"] == {"submitted": 100, "duplicates": 0}, r.text
    for waiter in waiters:
        waiter.join()
    bad = [(x.status, x.body) for x in waiters if x.status != 200 or not x.body["ok"]]
    assert not bad, f"{len(bad)} waiters got no task, e.g. {bad[:3]}"
    ids = [x.task["id"] for x in waiters]
    assert len(set(ids)) == 100, "a task was handed to two waiters"
    stored = {row[0] for row in system.sql("SELECT id FROM task WHERE project = %s", empty)}
    assert set(ids) == stored
    late = max(x.answered for x in waiters) - submitted
    assert late < 8, f"the last waiter answered {late:.2f} s after the submit"
    for x in waiters:
        assert x.task["assignee"] == x.worker.id


def _get_task_asks(system) -> float:
    """task_svc get calls the gateway has sent (every process; each parked request's ask counts one)."""
    text = requests.get(system.url + "/metrics", headers={"Connection": "close"}, timeout=30).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("tt_rpc_calls_total{") and 'operation="get_tasks"' in line)


def test_one_task_wakes_a_few_parked_waiters_and_many_tasks_reach_all(api, make_project, grant, system):
    """A notification wakes at most WAKE_AT_ONCE parked requests per gateway process (each woken one
    that gets a task wakes the next): one task for 250 waiters costs a few dozen asks, not 250; 249
    more tasks in one bulk still reach every waiter at once, not at the end of its wait."""
    pid = make_project(public=True)
    submitter = api.new_worker("lp-herd-submitter")
    grant(submitter, pid)
    consumers = [api.new_worker(f"lp-herd{i}") for i in range(10)]
    n = 250
    before = _get_task_asks(system)
    waiters = [Waiter(consumers[i % 10], f"/task/get/{pid}?wait=25").start() for i in range(n)]
    deadline = time.monotonic() + 15
    while _get_task_asks(system) < before + n:  # each asked once, found nothing, parked
        assert time.monotonic() < deadline, "the waiters did not all ask within 15 s"
        time.sleep(0.2)
    time.sleep(0.5)
    assert all(x.answered is None for x in waiters)

    asks = _get_task_asks(system)
    submitted = time.monotonic()
    submit(submitter, pid, recipe="the only one")
    time.sleep(2)
    woken_asks = _get_task_asks(system) - asks
    got = [x for x in waiters if x.answered is not None]
    assert len(got) == 1 and got[0].task["recipe"] == "the only one", [x.body for x in got]
    assert got[0].answered - submitted < 1.5
    processes = len(gateway_worker_pids(system))
    assert woken_asks <= processes * WAKE_AT_ONCE + 10, f"{woken_asks:g} asks for one task ({processes} gateways)"

    r = submitter.post("/task/bulk_submit", [{"project": pid, "recipe": f"rest{i}"} for i in range(n - 1)])
    assert r.status_code == 200, r.text
    bulk = time.monotonic()
    for waiter in waiters:
        waiter.join()
    tasks = [x.task for x in waiters]  # every waiter got one (none answered "No task available")
    assert len({t["id"] for t in tasks}) == n
    late = max(x.answered for x in waiters) - bulk
    assert late < 10, f"the last waiter answered {late:.2f} s after the bulk (its wait was 25 s)"
