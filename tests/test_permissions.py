"""The permission matrix of contract §4, cell by cell, end to end through the gateway.

Worker side: visibility {public, private, hidden} × worker access {none, ASSIGN, SUBMIT,
ASSIGN+SUBMIT, pending request} × action {A task get, S task submit, R project get}. Then the manager
side (roles per route, admins, anonymous callers), paused projects, and callers carrying both a
worker and a manager identity.
"""

from __future__ import annotations

import uuid

import pytest

from tests.harness import Api

UNKNOWN = 1 << 62
READ, EDIT, MANAGE_ACCESS, SECRET, MAINTENANCE, ALL = 1, 2, 4, 8, 16, 31
NO_TASK = {"ok": False, "message": "No task available"}

VISIBILITY = {"public": {"public": True}, "private": {}, "hidden": {"hidden": True}}
ACCESS = ["none", "assign", "submit", "assign+submit", "pending"]

# The contract's table, spelled out: which of A, S, R each (visibility, access) cell allows.
ALLOWED = {
    ("public", "none"): "AR",
    ("public", "assign"): "AR",
    ("public", "submit"): "ASR",
    ("public", "assign+submit"): "ASR",
    ("public", "pending"): "AR",
    ("private", "none"): "R",
    ("private", "assign"): "AR",
    ("private", "submit"): "ASR",
    ("private", "assign+submit"): "ASR",
    ("private", "pending"): "R",
    ("hidden", "none"): "",
    ("hidden", "assign"): "A",
    ("hidden", "submit"): "AS",
    ("hidden", "assign+submit"): "AS",
    ("hidden", "pending"): "",
}


def assert_error(r, status: int) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["ok"] is False and isinstance(body.get("message"), str) and body["message"], body


def assert_ok(r) -> dict:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True, body
    return body


def seed_task(system, pid: int, recipe: str) -> int:
    """Straight into the database, so the A cells do not depend on the submit route under test."""
    return system.sql("INSERT INTO task (project, recipe) VALUES (%s, %s) RETURNING id", pid, recipe)[0][0]


def task_count(system, pid: int, recipe: str) -> int:
    return system.sql("SELECT count(*) FROM task WHERE project = %s AND recipe = %s", pid, recipe)[0][0]


def give(worker: Api, pid: int, access: str, grant) -> None:
    """Put ``worker`` in the ``access`` state on project ``pid``."""
    if access == "none":
        return
    if access == "pending":
        r = worker.post("/project/request_access", {"project": pid, "assign": True, "submit": True})
        assert r.status_code == 200, r.text
        return
    grant(worker, pid, assign="assign" in access, submit="submit" in access)


def manager_with_role(api: Api, admin: Api, pid: int, role: int) -> Api:
    m = api.new_manager()
    if role:
        r = admin.post(f"/manager/set_role_for_project/{pid}", {"manager": m.id, "role": role})
        assert r.status_code == 200, r.text
    return m


# --- worker matrix ------------------------------------------------------------------------------
CELLS = [(v, a) for v in VISIBILITY for a in ACCESS]


