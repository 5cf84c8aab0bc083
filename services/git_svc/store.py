"""SQL of git_svc: reads ``project`` (id, git_repo, webhook_secret), writes its own ``webhook_delivery``.

``project`` is project_svc's table, read here (listed in docs/ARCHITECTURE.md); the version a push
sets is written by project_svc (``set_version``, asked over RPC by services/git_svc/service.py).
``webhook_delivery`` remembers which delivery ids were applied to which project in the last 7
days, so a replayed push is not applied twice (contract §6.7 step 7).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Row, func, select, text

from tracker.schema import table

project = table("project")  # project_svc's; read only (docs/ARCHITECTURE.md)

DELIVERY_MEMORY = "7 days"  # contract §6.7: a delivery applied within 7 days is not applied again
PRUNE_BATCH = 1000  # old rows deleted per delivery-carrying push: more than any push can add

# Rows older than the memory are stale; a batch of them goes with each delivery-carrying push. SKIP
# LOCKED: concurrent pushes never wait for (or deadlock on) each other's pruning.
_PRUNE = text(f"""
    DELETE FROM webhook_delivery WHERE ctid IN (
        SELECT ctid FROM webhook_delivery WHERE received < now() - interval '{DELIVERY_MEMORY}'
        ORDER BY received LIMIT {PRUNE_BATCH} FOR UPDATE SKIP LOCKED)""")

# The projects this delivery is new to: inserted now, or remembered from longer ago than the memory
# (then refreshed). A row inserted by a concurrent transaction makes this one wait for its outcome,
# so two simultaneous copies of one delivery apply once.
_CLAIM = text(f"""
    INSERT INTO webhook_delivery (project_id, delivery)
    SELECT unnest(CAST(:projects AS bigint[])), :delivery
    ON CONFLICT (project_id, delivery) DO UPDATE SET received = now()
        WHERE webhook_delivery.received < now() - interval '{DELIVERY_MEMORY}'
    RETURNING project_id""")


def projects_for_repo(conn: Connection, full_name: str) -> Sequence[Row]:
    """Projects whose ``git_repo`` equals ``full_name`` case-insensitively: rows of (id, webhook_secret)."""
    return conn.execute(
        select(project.c.id, project.c.webhook_secret)
        .where(func.lower(project.c.git_repo) == func.lower(full_name))
        .order_by(project.c.id)
    ).all()


def last_claim(conn: Connection, project_ids: Sequence[int], delivery: str) -> float | None:
    """When ``delivery`` was last claimed for any of the projects (unix seconds), or None: part of
    the name of the version call, so a claim renewed after the memory acts again while a retry of
    the same claim (rolled back with its transaction) replays."""
    return conn.execute(_LAST_CLAIM, {"projects": list(project_ids), "delivery": delivery}).scalar()


_LAST_CLAIM = text("""
    SELECT max(extract(epoch FROM received))::float8 FROM webhook_delivery
    WHERE delivery = :delivery AND project_id = ANY(CAST(:projects AS bigint[]))""")


def claim_delivery(conn: Connection, project_ids: Sequence[int], delivery: str) -> list[int]:
    """Record ``delivery`` for the projects; returns those it had not been applied to within the memory.

    Runs in the transaction that then asks project_svc to set their version: the record commits only
    once that is done (services/git_svc/service.py says why nothing is lost or applied twice).
    """
    conn.execute(_PRUNE)
    fresh = conn.execute(_CLAIM, {"projects": list(project_ids), "delivery": delivery}).scalars().all()
    return sorted(fresh)
