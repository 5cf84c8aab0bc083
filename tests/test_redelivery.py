"""Exactly-once under broker redelivery, for every operation that changes state (issue 16).

nameko acknowledges a request after replying, so a replica that dies between its commit and its
acknowledgement has the request delivered again — to another replica, with the same caller and the
same request name (tracker/idempotency.py). Here each state-changing operation of every service is
delivered twice exactly like that: the same ``[caller, operation, params]``, request name included,
sent to the service's one RPC entrypoint over AMQP by the gateway's own client (gateway/rpc.py).
Both deliveries must answer the same reply, and the database must show one effect. Where the
effect is a value a second run would simply write again, a newer change is made between the two
deliveries: a redelivery that acted again would undo it.

The cases are derived from the services (plugin discovery): an operation that stores its reply
(``once``) or opens its own transactions (``stepwise``) without a case here fails the suite.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable

import pytest

from gateway.rpc import RpcClient
from services.manager_svc.service import login_limits
from services.task_svc.messages import TR_FAIL, TR_OK, task_row
from tests.harness import Api, System, assert_ok
from tracker.contract import Caller, Outcome, Reply
from tracker.hashing import decode_worker_secret, digest
from tracker.plugins import discover
from tracker.settings import get_settings
from tracker.wording import SESSION_COOKIE

STATE_CHANGING = sorted((service, op.name) for service, plugin in discover().items()
                        for op in plugin.service_class().operations.values() if op.once or op.stepwise)
CASES: dict[tuple[str, str], Callable] = {}
Between = Callable[[], None] | None


def case(service: str, op: str) -> Callable:
    def register(fn: Callable) -> Callable:
        CASES[(service, op)] = fn
        return fn
    return register


class Redelivery:
    """Sends one call twice under one request name, as a broker redelivery carries it."""

    def __init__(self, system: System, admin: Api) -> None:
        env = system.env
        settings = dataclasses.replace(get_settings(), amqp_uri=env["TT_AMQP_URI"],
                                       rpc_exchange=env.get("TT_RPC_EXCHANGE", "tt-rpc"), rpc_timeout=30)
        self.rpc = RpcClient(settings)
        self.system, self.admin = system, admin

    def sql(self, query: str, *args):
        return self.system.sql(query, *args)

    def one(self, query: str, *args):
        rows = self.sql(query, *args)
        assert len(rows) == 1, rows
        return rows[0][0]

    # --- callers, as the gateway builds them (gateway/inputs.credentials) ---------------------
    @staticmethod
    def worker(api: Api) -> dict:
        return {"worker_id": api.id, "worker_digest": digest(decode_worker_secret(api.secret))}

    @staticmethod
    def manager(api: Api) -> dict:
        return {"session_digest": digest(api.http.cookies.get(SESSION_COOKIE))}

    # --- the two deliveries -------------------------------------------------------------------
    def _deliver(self, service: str, call: list) -> Reply:
        return self.rpc.dispatch(service, [call], timeout=30)[0]

    def twice(self, service: str, op: str, params: dict, caller: dict, between: Between = None,
              concurrent: bool = False) -> Reply:
        """The first reply, after checking the second is the same; one reply stored under the name.
        ``between`` runs after the first delivery (a newer change the second must not undo);
        ``concurrent``: both deliveries at once, from two threads."""
        request = "redelivery-" + uuid.uuid4().hex
        call = [Caller(**caller, request=request, deadline=time.time() + 30).wire(), op, params]
        if concurrent:
            replies: list[Reply | None] = [None, None]
            start = threading.Barrier(2)

            def send(i: int) -> None:
                start.wait()
                replies[i] = self._deliver(service, call)

            threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            first, second = replies
        else:
            first = self._deliver(service, call)
            if between is not None:
                between()
            second = self._deliver(service, call)
        assert first is not None and second is not None
        assert first.outcome is not Outcome.UNAVAILABLE, first
        assert second.wire() == first.wire(), f"{service}.{op}: a redelivery answered differently"
        stored = self.one("SELECT count(*) FROM rpc_outcome WHERE request = %s", request)
        assert stored == 1, f"{service}.{op}: {stored} replies stored under one request name"
        return first

    # --- fixtures of the cases ----------------------------------------------------------------
    def project(self, **fields) -> int:
        r = self.admin.post("/project/create", {"name": "rd-" + uuid.uuid4().hex[:12], **fields})
        return assert_ok(r)["content"]["id"]

    def granted_worker(self, project: int) -> Api:
        worker = Api(self.system.url).new_worker("rd")
        assert_ok(worker.post("/project/request_access", {"project": project, "assign": True, "submit": True}))
        assert_ok(self.admin.post(f"/project/accept_request/{project}/{worker.id}"))
        return worker

    def tasks(self, project: int, worker: Api, *recipes: str, **fields) -> list[int]:
        return [assert_ok(worker.post("/task/submit", {"project": project, "recipe": r, **fields}))["content"]["id"]
                for r in recipes]

    def held(self, project: int, worker: Api) -> int:
        return assert_ok(worker.get(f"/task/get/{project}"))["content"]["task"]["id"]

    def failed(self, project: int, worker: Api) -> int:
        """A task of ``project`` made FAILED (no retries left)."""
        self.tasks(project, worker, "fails-" + uuid.uuid4().hex[:6])
        task = self.held(project, worker)
        assert_ok(worker.post("/task/release", {"task_id": task, "result": TR_FAIL}))
        assert self.one("SELECT status FROM task WHERE id = %s", task) == 2
        return task


@pytest.fixture(scope="module")
def rd(system) -> Redelivery:
    redelivery = Redelivery(system, system.admin)
    yield redelivery
    redelivery.rpc.close()


# --- manager_svc ---------------------------------------------------------------------------------
def _new_session() -> str:
    return digest(uuid.uuid4().hex)


@case("manager_svc", "register")
def _register(rd: Redelivery) -> None:
    for concurrent in (False, True):
        name, session = "rd" + uuid.uuid4().hex[:12], _new_session()
        params = {"username": name, "password": "tt-test-password", "new_session_digest": session,
                  "session_lifetime": 3600}
        reply = rd.twice("manager_svc", "register", params, {}, concurrent=concurrent)
        assert reply.ok, reply
        assert rd.one("SELECT count(*) FROM manager WHERE username = %s", name) == 1
        assert rd.one("SELECT count(*) FROM manager_session WHERE token_digest = %s", session) == 1


@case("manager_svc", "login")
def _login(rd: Redelivery) -> None:
    manager = Api(rd.system.url).new_manager()
    for concurrent in (False, True):
        session = _new_session()
        params = {"username": manager.username, "password": "tt-test-password", "client": "192.0.2.7",
                  "new_session_digest": session, "session_lifetime": 3600}
        reply = rd.twice("manager_svc", "login", params, {}, concurrent=concurrent)
        assert reply.ok, reply
        assert rd.one("SELECT count(*) FROM manager_session WHERE token_digest = %s", session) == 1
    # A failed login counts one failure against its (address, username) pair, not two.
    pair, _ = login_limits("192.0.2.8", manager.username)
    for concurrent in (False, True):
        before = rd.one("SELECT count(*) FROM throttle_event WHERE subject = %s", pair)
        params = {"username": manager.username, "password": "wrong-password", "client": "192.0.2.8",
                  "new_session_digest": _new_session(), "session_lifetime": 3600}
        reply = rd.twice("manager_svc", "login", params, {}, concurrent=concurrent)
        assert reply.outcome is Outcome.UNAUTHORIZED, reply
        assert rd.one("SELECT count(*) FROM throttle_event WHERE subject = %s", pair) == before + 1


@case("manager_svc", "logout")
def _logout(rd: Redelivery) -> None:
    manager = Api(rd.system.url).new_manager()
    caller = rd.manager(manager)
    session = caller["session_digest"]
    reply = rd.twice("manager_svc", "logout", {"session_digest": session}, caller)
    assert reply.ok, reply
    assert rd.one("SELECT count(*) FROM manager_session WHERE token_digest = %s", session) == 0


def _admin_change(rd: Redelivery, op: str) -> None:
    target = Api(rd.system.url).new_manager()
    if op == "demote":
        assert rd.admin.get(f"/manager/promote/{target.id}").status_code == 204
    wanted = op == "promote"
    assert rd.one("SELECT tracker_admin FROM manager WHERE id = %s", target.id) is not wanted

    def newer() -> None:  # the opposite change, made after the first delivery
        r = rd.admin.get(f"/manager/{'demote' if wanted else 'promote'}/{target.id}")
        assert r.status_code == 204, r.text

    reply = rd.twice("manager_svc", op, {"id": target.id}, rd.manager(rd.admin), between=newer)
    assert reply.ok, reply
    assert rd.one("SELECT tracker_admin FROM manager WHERE id = %s", target.id) is not wanted


@case("manager_svc", "promote")
def _promote(rd: Redelivery) -> None:
    _admin_change(rd, "promote")


@case("manager_svc", "demote")
def _demote(rd: Redelivery) -> None:
    _admin_change(rd, "demote")


# --- worker_svc ----------------------------------------------------------------------------------
@case("worker_svc", "create")
def _worker_create(rd: Redelivery) -> None:
    for concurrent in (False, True):
        alias = "rd-" + uuid.uuid4().hex[:12]
        reply = rd.twice("worker_svc", "create", {"alias": alias, "client": "192.0.2.9"}, {}, concurrent=concurrent)
        assert reply.ok, reply
        assert rd.one("SELECT count(*) FROM worker WHERE alias = %s", alias) == 1


@case("worker_svc", "update")
def _worker_update(rd: Redelivery) -> None:
    worker = Api(rd.system.url).new_worker("rd")
    reply = rd.twice("worker_svc", "update", {"alias": "first"}, rd.worker(worker),
                     between=lambda: assert_ok(worker.post("/worker/update", {"alias": "newer"})))
    assert reply.ok, reply
    assert rd.one("SELECT alias FROM worker WHERE id = %s", worker.id) == "newer"


@case("worker_svc", "set_paused")
def _set_paused(rd: Redelivery) -> None:
    worker = Api(rd.system.url).new_worker("rd")
    reply = rd.twice("worker_svc", "set_paused", {"worker": worker.id, "paused": True}, rd.manager(rd.admin),
                     between=lambda: assert_ok(rd.admin.post("/worker/set_paused",
                                                             {"worker": worker.id, "paused": False})))
    assert reply.ok, reply
    assert rd.one("SELECT paused FROM worker WHERE id = %s", worker.id) is False


# --- log_svc -------------------------------------------------------------------------------------
def _log(op: str) -> Callable:
    def run(rd: Redelivery) -> None:
        worker = Api(rd.system.url).new_worker("rd")
        message = f"{op} {uuid.uuid4().hex}"
        params = {"scope": "redelivery", "message": message, "timestamp": int(time.time())}
        reply = rd.twice("log_svc", op, params, rd.worker(worker))
        assert reply.ok, reply
        assert rd.one("SELECT count(*) FROM log_entry WHERE message = %s", message) == 1
    return run


for _op in ("log_trace", "log_info", "log_warn", "log_error"):
    case("log_svc", _op)(_log(_op))


# --- project_svc ---------------------------------------------------------------------------------
@case("project_svc", "create")
def _project_create(rd: Redelivery) -> None:
    for concurrent in (False, True):
        name = "rd-" + uuid.uuid4().hex[:12]
        reply = rd.twice("project_svc", "create", {"name": name}, rd.manager(rd.admin), concurrent=concurrent)
        assert reply.ok, reply
        assert rd.one("SELECT count(*) FROM project WHERE name = %s", name) == 1
        assert rd.one("SELECT count(*) FROM manager_role WHERE project_id = %s", reply.content["id"]) == 1


@case("project_svc", "update")
def _project_update(rd: Redelivery) -> None:
    pid = rd.project()
    reply = rd.twice("project_svc", "update", {"id": pid, "motd": "first"}, rd.manager(rd.admin),
                     between=lambda: assert_ok(rd.admin.post(f"/project/update/{pid}", {"motd": "newer"})))
    assert reply.ok, reply
    assert rd.one("SELECT motd FROM project WHERE id = %s", pid) == "newer"


@case("project_svc", "request_access")
def _request_access(rd: Redelivery) -> None:
    pid = rd.project()
    worker = Api(rd.system.url).new_worker("rd")

    def rejected() -> None:  # the request is rejected before the redelivery: it must not come back
        assert_ok(rd.admin.post(f"/project/reject_request/{pid}/{worker.id}"))

    reply = rd.twice("project_svc", "request_access", {"project": pid, "assign": True, "submit": True},
                     rd.worker(worker), between=rejected)
    assert reply.ok, reply
    assert rd.one("SELECT count(*) FROM worker_access WHERE project_id = %s", pid) == 0


@case("project_svc", "accept_request")
def _accept_request(rd: Redelivery) -> None:
    pid = rd.project()
    worker = Api(rd.system.url).new_worker("rd")
    assert_ok(worker.post("/project/request_access", {"project": pid, "assign": True}))

    def asked_again() -> None:  # rejected, then asked again: the redelivery must not grant it
        assert_ok(rd.admin.post(f"/project/reject_request/{pid}/{worker.id}"))
        assert_ok(worker.post("/project/request_access", {"project": pid, "assign": True}))

    reply = rd.twice("project_svc", "accept_request", {"id": pid, "wid": worker.id}, rd.manager(rd.admin),
                     between=asked_again)
    assert reply.ok, reply
    assert rd.one("SELECT request FROM worker_access WHERE project_id = %s", pid) is True


@case("project_svc", "reject_request")
def _reject_request(rd: Redelivery) -> None:
    pid = rd.project()
    worker = Api(rd.system.url).new_worker("rd")
    assert_ok(worker.post("/project/request_access", {"project": pid, "assign": True}))
    reply = rd.twice("project_svc", "reject_request", {"id": pid, "wid": worker.id}, rd.manager(rd.admin),
                     between=lambda: assert_ok(worker.post("/project/request_access",
                                                           {"project": pid, "assign": True})))
    assert reply.ok, reply
    assert rd.one("SELECT count(*) FROM worker_access WHERE project_id = %s", pid) == 1


@case("project_svc", "set_role")
def _set_role(rd: Redelivery) -> None:
    pid = rd.project()
    manager = Api(rd.system.url).new_manager()
    reply = rd.twice("project_svc", "set_role", {"id": pid, "manager": manager.id, "role": 3},
                     rd.manager(rd.admin),
                     between=lambda: assert_ok(rd.admin.post(f"/manager/set_role_for_project/{pid}",
                                                             {"manager": manager.id, "role": 1})))
    assert reply.ok, reply
    assert rd.one("SELECT role FROM manager_role WHERE project_id = %s AND manager_id = %s", pid, manager.id) == 1


@case("project_svc", "set_secret")
def _set_secret(rd: Redelivery) -> None:
    pid = rd.project()
    reply = rd.twice("project_svc", "set_secret", {"id": pid, "secret": "first"}, rd.manager(rd.admin),
                     between=lambda: assert_ok(rd.admin.post(f"/project/secret/{pid}", {"secret": "newer"})))
    assert reply.ok, reply
    assert rd.one("SELECT secret FROM project WHERE id = %s", pid) == "newer"


@case("project_svc", "set_webhook_secret")
def _set_webhook_secret(rd: Redelivery) -> None:
    pid = rd.project()
    reply = rd.twice("project_svc", "set_webhook_secret", {"id": pid, "webhook_secret": "first-secret"},
                     rd.manager(rd.admin),
                     between=lambda: assert_ok(rd.admin.post(f"/project/webhook_secret/{pid}",
                                                             {"webhook_secret": "newer-secret"})))
    assert reply.ok, reply
    assert rd.one("SELECT webhook_secret FROM project WHERE id = %s", pid) == "newer-secret"


def _newer_version(rd: Redelivery, pid: int) -> Callable[[], None]:
    return lambda: assert_ok(rd.admin.post(f"/project/update/{pid}", {"version": "newer"}))


@case("project_svc", "set_version")
def _set_version(rd: Redelivery) -> None:
    pid = rd.project()
    # Asked by git_svc without credentials (services/git_svc/service.py version_call).
    reply = rd.twice("project_svc", "set_version", {"projects": [pid], "version": "first"}, {},
                     between=_newer_version(rd, pid))
    assert reply.ok, reply
    assert rd.one("SELECT version FROM project WHERE id = %s", pid) == "newer"


# --- git_svc -------------------------------------------------------------------------------------
@case("git_svc", "receive_hook")
def _receive_hook(rd: Redelivery) -> None:
    """A push without a delivery id (applied each time it is sent, contract §6.7) and one with:
    a redelivery is the same request either way, and must not set the version over a newer one."""
    for delivery in ({}, {"x-github-delivery": uuid.uuid4().hex}):
        repo = "rd/" + uuid.uuid4().hex[:12]
        pid = rd.project(git_repo=repo)
        assert_ok(rd.admin.post(f"/project/webhook_secret/{pid}", {"webhook_secret": "hook-secret"}))
        body = json.dumps({"repository": {"full_name": repo, "default_branch": "main"}, "ref": "refs/heads/main",
                           "after": "first"}).encode()
        signature = hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
        headers = {"x-hub-signature-256": f"sha256={signature}", **delivery}
        params = {"raw_body": base64.b64encode(body).decode(), "headers": headers}
        reply = rd.twice("git_svc", "receive_hook", params, {}, between=_newer_version(rd, pid))
        assert reply.ok, reply
        assert rd.one("SELECT version FROM project WHERE id = %s", pid) == "newer"


# --- task_svc: the worker loop -------------------------------------------------------------------
@case("task_svc", "submit")
def _submit(rd: Redelivery) -> None:
    pid = rd.project()
    worker = rd.granted_worker(pid)
    for concurrent in (False, True):
        recipe = "rd-" + uuid.uuid4().hex
        params = {"project": pid, "row": task_row({"recipe": recipe})}
        reply = rd.twice("task_svc", "submit", params, rd.worker(worker), concurrent=concurrent)
        assert reply.ok, reply
        assert rd.one("SELECT count(*) FROM task WHERE project = %s AND recipe = %s", pid, recipe) == 1


@case("task_svc", "bulk_submit")
def _bulk_submit(rd: Redelivery) -> None:
    pid = rd.project()
    worker = rd.granted_worker(pid)
    for concurrent in (False, True):
        tag = uuid.uuid4().hex
        params = {"project": pid, "rows": [task_row({"recipe": f"{tag}-{i}"}) for i in range(3)]}
        reply = rd.twice("task_svc", "bulk_submit", params, rd.worker(worker), concurrent=concurrent)
        assert reply.ok and reply.content == {"submitted": 3, "duplicates": 0}, reply
        assert rd.one("SELECT count(*) FROM task WHERE project = %s AND recipe LIKE %s", pid, tag + "%") == 3


@case("task_svc", "get_tasks")
def _get_tasks(rd: Redelivery) -> None:
    """One after the other, the project's only task: a redelivery that ran again would find none
    and answer "no task" while the first run's task stays held by a worker never told of it. At
    once, two tasks: the second delivery takes the other one, and gives it back."""
    for concurrent, recipes in ((False, ["only"]), (True, ["one", "two"])):
        pid = rd.project()
        worker = rd.granted_worker(pid)
        tasks = rd.tasks(pid, worker, *recipes)
        reply = rd.twice("task_svc", "get_tasks", {"project": pid}, rd.worker(worker), concurrent=concurrent)
        assert reply.ok and reply.content["task"]["id"] in tasks, reply
        held = rd.sql("SELECT id FROM task WHERE project = %s AND assignee IS NOT NULL", pid)
        assert held == [(reply.content["task"]["id"],)], held


@case("task_svc", "release")
def _release(rd: Redelivery) -> None:
    pid = rd.project()
    worker = rd.granted_worker(pid)
    rd.tasks(pid, worker, "to close")
    task = rd.held(pid, worker)
    reply = rd.twice("task_svc", "release", {"task_id": task, "result": TR_OK}, rd.worker(worker))
    assert reply.ok and reply.content == {"updated": True}, reply
    assert rd.one("SELECT closed_task_count FROM project_closures WHERE project_id = %s", pid) == 1
    assert rd.one("SELECT closed_task_count FROM worker_closures WHERE worker_id = %s", worker.id) == 1


@case("task_svc", "extend")
def _extend(rd: Redelivery) -> None:
    pid = rd.project()
    worker = rd.granted_worker(pid)
    rd.tasks(pid, worker, "to extend", max_assign_time=60)
    task = rd.held(pid, worker)
    deadlines = []
    reply = rd.twice("task_svc", "extend", {"task_id": task, "seconds": 3600}, rd.worker(worker),
                     between=lambda: (time.sleep(1.1), deadlines.append(
                         rd.one("SELECT lease_deadline FROM task WHERE id = %s", task))))
    assert reply.ok and reply.content["updated"] is True, reply
    assert rd.one("SELECT lease_deadline FROM task WHERE id = %s", task) == deadlines[0]


# --- task_svc: maintenance and task administration ---------------------------------------------
@case("task_svc", "reset_failed_tasks")
def _reset_failed(rd: Redelivery) -> None:
    pid = rd.project()
    worker = rd.granted_worker(pid)
    task = rd.failed(pid, worker)

    def failed_again() -> None:
        assert rd.held(pid, worker) == task
        assert_ok(worker.post("/task/release", {"task_id": task, "result": TR_FAIL}))

    reply = rd.twice("task_svc", "reset_failed_tasks", {"id": pid}, rd.manager(rd.admin), between=failed_again)
    assert reply.ok and reply.content == {"affected_tasks": 1}, reply
    assert rd.one("SELECT status FROM task WHERE id = %s", task) == 2


@case("task_svc", "hard_reset")
def _hard_reset(rd: Redelivery) -> None:
    pid = rd.project()
    worker = rd.granted_worker(pid)
    rd.tasks(pid, worker, "a", "b")
    reply = rd.twice("task_svc", "hard_reset", {"id": pid}, rd.manager(rd.admin),
                     between=lambda: rd.tasks(pid, worker, "submitted after the reset"))
    assert reply.ok and reply.content == {"affected_tasks": 2}, reply
    assert rd.one("SELECT count(*) FROM task WHERE project = %s", pid) == 1


@case("task_svc", "reclaim_assigned_tasks")
def _reclaim(rd: Redelivery) -> None:
    pid = rd.project()
    worker = rd.granted_worker(pid)
    (task,) = rd.tasks(pid, worker, "held")
    assert rd.held(pid, worker) == task
    reply = rd.twice("task_svc", "reclaim_assigned_tasks", {"id": pid}, rd.manager(rd.admin),
                     between=lambda: rd.held(pid, worker))
    assert reply.ok and reply.content == {"affected_tasks": 1}, reply
    assert rd.one("SELECT assignee FROM task WHERE id = %s", task) == worker.id


@case("task_svc", "retry_tasks")
def _retry_tasks(rd: Redelivery) -> None:
    pid = rd.project()
    worker = rd.granted_worker(pid)
    task = rd.failed(pid, worker)

    def failed_again() -> None:
        assert rd.held(pid, worker) == task
        assert_ok(worker.post("/task/release", {"task_id": task, "result": TR_FAIL}))

    reply = rd.twice("task_svc", "retry_tasks", {"id": pid, "ids": [task]}, rd.manager(rd.admin),
                     between=failed_again)
    assert reply.ok and reply.content == {"affected_tasks": 1}, reply
    assert rd.one("SELECT status FROM task WHERE id = %s", task) == 2


@case("task_svc", "delete_tasks")
def _delete_tasks(rd: Redelivery) -> None:
    pid = rd.project()
    worker = rd.granted_worker(pid)
    rd.tasks(pid, worker, "doomed-1", "doomed-2", "kept")
    reply = rd.twice("task_svc", "delete_tasks", {"id": pid, "filter": {"q": "doomed"}}, rd.manager(rd.admin),
                     between=lambda: rd.tasks(pid, worker, "doomed-3 (submitted after the delete)"))
    assert reply.ok and reply.content == {"affected_tasks": 2}, reply
    assert rd.one("SELECT count(*) FROM task WHERE project = %s", pid) == 2


@case("task_svc", "update_tasks")
def _update_tasks(rd: Redelivery) -> None:
    pid = rd.project()
    worker = rd.granted_worker(pid)
    (task,) = rd.tasks(pid, worker, "to reprioritise")
    reply = rd.twice("task_svc", "update_tasks", {"id": pid, "ids": [task], "priority": 5}, rd.manager(rd.admin),
                     between=lambda: assert_ok(rd.admin.post(f"/project/update_tasks/{pid}",
                                                             {"ids": [task], "priority": 7})))
    assert reply.ok and reply.content["affected_tasks"] == 1, reply
    assert rd.one("SELECT priority FROM task WHERE id = %s", task) == 7


@case("task_svc", "edit_task")
def _edit_task(rd: Redelivery) -> None:
    pid = rd.project()
    worker = rd.granted_worker(pid)
    (task,) = rd.tasks(pid, worker, "original")
    reply = rd.twice("task_svc", "edit_task", {"id": task, "recipe": "first edit"}, rd.manager(rd.admin),
                     between=lambda: assert_ok(rd.admin.post(f"/task/edit/{task}", {"recipe": "newer edit"})))
    assert reply.ok and reply.content["task"]["recipe"] == "first edit", reply
    assert rd.one("SELECT recipe FROM task WHERE id = %s", task) == "newer edit"


# --- the tests (after every case is registered) ---------------------------------------------------
def test_every_state_changing_operation_has_a_redelivery_case():
    assert STATE_CHANGING, "no operations discovered"
    assert set(STATE_CHANGING) - set(CASES) == set(), "state-changing operations without a redelivery case"
    assert set(CASES) - set(STATE_CHANGING) == set(), "cases of operations that are not state-changing"


@pytest.mark.parametrize("key", sorted(CASES), ids=[f"{s}.{o}" for s, o in sorted(CASES)])
def test_a_redelivered_call_answers_its_first_answer_and_acts_once(rd, key):
    CASES[key](rd)
