"""Task administration (contract §6.8), end to end through the gateway.

``GET /project/tasks/:id`` (filters, cursor paging), ``GET /task/view/:id``,
``POST /project/retry_tasks|delete_tasks|update_tasks/:id`` (by ids or by filter) and
``POST /task/edit/:id``: their answers, their effects on tasks and on later worker calls, every
refusal in the order of §6.4 (400, 401, 404 before 403, 409), and that a refused request changes
nothing in the database (both task tables are compared before and after, read directly).
"""

from __future__ import annotations

import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
import pytest

from tests.harness import Api, assert_error, assert_ok, submitted
from tests.test_maintenance import manager_with_role, release, take

UNKNOWN = 1 << 62  # a valid id no test ever creates
READ, MAINTENANCE, ALL = 1, 16, 31
NEW, FAILED, CLOSED = 1, 2, 3
TR_OK, TR_FAIL = 0, 1
ROW_KEYS = {"id", "project", "priority", "assignee", "retries", "max_retries", "status", "recipe", "recipe_length",
            "max_assign_time", "assign_time", "verification_count", "hash64", "lease_expires", "verifications"}
ACTIONS = ("retry_tasks", "delete_tasks", "update_tasks")


# --- helpers ----------------------------------------------------------------------------------------
def submit(w: Api, pid: int, recipe: str, **fields) -> int:
    r = w.post("/task/submit", {"project": pid, "recipe": recipe, **fields})
    assert submitted(r), r.text
    return r.json()["content"]["id"]


def listing(client: Api, pid: int, **query) -> dict:
    return assert_ok(client.get(f"/project/tasks/{pid}", params=query))["content"]


def listed_ids(client: Api, pid: int, **query) -> list[int]:
    page = listing(client, pid, limit=500, **query)
    assert page["next"] is None
    return [t["id"] for t in page["tasks"]]


def act(client: Api, action: str, pid: int, body: dict):
    return client.post(f"/project/{action}/{pid}", body)


def affected(r, n: int, **more) -> None:
    assert assert_ok(r)["content"] == {"affected_tasks": n, **more}, r.text


def snapshot(system) -> tuple:
    """Every task and verification record, as stored."""
    tasks = system.sql("""SELECT id, project, priority, assignee, assign_time, lease_deadline, retries, max_retries,
                                 status, md5(recipe), max_assign_time, verification_count, hash64
                          FROM task ORDER BY id""")
    votes = system.sql("SELECT task_id, worker_id, verification FROM task_verification ORDER BY task_id, worker_id")
    return tasks, votes


@contextmanager
def unchanged(system):
    before = snapshot(system)
    yield
    assert snapshot(system) == before, "a refused request changed the database"


@dataclass
class Scene:
    """A project holding a task in every state of the status filter, each with known ids."""

    pid: int
    w1: Api
    w2: Api
    closed_by_w1: int = 0
    closed_by_w2: int = 0
    failed: list[int] = field(default_factory=list)
    assigned: int = 0  # held by w2, a lease that never expires
    expired: int = 0  # last held by w1, its lease expired
    awaiting: int = 0  # quorum of 2, one OK vote by w1
    fresh: int = 0  # never assigned
    hashes: dict = field(default_factory=dict)

    @property
    def all(self) -> list[int]:
        return sorted([self.closed_by_w1, self.closed_by_w2, *self.failed, self.assigned, self.expired,
                       self.awaiting, self.fresh])


@pytest.fixture
def scene(api, system, make_project, grant):
    """Tasks are taken in priority order, so each step knows which task it gets."""

    def build(**project_fields) -> Scene:
        pid = make_project(**project_fields)
        w1, w2 = api.new_worker("adm-1"), api.new_worker("adm-2")
        grant(w1, pid)
        grant(w2, pid)
        base = uuid.uuid4().int % (1 << 40) * 100 + 1
        s = Scene(pid, w1, w2)
        plan = [("c1", 100, {}), ("c2", 95, {}), ("f1", 90, {"max_retries": 0}), ("f2", 85, {"max_retries": 0}),
                ("held", 80, {}), ("expired", 75, {"max_assign_time": 3600}), ("quorum", 70, {"verification_count": 2}),
                ("fresh", 0, {})]
        ids = {}
        for n, (name, priority, extra) in enumerate(plan):
            ids[name] = submit(w1, pid, f"recipe {name} of {pid}", priority=priority, hash64=base + n, **extra)
            s.hashes[ids[name]] = base + n
        assert take(w1, pid)["id"] == ids["c1"] and assert_ok(release(w1, ids["c1"]))["content"]["updated"]
        assert take(w2, pid)["id"] == ids["c2"] and assert_ok(release(w2, ids["c2"]))["content"]["updated"]
        for name in ("f1", "f2"):
            assert take(w1, pid)["id"] == ids[name]
            assert_ok(release(w1, ids[name], TR_FAIL))
        assert take(w2, pid)["id"] == ids["held"]
        assert take(w1, pid)["id"] == ids["expired"]
        assert take(w1, pid)["id"] == ids["quorum"]
        assert assert_ok(release(w1, ids["quorum"], TR_OK, 5))["content"]["updated"] is False
        # the lease ends as if an hour had passed (the expired task is never taken again here)
        system.sql("UPDATE task SET lease_deadline = now() - interval '1 minute' WHERE id = %s", ids["expired"])
        s.closed_by_w1, s.closed_by_w2, s.failed = ids["c1"], ids["c2"], [ids["f1"], ids["f2"]]
        s.assigned, s.expired, s.awaiting, s.fresh = ids["held"], ids["expired"], ids["quorum"], ids["fresh"]
        return s

    return build


