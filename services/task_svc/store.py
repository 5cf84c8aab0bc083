"""SQL of task_svc (owns ``task``, ``task_verification`` and the closure counters).

Correctness rests on PostgreSQL row locks, never on a process lock, so any number of task_svc
replicas may run: assignment locks candidate rows with ``FOR UPDATE SKIP LOCKED`` (concurrent
getters pass each other instead of waiting), and release locks the one task row it changes.
"""

from __future__ import annotations

import json
from collections import Counter

import psycopg
from sqlalchemy import Connection, text

from services.task_svc.messages import TASK_ROW
from tracker.db import defer

TASK_COLUMNS = ("id, project, priority, assignee, retries, max_retries, status, recipe, max_assign_time, "
                "assign_time, verification_count, hash64, lease_deadline")

NEW, FAILED, CLOSED = 1, 2, 3

# The assignment statement is the database function ``tt_assign`` (migration 0004): a batch of
# gets assigns in one call of ``tt_assign_many``, which loops inside the database.
_ASSIGN = text(f"SELECT {TASK_COLUMNS} FROM tt_assign(:project, :worker, :n)")
_ASSIGN_MANY = text(f"""
    SELECT req, {", ".join(f"(t).{c.strip()}" for c in TASK_COLUMNS.split(","))}
    FROM tt_assign_many(CAST(:projects AS bigint[]), CAST(:workers AS bigint[]), CAST(:counts AS integer[]))""")


def _choice_order(rows) -> list[dict]:
    return sorted((dict(r) for r in rows), key=lambda r: (-r["priority"], r["id"]))


def assign(conn: Connection, project: int, worker: int, n: int) -> list[dict]:
    """Up to n tasks now held by the worker, in choice order (priority, then id)."""
    return _choice_order(conn.execute(_ASSIGN, {"project": project, "worker": worker, "n": n}).mappings().all())


def assign_many_query(gets: list[tuple[int, int, int]]) -> tuple:
    """``assign`` for many (project, worker, n) in one call, in the given order: the statement,
    for a script (tracker.db.script); its rows go to assigned()."""
    return _ASSIGN_MANY, {"projects": [g[0] for g in gets], "workers": [g[1] for g in gets],
                          "counts": [g[2] for g in gets]}


def assigned(rows: list, n: int) -> list[list[dict]]:
    """The tasks of each of the n gets of assign_many_query, in choice order."""
    per_get: list[list] = [[] for _ in range(n)]
    for row in rows:
        per_get[row["req"] - 1].append({k: v for k, v in row.items() if k != "req"})
    return [_choice_order(r) for r in per_get]


def lock(conn: Connection, task_id: int) -> dict | None:
    row = conn.execute(text(f"SELECT {TASK_COLUMNS} FROM task WHERE id = :id FOR UPDATE"),
                       {"id": task_id}).mappings().first()
    return dict(row) if row else None


def unassign(conn: Connection, task_id: int) -> None:
    conn.execute(text("UPDATE task SET assignee = NULL, lease_deadline = NULL WHERE id = :id"), {"id": task_id})


def fail(conn: Connection, task_id: int) -> None:
    conn.execute(text("""
        UPDATE task SET retries = retries + 1, assignee = NULL, lease_deadline = NULL,
          status = CASE WHEN retries + 1 >= max_retries THEN 2 ELSE 1 END
        WHERE id = :id"""), {"id": task_id})


def record_verification(conn: Connection, task_id: int, worker: int, verification: int) -> int:
    """Record the worker's OK; returns how many distinct workers reported this same value."""
    conn.execute(text("""
        INSERT INTO task_verification (task_id, worker_id, verification) VALUES (:t, :w, :v)
        ON CONFLICT (task_id, worker_id) DO UPDATE SET verification = EXCLUDED.verification"""),
        {"t": task_id, "w": worker, "v": verification})
    return conn.execute(text("SELECT count(*) FROM task_verification WHERE task_id = :t AND verification = :v"),
                        {"t": task_id, "v": verification}).scalar()


