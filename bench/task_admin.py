"""Task administration's SQL (contract §6.8) on one project of N tasks: listings and the bulk
actions, through services/task_svc/store.py's own functions (no HTTP, RPC or access checks), each
action in a transaction that is rolled back, on a throwaway database migrated to head.

    .venv/bin/python -m bench.task_admin [N]      # N tasks, default 1,000,000

Recipes are ~45-character JSON with a token that 0.1 % of them hold (``needle``); 10 % of the tasks
are FAILED. The ``q`` rows measure the search without a trigram index (this branch has none).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import psycopg
from sqlalchemy import Connection, create_engine, pool

from services.task_svc import store
from services.task_svc.store import Chosen
from tests.harness import migrated_database


def _load(url: str, n: int) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO project (id, name, webhook_secret) VALUES (1, 'big', 'x'), (2, 'other', 'x')")
        started = time.perf_counter()
        with conn.cursor().copy("COPY task (project, priority, recipe, status, hash64) FROM STDIN") as copy:
            for i in range(n):
                token = "needle" if i % 1000 == 7 else "hay"
                copy.write_row((1, i % 5, f'{{"n": {i}, "url": "https://example.com/{token}/{i}"}}',
                                2 if i % 10 == 0 else 1, i + 1))
        took = time.perf_counter() - started
        conn.execute("VACUUM ANALYZE task")
    return took


def main(n: int) -> None:
    with migrated_database("tt_bench_admin_") as url:
        print(f"COPY of {n:,} tasks: {_load(url, n):.1f} s")
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), poolclass=pool.NullPool)

        def timed(name: str, action: Callable[[Connection], object], runs: int = 1) -> None:
            best, out = None, None
            for _ in range(runs):
                with engine.connect() as conn:
                    transaction = conn.begin()
                    started = time.perf_counter()
                    out = action(conn)
                    took = time.perf_counter() - started
                    transaction.rollback()
                best = took if best is None else min(best, took)
            if isinstance(out, tuple) and isinstance(out[0], list):
                out = f"{len(out[0])} rows, next {'set' if out[1] is not None else 'null'}"
            print(f"| {name} | {best * 1000:,.1f} ms | {out} |", flush=True)

        print("| what | time (best of runs) | result |\n|---|---|---|")
        timed("list: first page of 50", lambda c: store.list_tasks(c, Chosen(1), False, None, 50), 5)
        timed("list: desc page of 50 past the middle", lambda c: store.list_tasks(c, Chosen(1), True, n // 2, 50), 5)
        timed("list: status=failed, 50", lambda c: store.list_tasks(c, Chosen(1, status="failed"), False, None, 50), 5)
        timed("list: q matching 0.1 %, 50", lambda c: store.list_tasks(c, Chosen(1, q="needle"), False, None, 50), 3)
        timed("list: q matching nothing", lambda c: store.list_tasks(c, Chosen(1, q="nomatch"), False, None, 50))
        timed("retry: filter status=failed (10 %)", lambda c: store.retry(c, Chosen(1, status="failed")))
        timed("update: priority, filter {} (all)", lambda c: store.set_priority(c, Chosen(1), 3))
        timed("update: move_to, filter {} (all)", lambda c: store.move(c, Chosen(1), 2, None))
        timed("retry: filter {} (all)", lambda c: store.retry(c, Chosen(1)))
        timed("delete: filter {} (all)", lambda c: store.delete(c, Chosen(1)))
        timed("delete: 10,000 ids", lambda c: store.delete(c, Chosen(1, ids=list(range(1, 20_001, 2)))))
        engine.dispose()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
