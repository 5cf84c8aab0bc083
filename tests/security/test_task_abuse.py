"""A worker meddling with what is not its own: another worker's tasks, hidden projects, secrets,
projects it may not submit to. Each refusal is the contract's answer and leaves the database as it was.
"""

from __future__ import annotations

import pytest

from tests.harness import Api
from tests.security.util import (
    READ,
    SECRET,
    UNKNOWN,
    assert_error,
    assert_ok,
    sql,
    uname,
    unchanged,
)

NOT_HOLDER = {"ok": True, "message": "Task was not marked as closed", "content": {"updated": False}}


def not_updated(r) -> None:
    """Contract §6.5: the 200 non-error answer with ``updated: false`` (release has an exact shape)."""
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True and body["content"] == {"updated": False}, body
    assert isinstance(body.get("message"), str) and body["message"], body


# --- release / extend of a task the caller does not hold -------------------------------------------


@pytest.mark.parametrize("who", ["intruder", "outsider"])
@pytest.mark.parametrize("result", [0, 1, 2])
def test_release_of_another_workers_task_changes_nothing(system, scene, who, result):
    worker = getattr(scene, who)
    with unchanged(system, scene.pid):
        for task in (scene.held, scene.held_forever):
            r = worker.post("/task/release", {"task_id": task, "result": result, "verification": 42})
            assert r.status_code == 200 and r.json() == NOT_HOLDER, (task, r.text)
    # and the holder still holds both
    assert sql(system, "SELECT assignee FROM task WHERE id = ANY(%s) ORDER BY id",
                      [scene.held, scene.held_forever]) == [(scene.holder.id,), (scene.holder.id,)]


@pytest.mark.parametrize("task", ["closed", "failed", "free"])
@pytest.mark.parametrize("who", ["holder", "intruder"])
def test_release_of_a_task_nobody_holds_changes_nothing(system, scene, task, who):
    """CLOSED (even by its closer), FAILED and never-assigned tasks: `updated: false`, no effect."""
    worker = getattr(scene, who)
    with unchanged(system, scene.pid):
        for result in (0, 1, 2):
            r = worker.post("/task/release", {"task_id": getattr(scene, task), "result": result})
            assert r.status_code == 200 and r.json() == NOT_HOLDER, (result, r.text)


def test_release_twice_second_changes_nothing(system, scene):
    assert assert_ok(scene.holder.post("/task/release", {"task_id": scene.held, "result": 2}))["content"] == {
        "updated": True}
    with unchanged(system, scene.pid):
        r = scene.holder.post("/task/release", {"task_id": scene.held, "result": 1})
        assert r.status_code == 200 and r.json() == NOT_HOLDER, r.text


def test_release_with_verification_by_non_holder_records_nothing(api, system, make_project, grant):
    pid = make_project()
    holder, intruder = api.new_worker(), api.new_worker()
    grant(holder, pid)
    grant(intruder, pid)
    assert_ok(holder.post("/task/submit", {"project": pid, "recipe": "verify me", "verification_count": 2}))
    task = assert_ok(holder.get(f"/task/get/{pid}"))["content"]["task"]["id"]
    with unchanged(system, pid):
        for _ in range(3):  # repeated agreeing "verifications" by a non-holder must not close it
            r = intruder.post("/task/release", {"task_id": task, "result": 0, "verification": 7})
            assert r.status_code == 200 and r.json() == NOT_HOLDER, r.text
    assert sql(system, "SELECT count(*) FROM task_verification WHERE task_id = %s", task) == [(0,)]


@pytest.mark.parametrize("who", ["intruder", "outsider"])
def test_extend_of_another_workers_task_changes_nothing(system, scene, who):
    worker = getattr(scene, who)
    deadline = sql(system, "SELECT lease_deadline FROM task WHERE id = %s", scene.held)[0][0]
    assert deadline is not None
    with unchanged(system, scene.pid):
        for task in (scene.held, scene.held_forever, scene.closed, scene.failed, scene.free):
            for seconds in (1, 604_800):
                not_updated(worker.post("/task/extend", {"task_id": task, "seconds": seconds}))
    assert sql(system, "SELECT lease_deadline FROM task WHERE id = %s", scene.held) == [(deadline,)]


