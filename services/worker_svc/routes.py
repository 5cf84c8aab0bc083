"""Gateway routes of worker_svc."""

from services.worker_svc.messages import CreateWorker, SetPaused, UpdateWorker, WorkerCreated, WorkerRecord, WorkerStats
from tracker.routing import Caller, ClientAddress, Doc, Route

ROUTES = [
    Route("POST", "/worker/create", "create", body=CreateWorker, extras=(ClientAddress(),),
          doc=Doc("Create a worker account", reply=WorkerCreated, errors=(429,),
                  description="At most 600 workers per client address per 10 minutes "
                              "(`TT_WORKER_CREATIONS_PER_ADDRESS`; client address as for /login), else **429** "
                              "with `rate_limit_delay`.")),
    Route("POST", "/worker/update", "update", Caller.WORKER, body=UpdateWorker, doc=Doc("Change own alias")),
    Route("POST", "/worker/set_paused", "set_paused", Caller.MANAGER, body=SetPaused,
          doc=Doc("Pause or resume a worker (tracker admin)", errors=(403,))),
    Route("GET", "/worker/get/{id}", "get", doc=Doc("A worker's public record", reply=WorkerRecord)),
    Route("GET", "/worker/stats", "stats", doc=Doc("Closed-task counts of every worker", reply=WorkerStats)),
]
