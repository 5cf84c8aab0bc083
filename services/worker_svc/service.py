"""nameko entrypoints of worker_svc: worker accounts, and identity resolution for the gateway."""

from __future__ import annotations

from services.worker_svc import store
from tracker.errors import not_found, ok
from tracker.hashing import decode_worker_secret, digest, new_worker_secret
from tracker.service import endpoint

DEFAULT_ALIAS = "default_alias"


class WorkerService:
    name = "worker_svc"

    @endpoint
    def identify(self, conn, ident, params):
        """Credentials alone; the gateway asks only when it must rank a 401 above a 400."""
        return ok({"worker_id": ident.worker_id, "worker_paused": ident.worker_paused,
                   "manager_id": ident.manager_id, "admin": ident.admin})

    @endpoint(once=True)
    def create(self, conn, ident, params):
        secret = new_worker_secret()
        row = store.create(conn, params.get("alias") or DEFAULT_ALIAS, digest(decode_worker_secret(secret)))
        return ok({"worker": {**row, "secret": secret}})

    @endpoint
    def update(self, conn, ident, params):
        store.set_alias(conn, ident.require_worker(), params["alias"])
        return ok()

    @endpoint
    def set_paused(self, conn, ident, params):
        ident.require_manager()
        if store.get(conn, params["worker"]) is None:
            raise not_found("Worker not found")
        ident.require_admin()
        store.set_paused(conn, params["worker"], params["paused"])
        return ok()

    @endpoint
    def get(self, conn, ident, params):
        row = store.get(conn, params["id"])
        if row is None:
            raise not_found("Worker not found")
        return ok({"worker": row})

    @endpoint
    def stats(self, conn, ident, params):
        return ok({"stats": store.stats(conn)})
