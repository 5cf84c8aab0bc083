"""Operations of task_svc: the worker loop (release, extend, get — set-based, one statement per
batch each), submit, and the task-level project routes (assignees and maintenance).

The gateway coalesces concurrent releases, extends and gets into one batch (gateway/batching.py).
Set-based statements run in the order declared here: releases first, so a batch frees what it
closes before its gets take new tasks.
"""

from __future__ import annotations

import logging

from nameko.timer import timer

from services.task_svc import store
from services.task_svc.messages import (
    NO_TASK,
    NOT_HOLDER,
    AffectedTasks,
    Assignees,
    Assignment,
    BulkSubmitted,
    EditFields,
    Extended,
    ExtendTask,
    GetTasks,
    ListTasks,
    NoTask,
    OneTaskRow,
    ProjectRef,
    Released,
    ReleaseOutcome,
    ReleaseTask,
    SelectTasks,
    SubmitRow,
    SubmitRows,
    Submitted,
    TaskPage,
    TaskRef,
    TaskStatus,
    UpdatedTasks,
    UpdateSelected,
)
from tracker import idempotency, ratelimit
from tracker.access import ROLE_MAINTENANCE, ROLE_READ, ProjectAccess, project_access
from tracker.contract import Reply
from tracker.db import transaction
from tracker.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    Refused,
    Unavailable,
    declined,
    ok,
    with_counts,
)
from tracker.fields import MIN_RATE
from tracker.service import Batch, Call, Service, operation
from tracker.shapes import content
from tracker.views import public_project
from tracker.wording import PAUSED

log = logging.getLogger("task_svc")


def _release_reply(outcome: ReleaseOutcome) -> Reply:
    if outcome is ReleaseOutcome.CLOSED:
        return with_counts(ok(content(Released, updated=True)), closed=1)
    if outcome is ReleaseOutcome.AWAITING:
        return ok(content(Released, updated=False), "Awaiting verification")
    if outcome is ReleaseOutcome.NOT_HOLDER:
        return ok(content(Released, updated=False), NOT_HOLDER)
    return ok(content(Released, updated=True))  # failed or skipped


