"""SQL of task_svc (owns ``task``, ``task_verification`` and the closure counters).

Correctness rests on PostgreSQL row locks, never on a process lock, so any number of task_svc
replicas may run: assignment locks candidate rows with ``FOR UPDATE SKIP LOCKED`` (concurrent
getters pass each other instead of waiting; a get passes at most 1,000 locked ones, migration
0011), and release locks the task rows it changes.

The hot operations are one statement per batch each, database functions whose plans cannot depend
on statistics (migrations 0007, 0008): ``tt_assign_many``, ``tt_release_many``, ``tt_extend_many``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from services.task_svc.messages import TASK_ROW, ReleaseOutcome, TaskStatus
from tracker import jsoncodec
from tracker.db import defer
from tracker.fields import INT63_MAX
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


# --- task administration (contract §6.8) -------------------------------------------------------
# Every statement below selects with ``selection()``; actions lock what they select along the
# (project, id) index (``FOR UPDATE`` below an ``ORDER BY id``), waiting for a lock only in id
# order, so two actions, or an action and a batch of releases, never wait for each other in a
# cycle. Gets pass locked rows by (SKIP LOCKED).
LISTED_RECIPE = 1000  # characters of the recipe a listing carries (the whole one: /task/view)

# Held: an assignee and a live lease. The clock is read once per statement (an InitPlan), not per row.
_HELD = "t.assignee IS NOT NULL AND (t.lease_deadline IS NULL OR t.lease_deadline > (SELECT clock_timestamp()))"
_VERIFIED = "EXISTS (SELECT 1 FROM task_verification v WHERE v.task_id = t.id)"
STATUS_FILTERS = {
    "new": f"t.status = {NEW} AND NOT ({_HELD}) AND NOT {_VERIFIED}",
    "awaiting": f"t.status = {NEW} AND NOT ({_HELD}) AND {_VERIFIED}",
    "assigned": f"t.status = {NEW} AND {_HELD}",
    "failed": f"t.status = {FAILED}",
    "closed": f"t.status = {CLOSED}",
}


def _row_columns(recipe: str) -> str:
    return f"""t.id, t.project, t.priority, coalesce(t.assignee, 0) AS assignee, t.retries, t.max_retries, t.status,
        {recipe} AS recipe, length(t.recipe) AS recipe_length, t.max_assign_time, t.assign_time,
        t.verification_count, t.hash64,
        coalesce(ceil(extract(epoch FROM t.lease_deadline))::bigint, 0) AS lease_expires,
        (SELECT count(*) FROM task_verification v WHERE v.task_id = t.id) AS verifications"""


# A listing ships a recipe's first characters only: a 1 MiB recipe never leaves the database whole.
LISTED_COLUMNS = _row_columns(f"left(t.recipe, {LISTED_RECIPE})")
WHOLE_COLUMNS = _row_columns("t.recipe")


def like_pattern(text_: str) -> str:
    """An ILIKE pattern matching ``text_`` as a literal substring: ``\\``, ``%`` and ``_`` escaped
    (backslash is LIKE's default escape character). A trigram index can serve ``ILIKE`` with it."""
    escaped = text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class Chosen:
    """Which tasks of a project a listing or an action is about: ``ids``, or the filters (any of
    status, q, assignee; none = every task)."""

    project: int
    ids: list[int] | None = None
    status: str | None = None
    q: str | None = None
    assignee: int | None = None


def selection(chosen: Chosen, by_project: bool = True) -> tuple[str, dict]:
    """The WHERE condition on ``task t`` (and its parameters) selecting ``chosen``; without
    ``by_project`` the caller bounds the project itself (list_query)."""
    parts, params = ["t.project = :p"] if by_project else [], {"p": chosen.project}
    if chosen.ids is not None:
        parts.append("t.id = ANY(CAST(:ids AS bigint[]))")
        params["ids"] = chosen.ids
    if chosen.status is not None:
        parts.append(STATUS_FILTERS[chosen.status])
    if chosen.q is not None:
        # The trigram index lives on the side table the hot path never writes (migration 0010).
        parts.append("t.id IN (SELECT r.task_id FROM task_recipe r WHERE r.project = :p AND r.recipe ILIKE :pattern)")
        params["pattern"] = like_pattern(chosen.q)
    if chosen.assignee is not None:
        parts.append("t.assignee = :assignee")
        params["assignee"] = chosen.assignee
    return " AND ".join(parts) or "true", params


# A page is the range of (project, id) past the cursor, bounded as a row comparison and a project
# bound rather than ``project = :p AND id > :after``: with the project an equality, the planner may
# read the primary key in id order and filter by project (it did, on stale statistics: a walk of
# the whole table for a small project); this way only task_project_id gives the order (tests/test_plans.py).
_PAGE = {False: "(t.project, t.id) > (:p, :after) AND t.project <= :p",
         True: "(t.project, t.id) < (:p, :after) AND t.project >= :p"}


def list_query(chosen: Chosen, descending: bool, after: int | None, limit: int) -> tuple:
    """One page: up to ``limit`` + 1 rows past the cursor in id order (the extra row says whether
    a next page exists). A range of the (project, id) index, never an offset."""
    where, params = selection(chosen, by_project=False)
    if after is None:
        after = INT63_MAX if descending else 0
    direction = "DESC" if descending else "ASC"
    return text(f"""
        SELECT {LISTED_COLUMNS} FROM task t WHERE {_PAGE[descending]} AND {where}
        ORDER BY t.project {direction}, t.id {direction} LIMIT :n"""), {**params, "after": after, "n": limit + 1}


def list_tasks(conn: Connection, chosen: Chosen, descending: bool, after: int | None,
               limit: int) -> tuple[list[dict], int | None]:
    """A page of rows and the cursor of the next page (None: no further task matches)."""
    statement, params = list_query(chosen, descending, after, limit)
    rows = [dict(r) for r in conn.execute(statement, params).mappings()]
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1]["id"]
    return rows, None