def test_extend_by_holder_of_a_closed_task_changes_nothing(system, scene):
    with unchanged(system, scene.pid):
        not_updated(scene.holder.post("/task/extend", {"task_id": scene.closed, "seconds": 600}))


@pytest.mark.parametrize("route,body", [
    ("/task/release", {"task_id": UNKNOWN}),
    ("/task/release", {"task_id": UNKNOWN, "result": 1}),
    ("/task/extend", {"task_id": UNKNOWN, "seconds": 60}),
])
def test_release_or_extend_of_unknown_task_404(system, scene, route, body):
    with unchanged(system, scene.pid):
        assert_error(scene.intruder.post(route, body), 404)


def test_revoked_worker_cannot_get_more(admin, system, scene):
    """Revocation stops new assignments at once; the held task stays held (contract §6.4)."""
    assert_ok(admin.post(f"/project/reject_request/{scene.pid}/{scene.holder.id}"))
    with unchanged(system, scene.pid):
        assert_error(scene.holder.get(f"/task/get/{scene.pid}"), 403)
        assert_error(scene.holder.post("/task/submit", {"project": scene.pid, "recipe": "after revoke"}), 403)
        assert_error(scene.holder.get(f"/project/secret/{scene.pid}"), 403)


# --- reading what is hidden ----------------------------------------------------------------------


def _hidden_reads(pid: int) -> list[str]:
    return [f"/project/get/{pid}", f"/project/assignees/{pid}", f"/project/monitoring/{pid}?count=10",
            f"/project/monitoring-between/{pid}?from=1&to=2147483647"]


@pytest.mark.parametrize("who", ["intruder", "outsider", "holder"])
def test_worker_never_reads_a_hidden_project(system, scene, who):
    """Even with ASSIGN on it (intruder): 403, and nothing about the project in the answer."""
    name = sql(system, "SELECT name FROM project WHERE id = %s", scene.hidden)[0][0]
    worker = getattr(scene, who)
    with unchanged(system, scene.hidden):
        for path in _hidden_reads(scene.hidden):
            r = worker.get(path)
            assert_error(r, 403)
            assert name not in r.text and "hidden task" not in r.text, (path, r.text)
        ids = [p["id"] for p in assert_ok(worker.get("/project/list"))["content"]["projects"]]
        assert scene.hidden not in ids


def test_anonymous_never_reads_a_hidden_project(api, system, scene):
    with unchanged(system, scene.hidden):
        for path in _hidden_reads(scene.hidden):
            assert_error(api.get(path), 401)


def test_hidden_project_task_get_gives_no_project_to_a_non_assigner(system, scene):
    with unchanged(system, scene.hidden):
        for worker in (scene.holder, scene.outsider):
            assert_error(worker.get(f"/task/get/{scene.hidden}"), 403)
            assert_error(worker.get(f"/task/get/{scene.hidden}?count=100"), 403)


# --- another project's secret --------------------------------------------------------------------


@pytest.fixture
def secret_project(admin, make_project):
    pid = make_project(hidden=True)
    value = "s3cr3t-" + uname("")
    assert_ok(admin.post(f"/project/secret/{pid}", {"secret": value}))
    webhook = assert_ok(admin.get(f"/project/webhook_secret/{pid}"))["content"]["webhook_secret"]
    return pid, value, webhook


def _refused_secret_reads(client: Api, pid: int, status: int, secrets: tuple[str, ...]) -> None:
    r = client.get(f"/project/secret/{pid}")
    assert_error(r, status)
    for secret in secrets:
        assert secret not in r.text
    r = client.get(f"/project/webhook_secret/{pid}")
    assert_error(r, status)
    for secret in secrets:
        assert secret not in r.text


