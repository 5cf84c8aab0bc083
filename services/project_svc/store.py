"""SQL of project_svc (owns ``project``, ``worker_access`` and ``manager_role``)."""

from __future__ import annotations

from sqlalchemy import Connection, delete, exists, or_, select, text, true, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from services.project_svc.tables import manager_role, monitoring_snapshot, project, worker_access
from tracker.schema import table
from tracker.views import project_query

manager, worker = table("manager"), table("worker")  # read only: docs/ARCHITECTURE.md

UNIQUE_VIOLATION = "23505"  # the only unique index on project besides the key is its name


def exists_(conn: Connection, project_id: int) -> bool:
    return conn.execute(select(exists().where(project.c.id == project_id))).scalar()


def create(conn: Connection, values: dict, webhook_secret: str) -> int | None:
    """None when the name is taken."""
    return conn.execute(
        insert(project).values(**values, webhook_secret=webhook_secret)
        .on_conflict_do_nothing(index_elements=[project.c.name]).returning(project.c.id)
    ).scalar()


def update_fields(conn: Connection, project_id: int, values: dict) -> bool:
    """False when the new name is taken.

    A check-then-update would race (two renames to one free name both pass the check and the
    second UPDATE hits the unique index: a 500), so the unique index itself decides, inside a
    savepoint that keeps the caller's transaction usable.
    """
    if not values:
        return True
    try:
        with conn.begin_nested():
            conn.execute(update(project).where(project.c.id == project_id).values(**values))
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) == UNIQUE_VIOLATION:
            return False
        raise
    return True


def list_readable(conn: Connection, manager_id: int | None, admin: bool) -> list[dict]:
    if admin:
        visible = true()
    elif manager_id is not None:
        visible = or_(
            project.c.hidden.is_(False),
            exists().where(manager_role.c.project_id == project.c.id, manager_role.c.manager_id == manager_id,
                           manager_role.c.role.op("&")(1) != 0),
        )
    else:
        visible = project.c.hidden.is_(False)
    rows = conn.execute(project_query().where(visible).order_by(project.c.name)).mappings()
    return [dict(r) for r in rows]


# --- manager roles ---------------------------------------------------------------------------
def set_role(conn: Connection, manager_id: int, project_id: int, role: int) -> None:
    if role == 0:
        conn.execute(delete(manager_role).where(manager_role.c.manager_id == manager_id,
                                                manager_role.c.project_id == project_id))
        return
    stmt = insert(manager_role).values(manager_id=manager_id, project_id=project_id, role=role)
    conn.execute(stmt.on_conflict_do_update(index_elements=["manager_id", "project_id"], set_={"role": role}))


def role_of(conn: Connection, manager_id: int, project_id: int) -> int:
    """A manager's role bitmask on a project; 0 without a row."""
    return conn.execute(select(manager_role.c.role).where(manager_role.c.manager_id == manager_id,
                                                          manager_role.c.project_id == project_id)).scalar() or 0


def managers_with_role(conn: Connection, project_id: int) -> list[dict]:
    rows = conn.execute(
        select(manager.c.id, manager.c.username, manager.c.tracker_admin, manager.c.register_time,
               manager_role.c.role)
        .join(manager_role, manager_role.c.manager_id == manager.c.id)
        .where(manager_role.c.project_id == project_id, manager_role.c.role != 0)
        .order_by(manager.c.id)
    ).mappings()
    return [{"manager": {k: r[k] for k in ("id", "username", "tracker_admin", "register_time")},
             "role": r["role"]} for r in rows]


def manager_exists(conn: Connection, manager_id: int) -> bool:
    return conn.execute(select(exists().where(manager.c.id == manager_id))).scalar()


# --- worker access ---------------------------------------------------------------------------
def worker_exists(conn: Connection, worker_id: int) -> bool:
    return conn.execute(select(exists().where(worker.c.id == worker_id))).scalar()


def access_row(conn: Connection, worker_id: int, project_id: int):
    return conn.execute(
        select(worker_access).where(worker_access.c.worker_id == worker_id,
                                    worker_access.c.project_id == project_id)
    ).first()


def add_request(conn: Connection, worker_id: int, project_id: int, assign: bool, submit: bool) -> bool:
    """False if the worker already has a row (pending or granted) on the project."""
    stmt = insert(worker_access).values(worker_id=worker_id, project_id=project_id, assign=assign,
                                        submit=submit, request=True)
    return conn.execute(stmt.on_conflict_do_nothing().returning(worker_access.c.worker_id)).first() is not None


def grant(conn: Connection, worker_id: int, project_id: int) -> None:
    conn.execute(update(worker_access).where(worker_access.c.worker_id == worker_id,
                                             worker_access.c.project_id == project_id).values(request=False))


def revoke(conn: Connection, worker_id: int, project_id: int) -> None:
    conn.execute(delete(worker_access).where(worker_access.c.worker_id == worker_id,
                                             worker_access.c.project_id == project_id))


