"""Tables of task_svc: tasks, verifications, closure counters and rate limiters.

The closure counters live here (not as columns of ``project``/``worker``) because a closure and
its counting must commit together without task_svc writing another service's table. ``rate_limit``
is charged in the transaction of the get or submit it limits (tracker/ratelimit.py is the library
task_svc does it with)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, ForeignKey, Index, Integer, SmallInteger, Table, Text, text
from sqlalchemy.dialects.postgresql import TIMESTAMP

from tracker.schema import metadata

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

# Task administration (contract §6.8): listings page by id within a project, actions lock in that order.
Index("task_project_id", task.c.project, task.c.id)

# Recipe search (contract §6.8 ``q``; migration 0010): each task's recipe copied here by triggers on
# task inserts, recipe/project updates and deletes, and searched through a trigram index. Not an
# index on ``task`` itself: every get and release updates the task row non-HOT, which would
# re-index the whole recipe's trigrams each time (docs/ARCHITECTURE.md "Recipe search").
task_recipe = Table(
    "task_recipe",
    metadata,
    Column("task_id", BigInteger, primary_key=True),
    Column("project", BigInteger, nullable=False),
    Column("recipe", Text, nullable=False),
)
Index("task_recipe_project", task_recipe.c.project, task_recipe.c.task_id)
Index("task_recipe_search", task_recipe.c.recipe, postgresql_using="gin",
      postgresql_ops={"recipe": "gin_trgm_ops"})


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


# Rate limiters (tracker/ratelimit.py): one "next free time" per (project, limiter), shared by every
# replica. task_svc admits and charges; a project update resets them (project_svc: the one listed
# write of another service's table, docs/ARCHITECTURE.md).
rate_limit = Table(
    "rate_limit",
    metadata,
    Column("project_id", BigInteger, ForeignKey("project.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", SmallInteger, primary_key=True),  # 0 assign, 1 submit
    Column("next_free", Float(precision=53), nullable=False),  # unix seconds
)
