"""Gateway routes of log_svc."""

from services.log_svc.messages import LogEntries, LogQuery, WorkerLog
from tracker.routing import Caller, Route

ROUTES = [
    *(Route("POST", f"/log/{name}", f"log_{name}", Caller.WORKER, body=WorkerLog,
            summary=f"Store a worker log entry at level {name.upper()}")
      for name in ("trace", "info", "warn", "error")),
    Route("POST", "/logs", "query", body=LogQuery, reply=LogEntries, summary="Log entries of one level since a time"),
]
