"""SQL of task_svc (owns ``task``, ``task_verification`` and the closure counters).

Correctness rests on PostgreSQL row locks, never on a process lock, so any number of task_svc
replicas may run: assignment locks candidate rows with ``FOR UPDATE SKIP LOCKED`` (concurrent
getters pass each other instead of waiting), and release locks the task rows it changes.

The hot operations are one statement per batch each, database functions whose plans cannot depend
on statistics (migrations 0007, 0008): ``tt_assign_many``, ``tt_release_many``, ``tt_extend_many``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import psycopg
from sqlalchemy import Connection, text

from services.task_svc.messages import TASK_ROW, ReleaseOutcome, TaskStatus
from tracker import jsoncodec
from tracker.db import defer
from tracker.wording import TASK_READY_CHANNEL

NEW, FAILED, CLOSED = TaskStatus.NEW.value, TaskStatus.FAILED.value, TaskStatus.CLOSED.value
TASK_COLUMNS = ("id", "project", "priority", "assignee", "retries", "max_retries", "status", "recipe",
                "max_assign_time", "assign_time", "verification_count")

# --- assign ------------------------------------------------------------------------------------
_ASSIGN_MANY = text(f"""
    SELECT req, delay, {", ".join(f"(t).{c}" for c in TASK_COLUMNS)}
    FROM tt_assign_many(CAST(:projects AS bigint[]), CAST(:workers AS bigint[]), CAST(:counts AS integer[]),
                        CAST(:rates AS float8[]))""")


@dataclass(frozen=True)
class Get:
    project: int
    worker: int
    count: int
    rate: float  # tasks per second the project's assignment limit allows; 0 = unlimited


@dataclass
class Assigned:
    """What one get came to: its tasks in choice order, or the seconds until its rate limit
    admits it (``refused_for``)."""

    tasks: list[dict]
    refused_for: float | None = None


def assign_query(gets: list[Get]) -> tuple:
    """The one statement assigning every get of a batch, in order; its rows go to assigned()."""
    return _ASSIGN_MANY, {"projects": [g.project for g in gets], "workers": [g.worker for g in gets],
                          "counts": [g.count for g in gets], "rates": [g.rate for g in gets]}


def assigned(rows: list[dict], n: int) -> list[Assigned]:
    per_get = [Assigned([]) for _ in range(n)]
    for row in rows:
        got = per_get[row["req"] - 1]
        if row["delay"] is not None:
            got.refused_for = row["delay"]
        else:
            got.tasks.append({c: row[c] for c in TASK_COLUMNS})
    for got in per_get:
        got.tasks.sort(key=lambda task: (-task["priority"], task["id"]))
    return per_get


# --- release -----------------------------------------------------------------------------------
_RELEASE_MANY = text("""
    SELECT req, outcome, project, closer FROM tt_release_many(
        CAST(:ids AS bigint[]), CAST(:workers AS bigint[]), CAST(:results AS smallint[]),
        CAST(:verifications AS bigint[]))""")


def release_query(releases: list[tuple[int, int, int, int]]) -> tuple:
    """The one statement releasing every (task id, worker, result, verification) of a batch; its
    rows go to released()."""
    return _RELEASE_MANY, {"ids": [r[0] for r in releases], "workers": [r[1] for r in releases],
                           "results": [r[2] for r in releases], "verifications": [r[3] for r in releases]}


def released(conn: Connection, rows: list[dict], n: int) -> list[ReleaseOutcome]:
    """Each release's outcome, in order; the closure counters of the closed ones are added at
    commit (tracker.db.defer): every close of a project adds to one counter row, and a row lock
    taken mid-transaction would make concurrent batches wait for each other's whole transaction."""
    outcome = [ReleaseOutcome.MISSING] * n
    for row in rows:
        outcome[row["req"] - 1] = ReleaseOutcome(row["outcome"])
    closed = [row for row in rows if row["outcome"] == ReleaseOutcome.CLOSED]
    if closed:
        per_project = Counter(row["project"] for row in closed)
        per_worker = Counter(row["closer"] for row in closed)
        defer(conn, (_COUNT_CLOSURES, {
            "projects": sorted(per_project), "project_counts": [per_project[p] for p in sorted(per_project)],
            "workers": sorted(per_worker), "worker_counts": [per_worker[w] for w in sorted(per_worker)]}))
    return outcome


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


# --- extend ------------------------------------------------------------------------------------
_EXTEND_MANY = text("""
    SELECT req, present, held, expires
    FROM tt_extend_many(CAST(:ids AS bigint[]), CAST(:workers AS bigint[]), CAST(:seconds AS integer[]))""")


def extend_query(extensions: list[tuple[int, int, int]]) -> tuple:
    """The one statement extending every (task id, worker, seconds) of a batch; rows by ``req``
    (1-based): ``present``, ``held`` and the new deadline ``expires`` (0: none)."""
    return _EXTEND_MANY, {"ids": [e[0] for e in extensions], "workers": [e[1] for e in extensions],
                          "seconds": [e[2] for e in extensions]}


