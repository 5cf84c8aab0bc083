"""The database schema, one definition for every service and for the migrations.

Ownership: each table is written by exactly one service (named per table). Other services read
what they must decide atomically with their own writes — a task get checks the worker's access row
and the project's pause flag in the same transaction that assigns the task — and never write it.
Closure counters live in tables of task_svc because a closure and its counting must share one
transaction.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import TIMESTAMP

metadata = MetaData()
C_TEXT = Text(collation="C")

# --- worker_svc -------------------------------------------------------------------------------
worker = Table(
    "worker",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("alias", C_TEXT, nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("paused", Boolean, nullable=False, server_default=text("false")),
    Column("secret_digest", Text, nullable=False),
)

# --- manager_svc ------------------------------------------------------------------------------
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

manager_role = Table(
    "manager_role",
    metadata,
    Column("manager_id", BigInteger, ForeignKey("manager.id", ondelete="CASCADE"), primary_key=True),
    Column("project_id", BigInteger, ForeignKey("project.id", ondelete="CASCADE"), primary_key=True),
    Column("role", Integer, nullable=False),
)

# --- project_svc ------------------------------------------------------------------------------
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

worker_access = Table(
    "worker_access",
    metadata,
    Column("worker_id", BigInteger, ForeignKey("worker.id", ondelete="CASCADE"), primary_key=True),
    Column("project_id", BigInteger, ForeignKey("project.id", ondelete="CASCADE"), primary_key=True),
    Column("assign", Boolean, nullable=False),
    Column("submit", Boolean, nullable=False),
    Column("request", Boolean, nullable=False),
)

# --- task_svc ---------------------------------------------------------------------------------
task = Table(
    "task",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("project", BigInteger, ForeignKey("project.id", ondelete="CASCADE"), nullable=False),
    Column("priority", SmallInteger, nullable=False, server_default=text("0")),
    Column("assignee", BigInteger, nullable=True),
    Column("assign_time", BigInteger, nullable=False, server_default=text("0")),
    Column("lease_deadline", TIMESTAMP(timezone=True), nullable=True),
    Column("retries", SmallInteger, nullable=False, server_default=text("0")),
    Column("max_retries", SmallInteger, nullable=False, server_default=text("0")),
    Column("status", SmallInteger, nullable=False, server_default=text("1")),
    Column("recipe", Text, nullable=False),
    Column("max_assign_time", Integer, nullable=False, server_default=text("0")),
    Column("verification_count", SmallInteger, nullable=False, server_default=text("1")),
    Column("hash64", BigInteger, nullable=False, server_default=text("0")),
)
Index("task_dedupe", task.c.project, task.c.hash64, unique=True, postgresql_where=text("hash64 <> 0"))
# The pick: NEW and unassigned, best priority then lowest id, an index scan with no sort.
Index("task_pick", task.c.project, task.c.priority.desc(), task.c.id,
      postgresql_where=text("status = 1 AND assignee IS NULL"))
# Leases that can expire: found by deadline, so expiry is exact without a sweep.
Index("task_lease", task.c.project, task.c.lease_deadline,
      postgresql_where=text("status = 1 AND assignee IS NOT NULL AND lease_deadline IS NOT NULL"))

task_verification = Table(
    "task_verification",
    metadata,
    Column("task_id", BigInteger, ForeignKey("task.id", ondelete="CASCADE"), primary_key=True),
    Column("worker_id", BigInteger, primary_key=True),
    Column("verification", BigInteger, nullable=False),
)

project_closures = Table(
    "project_closures",
    metadata,
    Column("project_id", BigInteger, ForeignKey("project.id", ondelete="CASCADE"), primary_key=True),
    Column("closed_task_count", BigInteger, nullable=False),
)

worker_closures = Table(
    "worker_closures",
    metadata,
    Column("worker_id", BigInteger, ForeignKey("worker.id", ondelete="CASCADE"), primary_key=True),
    Column("closed_task_count", BigInteger, nullable=False),
)

# --- log_svc ----------------------------------------------------------------------------------
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

# --- shared: rate limiters (tracker/ratelimit.py) ---------------------------------------------
# One "next free time" per (project, limiter), shared by every gateway and service replica.
# Written only through tracker.ratelimit: task_svc admits and charges, project_svc resets.
rate_limit = Table(
    "rate_limit",
    metadata,
    Column("project_id", BigInteger, ForeignKey("project.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", SmallInteger, primary_key=True),  # 0 assign, 1 submit
    Column("next_free", Float(precision=53), nullable=False),  # unix seconds
)

# --- project_svc: monitoring ------------------------------------------------------------------
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

# --- shared: outcomes of state-changing calls (tracker/idempotency.py) --------------------------
# The reply of each state-changing RPC, stored in the transaction of its effect: a redelivered
# request (a replica died after commit, before the broker's ack) or a client retry with the same
# Idempotency-Key finds it and gets the first answer instead of a second effect.
rpc_outcome = Table(
    "rpc_outcome",
    metadata,
    Column("request", Text, primary_key=True),
    Column("reply", Text, nullable=False),
    Column("expires", TIMESTAMP(timezone=True), nullable=False),
)
Index("rpc_outcome_expires", rpc_outcome.c.expires)

# --- shared: abuse throttles (tracker/throttle.py) ----------------------------------------------
# One row per counted event (a failed login, a worker creation), keyed by what is throttled (a
# digest of "kind, subject"), so a sliding 10-minute window is a count over an index range and
# every replica sees the same counts. manager_svc writes login failures, worker_svc creations.
throttle_event = Table(
    "throttle_event",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("subject", Text, nullable=False),
    Column("at", TIMESTAMP(timezone=True), nullable=False, server_default=text("clock_timestamp()")),
)
Index("throttle_event_subject_at", throttle_event.c.subject, throttle_event.c.at)
Index("throttle_event_at", throttle_event.c.at)

# --- git_svc: webhook deliveries already applied (contract §6.7, replays) -------------------------
webhook_delivery = Table(
    "webhook_delivery",
    metadata,
    Column("project_id", BigInteger, ForeignKey("project.id", ondelete="CASCADE"), primary_key=True),
    Column("delivery", Text, primary_key=True),
    Column("received", TIMESTAMP(timezone=True), nullable=False, server_default=text("now()")),
)
Index("webhook_delivery_received", webhook_delivery.c.received)
