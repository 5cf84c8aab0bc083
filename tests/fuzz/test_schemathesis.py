"""Fuzzing (issue "Reliability"): schemathesis against the live ``GET /openapi.json`` of a tracker of its own.

Every operation of the document is fuzzed three times, as three identities (contract §2):
``anonymous`` (no credentials at all), ``worker`` (``X-Worker-ID``/``X-Secret`` headers) and ``admin`` (the
first manager ever registered, session cookie ``tt``). Credentials go through schemathesis' OpenAPI-aware
auth (``[auth.openapi]``): it applies them per the operation's ``security`` and leaves them off the cases
whose negative part *is* a credential, so a mangled credential is never "fixed" behind the fuzzer's back.

Each identity runs the examples, coverage and fuzzing phases (positive and negative data) with the checks
of tests/fuzz/schemathesis.toml (shared with the CLI run): no 5xx (503 included), response schema,
documented status code, content type, response headers, negative data rejected, positive data accepted
(but for the operations listed there, each with its contract clause). Generated ids are steered
(dictionaries bound to the parameters, half of the draws) toward the projects, workers, managers and tasks
seeded below, so requests reach real entities and get past the 404s.

``TT_FUZZ_EXAMPLES`` (default 20) is the number of fuzzing-phase examples per operation and identity;
the full fuzz uses a few hundred (tests/fuzz/README.md). ``TT_FUZZ_SEED`` fixes the seed.
"""

from __future__ import annotations

import os
import time
import tomllib
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import schemathesis

from tests.fuzz.stats import SLOW, FuzzStats
from tests.harness import Api, System

CONFIG_FILE = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = int(os.environ.get("TT_FUZZ_EXAMPLES", "20"))
SEED = os.environ.get("TT_FUZZ_SEED")
IDENTITIES = ("anonymous", "worker", "admin")
PASSWORD = "fuzz-password-" + uuid.uuid4().hex[:8]
STEER = 0.5  # probability that a steered parameter takes a seeded id instead of a generated one


@dataclass
class World:
    """The seeded tracker: ids the fuzzer is steered to, and the identities' credentials."""

    system: System
    admin: Api
    worker: Api
    projects: list[int]  # public, private, hidden, and one more private where the worker asks nothing
    workers: list[int]
    managers: list[int]
    special_tasks: list[int] = field(default_factory=list)  # held, closed and failed ones


    @property
    def url(self) -> str:
        return self.system.url

    @property
    def admin_token(self) -> str:
        return self.admin.http.cookies["tt"]

    def throwaway_admin_session(self) -> str:
        """A second session of the admin: what the fuzzed GET /logout closes, so the admin stays logged in."""
        r = Api(self.url).post("/login", {"username": "admin", "password": PASSWORD})
        assert r.status_code == 200, r.text
        return r.cookies["tt"]

    def tasks(self) -> list[int]:
        rows = self.system.sql("SELECT id FROM task ORDER BY id DESC LIMIT 30")
        return sorted({row[0] for row in rows} | set(self.special_tasks)) or [1]

    def restore(self) -> None:
        """Put back what an earlier identity's fuzzing may have changed, and stock fresh tasks.

        A paused worker gets 400 on task get (§6.5), a paused project or an empty one makes ``?wait=`` park:
        both would be the fuzzer's own doing, not the gateway's.
        """
        ok = {200, 409}
        r = self.admin.post("/worker/set_paused", {"worker": self.worker.id, "paused": False})
        assert r.status_code == 200, r.text
        for pid in self.projects:
            r = self.admin.post(f"/project/update/{pid}", {"paused": False, "assign_rate": 0, "submit_rate": 0})
            assert r.status_code == 200, r.text
        public, private, hidden, _ = self.projects
        for pid, assign, submit in ((public, False, True), (private, True, True), (hidden, True, False)):
            r = self.worker.post("/project/request_access", {"project": pid, "assign": assign, "submit": submit})
            assert r.status_code in ok, r.text
            r = self.admin.post(f"/project/accept_request/{pid}/{self.worker.id}")
            assert r.status_code == 200, r.text
        for pid in (public, private):
            batch = [{"project": pid, "recipe": f"fuzz-{uuid.uuid4().hex[:8]}", "max_assign_time": 2,
                      "max_retries": 2, "priority": i % 5} for i in range(150)]
            r = self.worker.post("/task/bulk_submit", batch)
            assert r.status_code == 200, r.text


