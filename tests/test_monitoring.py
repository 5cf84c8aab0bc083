"""Monitoring and read-only statistics of contract §3 (snapshot), §6.3 and §6.4, end to end.

``GET /project/monitoring/:id?count=N``, ``/project/monitoring-between/:id?from=F&to=T``,
``/project/assignees/:id`` (R permission of §4) and ``GET /worker/stats``.

Every test of this module runs on its own tracker: a 1 s monitoring interval so snapshots appear
within the test, and two replicas of every service, the snapshot taker included, so the §8 guarantee
"the monitoring snapshot runs once per interval cluster-wide" is observable. The module overrides the
``system`` fixture, so conftest's ``api``, ``admin``, ``make_project`` and ``grant`` act on it.
"""

from __future__ import annotations

import time
import uuid

import pytest

from tests.harness import Api, System, assert_error, assert_ok, submitted

UNKNOWN = 1 << 62
INT31_MAX = (1 << 31) - 1
READ, EDIT, MANAGE_ACCESS, SECRET, MAINTENANCE, ALL = 1, 2, 4, 8, 16, 31
TR_OK, TR_FAIL, TR_SKIP = 0, 1, 2
SNAPSHOT_KEYS = {"new_task_count", "failed_task_count", "closed_task_count", "worker_access_count",
                 "awaiting_verification_count", "time_stamp"}
VISIBILITY = {"public": {"public": True}, "private": {}, "hidden": {"hidden": True}}


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    sysm = System.create(tmp_path_factory.mktemp("mon"), TT_MONITORING_INTERVAL="1")
    try:
        sysm.start("--replicas", "2", "--gateway-workers", "2")
        sysm.wait_ready(min_consumers=2)  # both replicas of every service are consuming
        sysm.admin = Api(sysm.url).new_manager("admin")
        yield sysm
    finally:
        sysm.destroy_later()


# --- helpers ------------------------------------------------------------------------------------
def check_snapshots(snapshots: list) -> list[dict]:
    """Every element has exactly the snapshot keys, all ints; the list is newest first."""
    assert isinstance(snapshots, list)
    for s in snapshots:
        assert set(s) == SNAPSHOT_KEYS, s
        for key, value in s.items():
            assert isinstance(value, int) and not isinstance(value, bool), (key, s)
            assert value >= 0, (key, s)
    stamps = [s["time_stamp"] for s in snapshots]
    assert stamps == sorted(stamps, reverse=True), stamps
    return snapshots


def monitoring(client: Api, pid, count: int = 999) -> list[dict]:
    body = assert_ok(client.get(f"/project/monitoring/{pid}", params={"count": count}))
    assert set(body["content"]) == {"snapshots"}, body
    return check_snapshots(body["content"]["snapshots"])


def between(client: Api, pid, start: int, end: int) -> list[dict]:
    body = assert_ok(client.get(f"/project/monitoring-between/{pid}", params={"from": start, "to": end}))
    assert set(body["content"]) == {"snapshots"}, body
    snapshots = check_snapshots(body["content"]["snapshots"])
    for s in snapshots:
        assert start <= s["time_stamp"] <= end, (start, end, s)
    return snapshots


def assignees(client: Api, pid) -> list[dict]:
    body = assert_ok(client.get(f"/project/assignees/{pid}"))
    assert set(body["content"]) == {"assignees"}, body
    rows = body["content"]["assignees"]
    assert isinstance(rows, list) and len(rows) <= 16
    for row in rows:
        assert set(row) == {"assignee", "task_count"}, row
        assert isinstance(row["assignee"], str) and isinstance(row["task_count"], int) and row["task_count"] > 0
    counts = [row["task_count"] for row in rows]
    assert counts == sorted(counts), rows
    return rows