def task_row(conn: Connection, task_id: int) -> dict | None:
    """One task with its whole recipe, or None."""
    row = conn.execute(text(f"SELECT {WHOLE_COLUMNS} FROM task t WHERE t.id = :id"), {"id": task_id}).mappings().first()
    return dict(row) if row else None


def lock_task(conn: Connection, task_id: int) -> dict | None:
    """The task's project, status and whether it is held, its row locked; None when it is missing."""
    row = conn.execute(text(f"""
        SELECT t.project, t.status, (t.status = {NEW} AND {_HELD}) AS held FROM task t WHERE t.id = :id FOR UPDATE"""),
        {"id": task_id}).mappings().first()
    return dict(row) if row else None


def locked_selection(chosen: Chosen, open_only: bool = True, part: str | None = None,
                     after: int | None = None) -> tuple[str, dict]:
    """The CTE ``sel``: the selected tasks' ids (and hash64) — only NEW and FAILED ones with
    ``open_only`` — locked in id order along task_project_id (bounded as a page is, for the same
    reason: tests/test_plans.py), and its parameters. ``part`` narrows it to one pass of
    ``_in_two_passes``: ``"unassigned"`` (one chunk, below the id ``after``, in descending id
    order, skipping what it cannot lock at once) or ``"rest"`` (what the first pass did not take)."""
    where, params = selection(chosen, by_project=False)
    if open_only:
        where += f" AND t.status IN ({NEW}, {FAILED})"
    if part is not None:
        where += " AND " + _PASSES[part]
    if part == "unassigned":
        page, order = _PAGE[True], f"t.project DESC, t.id DESC LIMIT {ACTION_CHUNK} FOR UPDATE SKIP LOCKED"
        after = INT63_MAX if after is None else after
    else:
        page, order, after = _PAGE[False], "t.project, t.id FOR UPDATE", 0
    return (f"sel AS (SELECT t.id, t.hash64 FROM task t WHERE {page} AND {where} ORDER BY {order})"), \
        {**params, "after": after}


