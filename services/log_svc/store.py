"""SQL of log_svc (owns ``log_entry``)."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select

from services.log_svc.tables import log_entry

MAX_ENTRIES = 10_000


def add(conn: Connection, level: int, message: str, timestamp: int, data: str) -> None:
    conn.execute(insert(log_entry).values(level=level, message=message, timestamp=timestamp, data=data))


def since(conn: Connection, level: int, since: int) -> list[dict]:
    rows = conn.execute(
        select(log_entry.c.level, log_entry.c.message, log_entry.c.timestamp, log_entry.c.data)
        .where(log_entry.c.level == level, log_entry.c.timestamp > since)
        .order_by(log_entry.c.timestamp, log_entry.c.id)
        .limit(MAX_ENTRIES)
    ).mappings()
    return [dict(r) for r in rows]
