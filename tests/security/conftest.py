"""Fixtures of the abuse tests: a project with tasks in every state, held by a known worker."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.harness import Api
from tests.security.util import assert_ok, sql


@dataclass
class Scene:
    pid: int  # private project: holder and intruder both have ASSIGN+SUBMIT
    hidden: int  # hidden project: intruder has ASSIGN only, holder nothing
    holder: Api
    intruder: Api
    outsider: Api  # a valid worker with no access row anywhere
    held: int  # held by holder, lease 600 s
    held_forever: int  # held by holder, max_assign_time 0 (never expires)
    closed: int  # closed by holder
    free: int  # NEW, never assigned
    failed: int  # FAILED (retries exhausted)


def seed_task(system, pid: int, recipe: str, priority: int = 0, max_assign_time: int = 0,
              max_retries: int = 0, status: int = 1) -> int:
    return sql(system, "INSERT INTO task (project, recipe, priority, max_assign_time, max_retries, status)"
               " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
               pid, recipe, priority, max_assign_time, max_retries, status)[0][0]


def take(worker: Api, pid: int) -> int:
    return assert_ok(worker.get(f"/task/get/{pid}"))["content"]["task"]["id"]


@pytest.fixture
def scene(api, system, make_project, grant) -> Scene:
    pid, hidden = make_project(), make_project(hidden=True)
    holder, intruder, outsider = api.new_worker("holder"), api.new_worker("intruder"), api.new_worker("outsider")
    grant(holder, pid)
    grant(intruder, pid)
    grant(intruder, hidden, assign=True, submit=False)
    held = seed_task(system, pid, "held", priority=30, max_assign_time=600)
    assert take(holder, pid) == held
    held_forever = seed_task(system, pid, "held forever", priority=20)
    assert take(holder, pid) == held_forever
    closed = seed_task(system, pid, "closed", priority=10)
    assert take(holder, pid) == closed
    assert assert_ok(holder.post("/task/release", {"task_id": closed, "result": 0}))["content"]["updated"] is True
    failed = seed_task(system, pid, "failed", priority=5, max_retries=1)
    assert take(holder, pid) == failed
    assert_ok(holder.post("/task/release", {"task_id": failed, "result": 1}))
    free = seed_task(system, pid, "free", priority=-10)
    seed_task(system, hidden, "hidden task")
    assert sql(system, "SELECT status FROM task WHERE id = %s", failed) == [(2,)]
    return Scene(pid, hidden, holder, intruder, outsider, held, held_forever, closed, free, failed)
