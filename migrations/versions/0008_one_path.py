"""one set-based statement per hot operation: assign (with rate limits), release, extend

Revision ID: 0008
Revises: 0007

Every task get, release and extend of a batch — a single request is a batch of one — is now one
call of one database function:

- ``tt_assign_many`` also admits and charges the per-project assignment rate limit (contract §5),
  request by request inside the function, so a rate-limited project needs no second code path
  and two gets of one batch can never both be admitted on one token;
- ``tt_release_many`` releases done, failed and skipped tasks, quorum votes included: the common
  release (done, by the holder, no quorum) for all requests at once, then the rest one by one in
  task id order. It answers an outcome per request; the closure counters are added by the caller
  at commit (their rows are the ones every close of a project touches);
- ``tt_extend_many`` extends leases.

The functions carry 0007's planner settings, so their plans do not depend on statistics. The task
statuses below are services/task_svc/messages.py's ``TaskStatus`` (tests/test_plans.py checks they
agree).
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

NEW, FAILED, CLOSED = 1, 2, 3
CHANNEL = "tt_task_ready"  # tracker/wording.py TASK_READY_CHANNEL, which the gateway listens on
# Release outcomes, services/task_svc/store.py ``Released``.
R_CLOSED, R_FAILED, R_SKIPPED, R_AWAITING, R_NOT_HOLDER, R_MISSING = 0, 1, 2, 3, 4, 5
PLANNER = "SET enable_seqscan = off SET enable_bitmapscan = off SET enable_sort = off SET jit = off"
HORIZON = 1e8  # tracker/ratelimit.py: a limiter row beyond this is a legacy, reset rather than obeyed

ASSIGN_MANY = f"""
CREATE FUNCTION tt_assign_many(p_projects bigint[], p_workers bigint[], p_counts integer[], p_rates float8[])
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
    WITH free AS (
      SELECT id, priority, verification_count FROM task
      WHERE project = v_project AND status = {NEW} AND assignee IS NULL
      ORDER BY priority DESC, id LIMIT v_total FOR UPDATE SKIP LOCKED
    ), expired AS (
      SELECT id, priority, verification_count FROM task
      WHERE project = v_project AND status = {NEW} AND assignee IS NOT NULL
        AND lease_deadline IS NOT NULL AND lease_deadline <= v_now
      ORDER BY priority DESC, id LIMIT v_total FOR UPDATE SKIP LOCKED
    )
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

# The chained copy of a closed task: into the project's chain, skipping a hash64 the target holds
# (contract §3.2: ignoring the target's rate limit and permissions), waking the target's long-polls.
CHAIN_COPY = f"""
CREATE FUNCTION tt_chain_copy(p_ids bigint[]) RETURNS void LANGUAGE plpgsql VOLATILE {PLANNER} AS $$
DECLARE
  v_targets bigint[];
BEGIN
  WITH copied AS (
    INSERT INTO task (project, priority, recipe, max_retries, max_assign_time, verification_count, hash64)
    SELECT p.chain, t.priority, t.recipe, t.max_retries, t.max_assign_time, t.verification_count, t.hash64
    FROM unnest(p_ids) WITH ORDINALITY AS c(id, o)
    JOIN task t ON t.id = c.id JOIN project p ON p.id = t.project
    WHERE p.chain IS NOT NULL AND p.chain <> 0
    ORDER BY c.o
    ON CONFLICT (project, hash64) WHERE hash64 <> 0 DO NOTHING
    RETURNING project
  )
  SELECT array_agg(DISTINCT project) INTO v_targets FROM copied;
  PERFORM pg_notify('{CHANNEL}', target::text) FROM unnest(v_targets) AS target;
END
$$
"""

