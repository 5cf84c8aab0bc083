"""Tables of project_svc: projects, the access grants on them, monitoring.

``manager_role`` and ``worker_access`` are grants on a project, so the project's service writes
them. project_svc's one write of another service's table is listed in docs/ARCHITECTURE.md: a
project update resets task_svc's ``rate_limit`` rows in its own transaction."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, ForeignKey, Index, Integer, SmallInteger, Table, Text, text

from tracker.schema import C_TEXT, metadata

project = Table(
    "project",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("name", C_TEXT, nullable=False, unique=True),
    Column("priority", BigInteger, nullable=False, server_default=text("0")),
    Column("clone_url", Text, nullable=False, server_default=""),
    Column("git_repo", Text, nullable=False, server_default=""),
    Column("version", Text, nullable=False, server_default=""),
    Column("motd", Text, nullable=False, server_default=""),
    Column("public", Boolean, nullable=False, server_default=text("false")),
    Column("hidden", Boolean, nullable=False, server_default=text("false")),
    Column("chain", BigInteger, nullable=False, server_default=text("0")),
    Column("paused", Boolean, nullable=False, server_default=text("false")),
    Column("assign_rate", Float, nullable=False, server_default=text("0")),
    Column("submit_rate", Float, nullable=False, server_default=text("0")),
    Column("secret", Text, nullable=False, server_default="{}"),
    Column("webhook_secret", Text, nullable=False),
)


manager_role = Table(
    "manager_role",
    metadata,
    Column("manager_id", BigInteger, ForeignKey("manager.id", ondelete="CASCADE"), primary_key=True),
    Column("project_id", BigInteger, ForeignKey("project.id", ondelete="CASCADE"), primary_key=True),
    Column("role", Integer, nullable=False),
)


worker_access = Table(
    "worker_access",
    metadata,
    Column("worker_id", BigInteger, ForeignKey("worker.id", ondelete="CASCADE"), primary_key=True),
    Column("project_id", BigInteger, ForeignKey("project.id", ondelete="CASCADE"), primary_key=True),
    Column("assign", Boolean, nullable=False),
    Column("submit", Boolean, nullable=False),
    Column("request", Boolean, nullable=False),
)


monitoring_snapshot = Table(
    "monitoring_snapshot",
    metadata,
    Column("project_id", BigInteger, ForeignKey("project.id", ondelete="CASCADE"), primary_key=True),
    Column("time_stamp", BigInteger, primary_key=True),
    Column("new_task_count", BigInteger, nullable=False),
    Column("failed_task_count", BigInteger, nullable=False),
    Column("closed_task_count", BigInteger, nullable=False),
    Column("worker_access_count", BigInteger, nullable=False),
    Column("awaiting_verification_count", BigInteger, nullable=False),
)
Index("monitoring_snapshot_time", monitoring_snapshot.c.time_stamp)


# The last interval slot a snapshot was taken for: the one replica that advances it takes the
# snapshot, so it happens once per interval cluster-wide however many replicas tick.
monitoring_clock = Table(
    "monitoring_clock",
    metadata,
    Column("id", SmallInteger, primary_key=True),
    Column("slot", BigInteger, nullable=False),
)
