"""Tables of manager_svc: manager accounts and their sessions (written only by manager_svc).

Read elsewhere: identity (tracker/identity.py) and project_svc (a role grant names a manager)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Table, Text, text
from sqlalchemy.dialects.postgresql import TIMESTAMP

from tracker.schema import C_TEXT, metadata

manager = Table(
    "manager",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("username", C_TEXT, nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("tracker_admin", Boolean, nullable=False, server_default=text("false")),
    Column("register_time", BigInteger, nullable=False),
)


manager_session = Table(
    "manager_session",
    metadata,
    Column("token_digest", Text, primary_key=True),
    Column("manager_id", BigInteger, ForeignKey("manager.id", ondelete="CASCADE"), nullable=False),
    Column("expires", TIMESTAMP(timezone=True), nullable=False),
)
