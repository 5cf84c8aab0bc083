"""Gateway routes of task_svc: the worker loop, and the project routes that act on tasks."""

from services.task_svc.messages import GET_QUERY, BulkSubmit, ExtendTask, ReleaseTask, SubmitTask
from tracker.routing import Caller, Route

ROUTES = [
    Route("POST", "/task/submit", "submit", Caller.WORKER, body=SubmitTask, summary="Submit one task"),
    Route("POST", "/task/bulk_submit", "bulk_submit", Caller.WORKER, body=BulkSubmit, bare_list_key="requests",
          summary="Submit up to 10,000 tasks of one project atomically"),
    Route("GET", "/task/get/{project}", "get_tasks", Caller.WORKER, query=GET_QUERY, paused_first=True,
          long_poll="project", summary="Take the best assignable task (or up to ?count=N)"),
    Route("POST", "/task/release", "release", Caller.WORKER, body=ReleaseTask,
          summary="Release a held task as done, failed or skipped"),
    Route("POST", "/task/extend", "extend", Caller.WORKER, body=ExtendTask, summary="Extend a held task's lease"),
    Route("GET", "/project/assignees/{id}", "assignees", summary="Non-closed tasks per holder (R)"),
    Route("POST", "/project/reset_failed_tasks/{id}", "reset_failed_tasks", Caller.MANAGER,
          summary="FAILED tasks back to NEW with retries 0 (MAINTENANCE)"),
    Route("POST", "/project/hard_reset/{id}", "hard_reset", Caller.MANAGER,
          summary="Delete every task of the project (MAINTENANCE)"),
    Route("POST", "/project/reclaim_assigned_tasks/{id}", "reclaim_assigned_tasks", Caller.MANAGER,
          summary="Unassign every held NEW task (MAINTENANCE)"),
]