# --- the listing ------------------------------------------------------------------------------------
def test_listing_shows_every_task_as_a_task_row(admin, scene):
    s = scene()
    page = listing(admin, s.pid)
    assert page["next"] is None
    rows = {t["id"]: t for t in page["tasks"]}
    assert [t["id"] for t in page["tasks"]] == s.all  # ascending by id by default
    now = time.time()
    for row in rows.values():
        assert set(row) == ROW_KEYS, row
        assert row["project"] == s.pid and row["hash64"] == s.hashes[row["id"]]
        assert row["recipe_length"] == len(row["recipe"]) and row["recipe"].startswith("recipe ")
    closed = rows[s.closed_by_w1]
    assert (closed["status"], closed["assignee"], closed["lease_expires"]) == (CLOSED, s.w1.id, 0)
    assert closed["assign_time"] > 0 and abs(closed["assign_time"] - now) < 120
    assert rows[s.closed_by_w2]["assignee"] == s.w2.id
    for tid in s.failed:
        assert (rows[tid]["status"], rows[tid]["assignee"], rows[tid]["retries"]) == (FAILED, 0, 1)
    held = rows[s.assigned]
    assert (held["status"], held["assignee"], held["lease_expires"]) == (NEW, s.w2.id, 0)  # never expires
    expired = rows[s.expired]
    assert (expired["status"], expired["assignee"], expired["max_assign_time"]) == (NEW, s.w1.id, 3600)
    assert 0 < expired["lease_expires"] < now  # the last holder and the past deadline are still shown
    quorum = rows[s.awaiting]
    assert (quorum["assignee"], quorum["verification_count"], quorum["verifications"]) == (0, 2, 1)
    fresh = rows[s.fresh]
    assert (fresh["assignee"], fresh["assign_time"], fresh["lease_expires"], fresh["verifications"]) == (0, 0, 0, 0)


def test_a_live_lease_with_a_deadline_shows_it(api, admin, make_project, grant):
    pid = make_project()
    w = api.new_worker()
    grant(w, pid)
    tid = submit(w, pid, "leased", max_assign_time=600)
    before = time.time()
    take(w, pid)
    row = listing(admin, pid)["tasks"][0]
    assert row["id"] == tid and before + 600 - 2 <= row["lease_expires"] <= time.time() + 600 + 2
    assert listed_ids(admin, pid, status="assigned") == [tid]


def test_each_status_filter(admin, scene):
    s = scene()
    assert listed_ids(admin, s.pid, status="new") == sorted([s.fresh, s.expired])  # an expired lease is not held
    assert listed_ids(admin, s.pid, status="awaiting") == [s.awaiting]
    assert listed_ids(admin, s.pid, status="assigned") == [s.assigned]
    assert listed_ids(admin, s.pid, status="failed") == s.failed
    assert listed_ids(admin, s.pid, status="closed") == sorted([s.closed_by_w1, s.closed_by_w2])
    every = [tid for status in ("new", "awaiting", "assigned", "failed", "closed")
             for tid in listed_ids(admin, s.pid, status=status)]
    assert sorted(every) == s.all  # disjoint, and together every task


def test_assignee_filter_matches_the_row_whatever_the_lease(admin, scene):
    s = scene()
    assert listed_ids(admin, s.pid, assignee=s.w1.id) == sorted([s.closed_by_w1, s.expired])
    assert listed_ids(admin, s.pid, assignee=s.w2.id) == sorted([s.closed_by_w2, s.assigned])
    assert listed_ids(admin, s.pid, assignee=s.w1.id, status="closed") == [s.closed_by_w1]  # the closer
    assert listed_ids(admin, s.pid, assignee=s.w1.id, status="new") == [s.expired]
    assert listed_ids(admin, s.pid, assignee=s.w1.id, status="assigned") == []
    assert listed_ids(admin, s.pid, assignee=UNKNOWN) == []


