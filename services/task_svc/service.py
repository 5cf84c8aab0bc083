"""nameko entrypoints of task_svc: submit, get, release, extend, and the task-level project routes
(assignees and maintenance), which act on tables this service owns."""

from __future__ import annotations

import logging

from nameko.timer import timer

from services.task_svc import store
from services.task_svc.messages import TR_FAIL, TR_OK
from tracker import idempotency, ratelimit
from tracker.access import ROLE_MAINTENANCE, project_access
from tracker.db import transaction
from tracker.errors import ApiError, envelope, not_found, ok, reply, with_counts
from tracker.service import FastPlan, Member, batch_endpoint, endpoint
from tracker.views import public_project

NO_TASK = "No task available"
PAUSED = "A manager has paused you"
NOT_HOLDER = "Task was not marked as closed"
log = logging.getLogger("task_svc")


def task_object(row: dict, project: dict) -> dict:
    return {
        "id": row["id"], "priority": row["priority"], "project": project, "assignee": row["assignee"] or 0,
        "retries": row["retries"], "max_retries": row["max_retries"], "status": row["status"],
        "recipe": row["recipe"], "max_assign_time": row["max_assign_time"], "assign_time": row["assign_time"],
        "verification_count": row["verification_count"],
    }


def not_updated(message: str) -> dict:
    return ok({"updated": False}, message)


