"""task assignment as database functions: one call assigns for a whole batch of gets

Revision ID: 0004
Revises: 0003

The assignment statement lives here, once; task_svc's store calls ``tt_assign`` for a single get
and ``tt_assign_many`` for a batch, which loops inside the database instead of paying a client
round trip (and the client-side statement overhead) per get. A later change to the statement is
a new migration with CREATE OR REPLACE.
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# PL/pgSQL, not SQL: a SQL function's statement is planned again on every call, a PL/pgSQL one is
# planned once per session. Two locked candidate sets — never-held tasks (pick index) and expired leases (lease index) — then
# the best p_n of both. Expiry is exact: an expired lease is assignable the moment it passes. A
# worker never verifies a task twice: tasks it already released OK (quorum tasks only) are skipped.
ASSIGN = """
CREATE OR REPLACE FUNCTION tt_assign(p_project bigint, p_worker bigint, p_n integer)
RETURNS SETOF task LANGUAGE plpgsql VOLATILE AS $$
BEGIN
RETURN QUERY
WITH free AS (
  SELECT id, priority FROM task
  WHERE project = p_project AND status = 1 AND assignee IS NULL
    AND (verification_count <= 1 OR NOT EXISTS (
         SELECT 1 FROM task_verification v WHERE v.task_id = task.id AND v.worker_id = p_worker))
  ORDER BY priority DESC, id LIMIT p_n FOR UPDATE SKIP LOCKED
), expired AS (
  SELECT id, priority FROM task
  WHERE project = p_project AND status = 1 AND assignee IS NOT NULL
    AND lease_deadline IS NOT NULL AND lease_deadline <= clock_timestamp()
    AND (verification_count <= 1 OR NOT EXISTS (
         SELECT 1 FROM task_verification v WHERE v.task_id = task.id AND v.worker_id = p_worker))
  ORDER BY priority DESC, id LIMIT p_n FOR UPDATE SKIP LOCKED
), pick AS (
  SELECT id FROM (SELECT * FROM free UNION ALL SELECT * FROM expired) c ORDER BY priority DESC, id LIMIT p_n
)
UPDATE task SET assignee = p_worker,
  assign_time = floor(extract(epoch FROM clock_timestamp()))::bigint,
  lease_deadline = CASE WHEN max_assign_time > 0
                        THEN clock_timestamp() + make_interval(secs => max_assign_time) END
FROM pick WHERE task.id = pick.id
RETURNING task.*;
END
$$
"""

ASSIGN_MANY = """
CREATE OR REPLACE FUNCTION tt_assign_many(p_projects bigint[], p_workers bigint[], p_counts integer[])
RETURNS TABLE (req integer, t task) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  FOR i IN 1 .. coalesce(array_length(p_workers, 1), 0) LOOP
    RETURN QUERY SELECT i, a FROM tt_assign(p_projects[i], p_workers[i], p_counts[i]) AS a;
  END LOOP;
END
$$
"""


def upgrade() -> None:
    op.execute(ASSIGN)
    op.execute(ASSIGN_MANY)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS tt_assign_many(bigint[], bigint[], integer[])")
    op.execute("DROP FUNCTION IF EXISTS tt_assign(bigint, bigint, integer)")
