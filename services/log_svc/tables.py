"""Tables of log_svc: the tracker's log (written only by log_svc)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, SmallInteger, Table, Text

from tracker.schema import metadata

log_entry = Table(
    "log_entry",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("level", SmallInteger, nullable=False),
    Column("message", Text, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("data", Text, nullable=False),
)
Index("log_entry_level_time", log_entry.c.level, log_entry.c.timestamp)