# Rows come as one JSON parameter: psycopg dumps a text[] parameter element by element in Python
# (measured: 74 % of task_svc's time on 10,000-task bulks), orjson (tracker/jsoncodec.py) is C.
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
    return conn.execute(_INSERT, {"project": project, "rows": jsoncodec.dumps_str(rows)}).rowcount


def insert_task(conn: Connection, project: int, row: list) -> int | None:
    """One row (messages.TASK_ROW order); its id, or None when its hash64 is already stored."""
    return conn.execute(_INSERT_ONE, {"project": project, "rows": jsoncodec.dumps_str([row])}).scalar()


def _copy_tasks(conn: Connection, project: int, rows: list[list]) -> int | None:
    """A bulk without duplicates by COPY, in list order (ids follow it); None when the bulk repeats
    a hash64 of its own or of a stored task: COPY cannot skip rows, so its savepoint is rolled back
    and the caller inserts with ON CONFLICT instead. COPY moves rows at the storage floor's speed.

    Cheap on the service's CPU, which a 10,000-task bulk spends mostly here: the rows go as one
    text payload built by one join and written at once (``write_row`` adapts each value in Python),
    and the savepoint is plain SQL on the driver's cursor (SQLAlchemy's ``begin_nested`` costs
    more than the statement). The transaction is SQLAlchemy's, begun by the caller.
    """
    hashes = [row[5] for row in rows if row[5]]
    if len(set(hashes)) < len(hashes):
        return None
    recipes = [row[1] for row in rows]
    joined = "".join(recipes)
    if "\\" in joined or "\t" in joined or "\n" in joined or "\r" in joined:  # rare: escape only then
        recipes = [recipe.translate(_COPY_ESCAPES) for recipe in recipes]
    prefix = f"{int(project)}\t"
    payload = "".join([f"{prefix}{p}\t{recipe}\t{r}\t{a}\t{v}\t{h}\n"
                       for (p, _, r, a, v, h), recipe in zip(rows, recipes, strict=True)])
    with conn.connection.driver_connection.cursor() as cursor:
        cursor.execute("SAVEPOINT tt_copy")
        try:
            with cursor.copy(_COPY) as copy:
                copy.write(payload)
        except psycopg.errors.UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT tt_copy")
            return None
        cursor.execute("RELEASE SAVEPOINT tt_copy")
    return len(rows)


# COPY's text format: backslash, tab, newline and carriage return are the characters that need an
# escape (NUL cannot occur: recipes are validated without U+0000).
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


_NOTIFY = text(f"SELECT pg_notify('{TASK_READY_CHANNEL}', CAST(:p AS text))")


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
NEXT_EXPIRY = text(f"""
    SELECT extract(epoch FROM min(lease_deadline) - clock_timestamp())::float8 FROM task
    WHERE project = :p AND status = {NEW} AND assignee IS NOT NULL
      AND lease_deadline > (SELECT clock_timestamp())""")


# --- maintenance (contract §6.4) ---------------------------------------------------------------
def reset_failed(conn: Connection, project: int) -> int:
    return conn.execute(text(f"""
        UPDATE task SET status = {NEW}, retries = 0, assignee = NULL, lease_deadline = NULL
        WHERE project = :p AND status = {FAILED}"""), {"p": project}).rowcount


def delete_all(conn: Connection, project: int) -> int:
    """Every task of the project, whatever its status; verification records go by cascade."""
    return conn.execute(text("DELETE FROM task WHERE project = :p"), {"p": project}).rowcount


def reclaim_assigned(conn: Connection, project: int) -> int:
    return conn.execute(text(f"""
        UPDATE task SET assignee = NULL, lease_deadline = NULL
        WHERE project = :p AND status = {NEW} AND assignee IS NOT NULL"""), {"p": project}).rowcount


def assignees(conn: Connection, project: int) -> list[dict]:
    """Non-CLOSED tasks by holder alias; tasks without a live lease count as "unassigned"."""
    rows = conn.execute(text(f"""
        SELECT assignee, task_count FROM (
            SELECT CASE WHEN t.status = {NEW} AND t.assignee IS NOT NULL
                             AND (t.lease_deadline IS NULL OR t.lease_deadline > clock_timestamp())
                        THEN coalesce(w.alias, 'unassigned') ELSE 'unassigned' END AS assignee,
                   count(*) AS task_count
            FROM task t LEFT JOIN worker w ON w.id = t.assignee
            WHERE t.project = :p AND t.status <> {CLOSED}
            GROUP BY 1) g
        ORDER BY task_count, assignee COLLATE "C" LIMIT 16"""), {"p": project}).mappings()
    return [dict(r) for r in rows]