@pytest.mark.parametrize("state", ["none", "pending-assign", "pending-both", "granted-elsewhere"])
def test_worker_without_granted_row_cannot_read_the_secret(api, system, make_project, grant, secret_project,
                                                           state):
    pid, value, webhook = secret_project
    w = api.new_worker()
    if state.startswith("pending"):
        assert_ok(w.post("/project/request_access", {"project": pid, "assign": True,
                                                     "submit": state == "pending-both"}))
    elif state == "granted-elsewhere":
        grant(w, make_project())
    with unchanged(system, pid):
        r = w.get(f"/project/secret/{pid}")
        assert_error(r, 403)
        assert value not in r.text
        r = w.get(f"/project/webhook_secret/{pid}")  # a manager route: worker headers are no session
        assert_error(r, 401)
        assert webhook not in r.text


def test_anonymous_cannot_read_secrets(api, system, secret_project):
    pid, value, webhook = secret_project
    with unchanged(system, pid):
        _refused_secret_reads(api, pid, 401, (value, webhook))


@pytest.mark.parametrize("role", [0, 31 & ~SECRET, READ])
def test_manager_without_secret_role_cannot_read_secrets(api, admin, system, secret_project, role):
    pid, value, webhook = secret_project
    m = api.new_manager()
    if role:
        assert_ok(admin.post(f"/manager/set_role_for_project/{pid}", {"manager": m.id, "role": role}))
    with unchanged(system, pid):
        _refused_secret_reads(m, pid, 403, (value, webhook))


def test_granted_worker_reads_the_secret(api, system, grant, secret_project):
    """The control case: a granted row is enough (the secret route is not simply closed)."""
    pid, value, _ = secret_project
    w = api.new_worker()
    grant(w, pid, assign=False, submit=True)
    with unchanged(system, pid):
        assert assert_ok(w.get(f"/project/secret/{pid}"))["content"] == {"secret": value}


# --- submitting where the caller may not --------------------------------------------------------


def _submits(pid: int, recipe: str) -> list[tuple[str, object]]:
    item = {"project": pid, "recipe": recipe, "hash64": 77}
    return [("/task/submit", item), ("/task/bulk_submit", {"requests": [item, {**item, "hash64": 78}]}),
            ("/task/bulk_submit", [item])]


@pytest.mark.parametrize("visibility", ["public", "private", "hidden"])
@pytest.mark.parametrize("access", ["none", "assign", "pending"])
def test_submit_without_submit_access_403(api, system, make_project, grant, visibility, access):
    fields = {"public": {"public": True}, "private": {}, "hidden": {"hidden": True}}[visibility]
    pid = make_project(submit_rate=1, **fields)
    w = api.new_worker()
    if access == "assign":
        grant(w, pid, assign=True, submit=False)
    elif access == "pending":
        assert_ok(w.post("/project/request_access", {"project": pid, "assign": True, "submit": True}))
    with unchanged(system, pid):
        for route, body in _submits(pid, "no-submit"):
            assert_error(w.post(route, body), 403)


def test_submit_to_unknown_project_404(api, system, scene):
    with unchanged(system, scene.pid):
        for route, body in _submits(UNKNOWN, "nowhere"):
            assert_error(scene.intruder.post(route, body), 404)


def test_bulk_smuggling_an_item_for_another_project_400(api, system, scene, make_project):
    """SUBMIT on one project does not carry items for another: the whole batch is refused."""
    other = make_project()
    items = [{"project": scene.pid, "recipe": "mine"}, {"project": other, "recipe": "smuggled"}]
    with unchanged(system, scene.pid, other):
        assert_error(scene.intruder.post("/task/bulk_submit", {"requests": items}), 400, "requests[1].project")
        assert_error(scene.intruder.post("/task/bulk_submit", items[::-1]), 400, "requests[1].project")


def test_submit_with_both_identities_neither_permitted_403(api, admin, system, make_project):
    """A manager with every role but no worker SUBMIT, plus a worker without it: still 403."""
    pid = make_project()
    m = api.new_manager()
    assert_ok(admin.post(f"/manager/set_role_for_project/{pid}", {"manager": m.id, "role": 31}))
    w = api.new_worker()
    both = Api(m.base, dict(w.http.headers))
    both.http.cookies.update(m.http.cookies)
    with unchanged(system, pid):
        for route, body in _submits(pid, "both"):
            assert_error(both.post(route, body), 403)
        for route, body in _submits(pid, "manager only"):
            assert_error(m.post(route, body), 401)