def test_q_is_a_case_insensitive_literal_substring(api, admin, make_project, grant):
    pid = make_project()
    w = api.new_worker()
    grant(w, pid)
    recipes = {"upper": "ALPHA beta", "pct": "50% off", "under": "snake_case", "slash": "C:\\path",
               "plain": "alphabet 50 off snakeXcase C:path", "unicode": "ÄRGER über"}
    ids = {name: submit(w, pid, recipe) for name, recipe in recipes.items()}
    assert listed_ids(admin, pid, q="alpha") == sorted([ids["upper"], ids["plain"]])
    assert listed_ids(admin, pid, q="%") == [ids["pct"]]
    assert listed_ids(admin, pid, q="50%") == [ids["pct"]]
    assert listed_ids(admin, pid, q="_") == [ids["under"]]
    assert listed_ids(admin, pid, q="e_c") == [ids["under"]]
    assert listed_ids(admin, pid, q="\\") == [ids["slash"]]
    assert listed_ids(admin, pid, q="C:\\p") == [ids["slash"]]
    assert listed_ids(admin, pid, q="ärger") == [ids["unicode"]]
    assert listed_ids(admin, pid, q=" off") == sorted([ids["pct"], ids["plain"]])  # taken as sent, not stripped
    assert listed_ids(admin, pid, q="x" * 256) == []
    take(w, pid)
    assert listed_ids(admin, pid, q="alpha", status="assigned") == [ids["upper"]]


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_paging_walks_every_task_once(api, admin, make_project, grant, order):
    pid = make_project()
    w = api.new_worker()
    grant(w, pid)
    r = w.post("/task/bulk_submit", [{"project": pid, "recipe": f"paged {i}"} for i in range(300)])
    assert assert_ok(r)["content"]["submitted"] == 300
    every = sorted(t for t, in api_ids(admin, pid))
    assert len(every) == 300
    seen, after, pages = [], None, 0
    while True:
        query = {"limit": 7, "order": order, **({"after": after} if after is not None else {})}
        page = listing(admin, pid, **query)
        pages += 1
        assert len(page["tasks"]) == (7 if page["next"] is not None else 300 % 7)
        seen += [t["id"] for t in page["tasks"]]
        if page["next"] is None:
            break
        assert page["next"] == page["tasks"][-1]["id"]
        after = page["next"]
    assert pages == 43
    assert seen == (every if order == "asc" else every[::-1])  # no duplicate, no gap, in order
    # next is null exactly when nothing further matches: a page ending on the last task says so
    assert listing(admin, pid, limit=300, order=order)["next"] is None
    almost = listing(admin, pid, limit=299, order=order)
    assert almost["next"] == almost["tasks"][-1]["id"] and len(almost["tasks"]) == 299
    last = every[-1] if order == "asc" else every[0]
    assert listing(admin, pid, after=last, order=order) == {"tasks": [], "next": None}


def api_ids(admin: Api, pid: int) -> list[tuple[int]]:
    ids, after = [], None
    while True:
        page = listing(admin, pid, limit=500, **({"after": after} if after else {}))
        ids += [(t["id"],) for t in page["tasks"]]
        if page["next"] is None:
            return ids
        after = page["next"]


def test_listing_default_limit_is_50(api, admin, make_project, grant):
    pid = make_project()
    w = api.new_worker()
    grant(w, pid)
    assert_ok(w.post("/task/bulk_submit", [{"project": pid, "recipe": f"r{i}"} for i in range(51)]))
    page = listing(admin, pid)
    assert len(page["tasks"]) == 50 and page["next"] == page["tasks"][-1]["id"]


def test_listed_recipe_is_cut_at_1000_characters_and_view_gives_it_whole(api, admin, make_project, grant):
    pid = make_project()
    w = api.new_worker()
    grant(w, pid)
    recipe = "é" + "x" * 4998 + "z"
    tid = submit(w, pid, recipe)
    row = listing(admin, pid)["tasks"][0]
    assert row["recipe"] == recipe[:1000] and row["recipe_length"] == 5000
    viewed = assert_ok(admin.get(f"/task/view/{tid}"))["content"]["task"]
    assert set(viewed) == ROW_KEYS
    assert viewed["recipe"] == recipe and viewed["recipe_length"] == 5000
    assert {k: v for k, v in viewed.items() if k != "recipe"} == {k: v for k, v in row.items() if k != "recipe"}


@pytest.mark.parametrize("query, name", [
    ("status=bogus", "status"), ("status=NEW", "status"), ("status=", "status"), ("q=", "q"),
    ("q=" + "x" * 257, "q"), ("q=a%00b", "q"), ("assignee=0", "assignee"), ("assignee=x", "assignee"),
    ("assignee=-1", "assignee"), ("order=up", "order"), ("order=", "order"), ("after=0", "after"),
    ("after=1.5", "after"), ("limit=0", "limit"), ("limit=501", "limit"), ("limit=abc", "limit"),
])
def test_bad_query_parameter_is_400_naming_it(admin, make_project, query, name):
    pid = make_project()
    assert_error(admin.get(f"/project/tasks/{pid}?{query}"), 400, f"'{name}'")
    assert_error(admin.get(f"/project/tasks/{UNKNOWN}?{query}"), 400, f"'{name}'")  # syntax before existence


def test_unknown_query_parameters_are_ignored(admin, scene):
    s = scene()
    assert [t["id"] for t in listing(admin, s.pid, colour="blue", offset=3)["tasks"]] == s.all


def test_limits_of_the_query_parameters_are_valid(admin, scene):
    s = scene()
    assert len(listing(admin, s.pid, limit=1)["tasks"]) == 1
    assert len(listing(admin, s.pid, limit=500)["tasks"]) == len(s.all)
    assert listing(admin, s.pid, q="x" * 256)["tasks"] == []


