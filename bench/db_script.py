"""tracker.db.script against psycopg's own pipeline mode, side by side (docs/PERFORMANCE.md).

Runs the three round trips of a get+release batch (4 gets, 4 releases, 8 stored replies) through
both, interleaved in blocks, on a throwaway database it creates and drops:

    .venv/bin/python -m bench.db_script [--batches 300] [--rounds 6]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from collections import defaultdict

import psycopg
from psycopg.rows import dict_row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement


def pipeline_script(conn, *parts) -> list[list[dict]]:
    """The alternative: the same parts through psycopg's pipeline mode and prepared statements."""
    raw = conn.connection.driver_connection
    cursors = []
    try:
        with raw.pipeline():
            for part in parts:
                cursor = raw.cursor(row_factory=dict_row)
                if isinstance(part, str):
                    cursor.execute(part)
                else:
                    statement, params = part
                    if isinstance(statement, ClauseElement):
                        compiled = statement.compile(dialect=conn.dialect)
                        statement, params = str(compiled), compiled.construct_params(params)
                    cursor.execute(statement, params, prepare=True)
                cursors.append(cursor)
        return [c.fetchall() if c.description is not None else [] for c in cursors]
    except psycopg.Error as exc:
        raise DBAPIError.instance("pipeline", None, exc, psycopg.Error) from exc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=300, help="batches per block")
    parser.add_argument("--rounds", type=int, default=6, help="blocks per way")
    args = parser.parse_args()
    name = "tt_bench_script_" + uuid.uuid4().hex[:8]
    base = os.environ.get("TT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    os.environ["TT_DATABASE_URL"] = f"{base}/{name}"
    try:
        subprocess.run([sys.executable, "-m", "tracker", "db", "upgrade"], check=True, capture_output=True)
        return _measure(args)
    finally:
        from tracker.db import get_engine

        get_engine().dispose()
        with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _measure(args) -> int:
    from sqlalchemy import text

    from services.task_svc import store
    from tracker import access, idempotency, identity
    from tracker.contract import Caller
    from tracker.db import deferred_parts, script, scripted_transaction, transaction

    with transaction() as conn:
        worker = conn.execute(text("INSERT INTO worker (alias, secret_digest, created) "
                                   "VALUES ('bench', 'x', 0) RETURNING id")).scalar()
        project = conn.execute(text("INSERT INTO project (name, public, webhook_secret) "
                                    "VALUES ('bench', true, 'x') RETURNING id")).scalar()
        conn.execute(text("INSERT INTO task (project, recipe) SELECT :p, 'r' FROM generate_series(1, 200000)"),
                     {"p": project})
        conn.execute(text("ANALYZE task"))
    latencies, cpu = defaultdict(list), defaultdict(float)
    for _ in range(args.rounds):
        for way, run in (("tracker.db.script", script), ("psycopg pipeline", pipeline_script)):
            held: list[int] = []
            started = time.process_time()
            for _ in range(args.batches):
                begun = time.perf_counter()
                with scripted_transaction() as conn:
                    callers = [Caller(worker_id=worker, worker_digest="x", request=uuid.uuid4().hex)] * 4
                    run(conn, "BEGIN", identity.preload_query(callers), access.preload_query([(project, worker)]))
                    parts = [store.release_query([(t, worker, 0, 0) for t in held])] if held else []
                    parts.append(store.assign_query([store.Get(project, worker, 1, 0.0)] * 4))
                    results = run(conn, *parts)
                    if held:
                        store.released(conn, results[0], len(held))
                    held = [row["id"] for row in results[-1]]
                    keep = [(uuid.uuid4().hex, {"content": {"task": {"id": 1}}}, 900) for _ in range(8)]
                    run(conn, *deferred_parts(conn), (idempotency.RECORD_STRICT, idempotency.record_params(keep)),
                        "COMMIT")
                latencies[way].append(time.perf_counter() - begun)
            cpu[way] += time.process_time() - started
    for way, values in latencies.items():
        values.sort()
        n = len(values)
        print(f"{way:20s} {n} batches: p50 {values[n // 2] * 1000:.3f} ms, mean {sum(values) / n * 1000:.3f} ms, "
              f"p99 {values[int(n * 0.99)] * 1000:.3f} ms, client CPU {cpu[way] / n * 1000:.3f} ms per batch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
