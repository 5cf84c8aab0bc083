"""Direct SQL: the storage floor's cycle drivers and the fast loaders (generate_series, COPY).

Two floors, both on the real ``task`` table and its partial index ``task_pick``:

- ``bare``: the least a queue can do — one autocommit statement to assign (pick with
  ``FOR UPDATE SKIP LOCKED`` + update), one to close; plain psycopg.
- ``store``: task_svc's own store statements (``assign_query`` for one get, then
  ``release_query`` for one TR_OK release and its closure counters: the functions a batch calls),
  one transaction each, through SQLAlchemy — the database work of a cycle without HTTP, RPC,
  identity and access checks.

Rows loaded directly get the same column values ``store.insert_tasks`` gives a submitted task
(status NEW, unassigned, the table defaults); ``project_closures`` needs no row (it is upserted at
the first closure).
"""

from __future__ import annotations

import time

import psycopg

NO_TASK = "no-task"  # acquire() outcome when the queue had nothing assignable

ASSIGN_BARE = """
UPDATE task SET assignee = %(worker)s,
  assign_time = floor(extract(epoch FROM clock_timestamp()))::bigint,
  lease_deadline = CASE WHEN max_assign_time > 0
                        THEN clock_timestamp() + make_interval(secs => max_assign_time) END
WHERE id = (SELECT id FROM task WHERE project = %(project)s AND status = 1 AND assignee IS NULL
            ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id, recipe"""
CLOSE_BARE = "UPDATE task SET status = 3, lease_deadline = NULL WHERE id = %s AND assignee = %s AND status = 1"

PICK_EXPLAIN = """EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)
SELECT id FROM task WHERE project = %s AND status = 1 AND assignee IS NULL
ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED"""

COPY_COLUMNS = "project, priority, recipe, max_retries, max_assign_time, verification_count, hash64"


def sqlalchemy_url(dsn: str) -> str:
    return "postgresql+psycopg://" + dsn.split("://", 1)[1]


class BareDriver:
    """Assign and close with one statement each (autocommit)."""

    def __init__(self, target: dict, worker: int) -> None:
        self.project, self.worker = target["project"], worker
        self.conn = psycopg.connect(target["dsn"], autocommit=True)
        self.params = {"project": self.project, "worker": worker}

    def acquire(self):
        row = self.conn.execute(ASSIGN_BARE, self.params, prepare=True).fetchone()
        return 200, (row[0] if row else NO_TASK)

    def release(self, task_id: int):
        cur = self.conn.execute(CLOSE_BARE, (task_id, self.worker), prepare=True)
        return 200, cur.rowcount == 1

    def close(self) -> None:
        self.conn.close()


class StoreDriver:
    """task_svc's store statements, one transaction per call, through SQLAlchemy like the service."""

    def __init__(self, target: dict, worker: int) -> None:
        from sqlalchemy import create_engine

        from services.task_svc import store

        self.store = store
        self.project, self.worker = target["project"], worker
        self.engine = create_engine(sqlalchemy_url(target["dsn"]), pool_size=1, max_overflow=0)
        with self.engine.connect():
            pass  # connect now, before the clock starts

    def acquire(self):
        with self.engine.begin() as conn:  # the one statement of a batch's gets, for one get
            statement, params = self.store.assign_query([self.store.Get(self.project, self.worker, 1, 0.0)])
            tasks = self.store.assigned(conn.execute(statement, params).mappings().all(), 1)[0].tasks
        return 200, (tasks[0]["id"] if tasks else NO_TASK)

    def release(self, task_id: int):
        """TR_OK as task_svc's release does it: the one statement of a batch's releases, for one
        release, and its closure counters."""
        with self.engine.begin() as conn:
            statement, params = self.store.release_query([(task_id, self.worker, 0, 0)])
            outcome = self.store.released(conn, conn.execute(statement, params).mappings().all(), 1)[0]
        return 200, outcome == self.store.ReleaseOutcome.CLOSED

    def close(self) -> None:
        self.engine.dispose()


def fill(dsn: str, project: int, count: int, max_assign_time: int = 0, label: str = "t",
         chunk: int = 1_000_000, progress=None) -> float:
    """Insert ``count`` queued tasks server-side (INSERT … SELECT generate_series); returns seconds."""
    start = time.perf_counter()
    done = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        while done < count:
            n = min(chunk, count - done)
            conn.execute(
                "INSERT INTO task (project, recipe, max_assign_time)"
                " SELECT %s, %s::text || g || '}', %s FROM generate_series(1, %s) g",
                (project, f'{{"job": "{label}", "n": ', max_assign_time, n))
            done += n
            if progress and count > chunk:
                progress(f"    {done:,}/{count:,} rows ({time.perf_counter() - start:.0f} s)")
    return time.perf_counter() - start


def copy_rows(dsn: str, rows: list[tuple]) -> float:
    """COPY rows of COPY_COLUMNS into task in one transaction; returns seconds (rows prepared beforehand)."""
    with psycopg.connect(dsn) as conn:
        start = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY task ({COPY_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        return time.perf_counter() - start


def queued(dsn: str, project: int) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM task WHERE project = %s AND status = 1 AND assignee IS NULL",
                            (project,)).fetchone()[0]


def vacuum(dsn: str) -> float:
    start = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) task")
    return time.perf_counter() - start


def checkpoint(dsn: str) -> float:
    """Write the load's dirty pages out before measuring: a growth step of millions of rows
    otherwise measures the checkpointer's write-back competing with the cycles (seen: the 10 M
    step's get p50 1.4x the 10 k step's right after its load, 0.97x in another run)."""
    start = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    return time.perf_counter() - start


def pick_buffers(dsn: str, project: int) -> dict:
    """Buffers touched and time of the bare pick (in a rolled-back transaction)."""
    with psycopg.connect(dsn) as conn:
        plan = conn.execute(PICK_EXPLAIN, (project,)).fetchone()[0][0]
        conn.rollback()

    def buffers(node: dict) -> int:
        return node.get("Shared Hit Blocks", 0) + node.get("Shared Read Blocks", 0)

    return {"buffers": buffers(plan["Plan"]), "exec_ms": round(plan["Execution Time"], 3)}


def server_settings(dsn: str) -> dict:
    names = ("autovacuum", "synchronous_commit", "shared_buffers", "max_connections", "fsync", "server_version")
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)", (list(names),))
        return {name: setting + (f" x {unit}" if unit else "") for name, setting, unit in rows}
