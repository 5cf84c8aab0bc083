"""assignment passes at most MAX_SKIPPED locked candidates: a get never walks a locked project

Revision ID: 0011
Revises: 0010

A filter action over a project (contract §6.8, ``POST /project/update_tasks/{id}``) is one
transaction and keeps a row lock on every task it has changed until it commits: half a minute and
up to a million rows. The candidate scans of ``tt_assign_many`` / ``tt_assign`` were ``… ORDER BY
priority DESC, id LIMIT n FOR UPDATE SKIP LOCKED``: the LIMIT counts only rows it could lock, so a
get tried to lock, and skipped, every locked row ahead of the first free one (about 1 µs each:
0.5 s per scan at 500,000 locked rows, measured). Over HTTP (bench part 7, docs/PERFORMANCE.md
"The same project while a filter action runs over it"): get p99 24 ms → 10,011 ms, 32 answers 503.
(Its releases also waited for a second reason, the action's first pass: services/task_svc/store.py.)

Now each scan reads its candidates without locking — ``LIMIT n + MAX_SKIPPED`` along the same
index order — and locks among those only (``FOR UPDATE SKIP LOCKED`` in a subquery per candidate,
reached by primary key). So a scan passes at most MAX_SKIPPED locked rows. The first candidates in (priority DESC,
id) order are exactly the ones the unbounded scan tried first, so the choice order (contract §3.1)
is unchanged: a get still receives the best tasks nobody has locked, if they are among the first
n + MAX_SKIPPED; when more than MAX_SKIPPED of the best are locked it answers "No task available"
rather than search on. Rows an uncommitted action rewrote (new index entries, invisible to the
scan) are still stepped over inside the index scan, but without a lock attempt each (≈0.1 µs:
60 ms for 500,000, measured).

The locked rows are re-checked after the lock (``t.status``, ``t.assignee``, the lease), as the
lock may have followed a committed update past the scan's snapshot. Statuses are
services/task_svc/messages.py ``TaskStatus`` (tests/test_plans.py checks they agree).
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

NEW = 1
PLANNER = "SET enable_seqscan = off SET enable_bitmapscan = off SET enable_sort = off SET jit = off"
HORIZON = 1e8  # tracker/ratelimit.py: a limiter row beyond this is a legacy, reset rather than obeyed
# How many locked candidates one scan may pass before it gives up. Each costs a lock attempt
# (~1-2 µs), so 1,000 bound a get's extra work to a few ms. Rows locked by other assignments are
# only held for their short transaction: a false "No task available" needs more than 1,000 of the
# best rows of a project locked by in-flight gets at once (ten gets of ?count=100 that overlap);
# a batch asking n tasks still passes 1,000 beyond its own n.
MAX_SKIPPED = 1000

# The never-held and the expired candidates of one project, best first, locked: ``{n}`` tasks at
# most, found among the first ``{n}`` + MAX_SKIPPED of each index order; ``{extra}`` is a further
# condition on the task (the quorum rule of tt_assign), checked before and after the lock.
#
# Each candidate is locked by its own subquery, LATERAL and so run once per candidate in the
# candidates' order until the outer LIMIT has its ``{n}`` rows (a subquery with a lock is never
# flattened into a join the planner could reorder). There the task's state is checked again — the
# lock may have followed a committed update past the scan's snapshot — as a row comparison, on
# purpose: it is no index condition and proves no partial index's predicate, so the only way to
# the row is ``task_pkey`` by the candidate's id. As a join with ``t.project = … AND t.status = …``
# the plans on stale statistics re-read ``task_pick`` per candidate, or the whole ``task_pkey``
# once (tests/test_plans.py).
CANDIDATES = f"""
WITH free AS (
  SELECT l.id, l.priority, l.verification_count
  FROM (SELECT id, priority FROM task
        WHERE project = {{project}} AND status = {NEW} AND assignee IS NULL {{extra}}
        ORDER BY priority DESC, id LIMIT {{n}} + {MAX_SKIPPED}) c
  CROSS JOIN LATERAL (
    SELECT t.id, t.priority, t.verification_count FROM task t
    WHERE t.id = c.id AND (t.project, t.status, t.assignee) IS NOT DISTINCT FROM ({{project}}, {NEW}, NULL)
      {{extra_t}}
    FOR UPDATE SKIP LOCKED) l
  ORDER BY c.priority DESC, c.id LIMIT {{n}}
), expired AS (
  SELECT l.id, l.priority, l.verification_count
  FROM (SELECT id, priority FROM task
        WHERE project = {{project}} AND status = {NEW} AND assignee IS NOT NULL
          AND lease_deadline IS NOT NULL AND lease_deadline <= v_now {{extra}}
        ORDER BY priority DESC, id LIMIT {{n}} + {MAX_SKIPPED}) c
  CROSS JOIN LATERAL (
    SELECT t.id, t.priority, t.verification_count FROM task t
    WHERE t.id = c.id AND (t.project, t.status) IS NOT DISTINCT FROM ({{project}}, {NEW})
      AND t.assignee IS NOT NULL AND t.lease_deadline <= v_now {{extra_t}}
    FOR UPDATE SKIP LOCKED) l
  ORDER BY c.priority DESC, c.id LIMIT {{n}}
)"""

# W never verifies a task twice (contract §3.1).
_UNVERIFIED = """AND ({t}verification_count <= 1 OR NOT EXISTS (
         SELECT 1 FROM task_verification v WHERE v.task_id = {t}id AND v.worker_id = p_worker))"""

ASSIGN = f"""
CREATE OR REPLACE FUNCTION tt_assign(p_project bigint, p_worker bigint, p_n integer)
RETURNS SETOF task LANGUAGE plpgsql VOLATILE {PLANNER} AS $$
DECLARE
  v_now timestamptz := clock_timestamp();
