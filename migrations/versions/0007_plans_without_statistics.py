"""assignment plans that cannot depend on statistics

Revision ID: 0007
Revises: 0006

With autovacuum off (these machines) or lagging after a big import, the ``task`` table's statistics
are missing or stale, and the assignment's candidate scans were planned on guesses. Measured on a
table analysed before a 200,000-task bulk load into a new project: the generic plan of the
expired-lease scan was a sequential scan of the whole table and a sort; on a never-analysed table
the never-held scan's index plan and a bitmap scan + sort of the project's tasks cost within 0.01
of each other, so a few more pages flip it — and a sort below ``FOR UPDATE`` is never bounded by
the LIMIT: it sorts every queued task of the project, spilling to disk (16 workers: 508 → 78
cycles/s over five runs, recovered by ANALYZE).

The functions now carry their own planner settings, so no estimate can choose another plan:
no sequential scan, no bitmap scan (which also never marks dead index entries, so a bloated partial
index stayed bloated), no sort where an index gives the order. The never-held candidates are then
read in ``task_pick`` order (``project, priority DESC, id``) and the LIMIT stops the scan; the
expired candidates are an index range on ``task_lease`` (``project, lease_deadline``): the deadline
bound is taken once per scan into a variable, since a ``clock_timestamp()`` in the condition is
volatile and can only filter, which read every live lease of the project on every call. Only the
expired leases are then sorted by priority (the contract's order), and there are few. JIT is off
in both functions: their statements cost microseconds, and a disabled node's cost would otherwise
trigger JIT compilation of every statement that needs one.
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# The planner settings of both functions: the only way to run their statements is the index order.
# jit off: a disabled plan node costs 1e10, far above jit_above_cost, and a statement whose only plan
# needs one (the expired leases' sort, the batch's final sort) was JIT-compiled on every call —
# 57–85 ms each (measured), where the statement itself runs in 0.1 ms.
PLANNER = "SET enable_seqscan = off SET enable_bitmapscan = off SET enable_sort = off SET jit = off"

ASSIGN = f"""
CREATE OR REPLACE FUNCTION tt_assign(p_project bigint, p_worker bigint, p_n integer)
RETURNS SETOF task LANGUAGE plpgsql VOLATILE {PLANNER} AS $$
DECLARE
  v_now timestamptz := clock_timestamp();
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
    AND lease_deadline IS NOT NULL AND lease_deadline <= v_now
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

ASSIGN_MANY = f"""
CREATE OR REPLACE FUNCTION tt_assign_many(p_projects bigint[], p_workers bigint[], p_counts integer[])
RETURNS TABLE (req integer, t task) LANGUAGE plpgsql VOLATILE {PLANNER} AS $$
DECLARE
  v_project bigint;
  v_reqs integer[];
  v_total integer;
  v_ids bigint[];
  v_quorum boolean;
  v_take_req integer[];
  v_take_worker bigint[];
  v_next integer;
  v_i integer;
  v_k integer;
  v_now timestamptz;
BEGIN
  FOR v_project IN
    SELECT p FROM unnest(p_projects) WITH ORDINALITY AS u(p, o) GROUP BY p ORDER BY min(o)
  LOOP
    SELECT array_agg(o ORDER BY o), sum(p_counts[o]) INTO v_reqs, v_total
    FROM generate_subscripts(p_projects, 1) AS o WHERE p_projects[o] = v_project;

    v_now := clock_timestamp();
    WITH free AS (
      SELECT id, priority, verification_count FROM task
      WHERE project = v_project AND status = 1 AND assignee IS NULL
      ORDER BY priority DESC, id LIMIT v_total FOR UPDATE SKIP LOCKED
    ), expired AS (
      SELECT id, priority, verification_count FROM task
      WHERE project = v_project AND status = 1 AND assignee IS NOT NULL
        AND lease_deadline IS NOT NULL AND lease_deadline <= v_now
      ORDER BY priority DESC, id LIMIT v_total FOR UPDATE SKIP LOCKED
    )
    SELECT array_agg(c.id ORDER BY c.priority DESC, c.id), bool_or(c.verification_count > 1)
    INTO v_ids, v_quorum
    FROM (SELECT * FROM (SELECT * FROM free UNION ALL SELECT * FROM expired) both_sets
          ORDER BY priority DESC, id LIMIT v_total) c;

    IF v_quorum THEN
      FOREACH v_i IN ARRAY v_reqs LOOP
        RETURN QUERY SELECT v_i, a FROM tt_assign(p_projects[v_i], p_workers[v_i], p_counts[v_i]) AS a;
      END LOOP;
      CONTINUE;
    END IF;

    v_take_req := '{{}}';
    v_take_worker := '{{}}';
    v_next := 1;
    FOREACH v_i IN ARRAY v_reqs LOOP
      FOR v_k IN 1 .. p_counts[v_i] LOOP
        EXIT WHEN v_next > coalesce(array_length(v_ids, 1), 0);
        v_take_req := v_take_req || v_i;
        v_take_worker := v_take_worker || p_workers[v_i];
        v_next := v_next + 1;
      END LOOP;
    END LOOP;

    RETURN QUERY
    WITH take AS (
      SELECT * FROM unnest(v_ids[1:v_next - 1], v_take_req, v_take_worker) AS x(id, r, worker)
    ), updated AS (
      UPDATE task SET assignee = take.worker,
        assign_time = floor(extract(epoch FROM clock_timestamp()))::bigint,
        lease_deadline = CASE WHEN max_assign_time > 0
                              THEN clock_timestamp() + make_interval(secs => max_assign_time) END
      FROM take WHERE task.id = take.id
      RETURNING take.r, task
    )
    SELECT updated.r, updated.task FROM updated;
  END LOOP;
END
$$
"""


def upgrade() -> None:
    op.execute(ASSIGN)
    op.execute(ASSIGN_MANY)


# Restored on downgrade: 0004's tt_assign and 0005's tt_assign_many, read from those migrations as
# they are (CREATE OR REPLACE also drops the planner settings: a function keeps the SET clauses of
# its latest definition only).
def _sql_of(filename: str, name: str) -> str:
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(f"_migration_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def downgrade() -> None:
    op.execute(_sql_of("0004_assign_functions.py", "ASSIGN"))
    op.execute(_sql_of("0005_assign_by_project.py", "ASSIGN_MANY"))