# --- who may do what (§6.4's order) --------------------------------------------------------------
ROUTES = [("GET", "/project/tasks/{pid}", None), ("GET", "/task/view/{tid}", None),
          ("POST", "/project/retry_tasks/{pid}", {"filter": {}}),
          ("POST", "/project/delete_tasks/{pid}", {"filter": {}}),
          ("POST", "/project/update_tasks/{pid}", {"filter": {}, "priority": 5}),
          ("POST", "/task/edit/{tid}", {"priority": 5})]
ROUTE_IDS = [f"{m} {p}" for m, p, _ in ROUTES]


def call(client: Api, method: str, template: str, body, pid, tid):
    path = template.format(pid=pid, tid=tid)
    return client.get(path) if method == "GET" else client.post(path, body)


@pytest.mark.parametrize("method, template, body", ROUTES, ids=ROUTE_IDS)
def test_anonymous_and_worker_callers_are_401(api, system, scene, method, template, body):
    s = scene()
    with unchanged(system):
        assert_error(call(Api(api.base), method, template, body, s.pid, s.fresh), 401)
        assert_error(call(s.w1, method, template, body, s.pid, s.fresh), 401)
        assert_error(call(s.w1, method, template, {"bad": 1} if body else None, s.pid, s.fresh), 401)


@pytest.mark.parametrize("method, template, body", ROUTES, ids=ROUTE_IDS)
def test_bad_path_id_is_400(admin, system, method, template, body):
    with unchanged(system):
        for bad in ("0", "-1", "x", "1.5", str(1 << 63)):
            assert_error(call(admin, method, template, body, bad, bad), 400, "'id'")


@pytest.mark.parametrize("method, template, body", ROUTES, ids=ROUTE_IDS)
def test_unknown_project_or_task_is_404_before_the_role(api, system, method, template, body):
    nobody = api.new_manager()  # no role anywhere: 404 still comes first
    with unchanged(system):
        r = call(nobody, method, template, body, UNKNOWN, UNKNOWN)
        assert_error(r, 404, "Task not found" if "{tid}" in template else "Project not found")


@pytest.mark.parametrize("method, template, body", ROUTES, ids=ROUTE_IDS)
def test_a_manager_without_the_role_is_403(api, admin, system, scene, method, template, body):
    s = scene()
    reads = method == "GET"
    lacking = [0, MAINTENANCE] if reads else [0, READ, ALL & ~MAINTENANCE]
    for role in lacking:
        m = manager_with_role(api, admin, s.pid, role)
        with unchanged(system):
            assert_error(call(m, method, template, body, s.pid, s.fresh), 403, "READ" if reads else "MAINTENANCE")
    allowed = manager_with_role(api, admin, s.pid, READ if reads else MAINTENANCE)
    assert_ok(call(allowed, method, template, body, s.pid, s.fresh))


def test_readers_see_only_their_projects_tasks(api, admin, scene):
    a, b = scene(), scene()
    reader = manager_with_role(api, admin, a.pid, READ)
    assert [t["id"] for t in listing(reader, a.pid)["tasks"]] == a.all
    assert_error(reader.get(f"/project/tasks/{b.pid}"), 403)
    assert_error(reader.get(f"/task/view/{b.fresh}"), 403)


# --- selections ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("body, words", [
    ({}, ("exactly one of 'ids' and 'filter'",)),
    ({"ids": [1], "filter": {}}, ("exactly one of 'ids' and 'filter'",)),
    ({"ids": []}, ("'ids'",)),
    ({"ids": list(range(1, 10_002))}, ("'ids'", "10000")),
    ({"ids": [0]}, ("'ids[0]'",)),
    ({"ids": ["1"]}, ("'ids[0]'",)),
    ({"ids": 5}, ("'ids'",)),
    ({"filter": []}, ("'filter'",)),
    ({"filter": {"status": "bogus"}}, ("'filter.status'",)),
    ({"filter": {"q": ""}}, ("'filter.q'",)),
    ({"filter": {"q": "x" * 257}}, ("'filter.q'",)),
    ({"filter": {"assignee": 0}}, ("'filter.assignee'",)),
], ids=["neither", "both", "no-ids", "too-many-ids", "id-0", "id-string", "ids-not-list", "filter-list",
        "bad-status", "empty-q", "long-q", "assignee-0"])
def test_a_bad_selection_is_400_and_changes_nothing(admin, system, scene, action, body, words):
    s = scene()
    if action == "update_tasks":
        body = {**body, "priority": 1}
    with unchanged(system):
        assert_error(act(admin, action, s.pid, body), 400, *words)
        assert_error(act(admin, action, UNKNOWN, body), 400, *words)  # syntax before existence


def test_ids_of_other_projects_are_ignored(admin, system, scene):
    a, b = scene(), scene()
    before_b = snapshot(system)[0]
    before_b = [row for row in before_b if row[1] == b.pid]
    affected(act(admin, "delete_tasks", a.pid, {"ids": [a.fresh, b.fresh, b.failed[0], UNKNOWN]}), 1)
    assert [row for row in snapshot(system)[0] if row[1] == b.pid] == before_b
    assert a.fresh not in listed_ids(admin, a.pid)