def wait_snapshot(client: Api, pid: int, not_before: int, timeout: float = 20) -> dict:
    """The newest snapshot once one with ``time_stamp >= not_before`` exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snaps = monitoring(client, pid, 1)
        if snaps and snaps[0]["time_stamp"] >= not_before:
            return snaps[0]
        time.sleep(0.25)
    raise AssertionError(f"no snapshot of project {pid} at or after {not_before} within {timeout} s")


def settled() -> int:
    """A time_stamp whose snapshot surely started after everything done so far."""
    return int(time.time()) + 2


def submit(w: Api, pid: int, recipe: str, **fields) -> None:
    r = w.post("/task/submit", {"project": pid, "recipe": recipe, **fields})
    assert submitted(r), r.text


def take(w: Api, pid: int) -> dict:
    return assert_ok(w.get(f"/task/get/{pid}"))["content"]["task"]


def release(w: Api, task_id: int, result: int = TR_OK, verification: int = 0) -> dict:
    return assert_ok(w.post("/task/release", {"task_id": task_id, "result": result, "verification": verification}))


def manager_with_role(api: Api, admin: Api, pid: int, role: int) -> Api:
    m = api.new_manager()
    if role:
        assert_ok(admin.post(f"/manager/set_role_for_project/{pid}", {"manager": m.id, "role": role}))
    return m


def uid() -> str:
    return uuid.uuid4().hex[:10]


# --- snapshots ------------------------------------------------------------------------------------
def test_snapshot_shape_of_an_empty_project(admin, make_project):
    pid = make_project()
    s = wait_snapshot(admin, pid, settled())
    assert set(s) == SNAPSHOT_KEYS
    assert {k: v for k, v in s.items() if k != "time_stamp"} == {
        "new_task_count": 0, "failed_task_count": 0, "closed_task_count": 0, "worker_access_count": 0,
        "awaiting_verification_count": 0}
    assert abs(s["time_stamp"] - time.time()) < 30


def test_one_snapshot_per_interval_cluster_wide(admin, make_project):
    """Two replicas of the snapshot taker, interval 1 s: ~3 snapshots per project in 3 s, not ~6 (§8)."""
    projects = [make_project(), make_project()]
    for pid in projects:
        wait_snapshot(admin, pid, settled())  # the scheduler runs and knows both projects
    start = int(time.time()) + 1
    end = start + 2  # three whole seconds: start, start+1, end
    time.sleep(max(0.0, end + 2 - time.time()))  # every snapshot of second ``end`` is stored
    for pid in projects:
        window = between(admin, pid, start, end)
        assert 2 <= len(window) <= 4, [s["time_stamp"] for s in window]
        newest = [s for s in monitoring(admin, pid) if start <= s["time_stamp"] <= end]
        assert newest == window


def test_snapshot_counts(api, admin, make_project, grant):
    pid = make_project()
    w1, w2, w3, w4 = (api.new_worker(f"mon-{i}") for i in range(4))
    for w in (w1, w2, w3):
        grant(w, pid)
    assert_ok(w4.post("/project/request_access", {"project": pid, "assign": True}))  # pending: counted too
    for i in range(3):
        submit(w1, pid, f"close-{i}", priority=100)
    for i in range(2):
        submit(w1, pid, f"fail-{i}", priority=90, max_retries=0)
    submit(w1, pid, "held", priority=80)
    for i in range(2):
        submit(w1, pid, f"verify-{i}", priority=70, verification_count=2)
    for i in range(3):
        submit(w1, pid, f"plain-{i}")
    for _ in range(3):
        assert release(w1, take(w1, pid)["id"])["content"]["updated"] is True
    for _ in range(2):
        assert release(w1, take(w1, pid)["id"], TR_FAIL)["content"]["updated"] is True
    held = take(w1, pid)
    assert held["recipe"] == "held"
    for _ in range(2):
        t = take(w1, pid)
        assert t["recipe"].startswith("verify-")
        assert release(w1, t["id"], TR_OK, 1)["content"]["updated"] is False
    # a second, disagreeing verification: still one task awaiting verification, with two records
    t = take(w2, pid)
    assert t["recipe"] == "verify-0"
    assert release(w2, t["id"], TR_OK, 2)["content"]["updated"] is False

    s = wait_snapshot(admin, pid, settled())
    assert {k: v for k, v in s.items() if k != "time_stamp"} == {
        "new_task_count": 4,  # held + 3 plain: NEW without any verification
        "awaiting_verification_count": 2,  # tasks, not verification records (3)
        "failed_task_count": 2,
        "closed_task_count": 3,
        "worker_access_count": 4,  # 3 granted + 1 pending
    }
    assert s["closed_task_count"] == assert_ok(admin.get(f"/project/get/{pid}"))["content"]["project"][
        "closed_task_count"]

    # hard_reset deletes the tasks; the closure counter keeps its value
    assert assert_ok(admin.post(f"/project/hard_reset/{pid}"))["content"] == {"affected_tasks": 11}
    s = wait_snapshot(admin, pid, settled())
    assert {k: v for k, v in s.items() if k != "time_stamp"} == {
        "new_task_count": 0, "awaiting_verification_count": 0, "failed_task_count": 0, "closed_task_count": 3,
        "worker_access_count": 4}


def test_snapshots_are_per_project(api, admin, make_project, grant):
    busy, idle = make_project(), make_project()
    w = api.new_worker()
    grant(w, busy)
    for i in range(2):
        submit(w, busy, f"t{i}")
    stamp = settled()
    assert wait_snapshot(admin, busy, stamp)["new_task_count"] == 2
    s = wait_snapshot(admin, idle, stamp)
    assert s["new_task_count"] == 0 and s["worker_access_count"] == 0


def test_monitoring_count_returns_the_newest(admin, make_project):
    pid = make_project()
    wait_snapshot(admin, pid, settled() + 2)  # at least three snapshots by now
    two = monitoring(admin, pid, 2)
    everything = monitoring(admin, pid, 999)
    assert len(two) == 2 and 3 <= len(everything) < 999
    assert two in (everything[:2], everything[1:3])  # one more may have landed in between
    one = monitoring(admin, pid, 1)
    assert len(one) == 1 and one[0]["time_stamp"] >= two[0]["time_stamp"]


def test_monitoring_between_bounds_are_inclusive(admin, make_project):
    pid = make_project()
    wait_snapshot(admin, pid, settled() + 3)
    time.sleep(1.5)  # every snapshot of the newest second seen so far is stored
    everything = monitoring(admin, pid)
    stamps = sorted({s["time_stamp"] for s in everything})
    assert len(stamps) >= 4
    oldest, mid, newest = stamps[0], stamps[len(stamps) // 2], stamps[-1]
    assert between(admin, pid, oldest, newest) == [s for s in monitoring(admin, pid)
                                                   if oldest <= s["time_stamp"] <= newest]
    exact = between(admin, pid, mid, mid)
    assert exact and all(s["time_stamp"] == mid for s in exact)
    assert all(s["time_stamp"] > mid for s in between(admin, pid, mid + 1, newest))
    assert all(s["time_stamp"] < mid for s in between(admin, pid, oldest, mid - 1))
    assert between(admin, pid, oldest, mid) == [s for s in everything if oldest <= s["time_stamp"] <= mid]


def test_monitoring_between_far_past_and_limits(admin, make_project):
    pid = make_project()
    wait_snapshot(admin, pid, settled())
    assert between(admin, pid, 1, 1) == []
    assert between(admin, pid, INT31_MAX, INT31_MAX) == []
    assert len(between(admin, pid, 1, INT31_MAX)) >= 1


def test_monitoring_of_a_project_without_snapshots_is_an_empty_list(admin, make_project):
    pid = make_project()
    assert between(admin, pid, 1, int(time.time()) - 3600) == []


# --- query validation -------------------------------------------------------------------------------
@pytest.mark.parametrize("count", ["0", "1000", "-1", "abc", "1.5", "", str(1 << 63), "1e2"])
def test_monitoring_bad_count_400(admin, make_project, count):
    assert_error(admin.get(f"/project/monitoring/{make_project()}?count={count}"), 400, "count")


def test_monitoring_missing_count_400(admin, make_project):
    assert_error(admin.get(f"/project/monitoring/{make_project()}"), 400, "count")


@pytest.mark.parametrize("count", [1, 999])
def test_monitoring_count_limits_accepted(admin, make_project, count):
    assert len(monitoring(admin, make_project(), count)) <= count


@pytest.mark.parametrize("name", ["from", "to"])
@pytest.mark.parametrize("value", ["0", "-1", str(INT31_MAX + 1), "abc", "1.5", ""])
def test_monitoring_between_bad_bound_400(admin, make_project, name, value):
    params = {"from": "1", "to": "100", name: value}
    r = admin.get(f"/project/monitoring-between/{make_project()}", params=params)
    assert_error(r, 400, name)


@pytest.mark.parametrize("missing", ["from", "to"])
def test_monitoring_between_missing_bound_400(admin, make_project, missing):
    params = {"from": "1", "to": "100"}
    del params[missing]
    assert_error(admin.get(f"/project/monitoring-between/{make_project()}", params=params), 400, missing)


ROUTES = {
    "monitoring": "/project/monitoring/{id}?count=5",
    "monitoring-between": "/project/monitoring-between/{id}?from=1&to=2000000000",
    "assignees": "/project/assignees/{id}",
}


@pytest.mark.parametrize("route", list(ROUTES))
class TestIdAndExistence:
    @pytest.mark.parametrize("bad", ["0", "-1", "abc", "1.5", str(1 << 63)])
    def test_bad_id_400(self, admin, route, bad):
        assert_error(admin.get(ROUTES[route].format(id=bad)), 400, "id")

    def test_unknown_project_404(self, admin, api, route):
        assert_error(admin.get(ROUTES[route].format(id=UNKNOWN)), 404)
        assert_error(api.get(ROUTES[route].format(id=UNKNOWN)), 404)
        assert_error(api.new_worker().get(ROUTES[route].format(id=UNKNOWN)), 404)

    def test_post_is_405(self, admin, make_project, route):
        r = admin.post(ROUTES[route].format(id=make_project()))
        assert_error(r, 405)
        assert "GET" in [m.strip() for m in r.headers["Allow"].split(",")]


@pytest.mark.parametrize("path", ["/project/monitoring/{id}?count=0", "/project/monitoring-between/{id}?from=0&to=5"])
def test_bad_query_before_unknown_project(admin, path):
    """§1.4: query syntax (step 4) answers before entity existence (step 6)."""
    assert_error(admin.get(path.format(id=UNKNOWN)), 400)


# --- permission R (§4) ---------------------------------------------------------------------------------
CALLERS = ["anonymous", "worker", "worker_with_access", "manager", "manager_read", "manager_all_but_read", "admin"]
HIDDEN_ANSWER = {"anonymous": 401, "worker": 403, "worker_with_access": 403, "manager": 403, "manager_read": 200,
                 "manager_all_but_read": 403, "admin": 200}


def make_caller(kind: str, api: Api, admin: Api, pid: int, grant) -> Api:
    if kind == "anonymous":
        return api
    if kind.startswith("worker"):
        w = api.new_worker()
        if kind == "worker_with_access":
            grant(w, pid)
        return w
    if kind == "admin":
        return admin
    role = {"manager": 0, "manager_read": READ, "manager_all_but_read": ALL & ~READ}[kind]
    return manager_with_role(api, admin, pid, role)


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("visibility", list(VISIBILITY))
@pytest.mark.parametrize("caller", CALLERS)
def test_read_permission(api, admin, make_project, grant, route, visibility, caller):
    pid = make_project(**VISIBILITY[visibility])
    client = make_caller(caller, api, admin, pid, grant)
    r = client.get(ROUTES[route].format(id=pid))
    expected = HIDDEN_ANSWER[caller] if visibility == "hidden" else 200
    if expected == 200:
        body = assert_ok(r)
        key = "assignees" if route == "assignees" else "snapshots"
        assert set(body["content"]) == {key} and isinstance(body["content"][key], list)
    else:
        assert_error(r, expected)


def test_hidden_snapshots_do_not_leak_to_refused_callers(api, admin, make_project, grant):
    pid = make_project(hidden=True)
    w = api.new_worker()
    grant(w, pid)
    submit(w, pid, "x")
    wait_snapshot(admin, pid, settled())
    for client, status in ((api, 401), (w, 403)):
        body = assert_error(client.get(f"/project/monitoring/{pid}?count=5"), status)
        assert "content" not in body or "snapshots" not in body["content"]
        assert_error(client.get(f"/project/assignees/{pid}"), status)


# --- assignees --------------------------------------------------------------------------------------
def test_assignees_groups_by_live_holder(api, make_project, grant):
    pid = make_project()
    alias_a, alias_b, alias_c = f"alpha-{uid()}", f"beta-{uid()}", f"gamma-{uid()}"
    wa, wb, wc, wd = api.new_worker(alias_a), api.new_worker(alias_b), api.new_worker(alias_c), api.new_worker()
    for w in (wa, wb, wc, wd):
        grant(w, pid)
    for i in range(2):
        submit(wd, pid, f"closed-{i}", priority=100)
    submit(wd, pid, "failed", priority=90, max_retries=0)
    for i in range(3):
        submit(wd, pid, f"a-{i}", priority=80)  # max_assign_time 0: the lease never expires
    submit(wd, pid, "b", priority=70, max_assign_time=600)
    submit(wd, pid, "c", priority=60, max_assign_time=2)
    for i in range(3):
        submit(wd, pid, f"free-{i}")
    assert assignees(api, pid) == [{"assignee": "unassigned", "task_count": 11}]
    for _ in range(2):
        assert release(wd, take(wd, pid)["id"])["content"]["updated"] is True
    assert release(wd, take(wd, pid)["id"], TR_FAIL)["content"]["updated"] is True
    held_a = [take(wa, pid) for _ in range(3)]
    assert {t["recipe"] for t in held_a} == {"a-0", "a-1", "a-2"}
    assert take(wb, pid)["recipe"] == "b"
    assert take(wc, pid)["recipe"] == "c"
    rows = assignees(api, pid)
    # CLOSED excluded; FAILED and never-held tasks are "unassigned"; ties in any order
    assert {r["assignee"]: r["task_count"] for r in rows} == {alias_b: 1, alias_c: 1, alias_a: 3, "unassigned": 4}
    assert len(rows) == 4
    time.sleep(2.5)  # gamma's lease expires: its task counts as unassigned though gamma still holds it
    assert assignees(api, pid) == [{"assignee": alias_b, "task_count": 1}, {"assignee": alias_a, "task_count": 3},
                                   {"assignee": "unassigned", "task_count": 5}]
    assert release(wa, held_a[0]["id"], TR_SKIP)["content"]["updated"] is True
    assert assignees(api, pid) == [{"assignee": alias_b, "task_count": 1}, {"assignee": alias_a, "task_count": 2},
                                   {"assignee": "unassigned", "task_count": 6}]


def test_assignees_groups_by_alias_not_by_worker(api, make_project, grant):
    pid = make_project()
    twin = f"twin-{uid()}"
    w1, w2 = api.new_worker(twin), api.new_worker(twin)
    for w in (w1, w2):
        grant(w, pid)
    submit(w1, pid, "one")
    submit(w1, pid, "two")
    take(w1, pid)
    take(w2, pid)
    assert assignees(api, pid) == [{"assignee": twin, "task_count": 2}]


def test_assignees_at_most_16_rows_smallest_first(api, admin, make_project, grant):
    pid = make_project()
    owner = api.new_worker()
    grant(owner, pid)
    for i in range(19):
        submit(owner, pid, f"t{i}")
    aliases = {f"many-{i:02d}-{uid()}" for i in range(17)}
    for alias in aliases:
        w = api.new_worker(alias)
        grant(w, pid)
        take(w, pid)
    rows = assignees(api, pid)  # 17 holders with 1 task each, "unassigned" with 2
    assert len(rows) == 16
    assert all(r["task_count"] == 1 and r["assignee"] in aliases for r in rows), rows
    assert len({r["assignee"] for r in rows}) == 16


def test_assignees_empty_project_is_an_empty_list(api, make_project):
    assert assignees(api, make_project()) == []


def test_assignees_after_reclaim(api, admin, make_project, grant):
    pid = make_project()
    alias = f"reclaimed-{uid()}"
    w = api.new_worker(alias)
    grant(w, pid)
    for i in range(3):
        submit(w, pid, f"r{i}")
    take(w, pid)
    take(w, pid)
    assert assignees(api, pid) == [{"assignee": "unassigned", "task_count": 1}, {"assignee": alias, "task_count": 2}]
    assert assert_ok(admin.post(f"/project/reclaim_assigned_tasks/{pid}"))["content"] == {"affected_tasks": 2}
    assert assignees(api, pid) == [{"assignee": "unassigned", "task_count": 3}]


# --- /worker/stats ---------------------------------------------------------------------------------
def worker_stats(client: Api) -> list[dict]:
    r = client.get("/worker/stats")
    body = assert_ok(r)
    assert set(body) <= {"ok", "content", "message"} and set(body["content"]) == {"stats"}
    stats = body["content"]["stats"]
    assert isinstance(stats, list)
    for s in stats:
        assert set(s) == {"id", "alias", "closed_task_count", "paused"}, s
    ids = [s["id"] for s in stats]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    return stats


def closed_counts(client: Api) -> dict[int, int]:
    return {s["id"]: s["closed_task_count"] for s in worker_stats(client)}


def test_worker_stats_lists_every_worker_in_id_order(api, admin):
    aliases = [f"st-{i}-{uid()}" for i in range(3)]
    made = [api.new_worker(alias) for alias in aliases]
    for client in (api, admin, made[0]):
        stats = {s["id"]: s for s in worker_stats(client)}
        for w, alias in zip(made, aliases, strict=True):
            assert stats[w.id] == {"id": w.id, "alias": alias, "closed_task_count": 0, "paused": False}
    assert made[0].secret not in api.get("/worker/stats").text


def test_worker_stats_counts_only_closing_releases(api, make_project, grant):
    pid = make_project()
    w1, w2 = api.new_worker(), api.new_worker()
    for w in (w1, w2):
        grant(w, pid)
    submit(w1, pid, "verify", priority=30, verification_count=2)
    submit(w1, pid, "fail", priority=20, max_retries=0)
    submit(w1, pid, "skip", priority=10)
    submit(w1, pid, "close")
    t = take(w1, pid)
    assert t["recipe"] == "verify" and release(w1, t["id"], TR_OK, 42)["content"]["updated"] is False
    assert release(w1, take(w1, pid)["id"], TR_FAIL)["content"]["updated"] is True
    t = take(w1, pid)
    assert t["recipe"] == "skip" and release(w1, t["id"], TR_SKIP)["content"]["updated"] is True
    counts = closed_counts(api)
    assert counts[w1.id] == 0 and counts[w2.id] == 0
    t = take(w1, pid)
    assert t["recipe"] == "skip" and release(w1, t["id"])["content"]["updated"] is True
    assert closed_counts(api)[w1.id] == 1
    # the second matching verification closes the task: the closing worker is credited, once
    t = take(w2, pid)
    assert t["recipe"] == "verify" and release(w2, t["id"], TR_OK, 42)["content"]["updated"] is True
    counts = closed_counts(api)
    assert counts[w1.id] == 1 and counts[w2.id] == 1
    # a late, non-holder release changes nothing
    assert release(w2, t["id"])["content"]["updated"] is False
    assert closed_counts(api)[w2.id] == 1


def test_worker_stats_reflects_alias_and_pause(api, admin):
    w = api.new_worker("before")
    assert_ok(w.post("/worker/update", {"alias": "after-" + uid()}))
    assert_ok(admin.post("/worker/set_paused", {"worker": w.id, "paused": True}))
    stats = {s["id"]: s for s in worker_stats(api)}
    assert stats[w.id]["alias"].startswith("after-") and stats[w.id]["paused"] is True
