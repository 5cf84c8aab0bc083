"""SQL of worker_svc (owns the ``worker`` table)."""

from __future__ import annotations

import time

from sqlalchemy import Connection, func, insert, select, update

from services.worker_svc.tables import worker
from tracker.schema import table

worker_closures = table("worker_closures")  # task_svc's; read only (docs/ARCHITECTURE.md)

PUBLIC = (worker.c.id, worker.c.created, worker.c.alias, worker.c.paused)


def create(conn: Connection, alias: str, secret_digest: str) -> dict:
    row = conn.execute(
        insert(worker)
        .values(alias=alias, created=int(time.time()), secret_digest=secret_digest)
        .returning(*PUBLIC)
    ).mappings().one()
    return dict(row)


def get(conn: Connection, worker_id: int) -> dict | None:
    row = conn.execute(select(*PUBLIC).where(worker.c.id == worker_id)).mappings().first()
    return dict(row) if row else None


def set_alias(conn: Connection, worker_id: int, alias: str) -> None:
    conn.execute(update(worker).where(worker.c.id == worker_id).values(alias=alias))


def set_paused(conn: Connection, worker_id: int, paused: bool) -> bool:
    return conn.execute(update(worker).where(worker.c.id == worker_id).values(paused=paused)).rowcount > 0


def stats(conn: Connection) -> list[dict]:
    rows = conn.execute(
        select(
            worker.c.id, worker.c.alias,
            func.coalesce(worker_closures.c.closed_task_count, 0).label("closed_task_count"),
            worker.c.paused,
        )
        .select_from(worker.outerjoin(worker_closures, worker_closures.c.worker_id == worker.c.id))
        .order_by(worker.c.id)
    ).mappings()
    return [dict(r) for r in rows]