# An action runs in two passes of one transaction. The first takes the tasks without an assignee —
# the bulk of a big selection, locked for as long as the action lasts, but no release waits for
# them (a release acts on a task whose assignee is its worker) and gets pass locked rows by. The
# second takes the rest (tasks with an assignee, and any that changed meanwhile), locked only for
# that last short statement: a fleet's releases wait milliseconds, not the whole action (which,
# over a million tasks, lasts a minute). tt_done holds what the passes took.
#
# The first pass goes from the highest id down and skips rows it cannot lock at once (``SKIP
# LOCKED``; the second pass takes them, waiting). Both are about the gets racing it. A row the
# pass reads as unassigned but a get assigns and commits before the pass reaches it is locked
# anyway: PostgreSQL (READ COMMITTED) locks the row's newest version and only then re-checks the
# condition, which the now held task fails — it is not changed, but stays locked until the action
# commits, and its holder's release waits for the whole action (in bench part 7 such a release
# held up its gateway process's whole release batch: 503s after 10 s, no cycle for the action's
# duration). Gets take the best tasks, in a queue of equal priorities the lowest ids: going down,
# the pass meets them only in its last chunk, and its stray locks last until the commit shortly
# after. A row a get holds locked at that moment is skipped rather than waited for (then locked).
# No deadlock can come of the order: the first pass never waits; the second locks in id order,
# as releases and every other action's second pass do.
#
# The first pass goes in chunks of ACTION_CHUNK tasks, and after each chunk rests for
# as long as the chunk took times (1 − ACTION_DUTY) / ACTION_DUTY: a million-row rewrite otherwise
# keeps one of the database's cores and its WAL busy for a minute, and every other project's
# commits wait behind that WAL (measured: get p99 of 16 workers on another project 43 → 208 ms
# unpaced; docs/PERFORMANCE.md "Task administration"). Still one transaction: all or nothing.
ACTION_CHUNK = 5_000
ACTION_DUTY = 0.5
_PASSES = {"unassigned": "t.assignee IS NULL",
           "rest": "NOT EXISTS (SELECT 1 FROM tt_done d WHERE d.id = t.id)"}
_DONE = text("CREATE TEMPORARY TABLE tt_done (id bigint PRIMARY KEY) ON COMMIT DROP")
_DONE_DOWN_TO = text("SELECT coalesce(min(id), :start) FROM tt_done")
_DROP_DONE = text("DROP TABLE tt_done")
# Retried tasks' verification records are deleted by a later statement: a quorum vote committed
# while a pass waited for the task's row lock is visible to that statement, not to the pass's snapshot.
_FORGET_VOTES = text("DELETE FROM task_verification v USING tt_done r WHERE v.task_id = r.id")


def _in_two_passes(conn: Connection, chosen: Chosen, open_only: bool,
                   run: Callable[[str, dict], Any], after: Callable[[Connection], Any] | None = None) -> list:
    """``run(sel, params)`` once per chunk of the first pass and once for the second (each statement
    records its ``sel`` ids in tt_done), then ``after(conn)`` while tt_done still exists; each
    statement's result."""
    conn.execute(_DONE)
    results, cursor = [], INT63_MAX
    while True:
        started = time.monotonic()
        results.append(run(*locked_selection(chosen, open_only, "unassigned", cursor)))
        reached = conn.execute(_DONE_DOWN_TO, {"start": cursor}).scalar()
        if reached == cursor:
            break
        cursor = reached
        time.sleep((time.monotonic() - started) * (1 - ACTION_DUTY) / ACTION_DUTY)
    results.append(run(*locked_selection(chosen, open_only, "rest")))
    if after is not None:
        after(conn)
    conn.execute(_DROP_DONE)
    return results


def retry(conn: Connection, chosen: Chosen) -> int:
    """Selected NEW and FAILED tasks → NEW, retries 0, unassigned, no verification records; the
    number of them (already pristine ones included)."""
    def run(sel: str, params: dict) -> int:
        return conn.execute(text(f"""
            WITH {sel}, retried AS (
              UPDATE task t SET status = {NEW}, retries = 0, assignee = NULL, lease_deadline = NULL
              FROM sel WHERE t.id = sel.id RETURNING t.id)
            INSERT INTO tt_done SELECT id FROM retried"""), params).rowcount
    return sum(_in_two_passes(conn, chosen, True, run, after=lambda c: c.execute(_FORGET_VOTES)))


