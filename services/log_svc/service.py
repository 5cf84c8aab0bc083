"""nameko entrypoints of log_svc: worker log entries, stored and echoed to the service's own log."""

from __future__ import annotations

import json
import logging

from services.log_svc import store
from services.log_svc.messages import LogEntries, LogQuery, WorkerLog
from tracker.errors import ok
from tracker.logtext import one_line
from tracker.service import Service, operation
from tracker.settings import get_settings
from tracker.shapes import content

LEVELS = {"error": 3, "warn": 4, "info": 5, "trace": 7}
_PY_LEVEL = {3: logging.ERROR, 4: logging.WARNING, 5: logging.INFO, 7: logging.DEBUG}
worker_log = logging.getLogger("worker")


class LogService(Service):
    name = "log_svc"

    def _store(self, conn, ident, params: WorkerLog, level: int) -> dict:
        worker = ident.require_worker()
        data = json.dumps({"scope": params.scope, "worker": worker})
        store.add(conn, level, params.message, params.timestamp, data)
        # One line whatever the worker sent: its newlines and escape sequences are escaped (§6.6).
        if worker_log.isEnabledFor(_PY_LEVEL[level]):
            worker_log.log(_PY_LEVEL[level], "worker=%d scope=%s %s", worker, one_line(params.scope),
                           one_line(params.message))
        return ok()

    @operation(WorkerLog, once=True)
    def log_trace(self, conn, ident, params: WorkerLog):
        return self._store(conn, ident, params, LEVELS["trace"])

    @operation(WorkerLog, once=True)
    def log_info(self, conn, ident, params: WorkerLog):
        return self._store(conn, ident, params, LEVELS["info"])

    @operation(WorkerLog, once=True)
    def log_warn(self, conn, ident, params: WorkerLog):
        return self._store(conn, ident, params, LEVELS["warn"])

    @operation(WorkerLog, once=True)
    def log_error(self, conn, ident, params: WorkerLog):
        return self._store(conn, ident, params, LEVELS["error"])

    @operation(LogQuery)
    def query(self, conn, ident, params: LogQuery):
        if not get_settings().public_logs:
            ident.require_manager()
        return ok(content(LogEntries, logs=store.since(conn, params.level, params.since)))
