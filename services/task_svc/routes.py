"""Gateway routes of task_svc: the worker loop, and the project routes that act on tasks."""

from services.task_svc.messages import (
    GET_QUERY,
    AffectedTasks,
    Assignees,
    Assignment,
    BulkSubmit,
    BulkSubmitted,
    Extended,
    ExtendTask,
    NoTask,
    Released,
    ReleaseTask,
    SubmitTask,
    Submitted,
)
from tracker.routing import BareList, Caller, Doc, LongPoll, PausedFirst, Route

ROUTES = [
    Route("POST", "/task/submit", "submit", Caller.WORKER, body=SubmitTask, idempotency_key=True,
          doc=Doc("Submit one task (answers its id)", reply=Submitted, errors=(403, 409, 429))),
    Route("POST", "/task/bulk_submit", "bulk_submit", Caller.WORKER, body=BulkSubmit, idempotency_key=True,
          extras=(BareList("requests"),),
          doc=Doc("Submit up to 10,000 tasks of one project atomically", reply=BulkSubmitted, errors=(403, 429))),
    Route("GET", "/task/get/{project}", "get_tasks", Caller.WORKER, query=GET_QUERY, idempotency_key=True,
          batch=True, extras=(PausedFirst(), LongPoll("project")),
          doc=Doc("Take the best assignable task (or up to ?count=N)", reply=Assignment, declined=NoTask,
                  errors=(403, 429))),
    Route("POST", "/task/release", "release", Caller.WORKER, body=ReleaseTask, idempotency_key=True,
          batch=True, doc=Doc("Release a held task as done, failed or skipped", reply=Released)),
    Route("POST", "/task/extend", "extend", Caller.WORKER, body=ExtendTask, batch=True,
          doc=Doc("Extend a held task's lease", reply=Extended)),
    Route("GET", "/project/assignees/{id}", "assignees",
          doc=Doc("Non-closed tasks per holder (R)", reply=Assignees, errors=(403,))),
    Route("POST", "/project/reset_failed_tasks/{id}", "reset_failed_tasks", Caller.MANAGER,
          doc=Doc("FAILED tasks back to NEW with retries 0 (MAINTENANCE)", reply=AffectedTasks, errors=(403,))),
    Route("POST", "/project/hard_reset/{id}", "hard_reset", Caller.MANAGER,
          doc=Doc("Delete every task of the project (MAINTENANCE)", reply=AffectedTasks, errors=(403,))),
    Route("POST", "/project/reclaim_assigned_tasks/{id}", "reclaim_assigned_tasks", Caller.MANAGER,
          doc=Doc("Unassign every held NEW task (MAINTENANCE)", reply=AffectedTasks, errors=(403,))),
]