def access_list(conn: Connection, project_id: int) -> list[dict]:
    rows = conn.execute(
        select(worker.c.id, worker.c.created, worker.c.alias, worker.c.paused, worker_access.c.assign,
               worker_access.c.submit, worker_access.c.request)
        .join(worker, worker.c.id == worker_access.c.worker_id)
        .where(worker_access.c.project_id == project_id)
        .order_by(worker_access.c.request, worker.c.alias, worker.c.id)
    ).mappings()
    return [{"worker": {k: r[k] for k in ("id", "created", "alias", "paused")}, "project": project_id,
             "assign": r["assign"], "submit": r["submit"], "request": r["request"]} for r in rows]


# --- monitoring (contract §3 snapshot, §6.4) ---------------------------------------------------
_SNAPSHOT_COLUMNS = ("new_task_count", "failed_task_count", "closed_task_count", "worker_access_count",
                     "awaiting_verification_count", "time_stamp")

# Claim the current slot: only one transaction cluster-wide can move the clock to it.
_CLAIM = text("""
    UPDATE monitoring_clock SET slot = floor(extract(epoch FROM clock_timestamp()) / :interval)::bigint
    WHERE id = 1 AND slot < floor(extract(epoch FROM clock_timestamp()) / :interval)::bigint
    RETURNING floor(extract(epoch FROM clock_timestamp()))::bigint AS now""")

# Task counts come from task_svc's tables and access counts from this service's: a read-only
# aggregate, written only into this service's snapshot table.
_SNAPSHOT = text("""
    INSERT INTO monitoring_snapshot (project_id, time_stamp, new_task_count, failed_task_count,
        closed_task_count, worker_access_count, awaiting_verification_count)
    SELECT p.id, :now, coalesce(t.new, 0), coalesce(t.failed, 0), coalesce(c.closed_task_count, 0),
           coalesce(a.n, 0), coalesce(t.awaiting, 0)
    FROM project p
    LEFT JOIN (
        SELECT project,
               count(*) FILTER (WHERE status = 1 AND NOT verified) AS new,
               count(*) FILTER (WHERE status = 1 AND verified) AS awaiting,
               count(*) FILTER (WHERE status = 2) AS failed
        FROM (SELECT project, status,
                     verification_count > 1 AND EXISTS (SELECT 1 FROM task_verification v WHERE v.task_id = task.id)
                         AS verified
              FROM task WHERE status IN (1, 2)) s
        GROUP BY project) t ON t.project = p.id
    LEFT JOIN project_closures c ON c.project_id = p.id
    LEFT JOIN (SELECT project_id, count(*) AS n FROM worker_access GROUP BY project_id) a ON a.project_id = p.id
    ON CONFLICT DO NOTHING""")


_FIRST_SNAPSHOT = text("""
    INSERT INTO monitoring_snapshot (project_id, time_stamp, new_task_count, failed_task_count,
        closed_task_count, worker_access_count, awaiting_verification_count)
    VALUES (:p, floor(extract(epoch FROM clock_timestamp()))::bigint, 0, 0, 0, 0, 0)
    ON CONFLICT DO NOTHING""")


def first_snapshot(conn: Connection, project_id: int) -> None:
    """A new project's dashboard has a point from its first second: nothing yet, all zeros (no
    aggregate over the task table needed)."""
    conn.execute(_FIRST_SNAPSHOT, {"p": project_id})


def take_snapshot(conn: Connection, interval: float, retention_hours: float) -> int | None:
    """Snapshot every project if this call claims the current interval slot; else None."""
    now = conn.execute(_CLAIM, {"interval": interval}).scalar()
    if now is None:
        return None
    conn.execute(delete(monitoring_snapshot).where(monitoring_snapshot.c.time_stamp < now - retention_hours * 3600))
    return conn.execute(_SNAPSHOT, {"now": now}).rowcount


def snapshots(conn: Connection, project_id: int, limit: int | None = None, since: int | None = None,
              until: int | None = None) -> list[dict]:
    query = select(*(monitoring_snapshot.c[name] for name in _SNAPSHOT_COLUMNS)).where(
        monitoring_snapshot.c.project_id == project_id)
    if since is not None:
        query = query.where(monitoring_snapshot.c.time_stamp.between(since, until))
    query = query.order_by(monitoring_snapshot.c.time_stamp.desc()).limit(limit if limit else 100_000)
    return [dict(r) for r in conn.execute(query).mappings()]


def reset_rate_limits(conn: Connection, project_id: int) -> None:
    """Both limiters of the project start afresh with its update (contract §6.4).

    ``rate_limit`` is task_svc's table (services/task_svc/tables.py): this is the one write of
    another service's table, listed in docs/ARCHITECTURE.md. It must commit with the new rates: a
    reset asked of task_svc over RPC would either race the update (a get charged at the old rate
    between the reset and the update's commit keeps its delay) or be lost with a failed reply.
    """
    conn.execute(text("DELETE FROM rate_limit WHERE project_id = :p"), {"p": project_id})


def set_version(conn: Connection, project_ids: list[int], version: str) -> None:
    """The version a signed push names (contract §6.7), asked by git_svc."""
    conn.execute(update(project).where(project.c.id.in_(project_ids)).values(version=version))
