"""Gateway routes of worker_svc."""

from services.worker_svc.messages import CreateWorker, SetPaused, UpdateWorker, WorkerCreated, WorkerRecord, WorkerStats
from tracker.routing import Caller, Route

ROUTES = [
    Route("POST", "/worker/create", "create", body=CreateWorker, reply=WorkerCreated,
          summary="Create a worker account"),
    Route("POST", "/worker/update", "update", Caller.WORKER, body=UpdateWorker, summary="Change own alias"),
    Route("POST", "/worker/set_paused", "set_paused", Caller.MANAGER, body=SetPaused,
          errors=(403,), summary="Pause or resume a worker (tracker admin)"),
    Route("GET", "/worker/get/{id}", "get", reply=WorkerRecord, summary="A worker's public record"),
    Route("GET", "/worker/stats", "stats", reply=WorkerStats, summary="Closed-task counts of every worker"),
]
