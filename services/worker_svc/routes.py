"""Gateway routes of worker_svc."""

from services.worker_svc.messages import CreateWorker, SetPaused, UpdateWorker, WorkerCreated, WorkerRecord, WorkerStats
from tracker.routing import Caller, Route

ROUTES = [
    Route("POST", "/worker/create", "create", body=CreateWorker, reply=WorkerCreated, errors=(429,),
          client_address=True, summary="Create a worker account",
          description="At most 600 workers per client address per 10 minutes (`TT_WORKER_CREATIONS_PER_ADDRESS`; "
                      "client address as for /login), else **429** with `rate_limit_delay`."),
    Route("POST", "/worker/update", "update", Caller.WORKER, body=UpdateWorker, summary="Change own alias"),
    Route("POST", "/worker/set_paused", "set_paused", Caller.MANAGER, body=SetPaused,
          errors=(403,), summary="Pause or resume a worker (tracker admin)"),
    Route("GET", "/worker/get/{id}", "get", reply=WorkerRecord, summary="A worker's public record"),
    Route("GET", "/worker/stats", "stats", reply=WorkerStats, summary="Closed-task counts of every worker"),
]
