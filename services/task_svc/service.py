"""nameko entrypoints of task_svc: submit, get, release, extend."""

from __future__ import annotations

from services.task_svc import store
from services.task_svc.messages import TR_FAIL, TR_OK
from tracker.access import project_access
from tracker.errors import ApiError, envelope, not_found, ok, reply
from tracker.service import endpoint
from tracker.views import public_project

NO_TASK = "No task available"
PAUSED = "A manager has paused you"
NOT_HOLDER = "Task was not marked as closed"


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

    @endpoint
    def submit(self, conn, ident, params):
        self._submittable(conn, ident, params["project"])
        if store.insert_tasks(conn, params["project"], [params]) == 0:
            raise ApiError(409, "A task with this hash already exists in the project")
        return ok()

    @endpoint
    def bulk_submit(self, conn, ident, params):
        self._submittable(conn, ident, params["project"])
        tasks = params["tasks"]
        submitted = store.insert_tasks(conn, params["project"], tasks)
        return ok({"submitted": submitted, "duplicates": len(tasks) - submitted})

    @endpoint
    def get_tasks(self, conn, ident, params):
        worker = ident.require_worker()
        if ident.worker_paused:
            raise ApiError(400, PAUSED)
        acc = project_access(conn, ident, params["project"])
        if not acc.can_assign:
            raise ident.denied("ASSIGN access required on this project")
        batch = "count" in params
        rows = [] if acc.project["paused"] else store.assign(conn, params["project"], worker,
                                                             params.get("count", 1))
        if not rows:
            return reply(200, envelope(False, {"tasks": []} if batch else None, NO_TASK))
        project = public_project(acc.project)
        tasks = [task_object(r, project) for r in rows]
        return ok({"tasks": tasks} if batch else {"task": tasks[0]})

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

    @endpoint
    def release(self, conn, ident, params):
        worker, task = self._held(conn, ident, params["task_id"])
        if task is None:
            return not_updated(NOT_HOLDER)
        result = params["result"]
        if result == TR_FAIL:
            store.fail(conn, task["id"])
            return ok({"updated": True})
        if result != TR_OK:  # TR_SKIP: as if the worker never touched it
            store.unassign(conn, task["id"])
            return ok({"updated": True})
        if task["verification_count"] > 1:
            agreeing = store.record_verification(conn, task["id"], worker, params["verification"])
            if agreeing < task["verification_count"]:
                store.unassign(conn, task["id"])
                return not_updated("Awaiting verification")
        store.close(conn, task, worker)
        return ok({"updated": True})

    @endpoint
    def extend(self, conn, ident, params):
        _, task = self._held(conn, ident, params["task_id"])
        if task is None:
            return not_updated("You do not hold this task")
        if task["max_assign_time"] == 0:
            return ok({"updated": True, "expires": 0})
        return ok({"updated": True, "expires": store.extend(conn, task["id"], params["seconds"])})