def close(conn: Connection, task: dict, worker: int) -> None:
    """CLOSED, both counters +1, and the chain copy — one transaction, so counted exactly once."""
    conn.execute(text("UPDATE task SET status = 3, lease_deadline = NULL WHERE id = :id"), {"id": task["id"]})
    conn.execute(text("DELETE FROM task_verification WHERE task_id = :id"), {"id": task["id"]})
    conn.execute(text("""
        INSERT INTO project_closures (project_id, closed_task_count) VALUES (:p, 1)
        ON CONFLICT (project_id) DO UPDATE SET closed_task_count = project_closures.closed_task_count + 1"""),
        {"p": task["project"]})
    conn.execute(text("""
        INSERT INTO worker_closures (worker_id, closed_task_count) VALUES (:w, 1)
        ON CONFLICT (worker_id) DO UPDATE SET closed_task_count = worker_closures.closed_task_count + 1"""),
        {"w": worker})
    chain = conn.execute(text("SELECT chain FROM project WHERE id = :p"), {"p": task["project"]}).scalar()
    _chain_copy(conn, task, chain)


def _chain_copy(conn: Connection, task: dict, chain: int) -> None:
    # The copy ignores the target's rate limit and permissions (contract §3.2).
    if chain and insert_tasks(conn, chain, [[task[column] for column in TASK_ROW]]):
        wake(conn, chain)


# The common release — OK by the holder of a task that needs no quorum — in one statement: the
# holder check, CLOSED, both counters. Zero rows when any condition fails; the caller then takes
# the general path, which locks the row and decides.
_CLOSE_HELD = text(f"""
WITH closed AS (
  UPDATE task SET status = 3, lease_deadline = NULL
  WHERE id = :id AND status = 1 AND assignee = :worker AND verification_count <= 1
  RETURNING {TASK_COLUMNS}
), per_project AS (
  INSERT INTO project_closures (project_id, closed_task_count) SELECT project, 1 FROM closed
  ON CONFLICT (project_id) DO UPDATE SET closed_task_count = project_closures.closed_task_count + 1
), per_worker AS (
  INSERT INTO worker_closures (worker_id, closed_task_count) SELECT :worker, 1 FROM closed
  ON CONFLICT (worker_id) DO UPDATE SET closed_task_count = worker_closures.closed_task_count + 1
)
SELECT closed.*, p.chain FROM closed JOIN project p ON p.id = closed.project""")


# The same for a whole batch of releases: one statement. Its closure counters are added at the
# commit (tracker.db.defer, count_closures): every close of a project adds to one counter row, and
# a row lock taken mid-transaction would make concurrent batches wait for each other's whole
# transaction. Requests are passed sorted by task id, so concurrent batches lock tasks in one order.
_CLOSE_HELD_MANY = text("""
WITH req AS (
  SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:workers AS bigint[])) AS r(id, closer)
), closed AS (
  UPDATE task t SET status = 3, lease_deadline = NULL FROM req
  WHERE t.id = req.id AND t.status = 1 AND t.assignee = req.closer AND t.verification_count <= 1
  RETURNING t.id, t.project, t.priority, t.recipe, t.max_retries, t.max_assign_time, t.verification_count,
            t.hash64, req.closer
)
SELECT closed.*, p.chain FROM closed JOIN project p ON p.id = closed.project""")
_COUNT_CLOSURES = text("""
WITH per_project AS (
  INSERT INTO project_closures (project_id, closed_task_count)
  SELECT p, n FROM unnest(CAST(:projects AS bigint[]), CAST(:project_counts AS bigint[])) AS t(p, n) ORDER BY p
  ON CONFLICT (project_id) DO UPDATE
    SET closed_task_count = project_closures.closed_task_count + EXCLUDED.closed_task_count
)
INSERT INTO worker_closures (worker_id, closed_task_count)
SELECT w, n FROM unnest(CAST(:workers AS bigint[]), CAST(:worker_counts AS bigint[])) AS t(w, n) ORDER BY w
ON CONFLICT (worker_id) DO UPDATE
  SET closed_task_count = worker_closures.closed_task_count + EXCLUDED.closed_task_count""")