def test_ten_thousand_ids_are_accepted(admin, scene):
    s = scene()
    affected(act(admin, "retry_tasks", s.pid, {"ids": [*s.failed, *range(UNKNOWN, UNKNOWN + 9_998)]}), 2)


# --- retry ----------------------------------------------------------------------------------------------
def test_retry_by_ids(api, admin, system, scene):
    s = scene()
    chosen = [s.closed_by_w1, *s.failed, s.assigned, s.expired, s.awaiting, s.fresh]
    affected(act(admin, "retry_tasks", s.pid, {"ids": chosen}), 6)  # every NEW and FAILED one, pristine or not
    rows = {t["id"]: t for t in listing(admin, s.pid)["tasks"]}
    for tid in chosen[1:]:
        t = rows[tid]
        assert (t["status"], t["retries"], t["assignee"], t["lease_expires"], t["verifications"]) == (NEW, 0, 0, 0, 0)
    assert rows[s.closed_by_w1]["status"] == CLOSED and rows[s.closed_by_w1]["assignee"] == s.w1.id
    assert system.sql("SELECT count(*) FROM task_verification WHERE task_id = %s", s.awaiting) == [(0,)]
    # the former holder's release changes nothing now
    assert assert_ok(release(s.w2, s.assigned))["content"]["updated"] is False
    assert listed_ids(admin, s.pid, status="new") == sorted(chosen[1:])
    # w1 had voted on the quorum task: with its vote gone, it may take it again
    got = []
    for _ in range(6):
        got.append(take(s.w1, s.pid)["id"])
    assert sorted(got) == sorted(chosen[1:])
    log = system.log_path.read_text()
    assert f"manager {system.admin.id}: retry_tasks on project {s.pid}: 6 tasks" in log


def test_retry_by_filter(admin, scene):
    s = scene()
    affected(act(admin, "retry_tasks", s.pid, {"filter": {"status": "failed"}}), 2)
    assert listed_ids(admin, s.pid, status="failed") == []
    affected(act(admin, "retry_tasks", s.pid, {"filter": {"status": "closed"}}), 0)
    affected(act(admin, "retry_tasks", s.pid, {"filter": {"assignee": s.w2.id}}), 1)  # the held one, not its closed
    assert listed_ids(admin, s.pid, status="assigned") == []
    affected(act(admin, "retry_tasks", s.pid, {"filter": {}}), 6)
    affected(act(admin, "retry_tasks", s.pid, {"filter": {"q": "RECIPE F"}}), 3)  # f1, f2, fresh


def long_poll(waiter: Api, pid: int) -> tuple[threading.Thread, dict]:
    """A ``?wait=20`` get running in a thread; the dict gets its answer ("r") and when ("at")."""
    answer: dict = {}

    def wait() -> None:
        answer["r"] = waiter.get(f"/task/get/{pid}?wait=20")
        answer["at"] = time.monotonic()

    thread = threading.Thread(target=wait)
    thread.start()
    return thread, answer


def test_retry_wakes_a_waiting_long_poll(api, admin, make_project, grant):
    pid = make_project()
    w, waiter = api.new_worker(), api.new_worker()
    grant(w, pid)
    grant(waiter, pid)
    tid = submit(w, pid, "fails", max_retries=0)
    take(w, pid)
    assert_ok(release(w, tid, TR_FAIL))
    thread, answer = long_poll(waiter, pid)
    time.sleep(1.0)
    started = time.monotonic()
    affected(act(admin, "retry_tasks", pid, {"ids": [tid]}), 1)
    thread.join(25)
    assert assert_ok(answer["r"])["content"]["task"]["id"] == tid
    assert answer["at"] - started < 5


def test_a_long_poll_parked_behind_an_update_is_woken_by_its_commit(api, admin, system, make_project, grant):
    """The project's only task is locked by a running update action (held here: the action waits
    for another lock first), so a long-poll finds nothing and parks; the action's commit makes
    the task assignable again and wakes it, long before its 20 s."""
    pid = make_project()
    w, waiter = api.new_worker(), api.new_worker()
    grant(w, pid)
    grant(waiter, pid)
    first, second = submit(w, pid, "one"), submit(w, pid, "two")
    action = {}
    with psycopg.connect(system.db_url) as conn:
        conn.execute("SELECT 1 FROM task WHERE id = %s FOR UPDATE", (second,))  # the action stops here
        thread = threading.Thread(target=lambda: action.setdefault(
            "r", act(admin, "update_tasks", pid, {"filter": {}, "priority": 3})))
        thread.start()
        time.sleep(1.5)  # the action holds `first` and waits for `second`
        poll, answer = long_poll(waiter, pid)
        time.sleep(1.5)
        assert "r" not in answer  # parked: `first` is locked by the action, `second` here
        started = time.monotonic()
        conn.rollback()
    thread.join(20)
    affected(action["r"], 2)
    poll.join(25)
    assert assert_ok(answer["r"])["content"]["task"]["id"] == first
    assert answer["at"] - started < 5