class TaskService:
    name = "task_svc"

    def _submittable(self, conn, ident, project_id: int):
        ident.require_worker()
        acc = project_access(conn, ident, project_id)
        if not acc.can_submit:
            raise ApiError(403, "SUBMIT access required on this project")
        return acc

    @endpoint(once=True, project_of=lambda params: params["project"])
    def submit(self, conn, ident, params):
        acc = self._submittable(conn, ident, params["project"])
        admitted = ratelimit.admit(conn, params["project"], ratelimit.SUBMIT, acc.project["submit_rate"])
        task_id = store.insert_task(conn, params["project"], params["row"])
        if task_id is None:
            raise ApiError(409, "A task with this hash already exists in the project")  # not charged
        admitted.charge(conn, 1)
        store.wake(conn, params["project"])
        return with_counts(ok({"id": task_id}), submitted=1)

    @endpoint(once=True, project_of=lambda params: params["project"])
    def bulk_submit(self, conn, ident, params):
        acc = self._submittable(conn, ident, params["project"])
        rows = params["rows"]  # messages.TASK_ROW order
        admitted = ratelimit.admit(conn, params["project"], ratelimit.SUBMIT, acc.project["submit_rate"])
        submitted = store.insert_tasks(conn, params["project"], rows)
        admitted.charge(conn, len(rows))  # a bulk of N costs N, duplicates included (contract §5)
        if submitted:
            store.wake(conn, params["project"])
        return with_counts(ok({"submitted": submitted, "duplicates": len(rows) - submitted}), submitted=submitted)

    @staticmethod
    def _assignable(conn, ident, params):
        """The checks of a task get, in the contract's order; raises before any write."""
        ident.require_worker()
        if ident.worker_paused:
            raise ApiError(400, PAUSED)
        acc = project_access(conn, ident, params["project"])
        if not acc.can_assign:
            raise ident.denied("ASSIGN access required on this project")
        return acc

    @staticmethod
    def _handed_out(conn, params, acc, rows: list[dict]) -> dict:
        batch = "count" in params
        if not rows:
            # A long-poll (gateway) parks until a notification, or until the next lease expiry,
            # which sends none; a paused project has nothing to wait for but the timeout.
            retry_in = None
            if params.get("wait") and not acc.project["paused"]:
                retry_in = store.next_expiry_in(conn, params["project"])
            return reply(200, envelope(False, {"tasks": []} if batch else None, NO_TASK), park=True,
                         retry_in=retry_in)
        project = public_project(acc.project)
        tasks = [task_object(r, project) for r in rows]
        return with_counts(ok({"tasks": tasks} if batch else {"task": tasks[0]}), assigned=len(tasks))

    @endpoint(once=True, project_of=lambda params: params["project"])
    def get_tasks(self, conn, ident, params):
        acc = self._assignable(conn, ident, params)
        admitted = ratelimit.admit(conn, params["project"], ratelimit.ASSIGN, acc.project["assign_rate"])
        rows = [] if acc.project["paused"] else store.assign(conn, params["project"], ident.worker_id,
                                                             params.get("count", 1))
        admitted.charge(conn, len(rows))
        return self._handed_out(conn, params, acc, rows)

    def _get_fast(self, conn, calls: list) -> FastPlan:
        """Set-based: every plain get of the batch (worker allowed, project neither paused nor
        rate-limited) assigns in one database call; the others take the per-call path."""
        chosen = []
        for k, (ident, params) in enumerate(calls):
            try:
                acc = self._assignable(conn, ident, params)
            except ApiError:
                continue
            if not acc.project["paused"] and acc.project["assign_rate"] <= 0:
                chosen.append((k, acc))
        chosen.sort(key=lambda c: calls[c[0]][1]["project"])  # the per-call path's lock order

        def finish(results: list[list[dict]]) -> list:
            out: list = [None] * len(calls)
            handed = store.assigned(results[0], len(chosen)) if chosen else []
            for (k, acc), rows in zip(chosen, handed, strict=True):
                out[k] = self._handed_out(conn, calls[k][1], acc, rows)
            return out

        gets = [(calls[k][1]["project"], calls[k][0].worker_id, calls[k][1].get("count", 1)) for k, _ in chosen]
        return FastPlan([store.assign_many_query(gets)] if gets else [], finish)

    @staticmethod
    def _held(conn, ident, task_id: int) -> tuple[int, dict | None]:
        """The caller and the task locked for update; the task is None unless the caller holds it.

        Holding = NEW and latest assignee. An expired lease still counts until someone else is
        assigned the task (contract §3.1); the row lock orders this against that re-assignment.
        """
        worker = ident.require_worker()
        task = store.lock(conn, task_id)
        if task is None:
            raise not_found("Task not found")
        held = task["status"] == store.NEW and task["assignee"] == worker
        return worker, task if held else None

    @endpoint(once=True)
    def release(self, conn, ident, params):
        if params["result"] == TR_OK and store.close_held(conn, params["task_id"], ident.require_worker()):
            return with_counts(ok({"updated": True}), closed=1)
        worker, task = self._held(conn, ident, params["task_id"])
        if task is None:
            return not_updated(NOT_HOLDER)
        result = params["result"]
        if result == TR_FAIL:
            store.fail(conn, task["id"])
            store.wake(conn, task["project"])
            return ok({"updated": True})
        if result != TR_OK:  # TR_SKIP: as if the worker never touched it
            store.unassign(conn, task["id"])
            store.wake(conn, task["project"])
            return ok({"updated": True})
        if task["verification_count"] > 1:
            agreeing = store.record_verification(conn, task["id"], worker, params["verification"])
            if agreeing < task["verification_count"]:
                store.unassign(conn, task["id"])
                store.wake(conn, task["project"])
                return not_updated("Awaiting verification")
        store.close(conn, task, worker)
        return with_counts(ok({"updated": True}), closed=1)

    def _release_fast(self, conn, calls: list) -> FastPlan:
        """Set-based: every OK release by the holder of a task without quorum, in one statement.
        A task named twice in one batch goes the general way after its first release."""
        wanted: dict[int, tuple[int, int]] = {}
        for k, (ident, params) in enumerate(calls):
            if params["result"] == TR_OK and ident.worker_id is not None and params["task_id"] not in wanted:
                wanted[params["task_id"]] = (k, ident.worker_id)

        def finish(results: list[list[dict]]) -> list:
            out: list = [None] * len(calls)
            for task_id in store.closed(conn, results[0]) if wanted else ():
                out[wanted[task_id][0]] = with_counts(ok({"updated": True}), closed=1)
            return out

        releases = [(task_id, w) for task_id, (_, w) in wanted.items()]
        return FastPlan([store.close_held_many_query(releases)] if releases else [], finish)

    # The gateway coalesces concurrent gets and releases into this (gateway/batching.py): releases
    # first, so a batch's commit frees what it closed before its gets take new tasks.
    work_batch = batch_endpoint(
        release=Member(release, order=lambda params: params["task_id"], fast=_release_fast),
        get_tasks=Member(get_tasks, order=lambda params: params["project"],
                         project_of=lambda params: params["project"], fast=_get_fast),
    )

    @endpoint(once=True)
    def extend(self, conn, ident, params):
        _, task = self._held(conn, ident, params["task_id"])
        if task is None:
            return not_updated("You do not hold this task")
        if task["max_assign_time"] == 0:
            return ok({"updated": True, "expires": 0})
        return ok({"updated": True, "expires": store.extend(conn, task["id"], params["seconds"])})

    # --- project routes over this service's tables ------------------------------------------
    @endpoint
    def assignees(self, conn, ident, params):
        acc = project_access(conn, ident, params["id"])
        if not acc.can_read:
            raise ident.denied("You may not read this project")
        return ok({"assignees": store.assignees(conn, params["id"])})

    @staticmethod
    def _maintain(conn, ident, project_id: int, operation, frees_tasks: bool) -> dict:
        """MAINTENANCE check, then the operation; wake long-polls if it made tasks assignable."""
        ident.require_manager()
        if not project_access(conn, ident, project_id).has_role(ROLE_MAINTENANCE):
            raise ApiError(403, "MAINTENANCE role required on this project")
        affected = operation(conn, project_id)
        if affected and frees_tasks:
            store.wake(conn, project_id)
        return ok({"affected_tasks": affected})

    @endpoint(once=True)
    def reset_failed_tasks(self, conn, ident, params):
        return self._maintain(conn, ident, params["id"], store.reset_failed, frees_tasks=True)

    @endpoint(once=True)
    def hard_reset(self, conn, ident, params):
        return self._maintain(conn, ident, params["id"], store.delete_all, frees_tasks=False)

    @endpoint(once=True)
    def reclaim_assigned_tasks(self, conn, ident, params):
        return self._maintain(conn, ident, params["id"], store.reclaim_assigned, frees_tasks=True)

    @timer(interval=60)
    def prune_outcomes(self):
        """Stored replies of state-changing calls outlive their window by at most a minute."""
        try:
            with transaction() as conn:
                idempotency.prune(conn)
        except Exception as exc:  # noqa: BLE001 - the next tick retries
            log.warning("pruning stored replies failed: %s", exc.__class__.__name__)