@pytest.mark.parametrize(("visibility", "access"), CELLS, ids=[f"{v}-{a}" for v, a in CELLS])
class TestWorkerMatrix:
    def setup_project(self, api, make_project, grant, visibility, access) -> tuple[int, Api]:
        pid = make_project(**VISIBILITY[visibility])
        worker = api.new_worker()
        give(worker, pid, access, grant)
        return pid, worker

    def test_A_task_get(self, api, system, make_project, grant, visibility, access):
        pid, worker = self.setup_project(api, make_project, grant, visibility, access)
        recipe = "seed-" + uuid.uuid4().hex
        task_id = seed_task(system, pid, recipe)
        r = worker.get(f"/task/get/{pid}")
        if "A" in ALLOWED[visibility, access]:
            task = assert_ok(r)["content"]["task"]
            assert task["id"] == task_id and task["recipe"] == recipe
            assert task["assignee"] == worker.id and task["project"]["id"] == pid
            assert system.sql("SELECT assignee FROM task WHERE id = %s", task_id) == [(worker.id,)]
        else:
            assert_error(r, 403)
            assert system.sql("SELECT assignee FROM task WHERE id = %s", task_id) == [(None,)]

    def test_A_task_get_empty_project(self, api, make_project, grant, visibility, access):
        """Permitted on an empty project: the 200 negative answer; not permitted: still 403."""
        pid, worker = self.setup_project(api, make_project, grant, visibility, access)
        r = worker.get(f"/task/get/{pid}")
        if "A" in ALLOWED[visibility, access]:
            assert r.status_code == 200 and r.json() == NO_TASK
        else:
            assert_error(r, 403)

    @pytest.mark.parametrize("route", ["/task/submit", "/task/bulk_submit"])
    def test_S_submit(self, api, system, make_project, grant, visibility, access, route):
        pid, worker = self.setup_project(api, make_project, grant, visibility, access)
        recipe = "sub-" + uuid.uuid4().hex
        item = {"project": pid, "recipe": recipe}
        r = worker.post(route, item if route == "/task/submit" else {"requests": [item]})
        if "S" in ALLOWED[visibility, access]:
            assert_ok(r)
            assert task_count(system, pid, recipe) == 1
        else:
            assert_error(r, 403)
            assert task_count(system, pid, recipe) == 0

    def test_R_project_get(self, api, make_project, grant, visibility, access):
        pid, worker = self.setup_project(api, make_project, grant, visibility, access)
        r = worker.get(f"/project/get/{pid}")
        if "R" in ALLOWED[visibility, access]:
            assert assert_ok(r)["content"]["project"]["id"] == pid
        else:
            assert_error(r, 403)

    def test_R_project_list(self, api, make_project, grant, visibility, access):
        pid, worker = self.setup_project(api, make_project, grant, visibility, access)
        ids = [p["id"] for p in assert_ok(worker.get("/project/list"))["content"]["projects"]]
        assert (pid in ids) == ("R" in ALLOWED[visibility, access])


# --- anonymous callers --------------------------------------------------------------------------
@pytest.mark.parametrize("visibility", list(VISIBILITY))
def test_anonymous(api, system, make_project, visibility):
    pid = make_project(**VISIBILITY[visibility])
    task_id = seed_task(system, pid, "anon")
    r = api.get(f"/project/get/{pid}")
    if visibility == "hidden":
        assert_error(r, 401)
    else:
        assert assert_ok(r)["content"]["project"]["id"] == pid
    assert_error(api.get(f"/task/get/{pid}"), 401)
    assert_error(api.post("/task/submit", {"project": pid, "recipe": "anon"}), 401)
    assert system.sql("SELECT assignee FROM task WHERE id = %s", task_id) == [(None,)]
    assert task_count(system, pid, "anon") == 1


def test_anonymous_unknown_project(api):
    assert_error(api.get(f"/project/get/{UNKNOWN}"), 404)


def test_unknown_project_404_before_permission(api):
    w = api.new_worker()
    assert_error(w.get(f"/task/get/{UNKNOWN}"), 404)
    assert_error(w.post("/task/submit", {"project": UNKNOWN, "recipe": "x"}), 404)
    assert_error(w.get(f"/project/get/{UNKNOWN}"), 404)


# --- manager side: reading hidden projects ------------------------------------------------------
@pytest.mark.parametrize(("role", "readable"), [
    (READ, True), (ALL, True), (READ | EDIT, True),
    (0, False), (ALL & ~READ, False), (EDIT, False), (MANAGE_ACCESS, False),
])
def test_hidden_project_read_by_manager_role(api, admin, make_project, role, readable):
    pid = make_project(hidden=True)
    m = manager_with_role(api, admin, pid, role)
    r = m.get(f"/project/get/{pid}")
    ids = [p["id"] for p in assert_ok(m.get("/project/list"))["content"]["projects"]]
    if readable:
        assert assert_ok(r)["content"]["project"]["hidden"] is True
        assert pid in ids
    else:
        assert_error(r, 403)
        assert pid not in ids


