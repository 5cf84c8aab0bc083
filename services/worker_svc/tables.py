"""Tables of worker_svc: workers (written only by worker_svc).

Read elsewhere (docs/ARCHITECTURE.md lists every such read): identity (tracker/identity.py),
project_svc (access lists), task_svc (assignee aliases)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Table, Text, text

from tracker.schema import C_TEXT, metadata

worker = Table(
    "worker",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("alias", C_TEXT, nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("paused", Boolean, nullable=False, server_default=text("false")),
    Column("secret_digest", Text, nullable=False),
)