def close_held_many_query(releases: list[tuple[int, int]]) -> tuple:
    """``close_held`` for many (task id, worker) pairs with distinct task ids: the statement, for
    a script (tracker.db.script); its rows go to closed()."""
    releases = sorted(releases)
    return _CLOSE_HELD_MANY, {"ids": [t for t, _ in releases], "workers": [w for _, w in releases]}


def closed(conn: Connection, rows: list) -> set[int]:
    """The ids close_held_many_query closed (chained copies made, counters added at commit); the
    others are untouched and take the general path."""
    if rows:
        per_project = Counter(row["project"] for row in rows)
        per_worker = Counter(row["closer"] for row in rows)
        defer(conn, (_COUNT_CLOSURES, {
            "projects": sorted(per_project), "project_counts": [per_project[p] for p in sorted(per_project)],
            "workers": sorted(per_worker), "worker_counts": [per_worker[w] for w in sorted(per_worker)]}))
    for row in rows:
        _chain_copy(conn, dict(row), row["chain"])
    return {row["id"] for row in rows}


def close_held(conn: Connection, task_id: int, worker: int) -> bool:
    """Close the task if ``worker`` holds it and it needs no quorum; False leaves it untouched."""
    row = conn.execute(_CLOSE_HELD, {"id": task_id, "worker": worker}).mappings().first()
    if row is None:
        return False
    _chain_copy(conn, dict(row), row["chain"])
    return True


# Rows come as one JSON parameter: psycopg dumps a text[] parameter element by element in Python
# (measured: 74 % of task_svc's time on 10,000-task bulks), json.dumps is C.
_INSERT = text("""
    INSERT INTO task (project, priority, recipe, max_retries, max_assign_time, verification_count, hash64)
    SELECT :project, CAST(r->>0 AS smallint), r->>1, CAST(r->>2 AS smallint), CAST(r->>3 AS integer),
           CAST(r->>4 AS smallint), CAST(r->>5 AS bigint)
    FROM json_array_elements(CAST(:rows AS json)) WITH ORDINALITY AS t(r, ord)
    ORDER BY ord
    ON CONFLICT (project, hash64) WHERE hash64 <> 0 DO NOTHING""")
_INSERT_ONE = text(_INSERT.text + " RETURNING id")
_COPY = f"COPY task (project, {', '.join(TASK_ROW)}) FROM STDIN"
COPY_FROM = 200  # bulks at least this big try COPY first


def insert_tasks(conn: Connection, project: int, rows: list[list]) -> int:
    """Insert rows (messages.TASK_ROW order) in order, skipping hash64 duplicates (stored or
    earlier in the list); returns how many."""
    if len(rows) >= COPY_FROM:
        copied = _copy_tasks(conn, project, rows)
        if copied is not None:
            return copied
    return conn.execute(_INSERT, {"project": project, "rows": json.dumps(rows)}).rowcount


def insert_task(conn: Connection, project: int, row: list) -> int | None:
    """One row (messages.TASK_ROW order); its id, or None when its hash64 is already stored."""
    return conn.execute(_INSERT_ONE, {"project": project, "rows": json.dumps([row])}).scalar()


def _copy_tasks(conn: Connection, project: int, rows: list[list]) -> int | None:
    """A bulk without duplicates by COPY, in list order (ids follow it); None when the bulk repeats
    a hash64 of its own or of a stored task: COPY cannot skip rows, so its savepoint is rolled back
    and the caller inserts with ON CONFLICT instead. COPY moves rows at the storage floor's speed."""
    hashes = [row[5] for row in rows if row[5]]
    if len(set(hashes)) < len(hashes):
        return None
    raw = conn.connection.driver_connection
    try:
        with conn.begin_nested(), raw.cursor() as cursor, cursor.copy(_COPY) as copy:
            for row in rows:
                copy.write_row((project, *row))
    except psycopg.errors.UniqueViolation:
        return None
    return len(rows)