def test_hidden_project_read_by_admin(admin, make_project):
    pid = make_project(hidden=True)
    assert assert_ok(admin.get(f"/project/get/{pid}"))["content"]["project"]["id"] == pid
    assert pid in [p["id"] for p in assert_ok(admin.get("/project/list"))["content"]["projects"]]


def test_role_on_another_project_does_not_count(api, admin, make_project):
    hidden, other = make_project(hidden=True), make_project(hidden=True)
    m = manager_with_role(api, admin, other, ALL)
    assert_error(m.get(f"/project/get/{hidden}"), 403)
    assert_ok(m.get(f"/project/get/{other}"))


def test_promoted_admin_reads_hidden_at_once(api, admin, make_project):
    pid = make_project(hidden=True)
    m = api.new_manager()
    assert_error(m.get(f"/project/get/{pid}"), 403)
    r = admin.get(f"/manager/promote/{m.id}")
    assert r.status_code == 204, r.text
    assert_ok(m.get(f"/project/get/{pid}"))


@pytest.mark.parametrize("visibility", ["public", "private"])
def test_visible_projects_readable_by_any_manager(api, make_project, visibility):
    pid = make_project(**VISIBILITY[visibility])
    assert_ok(api.new_manager().get(f"/project/get/{pid}"))


# --- manager side: every project route needs its role -------------------------------------------
def _update(pid, target):
    return "POST", f"/project/update/{pid}", {"motd": "changed"}


def _access_list(pid, target):
    return "GET", f"/project/access_list/{pid}", None


def _accept(pid, target):
    return "POST", f"/project/accept_request/{pid}/{target['worker'].id}", None


def _reject(pid, target):
    return "POST", f"/project/reject_request/{pid}/{target['worker'].id}", None


def _set_role(pid, target):
    # A caller that is not an admin grants only bits it holds (§6.2): MANAGE_ACCESS itself.
    return "POST", f"/manager/set_role_for_project/{pid}", {"manager": target["manager"].id, "role": MANAGE_ACCESS}


def _get_hidden(pid, target):
    return "GET", f"/project/get/{pid}", None


MANAGER_ROUTES = {
    "update": (EDIT, _update),
    "access_list": (MANAGE_ACCESS, _access_list),
    "accept_request": (MANAGE_ACCESS, _accept),
    "reject_request": (MANAGE_ACCESS, _reject),
    "set_role_for_project": (MANAGE_ACCESS, _set_role),
    "get_hidden": (READ, _get_hidden),
}


@pytest.fixture
def role_target(api, admin, make_project):
    """A hidden project with one pending worker request and one role-less manager to act upon."""
    pid = make_project(hidden=True)
    worker = api.new_worker()
    r = worker.post("/project/request_access", {"project": pid, "assign": True})
    assert r.status_code == 200, r.text
    return pid, {"worker": worker, "manager": api.new_manager()}


def _call(client: Api, method: str, path: str, body):
    return client.get(path) if method == "GET" else client.post(path, body)


@pytest.mark.parametrize("route", list(MANAGER_ROUTES))
class TestManagerRoles:
    def test_without_the_role_403(self, api, admin, role_target, route):
        bit, make = MANAGER_ROUTES[route]
        pid, target = role_target
        for role in (0, ALL & ~bit):
            m = manager_with_role(api, admin, pid, role)
            assert_error(_call(m, *make(pid, target)), 403)

    def test_anonymous_401(self, api, role_target, route):
        _, make = MANAGER_ROUTES[route]
        pid, target = role_target
        assert_error(_call(api, *make(pid, target)), 401)

    def test_worker_401_or_403(self, api, admin, role_target, grant, route):
        """Worker credentials are no manager session: 401 on manager-only routes, 403 reading hidden."""
        _, make = MANAGER_ROUTES[route]
        pid, target = role_target
        w = api.new_worker()
        grant(w, pid)
        assert_error(_call(w, *make(pid, target)), 403 if route == "get_hidden" else 401)

    def test_exactly_the_role_suffices(self, api, admin, role_target, route):
        bit, make = MANAGER_ROUTES[route]
        pid, target = role_target
        m = manager_with_role(api, admin, pid, bit)
        assert_ok(_call(m, *make(pid, target)))

    def test_admin_passes(self, admin, role_target, route):
        _, make = MANAGER_ROUTES[route]
        pid, target = role_target
        assert_ok(_call(admin, *make(pid, target)))


