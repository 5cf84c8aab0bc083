"""nameko entrypoints of worker_svc: worker accounts, and identity resolution for the gateway."""

from __future__ import annotations

from services.worker_svc import store
from services.worker_svc.messages import (
    SetPaused,
    UpdateWorker,
    WorkerCreate,
    WorkerCreated,
    WorkerRecord,
    WorkerRef,
    WorkerStats,
)
from tracker import throttle
from tracker.errors import NotFound, ok
from tracker.fields import NoParams
from tracker.hashing import decode_worker_secret, digest, new_worker_secret
from tracker.service import Service, operation
from tracker.settings import get_settings
from tracker.shapes import content

DEFAULT_ALIAS = "default_alias"
TOO_MANY_WORKERS = "Too many workers created from this address; try again later"


class WorkerService(Service):
    name = "worker_svc"

    @operation(NoParams)
    def identify(self, conn, ident, params):
        """Credentials alone; the gateway asks only when it must rank a 401 above a 400."""
        return ok({"worker_id": ident.worker_id, "worker_paused": ident.worker_paused,
                   "manager_id": ident.manager_id, "admin": ident.admin})

    @operation(WorkerCreate, once=True)
    def create(self, conn, ident, params: WorkerCreate):
        # Counted per client address over 10 minutes (contract §6.3); a refusal records nothing.
        limit = throttle.Limit(throttle.subject("worker-create", params.client),
                               get_settings().worker_creations_per_address)
        throttle.admit(conn, [limit], TOO_MANY_WORKERS)
        secret = new_worker_secret()
        row = store.create(conn, params.alias or DEFAULT_ALIAS, digest(decode_worker_secret(secret)))
        return ok(content(WorkerCreated, worker={**row, "secret": secret}))

    @operation(UpdateWorker, once=True)
    def update(self, conn, ident, params: UpdateWorker):
        store.set_alias(conn, ident.require_worker(), params.alias)
        return ok()

    @operation(SetPaused, once=True)
    def set_paused(self, conn, ident, params: SetPaused):
        ident.require_manager()
        if store.get(conn, params.worker) is None:
            raise NotFound("Worker not found")
        ident.require_admin()
        store.set_paused(conn, params.worker, params.paused)
        return ok()

    @operation(WorkerRef)
    def get(self, conn, ident, params: WorkerRef):
        row = store.get(conn, params.id)
        if row is None:
            raise NotFound("Worker not found")
        return ok(content(WorkerRecord, worker=row))

    @operation(NoParams)
    def stats(self, conn, ident, params):
        return ok(content(WorkerStats, stats=store.stats(conn)))