def seed(system: System) -> World:
    admin = Api(system.url).new_manager("admin", PASSWORD)
    account = admin.get("/account").json()["content"]["manager"]
    assert account["tracker_admin"] is True, account  # the first manager ever is the tracker admin (§2)
    other = Api(system.url).new_manager("fuzz-other", PASSWORD)
    worker = Api(system.url).new_worker("fuzz-worker")
    requester = Api(system.url).new_worker("fuzz-requester")
    projects = []
    for fields in ({"public": True, "git_repo": "fuzz/repo"}, {"motd": "private"}, {"hidden": True}, {}):
        r = admin.post("/project/create", {"name": "fuzz-" + uuid.uuid4().hex[:8], **fields})
        assert r.status_code == 200, r.text
        projects.append(r.json()["content"]["id"])
    world = World(system, admin, worker, projects, [worker.id, requester.id], [admin.id, other.id])
    world.restore()
    # A pending request (accept/reject hit a real row), tasks held, closed and failed, a log entry.
    r = requester.post("/project/request_access", {"project": projects[1], "assign": True})
    assert r.status_code == 200, r.text
    r = worker.post("/task/bulk_submit", [{"project": projects[1], "recipe": recipe, "priority": 100 - i}
                                          for i, recipe in enumerate(("to close", "to fail", "to hold"))])
    assert r.status_code == 200, r.text
    held = [t["id"] for t in worker.get(f"/task/get/{projects[1]}?count=3").json()["content"]["tasks"]]
    assert len(held) == 3, held
    assert worker.post("/task/release", {"task_id": held[0], "result": 0}).json()["content"]["updated"] is True
    assert worker.post("/task/release", {"task_id": held[1], "result": 1}).json()["content"]["updated"] is True
    assert system.sql("SELECT status FROM task WHERE id = ANY(%s) ORDER BY id", held) == [(3,), (2,), (1,)]
    world.special_tasks = held
    r = worker.post("/log/info", {"scope": "fuzz", "message": "seeded", "timestamp": int(time.time())})
    assert r.status_code == 200, r.text
    return world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    # The fuzzer fails logins of the seeded admin by the hundred, and then logs it in again: the
    # per-pair login throttle (contract §6.2) is off here (the per-address limits are, in every test system).
    system = System.create(tmp_path_factory.mktemp("fuzz"), TT_LOGIN_FAILURES_PER_PAIR="0")
    try:
        system.start("--scale", "task_svc=2", "--gateway-workers", "2")
        yield seed(system)
    finally:
        system.destroy_later()