# --- delete ---------------------------------------------------------------------------------------------
def test_delete_by_ids(api, admin, system, scene):
    s = scene()
    closed_before = assert_ok(admin.get(f"/project/get/{s.pid}"))["content"]["project"]["closed_task_count"]
    chosen = [s.closed_by_w1, s.failed[0], s.assigned, s.awaiting]
    affected(act(admin, "delete_tasks", s.pid, {"ids": chosen}), 4)
    assert listed_ids(admin, s.pid) == sorted(set(s.all) - set(chosen))
    assert system.sql("SELECT count(*) FROM task_verification WHERE task_id = %s", s.awaiting) == [(0,)]
    assert_error(release(s.w2, s.assigned), 404)  # a later release of a deleted task
    assert_error(admin.get(f"/task/view/{s.assigned}"), 404, "Task not found")
    project = assert_ok(admin.get(f"/project/get/{s.pid}"))["content"]["project"]
    assert project["closed_task_count"] == closed_before  # counters keep their values
    for tid in chosen:  # their hashes may be submitted again
        submit(s.w1, s.pid, "again", hash64=s.hashes[tid])
    r = s.w1.post("/task/submit", {"project": s.pid, "recipe": "dup", "hash64": s.hashes[s.fresh]})
    assert_error(r, 409)  # a kept task's hash is still taken


def test_delete_by_filter_touches_only_its_project(admin, system, scene):
    a, b = scene(), scene()
    before_b = [row for row in snapshot(system)[0] if row[1] == b.pid]
    affected(act(admin, "delete_tasks", a.pid, {"filter": {"status": "closed"}}), 2)
    affected(act(admin, "delete_tasks", a.pid, {"filter": {"q": "quorum"}}), 1)
    affected(act(admin, "delete_tasks", a.pid, {"filter": {}}), 5)
    assert listed_ids(admin, a.pid) == []
    affected(act(admin, "delete_tasks", a.pid, {"filter": {}}), 0)
    assert [row for row in snapshot(system)[0] if row[1] == b.pid] == before_b


# --- update: priority and move ----------------------------------------------------------------------------
def test_update_priority_changes_only_new_and_failed(admin, scene):
    s = scene()
    affected(act(admin, "update_tasks", s.pid, {"ids": s.all, "priority": -32768}), 6)
    rows = {t["id"]: t for t in listing(admin, s.pid)["tasks"]}
    assert {tid for tid, t in rows.items() if t["priority"] == -32768} == set(s.all) - {s.closed_by_w1, s.closed_by_w2}
    assert rows[s.assigned]["assignee"] == s.w2.id  # a priority change keeps the holder
    affected(act(admin, "update_tasks", s.pid, {"filter": {"status": "failed"}, "priority": 32767}), 2)
    assert {t["id"] for t in listing(admin, s.pid)["tasks"] if t["priority"] == 32767} == set(s.failed)


@pytest.mark.parametrize("priority", [-32769, 32768, 1.5, "1"])
def test_update_priority_out_of_range_is_400(admin, system, scene, priority):
    s = scene()
    with unchanged(system):
        assert_error(act(admin, "update_tasks", s.pid, {"filter": {}, "priority": priority}), 400, "'priority'")


def test_update_needs_a_change(admin, system, scene):
    s = scene()
    with unchanged(system):
        assert_error(act(admin, "update_tasks", s.pid, {"filter": {}}), 400, "'priority' and 'move_to'")
        assert_error(act(admin, "update_tasks", s.pid, {"filter": {}, "priority": None}), 400, "'move_to'")


def test_move_with_conflicts(api, admin, system, scene, make_project, grant):
    s = scene()
    target = make_project()
    w = api.new_worker()
    grant(w, target)
    kept_hash = s.hashes[s.failed[1]]
    submit(w, target, "already there", hash64=kept_hash)
    no_hash = submit(s.w1, s.pid, "no hash")  # hash64 0 never conflicts
    r = act(admin, "update_tasks", s.pid, {"filter": {}, "move_to": target, "priority": 9})
    affected(r, 6, conflicts=1)
    moved = {s.failed[0], s.assigned, s.expired, s.awaiting, s.fresh, no_hash}
    rows = {t["id"]: t for t in listing(admin, target)["tasks"]}
    own = set(rows) - moved
    assert moved <= set(rows) and len(own) == 1  # and the target's own task
    for tid in moved:
        t = rows[tid]
        assert (t["project"], t["priority"], t["assignee"], t["lease_expires"]) == (target, 9, 0, 0)
    assert rows[s.failed[0]]["status"] == FAILED and rows[s.failed[0]]["retries"] == 1  # everything else kept
    assert rows[s.awaiting]["verifications"] == 1
    assert rows[s.fresh]["recipe"] == f"recipe fresh of {s.pid}" and rows[s.fresh]["hash64"] == s.hashes[s.fresh]
    left = {t["id"]: t for t in listing(admin, s.pid)["tasks"]}
    assert set(left) == {s.closed_by_w1, s.closed_by_w2, s.failed[1]}
    assert left[s.failed[1]]["priority"] == 85  # a conflict keeps its priority
    assert assert_ok(release(s.w2, s.assigned))["content"]["updated"] is False  # moved = unassigned
    # the moved tasks are assignable in the target
    got = {take(w, target)["id"] for _ in range(6)}
    assert got == (moved - {s.failed[0]}) | own