def delete(conn: Connection, chosen: Chosen) -> int:
    """Selected tasks in any status; their verification records go by cascade."""
    def run(sel: str, params: dict) -> int:
        return conn.execute(text(f"""
            WITH {sel}, gone AS (DELETE FROM task t USING sel WHERE t.id = sel.id RETURNING t.id)
            INSERT INTO tt_done SELECT id FROM gone"""), params).rowcount
    return sum(_in_two_passes(conn, chosen, False, run))


def set_priority(conn: Connection, chosen: Chosen, priority: int) -> int:
    def run(sel: str, params: dict) -> int:
        return conn.execute(text(f"""
            WITH {sel}, changed AS (
              UPDATE task t SET priority = :priority FROM sel WHERE t.id = sel.id RETURNING t.id)
            INSERT INTO tt_done SELECT id FROM changed"""), {**params, "priority": priority}).rowcount
    return sum(_in_two_passes(conn, chosen, True, run))


MOVE_ATTEMPTS = 5


class _RacesLost(Exception):
    """A pass of a move lost every attempt to concurrent submits."""


def move(conn: Connection, chosen: Chosen, target: int, priority: int | None) -> tuple[int, int] | None:
    """Selected NEW and FAILED tasks → project ``target``, unassigned (and ``priority``, if given),
    except those whose hash64 the target holds; (moved, conflicts).

    A submit to the target racing the move can store a hash64 after this statement looked: the
    move then fails on the unique index, and is run again in a savepoint, seeing that task. None
    when races won every attempt (the caller answers 503: a retry of the request is safe)."""
    def run(sel: str, params: dict) -> tuple[int, int]:
        statement = text(f"""
            WITH {sel}, moved AS (
              UPDATE task t SET project = :target, assignee = NULL, lease_deadline = NULL,
                                priority = coalesce(CAST(:priority AS smallint), t.priority)
              FROM sel WHERE t.id = sel.id
                AND (sel.hash64 = 0 OR NOT EXISTS (
                     SELECT 1 FROM task x WHERE x.project = :target AND x.hash64 = sel.hash64))
              RETURNING 1), done AS (INSERT INTO tt_done SELECT id FROM sel)
            SELECT (SELECT count(*) FROM moved) AS moved, (SELECT count(*) FROM sel) AS selected""")
        params = {**params, "target": target, "priority": priority}
        for _ in range(MOVE_ATTEMPTS):
            try:
                with conn.begin_nested():
                    row = conn.execute(statement, params).one()
                return row.moved, row.selected - row.moved
            except IntegrityError as exc:
                if getattr(exc.orig, "sqlstate", None) != "23505":
                    raise
        raise _RacesLost
    try:
        passes = _in_two_passes(conn, chosen, True, run)
    except _RacesLost:
        return None
    return sum(p[0] for p in passes), sum(p[1] for p in passes)


def edit(conn: Connection, task_id: int, fields: dict) -> None:
    """Set the given columns of one (locked) task; nothing else is recomputed (hash64 stays)."""
    columns = [name for name in ("recipe", "priority", "max_retries", "max_assign_time", "verification_count")
               if name in fields]
    if columns:
        conn.execute(text(f"UPDATE task SET {', '.join(f'{c} = :{c}' for c in columns)} WHERE id = :id"),
                     {**{c: fields[c] for c in columns}, "id": task_id})


def retry_one(conn: Connection, task_id: int) -> None:
    """What retry() does, for one locked task (its row lock is held: no vote can arrive after)."""
    conn.execute(text(f"""
        UPDATE task SET status = {NEW}, retries = 0, assignee = NULL, lease_deadline = NULL WHERE id = :id"""),
        {"id": task_id})
    conn.execute(text("DELETE FROM task_verification WHERE task_id = :id"), {"id": task_id})