def config_for(identity: str, world: World) -> schemathesis.Config:
    """schemathesis.toml (checks, exclusions, timeouts), plus this identity's credentials and the seeded ids."""
    data = tomllib.loads(CONFIG_FILE.read_text())

    def steer(dictionary: str) -> dict:
        return {"dictionary": dictionary, "probability": STEER}

    if identity == "worker":
        data["auth"]["openapi"] = {"workerId": {"api_key": str(world.worker.id)},
                                   "workerSecret": {"api_key": world.worker.secret}}
    elif identity == "admin":
        data["auth"]["openapi"] = {"session": {"api_key": world.admin_token}}
    # anonymous: no credential at all; the others: generated credentials where their own do not apply
    data["generation"].update({"max-examples": EXAMPLES, "with-security-parameters": identity != "anonymous"})
    data["dictionaries"] = {
        "projects": {"values": world.projects},
        "workers": {"values": world.workers},
        "managers": {"values": world.managers},
        "tasks": {"values": world.tasks()},
        "repos": {"values": ["fuzz/repo"]},
        "usernames": {"values": ["admin", "fuzz-other"]},
        "passwords": {"values": [PASSWORD]},
    }
    data["parameters"] = {
        "path.id": steer("projects"),
        "path.project": steer("projects"),
        "path.wid": steer("workers"),
        "body.project": steer("projects"),
        "body.chain": steer("projects"),
        "body.task_id": steer("tasks"),
        "body.worker": steer("workers"),
        "body.manager": steer("managers"),
        "body.repository.full_name": steer("repos"),
        "body.username": steer("usernames"),  # /login succeeds now and then, /register meets taken names
        "body.password": steer("passwords"),
    }
    data["operations"] += [
        {"include-operation-id": ["worker_svc.get"], "parameters": {"path.id": steer("workers")}},
        {"include-operation-id": ["manager_svc.promote", "manager_svc.demote"],
         "parameters": {"path.id": steer("managers")}},
    ]
    if SEED:
        data["seed"] = int(SEED)
    return schemathesis.Config.from_dict(data)


@pytest.fixture(params=IDENTITIES)
def fuzz_identity(request, world):
    world.restore()
    yield request.param
    # The identity held for the whole run (else its later requests were anonymous ones, silently).
    assert world.admin.get("/account").status_code == 200, "the admin session did not survive the fuzz"
    assert world.worker.get("/").status_code == 200, "the worker credentials did not survive the fuzz"


@pytest.fixture
def fuzz_schema(request, world, fuzz_identity, fuzz_stats: FuzzStats):
    if not hasattr(request.node, "_nodeid"):
        # schemathesis 4.32.5's lazy schema reads and renames ``node._nodeid`` (one name per operation in
        # reports); pytest 9.2 keeps the node id elsewhere. Give it the attribute it expects.
        request.node._nodeid = request.node.nodeid
    schema = schemathesis.openapi.from_url(world.url + "/openapi.json", config=config_for(fuzz_identity, world))
    stats = fuzz_stats.of(fuzz_identity)
    fuzz_stats.examples = EXAMPLES
    fuzz_stats.total_operations = schema.statistic.operations.total

    @schema.hook
    def after_call(context, case, response):
        stats.requests += 1
        stats.last_status = response.status_code
        stats.operations.add(case.operation.label)
        stats.statuses[response.status_code] += 1
        if case.method.upper() == case.operation.method.upper():  # not a probe with another method (405)
            stats.by_operation.setdefault(case.operation.label, Counter())[response.status_code] += 1
        waited = "wait" in (case.query or {})
        if response.elapsed > SLOW and not waited:
            stats.slow.append((response.elapsed, f"{case.method} {response.request.url}", response.status_code))

    return schema


lazy = schemathesis.pytest.from_fixture("fuzz_schema")


@lazy.parametrize()
@pytest.mark.timeout(max(900, EXAMPLES * 60))
def test_fuzz(case, fuzz_identity, world, fuzz_stats: FuzzStats):
    stats = fuzz_stats.of(fuzz_identity)
    started = time.monotonic()
    if fuzz_identity == "admin" and case.path == "/logout" and (case.cookies or {}).get("tt") == world.admin_token:
        # Same request shape, another valid session of the same admin: the fuzz identity outlives /logout.
        case.cookies["tt"] = world.throwaway_admin_session()
    try:
        case.call_and_validate()
    except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup is a BaseExceptionGroup
        found = exc.exceptions if isinstance(exc, BaseExceptionGroup) else (exc,)
        titles = "; ".join(getattr(e, "title", None) or type(e).__name__ for e in found)
        stats.failed.setdefault(case.operation.label, f"{titles} (answer {stats.last_status})")
        raise
    finally:
        stats.seconds += time.monotonic() - started