RELEASE_MANY = f"""
CREATE FUNCTION tt_release_many(p_ids bigint[], p_workers bigint[], p_results smallint[], p_verifications bigint[])
RETURNS TABLE (req integer, outcome smallint, project bigint, closer bigint)
LANGUAGE plpgsql VOLATILE {PLANNER} AS $$
#variable_conflict use_column
DECLARE
  v_done integer[];
  v_projects bigint[];
  v_closed bigint[];
  v_i integer;
  v_task task;
  v_agree integer;
BEGIN
  -- The common release, for every request at once: done, by the holder, no quorum (the first
  -- request of a task named twice; the other then finds it closed).
  WITH r AS (
    SELECT o::integer AS req, p_ids[o] AS id, p_workers[o] AS worker
    FROM generate_subscripts(p_ids, 1) AS o
    WHERE p_results[o] = 0 AND NOT EXISTS (
      SELECT 1 FROM generate_subscripts(p_ids, 1) AS e WHERE p_ids[e] = p_ids[o] AND e < o)
  ), closed AS (
    UPDATE task t SET status = {CLOSED}, lease_deadline = NULL FROM r
    WHERE t.id = r.id AND t.status = {NEW} AND t.assignee = r.worker AND t.verification_count <= 1
    RETURNING r.req, t.id, t.project
  )
  SELECT coalesce(array_agg(c.req ORDER BY c.id), '{{}}'), array_agg(c.project ORDER BY c.id),
         array_agg(c.id ORDER BY c.id)
  INTO v_done, v_projects, v_closed FROM closed c;
  IF array_length(v_closed, 1) > 0 THEN
    PERFORM tt_chain_copy(v_closed);
    RETURN QUERY SELECT u.r, {R_CLOSED}::smallint, u.p, p_workers[u.r]
                 FROM unnest(v_done, v_projects) AS u(r, p);
  END IF;

  -- The rest one by one, each task locked in id order: failures, skips, quorum votes, refusals.
  FOR v_i IN
    SELECT o FROM generate_subscripts(p_ids, 1) AS o WHERE NOT (o = ANY (v_done)) ORDER BY p_ids[o], o
  LOOP
    SELECT * INTO v_task FROM task WHERE id = p_ids[v_i] FOR UPDATE;
    IF NOT FOUND THEN
      RETURN QUERY SELECT v_i, {R_MISSING}::smallint, NULL::bigint, NULL::bigint;
    ELSIF v_task.status <> {NEW} OR v_task.assignee IS DISTINCT FROM p_workers[v_i] THEN
      RETURN QUERY SELECT v_i, {R_NOT_HOLDER}::smallint, v_task.project, NULL::bigint;
    ELSIF p_results[v_i] = 1 THEN
      UPDATE task SET retries = retries + 1, assignee = NULL, lease_deadline = NULL,
        status = CASE WHEN retries + 1 >= max_retries THEN {FAILED} ELSE {NEW} END
      WHERE id = v_task.id;
      PERFORM pg_notify('{CHANNEL}', v_task.project::text);
      RETURN QUERY SELECT v_i, {R_FAILED}::smallint, v_task.project, NULL::bigint;
    ELSIF p_results[v_i] <> 0 THEN
      UPDATE task SET assignee = NULL, lease_deadline = NULL WHERE id = v_task.id;
      PERFORM pg_notify('{CHANNEL}', v_task.project::text);
      RETURN QUERY SELECT v_i, {R_SKIPPED}::smallint, v_task.project, NULL::bigint;
    ELSE
      IF v_task.verification_count > 1 THEN
        INSERT INTO task_verification (task_id, worker_id, verification)
        VALUES (v_task.id, p_workers[v_i], p_verifications[v_i])
        ON CONFLICT (task_id, worker_id) DO UPDATE SET verification = EXCLUDED.verification;
        SELECT count(*) INTO v_agree FROM task_verification
        WHERE task_id = v_task.id AND verification = p_verifications[v_i];
        IF v_agree < v_task.verification_count THEN
          UPDATE task SET assignee = NULL, lease_deadline = NULL WHERE id = v_task.id;
          PERFORM pg_notify('{CHANNEL}', v_task.project::text);
          RETURN QUERY SELECT v_i, {R_AWAITING}::smallint, v_task.project, NULL::bigint;
          CONTINUE;
        END IF;
        DELETE FROM task_verification WHERE task_id = v_task.id;
      END IF;
      UPDATE task SET status = {CLOSED}, lease_deadline = NULL WHERE id = v_task.id;
      PERFORM tt_chain_copy(ARRAY[v_task.id]);
      RETURN QUERY SELECT v_i, {R_CLOSED}::smallint, v_task.project, p_workers[v_i];
    END IF;
  END LOOP;
END
$$
"""

# Extended: the request's new deadline (unix seconds); a held task without a lease time keeps none
# (expires 0); otherwise the task's state says why not (missing, or not held).
EXTEND_MANY = f"""
CREATE FUNCTION tt_extend_many(p_ids bigint[], p_workers bigint[], p_seconds integer[])
RETURNS TABLE (req integer, present boolean, held boolean, expires bigint)
LANGUAGE plpgsql VOLATILE {PLANNER} AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  WITH r AS (
    SELECT o::integer AS req, p_ids[o] AS id, p_workers[o] AS worker, p_seconds[o] AS seconds
    FROM generate_subscripts(p_ids, 1) AS o
  ), extended AS (
    UPDATE task t SET lease_deadline = clock_timestamp() + make_interval(secs => r.seconds) FROM r
    WHERE t.id = r.id AND t.status = {NEW} AND t.assignee = r.worker AND t.max_assign_time > 0
    RETURNING r.req, ceil(extract(epoch FROM t.lease_deadline))::bigint AS expires
  )
  SELECT r.req, t.id IS NOT NULL, coalesce(t.status = {NEW} AND t.assignee = r.worker, false),
         coalesce(e.expires, 0)
  FROM r LEFT JOIN task t ON t.id = r.id LEFT JOIN extended e ON e.req = r.req;
END
$$
"""


def upgrade() -> None:
    op.execute("DROP FUNCTION tt_assign_many(bigint[], bigint[], integer[])")
    op.execute(ASSIGN_MANY)
    op.execute(CHAIN_COPY)
    op.execute(RELEASE_MANY)
    op.execute(EXTEND_MANY)


def _sql_of(filename: str, name: str) -> str:
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(f"_migration_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def downgrade() -> None:
    op.execute("DROP FUNCTION tt_extend_many(bigint[], bigint[], integer[])")
    op.execute("DROP FUNCTION tt_release_many(bigint[], bigint[], smallint[], bigint[])")
    op.execute("DROP FUNCTION tt_chain_copy(bigint[])")
    op.execute("DROP FUNCTION tt_assign_many(bigint[], bigint[], integer[], float8[])")
    op.execute(_sql_of("0007_plans_without_statistics.py", "ASSIGN_MANY"))