def extend(conn: Connection, task_id: int, seconds: int) -> int:
    """New deadline = now + seconds; returns it as unix seconds."""
    return conn.execute(text("""
        UPDATE task SET lease_deadline = clock_timestamp() + make_interval(secs => :s) WHERE id = :id
        RETURNING ceil(extract(epoch FROM lease_deadline))::bigint"""), {"id": task_id, "s": seconds}).scalar()


_NOTIFY = text("SELECT pg_notify('tt_task_ready', CAST(:p AS text))")


def wake(conn: Connection, project: int) -> None:
    """Tell parked long-polls (gateway/longpoll.py) that the project may have an assignable task.

    NOTIFY is delivered at commit and only then, and PostgreSQL folds identical notifications of
    one transaction into one. Only paths that make a task assignable call it; the hot get/close
    cycle never does.
    """
    defer(conn, (_NOTIFY, {"p": project}))  # delivered at commit anyway: sent with it


def next_expiry_in(conn: Connection, project: int) -> float | None:
    """Seconds until the project's next lease expires (an expiry sends no notification), or None
    when no live lease will expire: then only a notification can make a task assignable.

    Only deadlines still ahead count. A lease that has already expired without its task being
    handed out (the asking worker verified that quorum task already) would answer "now" forever,
    and ``greatest(NULL, 0)`` is 0, not NULL: either way a parked long-poll re-asked in a loop.
    """
    return conn.execute(NEXT_EXPIRY, {"p": project}).scalar()


# The deadline bound comes from a sub-select (evaluated once, before the scan), so it is part of the
# task_lease range instead of a filter on every live lease of the project (clock_timestamp() is
# volatile); min() then reads the range's first entry (tests/test_plans.py).
NEXT_EXPIRY = text("""
    SELECT extract(epoch FROM min(lease_deadline) - clock_timestamp())::float8 FROM task
    WHERE project = :p AND status = 1 AND assignee IS NOT NULL
      AND lease_deadline > (SELECT clock_timestamp())""")


# --- maintenance (contract §6.4) ---------------------------------------------------------------
def reset_failed(conn: Connection, project: int) -> int:
    return conn.execute(text("""
        UPDATE task SET status = 1, retries = 0, assignee = NULL, lease_deadline = NULL
        WHERE project = :p AND status = 2"""), {"p": project}).rowcount


def delete_all(conn: Connection, project: int) -> int:
    """Every task of the project, whatever its status; verification records go by cascade."""
    return conn.execute(text("DELETE FROM task WHERE project = :p"), {"p": project}).rowcount


def reclaim_assigned(conn: Connection, project: int) -> int:
    return conn.execute(text("""
        UPDATE task SET assignee = NULL, lease_deadline = NULL
        WHERE project = :p AND status = 1 AND assignee IS NOT NULL"""), {"p": project}).rowcount


def assignees(conn: Connection, project: int) -> list[dict]:
    """Non-CLOSED tasks by holder alias; tasks without a live lease count as "unassigned"."""
    rows = conn.execute(text("""
        SELECT assignee, task_count FROM (
            SELECT CASE WHEN t.status = 1 AND t.assignee IS NOT NULL
                             AND (t.lease_deadline IS NULL OR t.lease_deadline > clock_timestamp())
                        THEN coalesce(w.alias, 'unassigned') ELSE 'unassigned' END AS assignee,
                   count(*) AS task_count
            FROM task t LEFT JOIN worker w ON w.id = t.assignee
            WHERE t.project = :p AND t.status <> 3
            GROUP BY 1) g
        ORDER BY task_count, assignee COLLATE "C" LIMIT 16"""), {"p": project}).mappings()
    return [dict(r) for r in rows]
