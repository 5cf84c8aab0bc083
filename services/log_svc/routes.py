"""Gateway routes of log_svc."""

from services.log_svc.messages import LogEntries, LogQuery, WorkerLog
from tracker.routing import Caller, CrossOrigin, Doc, Route
from tracker.settings import get_settings

# With public_logs off, /logs is a manager route: its 401 then comes before body validation (§1.4).
_LOGS_CALLER = Caller.ANYONE if get_settings().public_logs else Caller.MANAGER

ROUTES = [
    *(Route("POST", f"/log/{name}", f"log_{name}", Caller.WORKER, body=WorkerLog,
            doc=Doc(f"Store a worker log entry at level {name.upper()}"))
      for name in ("trace", "info", "warn", "error")),
    Route("POST", "/logs", "query", _LOGS_CALLER, body=LogQuery, extras=(CrossOrigin(refused=False),),
          doc=Doc("Log entries of one level since a time", reply=LogEntries)),
]
