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
from tracker.routing import Caller, Route

ROUTES = [
    Route("POST", "/task/submit", "submit", Caller.WORKER, body=SubmitTask, idempotency_key=True,
          reply=Submitted, errors=(403, 409, 429), summary="Submit one task (answers its id)"),
    Route("POST", "/task/bulk_submit", "bulk_submit", Caller.WORKER, body=BulkSubmit, bare_list_key="requests",
          idempotency_key=True, reply=BulkSubmitted, errors=(403, 429),
          summary="Submit up to 10,000 tasks of one project atomically"),
    Route("GET", "/task/get/{project}", "get_tasks", Caller.WORKER, query=GET_QUERY, paused_first=True,
          long_poll="project", batch=True, idempotency_key=True, reply=Assignment, declined=NoTask,
          errors=(403, 429),
          summary="Take the best assignable task (or up to ?count=N)"),
    Route("POST", "/task/release", "release", Caller.WORKER, body=ReleaseTask, idempotency_key=True,
          batch=True, reply=Released,
          summary="Release a held task as done, failed or skipped"),
    Route("POST", "/task/extend", "extend", Caller.WORKER, body=ExtendTask, batch=True, reply=Extended,
          summary="Extend a held task's lease"),
    Route("GET", "/project/assignees/{id}", "assignees", reply=Assignees, errors=(403,),
          summary="Non-closed tasks per holder (R)"),
    Route("POST", "/project/reset_failed_tasks/{id}", "reset_failed_tasks", Caller.MANAGER, reply=AffectedTasks,
          errors=(403,), summary="FAILED tasks back to NEW with retries 0 (MAINTENANCE)"),
    Route("POST", "/project/hard_reset/{id}", "hard_reset", Caller.MANAGER, reply=AffectedTasks, errors=(403,),
          summary="Delete every task of the project (MAINTENANCE)"),
    Route("POST", "/project/reclaim_assigned_tasks/{id}", "reclaim_assigned_tasks", Caller.MANAGER, reply=AffectedTasks,
          errors=(403,), summary="Unassign every held NEW task (MAINTENANCE)"),
]
