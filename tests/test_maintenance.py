"""Maintenance routes of contract §6.4, end to end through the gateway.

``POST /project/reset_failed_tasks/:id``, ``/project/hard_reset/:id`` and
``/project/reclaim_assigned_tasks/:id``: MAINTENANCE role, 200 ``{"ok": true, "content":
{"affected_tasks": n}}``, their effects on tasks, counters and later releases, and the refusals of
§1.4 (400 bad id, 404 unknown project, 401 anonymous or worker, 403 without the role) with nothing
changed. The database is read directly only to compare task states before and after.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import pytest

from tests.harness import Api, assert_error, assert_ok, submitted

UNKNOWN = 1 << 62  # a valid id no test ever creates
READ, EDIT, MANAGE_ACCESS, SECRET, MAINTENANCE, ALL = 1, 2, 4, 8, 16, 31
NEW, FAILED, CLOSED = 1, 2, 3
TR_OK, TR_FAIL = 0, 1
ROUTES = ["reset_failed_tasks", "hard_reset", "reclaim_assigned_tasks"]
NO_TASK = {"ok": False, "message": "No task available"}


def assert_affected(r, n: int) -> None:
    body = assert_ok(r)
    assert body["content"] == {"affected_tasks": n}, body


def maintain(client: Api, route: str, pid: int | str):
    return client.post(f"/project/{route}/{pid}")


def submit(w: Api, pid: int, recipe: str, **fields) -> None:
    r = w.post("/task/submit", {"project": pid, "recipe": recipe, **fields})
    assert submitted(r), r.text


def take(w: Api, pid: int) -> dict:
    body = assert_ok(w.get(f"/task/get/{pid}"))
    return body["content"]["task"]


def release(w: Api, task_id: int, result: int = TR_OK, verification: int = 0):
    return w.post("/task/release", {"task_id": task_id, "result": result, "verification": verification})


def drain(w: Api, pid: int) -> list[dict]:
    """Every task ``w`` can be assigned now, in assignment order."""
    tasks = []
    for _ in range(50):
        r = w.get(f"/task/get/{pid}")
        assert r.status_code == 200, r.text
        if r.json() == NO_TASK:
            return tasks
        tasks.append(r.json()["content"]["task"])
    raise AssertionError("project never ran dry")


def tasks_state(system, pid: int) -> list[tuple]:
    return system.sql("SELECT id, status, retries, assignee FROM task WHERE project = %s ORDER BY id", pid)


def project_closed(client: Api, pid: int) -> int:
    return assert_ok(client.get(f"/project/get/{pid}"))["content"]["project"]["closed_task_count"]


def worker_closed(api: Api, wid: int) -> int:
    stats = assert_ok(api.get("/worker/stats"))["content"]["stats"]
    return {s["id"]: s["closed_task_count"] for s in stats}[wid]


def manager_with_role(api: Api, admin: Api, pid: int, role: int) -> Api:
    m = api.new_manager()
    if role:
        assert_ok(admin.post(f"/manager/set_role_for_project/{pid}", {"manager": m.id, "role": role}))
    return m


@dataclass
class Stock:
    """A project holding tasks in every state, each category with known ids and hash64 values."""

    pid: int
    w1: Api
    w2: Api
    closed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    awaiting: list[int] = field(default_factory=list)  # NEW, one OK verification recorded, unassigned
    held: list[int] = field(default_factory=list)  # NEW, held with a lease that never expires
    fresh: list[int] = field(default_factory=list)  # NEW, never assigned
    hashes: dict = field(default_factory=dict)  # task id -> hash64

    @property
    def all(self) -> list[int]:
        return self.closed + self.failed + self.awaiting + self.held + self.fresh


@pytest.fixture
def stock(api, system, make_project, grant):
    """2 CLOSED, 3 FAILED, 1 awaiting verification, 2 held (one by each worker), 1 fresh NEW: 9 tasks.

    Priorities make the assignment order deterministic: each step takes the best remaining task.
    """

    def build(**project_fields) -> Stock:
        pid = make_project(**project_fields)
        w1, w2 = api.new_worker("maint-1"), api.new_worker("maint-2")
        grant(w1, pid)
        grant(w2, pid)
        base = uuid.uuid4().int % (1 << 40) * 100 + 1
        plan = [("closed", 2, 100, {}), ("failed", 3, 90, {"max_retries": 0}), ("held", 2, 80, {}),
                ("awaiting", 1, 70, {"verification_count": 2}), ("fresh", 1, 0, {})]
        n = 0
        for kind, count, priority, extra in plan:
            for _ in range(count):
                n += 1
                submit(w1, pid, f"{kind}-{n}", priority=priority, hash64=base + n, **extra)
        s = Stock(pid, w1, w2)
        for _ in range(2):
            t = take(w1, pid)
            assert assert_ok(release(w1, t["id"]))["content"]["updated"] is True
            s.closed.append(t["id"])
        for _ in range(3):
            t = take(w1, pid)
            assert assert_ok(release(w1, t["id"], TR_FAIL))["content"]["updated"] is True
            s.failed.append(t["id"])
        s.held.append(take(w1, pid)["id"])
        s.held.append(take(w2, pid)["id"])
        t = take(w1, pid)
        assert assert_ok(release(w1, t["id"], TR_OK, 5))["content"]["updated"] is False
        s.awaiting.append(t["id"])
        rows = system.sql("SELECT id, status, hash64 FROM task WHERE project = %s", pid)
        s.hashes = {tid: h for tid, _, h in rows}
        status = {tid: st for tid, st, _ in rows}
        s.fresh = [tid for tid in status if tid not in s.all]
        assert len(s.fresh) == 1 and len(rows) == 9
        assert {status[t] for t in s.closed} == {CLOSED}
        assert {status[t] for t in s.failed} == {FAILED}
        assert {status[t] for t in s.awaiting + s.held + s.fresh} == {NEW}
        return s

    return build


# --- reset_failed_tasks ---------------------------------------------------------------------------
def test_reset_failed_tasks(api, admin, system, stock, grant):
    s = stock()
    assert_affected(maintain(admin, "reset_failed_tasks", s.pid), 3)
    state = {tid: (st, retries, assignee) for tid, st, retries, assignee in tasks_state(system, s.pid)}
    for tid in s.failed:
        assert state[tid] == (NEW, 0, None), tid
    for tid in s.closed:
        assert state[tid][0] == CLOSED
    assert state[s.held[0]] == (NEW, 0, s.w1.id) and state[s.held[1]] == (NEW, 0, s.w2.id)
    # the reset tasks are assignable again, with retries 0
    w3 = api.new_worker()
    grant(w3, s.pid)
    got = drain(w3, s.pid)
    assert {t["id"] for t in got} == set(s.failed + s.awaiting + s.fresh)
    for t in got:
        if t["id"] in s.failed:
            assert t["status"] == NEW and t["retries"] == 0 and t["assignee"] == w3.id


def test_reset_failed_tasks_again_affects_nothing(admin, system, stock):
    s = stock()
    assert_affected(maintain(admin, "reset_failed_tasks", s.pid), 3)
    before = tasks_state(system, s.pid)
    assert_affected(maintain(admin, "reset_failed_tasks", s.pid), 0)
    assert tasks_state(system, s.pid) == before


def test_reset_failed_tasks_resets_retries_of_retried_tasks(admin, system, make_project, api, grant):
    """A task that failed twice (max_retries 2) comes back with retries 0 and a fresh retry budget."""
    pid = make_project()
    w = api.new_worker()
    grant(w, pid)
    submit(w, pid, "twice", max_retries=2)
    for _ in range(2):
        t = take(w, pid)
        assert_ok(release(w, t["id"], TR_FAIL))
    assert system.sql("SELECT status, retries FROM task WHERE id = %s", t["id"]) == [(FAILED, 2)]
    assert_affected(maintain(admin, "reset_failed_tasks", pid), 1)
    assert system.sql("SELECT status, retries FROM task WHERE id = %s", t["id"]) == [(NEW, 0)]
    t = take(w, pid)
    assert t["retries"] == 0
    assert_ok(release(w, t["id"], TR_FAIL))
    assert system.sql("SELECT status, retries FROM task WHERE id = %s", t["id"]) == [(NEW, 1)]


def test_reset_failed_tasks_touches_only_its_project(admin, system, stock):
    a, b = stock(), stock()
    before_b = tasks_state(system, b.pid)
    assert_affected(maintain(admin, "reset_failed_tasks", a.pid), 3)
    assert tasks_state(system, b.pid) == before_b


def test_reset_failed_tasks_on_empty_project(admin, make_project):
    assert_affected(maintain(admin, "reset_failed_tasks", make_project()), 0)


# --- hard_reset -----------------------------------------------------------------------------------
def test_hard_reset_deletes_every_task(api, admin, system, stock):
    s = stock()
    assert project_closed(admin, s.pid) == 2
    assert worker_closed(api, s.w1.id) == 2
    assert system.sql("SELECT count(*) FROM task_verification WHERE task_id = ANY(%s)", s.awaiting) == [(1,)]
    assert_affected(maintain(admin, "hard_reset", s.pid), 9)
    assert tasks_state(system, s.pid) == []
    assert system.sql("SELECT count(*) FROM task WHERE id = ANY(%s)", s.all) == [(0,)]
    assert system.sql("SELECT count(*) FROM task_verification WHERE task_id = ANY(%s)", s.awaiting) == [(0,)]
    # counters keep their values
    assert project_closed(admin, s.pid) == 2
    assert worker_closed(api, s.w1.id) == 2
    assert worker_closed(api, s.w2.id) == 0
    # nothing to hand out any more
    r = s.w2.get(f"/task/get/{s.pid}")
    assert r.status_code == 200 and r.json() == NO_TASK


def test_hard_reset_frees_every_hash(admin, stock):
    """The same hash64 may be submitted again, whatever status its deleted task had (CLOSED included)."""
    s = stock()
    for tid in s.all:  # before: every hash is taken
        r = s.w1.post("/task/submit", {"project": s.pid, "recipe": "dup", "hash64": s.hashes[tid]})
        assert_error(r, 409)
    assert_affected(maintain(admin, "hard_reset", s.pid), 9)
    for tid in s.all:
        submit(s.w1, s.pid, f"again-{tid}", hash64=s.hashes[tid])
    # and the project works as before
    assert take(s.w2, s.pid)["recipe"].startswith("again-")


def test_release_of_a_deleted_task_is_404(admin, system, stock):
    s = stock()
    assert_affected(maintain(admin, "hard_reset", s.pid), 9)
    assert_error(release(s.w1, s.held[0]), 404)
    assert_error(release(s.w2, s.held[1], TR_FAIL), 404)
    assert project_closed(admin, s.pid) == 2


def test_hard_reset_counts_no_closure_and_chains_nothing(api, admin, system, make_project, stock):
    target = make_project()
    s = stock(chain=target)
    copies = system.sql("SELECT count(*) FROM task WHERE project = %s", target)[0][0]
    assert copies == 2  # the two closures were chained
    assert_affected(maintain(admin, "hard_reset", s.pid), 9)
    assert system.sql("SELECT count(*) FROM task WHERE project = %s", target)[0][0] == 2
    assert project_closed(admin, s.pid) == 2
    assert project_closed(admin, target) == 0


def test_hard_reset_touches_only_its_project(admin, system, stock):
    a, b = stock(), stock()
    before_b = tasks_state(system, b.pid)
    assert_affected(maintain(admin, "hard_reset", a.pid), 9)
    assert tasks_state(system, b.pid) == before_b


def test_hard_reset_on_empty_project(admin, make_project):
    pid = make_project()
    assert_affected(maintain(admin, "hard_reset", pid), 0)
    assert_affected(maintain(admin, "hard_reset", pid), 0)


# --- reclaim_assigned_tasks -------------------------------------------------------------------------
def test_reclaim_assigned_tasks(api, admin, system, stock, grant):
    s = stock()
    before = {tid: row for tid, *row in tasks_state(system, s.pid)}
    assert_affected(maintain(admin, "reclaim_assigned_tasks", s.pid), 2)
    after = {tid: row for tid, *row in tasks_state(system, s.pid)}
    for tid in s.held:
        assert after[tid] == [NEW, 0, None], tid
    for tid in s.closed + s.failed + s.awaiting + s.fresh:
        assert after[tid] == before[tid], tid
    # the reclaimed tasks are assignable again
    w3 = api.new_worker()
    grant(w3, s.pid)
    got = drain(w3, s.pid)
    assert {t["id"] for t in got} == set(s.held + s.awaiting + s.fresh)


def test_former_holder_release_after_reclaim_is_not_updated(admin, system, stock):
    s = stock()
    assert_affected(maintain(admin, "reclaim_assigned_tasks", s.pid), 2)
    for w, tid, result in ((s.w1, s.held[0], TR_OK), (s.w2, s.held[1], TR_FAIL)):
        r = release(w, tid, result)
        body = assert_ok(r)
        assert body["content"] == {"updated": False}, body
        assert system.sql("SELECT status, retries, assignee FROM task WHERE id = %s", tid) == [(NEW, 0, None)]
    assert project_closed(admin, s.pid) == 2  # the late OK closed nothing


def test_reclaim_again_affects_nothing(admin, system, stock):
    s = stock()
    assert_affected(maintain(admin, "reclaim_assigned_tasks", s.pid), 2)
    before = tasks_state(system, s.pid)
    assert_affected(maintain(admin, "reclaim_assigned_tasks", s.pid), 0)
    assert tasks_state(system, s.pid) == before


def test_reclaim_counts_only_assigned_new_tasks(admin, make_project, api, grant):
    """Many NEW tasks, few held: only the held ones count (differs from original: all NEW counted)."""
    pid = make_project()
    w = api.new_worker()
    grant(w, pid)
    for i in range(5):
        submit(w, pid, f"n{i}")
    take(w, pid)
    assert_affected(maintain(admin, "reclaim_assigned_tasks", pid), 1)
    assert len(drain(w, pid)) == 5


def test_reclaim_includes_expired_lease_still_held(admin, system, make_project, api, grant):
    """A lease that expired without anyone else taking the task still has its holder (§3.1)."""
    pid = make_project()
    w = api.new_worker()
    grant(w, pid)
    submit(w, pid, "short", max_assign_time=1)
    t = take(w, pid)
    time.sleep(1.5)
    assert_affected(maintain(admin, "reclaim_assigned_tasks", pid), 1)
    assert system.sql("SELECT assignee FROM task WHERE id = %s", t["id"]) == [(None,)]
    assert assert_ok(release(w, t["id"]))["content"] == {"updated": False}


def test_reclaim_touches_only_its_project(admin, system, stock):
    a, b = stock(), stock()
    before_b = tasks_state(system, b.pid)
    assert_affected(maintain(admin, "reclaim_assigned_tasks", a.pid), 2)
    assert tasks_state(system, b.pid) == before_b


def test_reclaim_on_empty_project(admin, make_project):
    assert_affected(maintain(admin, "reclaim_assigned_tasks", make_project()), 0)


# --- permissions and refusals (all three routes) ------------------------------------------------------
EXPECTED = {"reset_failed_tasks": 3, "hard_reset": 9, "reclaim_assigned_tasks": 2}


@pytest.mark.parametrize("route", ROUTES)
class TestRefusals:
    @pytest.mark.parametrize("bad", ["0", "-1", "abc", "1.5", str(1 << 63)])
    def test_bad_id_400(self, admin, route, bad):
        assert_error(maintain(admin, route, bad), 400, "id")

    def test_unknown_project_404(self, admin, route):
        assert_error(maintain(admin, route, UNKNOWN), 404)

    def test_unknown_project_404_before_permission(self, api, route):
        assert_error(maintain(api.new_manager(), route, UNKNOWN), 404)

    def test_anonymous_401_nothing_changes(self, api, system, stock, route):
        s = stock()
        before = tasks_state(system, s.pid)
        assert_error(maintain(api, route, s.pid), 401)
        assert tasks_state(system, s.pid) == before

    def test_anonymous_401_before_bad_id_and_unknown_project(self, api, route):
        assert_error(maintain(api, route, "abc"), 401)
        assert_error(maintain(api, route, UNKNOWN), 401)

    def test_worker_is_no_manager_401(self, system, stock, route):
        s = stock()
        before = tasks_state(system, s.pid)
        assert_error(maintain(s.w1, route, s.pid), 401)
        assert tasks_state(system, s.pid) == before

    def test_invalid_cookie_401(self, system, stock, route):
        s = stock()
        stranger = Api(system.url)
        stranger.http.cookies.set("tt", "not-a-session")
        assert_error(maintain(stranger, route, s.pid), 401)

    @pytest.mark.parametrize("role", [0, ALL & ~MAINTENANCE, READ, EDIT | MANAGE_ACCESS | SECRET])
    def test_without_maintenance_403_nothing_changes(self, api, admin, system, stock, route, role):
        s = stock()
        m = manager_with_role(api, admin, s.pid, role)
        before = tasks_state(system, s.pid)
        assert_error(maintain(m, route, s.pid), 403)
        assert tasks_state(system, s.pid) == before

    def test_maintenance_on_another_project_403(self, api, admin, system, stock, make_project, route):
        s = stock()
        m = manager_with_role(api, admin, make_project(), MAINTENANCE)
        before = tasks_state(system, s.pid)
        assert_error(maintain(m, route, s.pid), 403)
        assert tasks_state(system, s.pid) == before

    def test_maintenance_bit_alone_passes(self, api, admin, stock, route):
        s = stock()
        m = manager_with_role(api, admin, s.pid, MAINTENANCE)
        assert_affected(maintain(m, route, s.pid), EXPECTED[route])

    def test_creator_passes(self, api, route):
        m = api.new_manager()
        pid = assert_ok(m.post("/project/create", {"name": "mt-" + uuid.uuid4().hex[:12]}))["content"]["id"]
        assert_affected(maintain(m, route, pid), 0)

    def test_admin_passes_and_body_is_ignored(self, admin, stock, route):
        s = stock()
        r = admin.post(f"/project/{route}/{s.pid}", {"affected_tasks": 0, "id": 1})
        assert_affected(r, EXPECTED[route])

    def test_unparsable_body_is_ignored(self, admin, stock, route):
        """§1.1: POST routes that take no body (e.g. hard_reset) ignore it."""
        s = stock()
        assert_affected(admin.post(f"/project/{route}/{s.pid}", raw=b"{not json"), EXPECTED[route])

    def test_get_is_405(self, admin, make_project, route):
        r = admin.get(f"/project/{route}/{make_project()}")
        assert_error(r, 405)
        assert "POST" in [m.strip() for m in r.headers["Allow"].split(",")]