BEGIN
RETURN QUERY
{CANDIDATES.format(project="p_project", n="p_n", extra=_UNVERIFIED.format(t="task."),
                   extra_t=_UNVERIFIED.format(t="t."))}, pick AS (
  SELECT id FROM (SELECT id, priority FROM free UNION ALL SELECT id, priority FROM expired) c
  ORDER BY priority DESC, id LIMIT p_n
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
CREATE OR REPLACE FUNCTION tt_assign_many(p_projects bigint[], p_workers bigint[], p_counts integer[],
                                          p_rates float8[])
RETURNS TABLE (req integer, t task, delay float8) LANGUAGE plpgsql VOLATILE {PLANNER} AS $$
#variable_conflict use_column
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
  v_free float8;
  v_clock float8;
  v_got integer;
BEGIN
  FOR v_project IN
    SELECT p FROM unnest(p_projects) WITH ORDINALITY AS u(p, o) GROUP BY p ORDER BY min(o)
  LOOP
    SELECT array_agg(o ORDER BY o), sum(p_counts[o]) INTO v_reqs, v_total
    FROM generate_subscripts(p_projects, 1) AS o WHERE p_projects[o] = v_project;

    IF p_rates[v_reqs[1]] > 0 THEN
      -- Rate-limited: each request is admitted (t >= T), served and charged (T := max(T, t) + n / r)
      -- in turn, on the limiter row locked for the rest of the transaction.
      FOREACH v_i IN ARRAY v_reqs LOOP
        INSERT INTO rate_limit (project_id, kind, next_free) VALUES (v_project, 0, 0)
        ON CONFLICT (project_id, kind) DO UPDATE SET next_free = CASE
          WHEN rate_limit.next_free < extract(epoch FROM clock_timestamp())::float8 + {HORIZON}
          THEN rate_limit.next_free ELSE 0 END
        RETURNING rate_limit.next_free, extract(epoch FROM clock_timestamp())::float8 INTO v_free, v_clock;
        IF v_clock < v_free THEN
          RETURN QUERY SELECT v_i, NULL::task, v_free - v_clock;
          CONTINUE;
        END IF;
        RETURN QUERY SELECT v_i, a, NULL::float8 FROM tt_assign(v_project, p_workers[v_i], p_counts[v_i]) AS a;
        GET DIAGNOSTICS v_got = ROW_COUNT;
        IF v_got > 0 THEN
          UPDATE rate_limit SET next_free = greatest(next_free, v_clock) + v_got / p_rates[v_i]
          WHERE project_id = v_project AND kind = 0;
        END IF;
      END LOOP;
      CONTINUE;
    END IF;

    v_now := clock_timestamp();
    {CANDIDATES.format(project="v_project", n="v_total", extra="", extra_t="")}
    SELECT array_agg(c.id ORDER BY c.priority DESC, c.id), bool_or(c.verification_count > 1)
    INTO v_ids, v_quorum
    FROM (SELECT * FROM (SELECT * FROM free UNION ALL SELECT * FROM expired) both_sets
          ORDER BY priority DESC, id LIMIT v_total) c;

    IF v_quorum THEN
      FOREACH v_i IN ARRAY v_reqs LOOP
        RETURN QUERY SELECT v_i, a, NULL::float8 FROM tt_assign(p_projects[v_i], p_workers[v_i], p_counts[v_i]) AS a;
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
    SELECT updated.r, updated.task, NULL::float8 FROM updated;
  END LOOP;
END
$$
"""


def upgrade() -> None:
    op.execute(ASSIGN)
    op.execute(ASSIGN_MANY)


def _sql_of(filename: str, name: str) -> str:
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(f"_migration_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


# The unbounded scans again: 0007's tt_assign (CREATE OR REPLACE) and 0008's tt_assign_many
# (a plain CREATE, so the function is dropped first).
def downgrade() -> None:
    op.execute(_sql_of("0007_plans_without_statistics.py", "ASSIGN"))
    op.execute("DROP FUNCTION tt_assign_many(bigint[], bigint[], integer[], float8[])")
    op.execute(_sql_of("0008_one_path.py", "ASSIGN_MANY"))