class TaskService(Service):
    name = "task_svc"

    # --- the worker loop: set-based -------------------------------------------------------------
    @operation(ReleaseTask, once=True, set_based=True)
    def release(self, batch: Batch, calls: list[Call]):
        rows = yield store.release_query([(c.params.task_id, c.ident.require_worker(), c.params.result,
                                           c.params.verification) for c in calls])
        for call, outcome in zip(calls, store.released(batch.conn, rows, len(calls)), strict=True):
            if outcome is ReleaseOutcome.MISSING:
                batch.refuse(call, NotFound("Task not found"))
            else:
                batch.answer(call, _release_reply(outcome))

    @operation(ExtendTask, once=True, set_based=True)
    def extend(self, batch: Batch, calls: list[Call]):
        rows = yield store.extend_query([(c.params.task_id, c.ident.require_worker(), c.params.seconds)
                                         for c in calls])
        found = {row["req"]: row for row in rows}
        for i, call in enumerate(calls, 1):
            row = found[i]
            if not row["present"]:
                batch.refuse(call, NotFound("Task not found"))
            elif not row["held"]:
                batch.answer(call, ok(content(Extended, updated=False), "You do not hold this task"))
            else:
                batch.answer(call, ok(content(Extended, updated=True, expires=row["expires"])))

    @operation(GetTasks, once=True, set_based=True, project_of=lambda params: params.project)
    def get_tasks(self, batch: Batch, calls: list[Call]):
        """Each get's checks in the contract's order; then one statement assigns (and admits
        against rate limits) every get allowed, in project order (the lock order)."""
        wanted: list[tuple[Call, ProjectAccess]] = []
        for call in calls:
            try:
                acc = self._assignable(batch.conn, call)
            except Refused as refusal:
                batch.refuse(call, refusal)
                continue
            if acc.project["paused"]:
                batch.answer(call, self._handed_out(batch.conn, call.params, acc, []))
            else:
                wanted.append((call, acc))
        if not wanted:
            return
        wanted.sort(key=lambda pair: pair[0].params.project)
        rows = yield store.assign_query([
            store.Get(call.params.project, call.ident.worker_id, call.params.count or 1,
                      max(acc.project["assign_rate"], MIN_RATE) if acc.project["assign_rate"] > 0 else 0.0)
            for call, acc in wanted])
        for (call, acc), got in zip(wanted, store.assigned(rows, len(wanted)), strict=True):
            if got.refused_for is not None:
                batch.refuse(call, RateLimited(ratelimit.TOO_MANY, rate_limit_delay=got.refused_for))
            else:
                batch.answer(call, self._handed_out(batch.conn, call.params, acc, got.tasks))

    @staticmethod
    def _assignable(conn, call: Call) -> ProjectAccess:
        ident = call.ident
        ident.require_worker()
        if ident.worker_paused:
            raise Invalid(PAUSED)
        acc = project_access(conn, ident, call.params.project)
        if not acc.can_assign:
            raise ident.denied("ASSIGN access required on this project")
        return acc

    @staticmethod
    def _handed_out(conn, params: GetTasks, acc: ProjectAccess, tasks: list[dict]) -> Reply:
        many = params.count is not None
        if not tasks:
            # A long-poll (gateway) parks until a notification, or until the next lease expiry,
            # which sends none; a paused project has nothing to wait for but the timeout.
            retry_in = None
            if params.wait and not acc.project["paused"]:
                retry_in = store.next_expiry_in(conn, params.project)
            return declined(NO_TASK, content(NoTask, tasks=[]) if many else None, park=True, retry_in=retry_in)
        project = public_project(acc.project)
        objects = [{**task, "project": project, "assignee": task["assignee"] or 0} for task in tasks]
        built = content(Assignment, tasks=objects) if many else content(Assignment, task=objects[0])
        return with_counts(ok(built), assigned=len(objects))

    # --- submit: per call -------------------------------------------------------------------------
    @staticmethod
    def _submittable(conn, ident, project_id: int) -> ProjectAccess:
        ident.require_worker()
        acc = project_access(conn, ident, project_id)
        if not acc.can_submit:
            raise Forbidden("SUBMIT access required on this project")
        return acc

    @operation(SubmitRow, once=True, project_of=lambda params: params.project)
    def submit(self, conn, ident, params: SubmitRow):
        acc = self._submittable(conn, ident, params.project)
        admitted = ratelimit.admit(conn, params.project, ratelimit.SUBMIT, acc.project["submit_rate"])
        task_id = store.insert_task(conn, params.project, params.row)
        if task_id is None:
            raise Conflict("A task with this hash already exists in the project")  # not charged
        admitted.charge(conn, 1)
        store.wake(conn, params.project)
        return with_counts(ok(content(Submitted, id=task_id)), submitted=1)

    @operation(SubmitRows, once=True, project_of=lambda params: params.project)
    def bulk_submit(self, conn, ident, params: SubmitRows):
        acc = self._submittable(conn, ident, params.project)
        admitted = ratelimit.admit(conn, params.project, ratelimit.SUBMIT, acc.project["submit_rate"])
        submitted = store.insert_tasks(conn, params.project, params.rows)
        admitted.charge(conn, len(params.rows))  # a bulk of N costs N, duplicates included (contract §5)
        if submitted:
            store.wake(conn, params.project)
        return with_counts(ok(content(BulkSubmitted, submitted=submitted, duplicates=len(params.rows) - submitted)),
                           submitted=submitted)

    # --- project routes over this service's tables ------------------------------------------
    @operation(ProjectRef)
    def assignees(self, conn, ident, params: ProjectRef):
        acc = project_access(conn, ident, params.id)
        if not acc.can_read:
            raise ident.denied("You may not read this project")
        return ok(content(Assignees, assignees=store.assignees(conn, params.id)))

    @staticmethod
    def _maintain(conn, ident, project_id: int, maintenance, frees_tasks: bool) -> Reply:
        """MAINTENANCE check, then the operation; wake long-polls if it made tasks assignable."""
        ident.require_manager()
        if not project_access(conn, ident, project_id).has_role(ROLE_MAINTENANCE):
            raise Forbidden("MAINTENANCE role required on this project")
        affected = maintenance(conn, project_id)
        if affected and frees_tasks:
            store.wake(conn, project_id)
        return ok(content(AffectedTasks, affected_tasks=affected))

    @operation(ProjectRef, once=True)
    def reset_failed_tasks(self, conn, ident, params: ProjectRef):
        return self._maintain(conn, ident, params.id, store.reset_failed, frees_tasks=True)

    @operation(ProjectRef, once=True)
    def hard_reset(self, conn, ident, params: ProjectRef):
        return self._maintain(conn, ident, params.id, store.delete_all, frees_tasks=False)

    @operation(ProjectRef, once=True)
    def reclaim_assigned_tasks(self, conn, ident, params: ProjectRef):
        return self._maintain(conn, ident, params.id, store.reclaim_assigned, frees_tasks=True)

    # --- task administration (contract §6.8) ---------------------------------------------------
    @staticmethod
    def _role(conn, ident, project_id: int, role: int, what: str) -> None:
        """404 for an unknown project, then 403 without the role (tracker admins always pass)."""
        ident.require_manager()
        if not project_access(conn, ident, project_id).has_role(role):
            raise Forbidden(f"{what} role required on this project")

    @staticmethod
    def _chosen(params: SelectTasks) -> store.Chosen:
        found = params.filter
        if found is None:
            return store.Chosen(params.id, ids=list(params.ids))
        return store.Chosen(params.id, status=found.status, q=found.q, assignee=found.assignee)

    @staticmethod
    def _logged(ident, action: str, project: int, count: int) -> None:
        log.info("manager %d: %s on project %d: %d tasks", ident.manager_id, action, project, count)

    @operation(ListTasks)
    def list_tasks(self, conn, ident, params: ListTasks):
        self._role(conn, ident, params.id, ROLE_READ, "READ")
        chosen = store.Chosen(params.id, status=params.status, q=params.q, assignee=params.assignee)
        rows, cursor = store.list_tasks(conn, chosen, params.order == "desc", params.after, params.limit)
        return ok(content(TaskPage, tasks=rows, next=cursor))

    @classmethod
    def _task(cls, conn, ident, read, task_id: int, role: int, what: str) -> dict:
        """The task as ``read`` finds it: 401 for no manager, 404 for an unknown task, then the
        role on the task's project (§6.4's order)."""
        ident.require_manager()
        task = read(conn, task_id)
        if task is None:
            raise NotFound("Task not found")
        cls._role(conn, ident, task["project"], role, what)
        return task

    @operation(TaskRef)
    def view_task(self, conn, ident, params: TaskRef):
        row = self._task(conn, ident, store.task_row, params.id, ROLE_READ, "READ")
        return ok(content(OneTaskRow, task=row))

    @operation(SelectTasks, once=True)
    def retry_tasks(self, conn, ident, params: SelectTasks):
        self._role(conn, ident, params.id, ROLE_MAINTENANCE, "MAINTENANCE")
        affected = store.retry(conn, self._chosen(params))
        if affected:
            store.wake(conn, params.id)
        self._logged(ident, "retry_tasks", params.id, affected)
        return ok(content(AffectedTasks, affected_tasks=affected))

    @operation(SelectTasks, once=True)
    def delete_tasks(self, conn, ident, params: SelectTasks):
        self._role(conn, ident, params.id, ROLE_MAINTENANCE, "MAINTENANCE")
        affected = store.delete(conn, self._chosen(params))
        self._logged(ident, "delete_tasks", params.id, affected)
        return ok(content(AffectedTasks, affected_tasks=affected))

    @operation(UpdateSelected, once=True)
    def update_tasks(self, conn, ident, params: UpdateSelected):
        if params.move_to == params.id:
            raise Invalid("invalid field 'move_to': must be another project than this one")
        self._role(conn, ident, params.id, ROLE_MAINTENANCE, "MAINTENANCE")
        chosen = self._chosen(params)
        if params.move_to is None:
            affected = store.set_priority(conn, chosen, params.priority)
            if affected:
                # Gets pass the tasks an action holds locked (migration 0011: at most 1,000 of
                # them), so a long-poll may be parked on "No task available" while they wait here.
                store.wake(conn, params.id)
            self._logged(ident, "update_tasks", params.id, affected)
            return ok(content(UpdatedTasks, affected_tasks=affected))
        try:
            self._role(conn, ident, params.move_to, ROLE_MAINTENANCE, "MAINTENANCE")
        except NotFound:
            raise NotFound("Target project not found") from None
        except Forbidden:
            raise Forbidden("MAINTENANCE role required on the target project") from None
        moved = store.move(conn, chosen, params.move_to, params.priority)
        if moved is None:
            raise Unavailable()
        affected, conflicts = moved
        if affected:
            store.wake(conn, params.move_to)
        self._logged(ident, f"update_tasks (move to {params.move_to})", params.id, affected)
        return ok(content(UpdatedTasks, affected_tasks=affected, conflicts=conflicts))

    @operation(EditFields, once=True)
    def edit_task(self, conn, ident, params: EditFields):
        """404, then MAINTENANCE on the task's project, then 409 for a held or CLOSED task."""
        task = self._task(conn, ident, store.lock_task, params.id, ROLE_MAINTENANCE, "MAINTENANCE")
        if task["status"] == TaskStatus.CLOSED:
            raise Conflict("Task is closed")
        if task["held"]:
            raise Conflict("Task is assigned")
        fields = params.model_dump(exclude_unset=True, exclude={"id", "retry"})
        if "verification_count" in fields:
            fields["verification_count"] = max(1, fields["verification_count"])  # as /task/submit stores it
        store.edit(conn, params.id, fields)
        if params.retry:
            store.retry_one(conn, params.id)
            store.wake(conn, task["project"])
        self._logged(ident, "edit_task", task["project"], 1)
        return ok(content(OneTaskRow, task=store.task_row(conn, params.id)))

    @timer(interval=60)
    def prune_outcomes(self):
        """Stored replies of state-changing calls outlive their window by at most a minute."""
        try:
            with transaction() as conn:
                idempotency.prune(conn)
        except Exception as exc:  # noqa: BLE001 - the next tick retries
            log.warning("pruning stored replies failed: %s", exc.__class__.__name__)
