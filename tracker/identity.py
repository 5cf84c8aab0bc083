"""Who is calling: resolved inside the service's own transaction, from digests the gateway sends.

The gateway never sees stored digests and services never see raw secrets: the gateway hashes the
worker secret and the session token, the service compares with what is stored, in constant time.
Resolving identity in the same call as the operation saves a broker round trip per request.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, func, select

from tracker.contract import Caller
from tracker.errors import Forbidden, Refused, Unauthorized
from tracker.hashing import digests_equal
from tracker.schema import table
from tracker.wording import INVALID_WORKER_CREDENTIALS, UNAUTHORIZED, WORKER_CREDENTIALS_REQUIRED

# Tables of manager_svc and worker_svc, read by every service to know who is calling.
manager, manager_session, worker = table("manager"), table("manager_session"), table("worker")


@dataclass(frozen=True)
class Identity:
    worker_id: int | None = None
    worker_paused: bool = False
    manager_id: int | None = None
    admin: bool = False

    @property
    def anonymous(self) -> bool:
        return self.worker_id is None and self.manager_id is None

    def require_worker(self) -> int:
        if self.worker_id is None:
            raise Unauthorized(WORKER_CREDENTIALS_REQUIRED)
        return self.worker_id

    def require_manager(self) -> int:
        if self.manager_id is None:
            raise Unauthorized(UNAUTHORIZED)
        return self.manager_id

    def require_admin(self) -> None:
        self.require_manager()
        if not self.admin:
            raise Forbidden("Tracker admin required")

    def denied(self, message: str = "Forbidden") -> Refused:
        """401 for an anonymous caller, 403 for an identified one (contract §4)."""
        return Unauthorized(UNAUTHORIZED) if self.anonymous else Forbidden(message)


# Built once: identity is resolved on every request.
_WORKER = select(worker.c.secret_digest, worker.c.paused).where(worker.c.id == bindparam("id"))
_SESSION = (
    select(manager.c.id, manager.c.tracker_admin)
    .join(manager_session, manager_session.c.manager_id == manager.c.id)
    .where(manager_session.c.token_digest == bindparam("digest"), manager_session.c.expires > func.now())
)


_WORKERS = select(worker.c.id, worker.c.secret_digest, worker.c.paused).where(
    worker.c.id == func.any(bindparam("ids")))
# Worker rows read for the batch running in this greenthread (each has its own context).
PRELOADED: ContextVar[dict | None] = ContextVar("tt_preloaded_workers", default=None)


def preload_query(callers: list[Caller]) -> tuple | None:
    """The statement reading the worker rows of a whole batch (tracker/service.py),
    or None when no caller names a worker; its rows go to use_preloaded()."""
    ids = sorted({c.worker_id for c in callers if c.worker_id is not None})
    return (_WORKERS, {"ids": ids}) if ids else None


def use_preloaded(rows: list[dict]) -> None:
    """identify() takes the batch's worker rows from here. The batch resets PRELOADED when it ends."""
    PRELOADED.set({row["id"]: (row["secret_digest"], row["paused"]) for row in rows})


def identify(conn: Connection, caller: Caller) -> Identity:
    worker_id = caller.worker_id
    worker_paused = False
    if worker_id is not None:
        preloaded = PRELOADED.get()
        if preloaded is not None and worker_id in preloaded:
            row = preloaded[worker_id]
        else:
            row = conn.execute(_WORKER, {"id": worker_id}).first()
        if row is None or not digests_equal(row[0], caller.worker_digest):
            raise Unauthorized(INVALID_WORKER_CREDENTIALS)
        worker_paused = row[1]
    manager_id, admin = None, False
    session_digest = caller.session_digest
    if session_digest:
        row = conn.execute(_SESSION, {"digest": session_digest}).first()
        if row is not None:
            manager_id, admin = row.id, row.tracker_admin
    return Identity(worker_id, worker_paused, manager_id, admin)
