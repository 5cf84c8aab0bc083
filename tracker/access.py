"""Permission rules of contract §4, shared by every service that guards a project."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache

from sqlalchemy import BigInteger, Connection, bindparam, func, select, true
from sqlalchemy.dialects.postgresql import ARRAY

from tracker.errors import NotFound
from tracker.identity import Identity
from tracker.schema import table
from tracker.views import project_full_query

# Tables of project_svc, read in the transaction of whichever service guards a project.
manager_role, project, worker_access = table("manager_role"), table("project"), table("worker_access")

ROLE_READ = 1
ROLE_EDIT = 2
ROLE_MANAGE_ACCESS = 4
ROLE_SECRET = 8
ROLE_MAINTENANCE = 16
ROLE_ALL = 31


@dataclass(frozen=True)
class ProjectAccess:
    """What one caller may do on one project, read in the caller's transaction."""

    project: dict
    role: int  # manager role bitmask; 31 for tracker admins
    assign: bool  # worker's granted ASSIGN
    submit: bool  # worker's granted SUBMIT
    granted: bool  # worker has a granted (non-pending) access row

    def has_role(self, bit: int) -> bool:
        return bool(self.role & bit)

    @property
    def can_assign(self) -> bool:
        return self.project["public"] or self.assign or self.submit

    @property
    def can_submit(self) -> bool:
        return self.submit

    @property
    def can_read(self) -> bool:
        return not self.project["hidden"] or self.has_role(ROLE_READ)


@cache
def _access_query(with_role: bool, with_worker: bool, lock: bool):
    """The one statement of project_access, built once per shape (it runs on every task get)."""
    query = project_full_query()
    if with_role:
        query = query.add_columns(
            select(manager_role.c.role)
            .where(manager_role.c.manager_id == bindparam("manager_id"), manager_role.c.project_id == project.c.id)
            .scalar_subquery().label("_role"))
    if with_worker:
        granted = (
            select(worker_access.c.assign, worker_access.c.submit)
            .where(worker_access.c.worker_id == bindparam("worker_id"), worker_access.c.project_id == project.c.id,
                   worker_access.c.request.is_(False))
            .lateral("_access")
        )
        query = query.outerjoin(granted, true()).add_columns(
            granted.c.assign.label("_assign"), granted.c.submit.label("_submit"))
    query = query.where(project.c.id == bindparam("project_id"))
    return query.with_for_update(of=project) if lock else query


# Access rows read for the batch running in this greenthread: {(project, worker): row or None}.
PRELOADED: ContextVar[dict | None] = ContextVar("tt_preloaded_access", default=None)


@cache
def _preload_query():
    wanted = func.unnest(bindparam("ps", type_=ARRAY(BigInteger)), bindparam("ws", type_=ARRAY(BigInteger))) \
        .table_valued("p", "w").render_derived(name="wanted")
    granted = (
        select(worker_access.c.assign, worker_access.c.submit)
        .where(worker_access.c.worker_id == wanted.c.w, worker_access.c.project_id == project.c.id,
               worker_access.c.request.is_(False))
        .lateral("_access")
    )
    return (
        project_full_query()
        .join(wanted, wanted.c.p == project.c.id)
        .outerjoin(granted, true())
        .add_columns(wanted.c.w.label("_w"), granted.c.assign.label("_assign"), granted.c.submit.label("_submit"))
    )


def preload_query(pairs: list[tuple[int, int]]) -> tuple | None:
    """The statement reading the (project, worker) access of a whole batch of worker calls
    (tracker/service.py), or None for no pairs; its rows go to use_preloaded()."""
    pairs = sorted(set(pairs))
    if not pairs:
        return None
    return _preload_query(), {"ps": [p for p, _ in pairs], "ws": [w for _, w in pairs]}


def use_preloaded(pairs: list[tuple[int, int]], rows: list[dict]) -> None:
    """project_access() then takes the batch's rows from here. Valid for the batch's transaction
    only; a project missing here is missing (404) for those calls."""
    found = {(row["id"], row["_w"]): row for row in rows}
    PRELOADED.set({pair: found.get(pair) for pair in set(pairs)})


def _preloaded(conn: Connection, ident: Identity, project_id: int, lock: bool):
    """(hit, row) from a batch's preload: only plain worker calls without a lock use it."""
    if lock or ident.manager_id is not None or ident.worker_id is None:
        return False, None
    preloaded = PRELOADED.get()
    key = (project_id, ident.worker_id)
    if not preloaded or key not in preloaded:
        return False, None
    return True, preloaded[key]


def project_access(conn: Connection, ident: Identity, project_id: int, lock: bool = False) -> ProjectAccess:
    """Raises 404 when the project does not exist (checked before any permission).

    One query: the project, the manager's role and the worker's granted access row together.
    """
    with_role = ident.manager_id is not None and not ident.admin
    with_worker = ident.worker_id is not None
    hit, row = _preloaded(conn, ident, project_id, lock)
    if not hit:
        query = _access_query(with_role, with_worker, lock)
        row = conn.execute(query, {"project_id": project_id, "manager_id": ident.manager_id,
                                   "worker_id": ident.worker_id}).mappings().first()
    if row is None:
        raise NotFound("Project not found")
    row = dict(row)
    row.pop("_w", None)
    role = ROLE_ALL if ident.admin else (row.pop("_role", None) or 0)
    assign = submit = granted = False
    if with_worker:
        a, sub = row.pop("_assign"), row.pop("_submit")
        if a is not None:
            granted, assign, submit = True, a, sub
    return ProjectAccess(row, role, assign, submit, granted)