# --- both identities on one request --------------------------------------------------------------
def both(manager: Api, worker: Api) -> Api:
    client = Api(manager.base, dict(worker.http.headers))
    client.http.cookies.update(manager.http.cookies)
    client.id = worker.id
    return client


def test_either_identity_may_pass(api, admin, system, make_project, grant):
    pid = make_project(hidden=True)
    task_id = seed_task(system, pid, "both")
    reader = manager_with_role(api, admin, pid, READ)
    assigner = api.new_worker()
    grant(assigner, pid, assign=True, submit=False)
    client = both(reader, assigner)
    assert_ok(client.get(f"/project/get/{pid}"))  # the manager reads what the worker may not
    assert assert_ok(client.get(f"/task/get/{pid}"))["content"]["task"]["id"] == task_id  # the worker assigns
    assert_error(client.post("/task/submit", {"project": pid, "recipe": "x"}), 403)  # neither submits


def test_invalid_worker_headers_beside_valid_session_401(api, admin, make_project):
    pid = make_project()
    forged = Api(admin.base, {"X-Worker-ID": "1", "X-Secret": "AAAA"})
    forged.http.cookies.update(admin.http.cookies)
    assert_error(forged.get(f"/project/get/{pid}"), 401)


# --- paused project -----------------------------------------------------------------------------
@pytest.mark.parametrize("visibility", list(VISIBILITY))
def test_paused_project(api, admin, system, make_project, grant, visibility):
    pid = make_project(**VISIBILITY[visibility])
    task_id = seed_task(system, pid, "paused")
    w = api.new_worker()
    grant(w, pid)
    assert_ok(admin.post(f"/project/update/{pid}", {"paused": True}))
    r = w.get(f"/task/get/{pid}")
    assert r.status_code == 200 and r.json() == NO_TASK
    assert system.sql("SELECT assignee FROM task WHERE id = %s", task_id) == [(None,)]
    assert_ok(w.post("/task/submit", {"project": pid, "recipe": "while paused"}))
    assert task_count(system, pid, "while paused") == 1
    r = w.get(f"/task/get/{pid}")
    assert r.status_code == 200 and r.json() == NO_TASK
    assert_ok(admin.post(f"/project/update/{pid}", {"paused": False}))
    assert assert_ok(w.get(f"/task/get/{pid}"))["content"]["task"]["id"] == task_id


def test_paused_public_project_without_access(api, admin, system, make_project):
    pid = make_project(public=True)
    seed_task(system, pid, "x")
    assert_ok(admin.post(f"/project/update/{pid}", {"paused": True}))
    r = api.new_worker().get(f"/task/get/{pid}")
    assert r.status_code == 200 and r.json() == NO_TASK


@pytest.mark.parametrize("visibility", ["private", "hidden"])
def test_paused_project_still_403_without_permission(api, admin, system, make_project, visibility):
    pid = make_project(**VISIBILITY[visibility])
    seed_task(system, pid, "x")
    assert_ok(admin.post(f"/project/update/{pid}", {"paused": True}))
    w = api.new_worker()
    assert_error(w.get(f"/task/get/{pid}"), 403)
    assert_error(w.post("/task/submit", {"project": pid, "recipe": "x"}), 403)