def test_move_by_ids_reports_conflicts_and_zero(admin, scene, make_project):
    s = scene()
    target = make_project()
    affected(act(admin, "update_tasks", s.pid, {"ids": [s.closed_by_w1], "move_to": target}), 0, conflicts=0)
    affected(act(admin, "update_tasks", s.pid, {"ids": [s.fresh], "move_to": target}), 1, conflicts=0)
    # moving it back: the source project has no task with its hash any more
    affected(act(admin, "update_tasks", target, {"ids": [s.fresh], "move_to": s.pid}), 1, conflicts=0)


def test_move_refusals_change_nothing(api, admin, system, scene, make_project):
    s = scene()
    other = make_project()
    maintainer = manager_with_role(api, admin, s.pid, MAINTENANCE)
    assert_ok(admin.post(f"/manager/set_role_for_project/{other}", {"manager": maintainer.id, "role": READ}))
    with unchanged(system):
        assert_error(act(admin, "update_tasks", s.pid, {"filter": {}, "move_to": s.pid}), 400, "'move_to'")
        assert_error(act(admin, "update_tasks", s.pid, {"filter": {}, "move_to": UNKNOWN}), 404, "Target project")
        assert_error(act(admin, "update_tasks", s.pid, {"filter": {}, "move_to": 0}), 400, "'move_to'")
        assert_error(act(maintainer, "update_tasks", s.pid, {"filter": {}, "move_to": other}), 403, "target")
        assert_error(act(maintainer, "update_tasks", s.pid, {"ids": [s.fresh], "move_to": UNKNOWN}), 404)
    assert_ok(admin.post(f"/manager/set_role_for_project/{other}", {"manager": maintainer.id, "role": MAINTENANCE}))
    affected(act(maintainer, "update_tasks", s.pid, {"ids": [s.fresh], "move_to": other}), 1, conflicts=0)


# --- atomicity --------------------------------------------------------------------------------------------
def test_an_action_is_all_or_nothing(admin, system, scene):
    """While one selected task is locked elsewhere, the action waits and no other selected task is
    seen changed; once the lock goes, all of them change together."""
    s = scene()
    answer = {}
    watcher = Api(system.url)  # a second session of the admin, for reads while the action waits
    assert_ok(watcher.post("/login", {"username": "admin", "password": "tt-test-password"}))
    with psycopg.connect(system.db_url) as conn:
        conn.execute("SELECT 1 FROM task WHERE id = %s FOR UPDATE", (s.fresh,))
        thread = threading.Thread(target=lambda: answer.setdefault(
            "r", act(admin, "update_tasks", s.pid, {"filter": {}, "priority": 3})))
        thread.start()
        time.sleep(1.5)
        assert "r" not in answer
        assert {t["priority"] for t in listing(watcher, s.pid, status="failed")["tasks"]} == {90, 85}
        conn.rollback()
    thread.join(20)
    affected(answer["r"], 6)
    assert {t["priority"] for t in listing(admin, s.pid)["tasks"] if t["status"] != CLOSED} == {3}


def test_an_action_never_keeps_a_task_a_get_assigned_meanwhile_locked(api, admin, system, make_project, grant):
    """A get is assigning task ``t`` (its transaction open) as the action's first pass reaches it.
    The pass skips it and leaves it to the second; it must not wait for the get and then lock the
    task the get made held — its holder's release would wait for the whole action. Here the second
    pass stops at ``r`` (locked elsewhere, lower id), and meanwhile ``t`` is free to lock."""
    pid = make_project()
    w = api.new_worker()
    grant(w, pid)
    r, t = submit(w, pid, "held"), submit(w, pid, "being assigned")
    assert take(w, pid)["id"] == r
    answer = {}
    with psycopg.connect(system.db_url) as blocker, psycopg.connect(system.db_url) as get:
        blocker.execute("SELECT 1 FROM task WHERE id = %s FOR UPDATE", (r,))
        get.execute("UPDATE task SET assignee = %s, lease_deadline = now() + interval '1 hour' WHERE id = %s",
                    (w.id, t))  # as tt_assign_many does, not yet committed
        thread = threading.Thread(target=lambda: answer.setdefault(
            "r", act(admin, "update_tasks", pid, {"filter": {}, "priority": 3})))
        thread.start()
        time.sleep(1.5)  # the first pass has met t
        get.commit()
        time.sleep(1.5)  # the second pass waits for r
        assert "r" not in answer
        with psycopg.connect(system.db_url) as release:
            release.execute("SELECT 1 FROM task WHERE id = %s FOR UPDATE NOWAIT", (t,))  # raises if locked
        blocker.rollback()
    thread.join(20)
    affected(answer["r"], 2)
    assert {row["priority"] for row in listing(admin, pid)["tasks"]} == {3}


# --- edit -----------------------------------------------------------------------------------------------
def test_edit_sets_the_fields_given(admin, scene):
    s = scene()
    before = assert_ok(admin.get(f"/task/view/{s.fresh}"))["content"]["task"]
    body = {"recipe": "new recipe " + "y" * 2000, "priority": -5, "max_retries": 4, "max_assign_time": 60,
            "verification_count": 3}
    task = assert_ok(admin.post(f"/task/edit/{s.fresh}", body))["content"]["task"]
    assert set(task) == ROW_KEYS
    assert {k: task[k] for k in body} == body and task["recipe_length"] == len(body["recipe"])
    assert task["hash64"] == before["hash64"] == s.hashes[s.fresh]  # nothing recomputed
    assert assert_ok(admin.get(f"/task/view/{s.fresh}"))["content"]["task"] == task
    one = assert_ok(admin.post(f"/task/edit/{s.fresh}", {"priority": 7}))["content"]["task"]
    assert one == {**task, "priority": 7}
    zero = assert_ok(admin.post(f"/task/edit/{s.fresh}", {"verification_count": 0}))["content"]["task"]
    assert zero["verification_count"] == 1  # stored as /task/submit stores it


def test_edit_with_retry(admin, system, scene):
    s = scene()
    task = assert_ok(admin.post(f"/task/edit/{s.failed[0]}", {"retry": True, "recipe": "fixed"}))["content"]["task"]
    assert (task["status"], task["retries"], task["recipe"], task["assignee"]) == (NEW, 0, "fixed", 0)
    task = assert_ok(admin.post(f"/task/edit/{s.awaiting}", {"retry": True}))["content"]["task"]
    assert task["verifications"] == 0
    task = assert_ok(admin.post(f"/task/edit/{s.expired}", {"retry": True}))["content"]["task"]
    assert (task["assignee"], task["lease_expires"]) == (0, 0)
    assert assert_ok(release(s.w1, s.expired))["content"]["updated"] is False
    assert got_in(s.w1, s.pid) >= {s.failed[0], s.awaiting, s.expired}


def got_in(w: Api, pid: int) -> set[int]:
    got = set()
    for _ in range(10):
        r = w.get(f"/task/get/{pid}")
        if not r.json().get("ok"):
            return got
        got.add(r.json()["content"]["task"]["id"])
    return got


def test_edit_retry_false_alone_changes_nothing(admin, system, scene):
    s = scene()
    before = assert_ok(admin.get(f"/task/view/{s.failed[0]}"))["content"]["task"]
    with unchanged(system):
        task = assert_ok(admin.post(f"/task/edit/{s.failed[0]}", {"retry": False}))["content"]["task"]
    assert task == before


def test_edit_of_an_expired_lease_is_allowed(admin, scene):
    s = scene()
    task = assert_ok(admin.post(f"/task/edit/{s.expired}", {"priority": 1}))["content"]["task"]
    assert (task["priority"], task["assignee"]) == (1, s.w1.id)  # still shows its last holder


def test_edit_refusals_change_nothing(admin, system, scene):
    s = scene()
    with unchanged(system):
        assert_error(admin.post(f"/task/edit/{s.assigned}", {"priority": 1}), 409, "Task is assigned")
        assert_error(admin.post(f"/task/edit/{s.assigned}", {"retry": True}), 409, "Task is assigned")
        assert_error(admin.post(f"/task/edit/{s.closed_by_w1}", {"priority": 1}), 409, "Task is closed")
        assert_error(admin.post(f"/task/edit/{s.closed_by_w1}", {"retry": True}), 409, "Task is closed")
        assert_error(admin.post(f"/task/edit/{s.fresh}", {}), 400, "at least one of")
        assert_error(admin.post(f"/task/edit/{s.fresh}", {"bogus": 1}), 400, "at least one of")
        for name, bad in [("recipe", ""), ("recipe", 5), ("priority", 40_000), ("max_retries", -1),
                          ("max_retries", 32768), ("max_assign_time", -1), ("max_assign_time", 1 << 31),
                          ("verification_count", -1), ("retry", "yes"), ("retry", 1)]:
            assert_error(admin.post(f"/task/edit/{s.fresh}", {name: bad}), 400, f"'{name}'")
        assert_error(admin.post(f"/task/edit/{UNKNOWN}", {"priority": 1}), 404, "Task not found")
        assert_error(admin.post(f"/task/edit/{s.fresh}", {"recipe": "a\x00b"}), 400, "'recipe'")


def test_refused_actions_change_nothing(api, admin, system, scene):
    s = scene()
    reader = manager_with_role(api, admin, s.pid, READ)
    with unchanged(system):
        for action in ACTIONS:
            body = {"filter": {}, "priority": 1}
            assert_error(act(reader, action, s.pid, body), 403)
            assert_error(act(Api(api.base), action, s.pid, body), 401)
            assert_error(act(s.w1, action, s.pid, body), 401)
            assert_error(act(admin, action, UNKNOWN, body), 404)
            assert_error(act(admin, action, s.pid, {**body, "ids": [s.fresh]}), 400)
            assert_error(admin.post(f"/project/{action}/{s.pid}", raw=b"{not json"), 400)
