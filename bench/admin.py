"""Part 7 ``admin``: task administration at scale (issue 12), through real HTTP on its own system.

- **search**: ``GET /project/tasks/{id}?q=`` first page on a project of ``--admin-tasks``
  (1,000,000) tasks, for a term in 0.1 % of the recipes and a term in none, after ANALYZE;
- **bulk**: 10,000-task ``POST /task/bulk_submit`` bulks against ``COPY`` of the same rows into the
  same table (its indexes and the recipe-search triggers included);
- **filter action**: ``POST /project/update_tasks/{id}`` ``{"filter": {}, "priority": …}`` over the
  whole big project, alone, then while 16 workers cycle another project and while they cycle the
  same project, each against a control window of the same length without the action.

The big project is loaded directly (``INSERT … SELECT generate_series``, the trigram index dropped
and rebuilt after the load with the same definition: the setup, not what is measured), so its
recipes are made by SQL; :func:`recipe` is the same recipe in Python (the bulk
rows, and the unit tests that check the term frequencies).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time

import psycopg

from bench import floor
from bench.env import BenchSystem
from bench.load import percentile, run_load
from bench.parts import _post_concurrently, summarize

RARE = "zebrafish"  # in one recipe in RARE_EVERY
RARE_EVERY = 1000
NO_MATCH = "quokka-lemur"  # in none
JOBS = ("crawl", "parse", "index", "fetch")

# recipe(g) in SQL, for the direct load (the Python function below is its twin; keep them equal).
RECIPE_SQL = """'{"job": "' || (ARRAY['crawl','parse','index','fetch'])[1 + g %% 4] ||
 '", "url": "https://example.org/item/' || g || '?ref=' || md5(g::text) ||
 '", "depth": ' || (g %% 7) || CASE WHEN g %% 1000 = 500 THEN ', "tag": "Zebrafish"' ELSE '' END ||
 ', "pad": "' || left(repeat(md5((g * 7)::text), 4), (g * 37) %% 150) || '"}'"""


def recipe(g: int) -> str:
    """A JSON-ish recipe of 100-300 characters; ``Zebrafish`` in one of every 1,000 (g % 1000 = 500)."""
    def md5(x: int) -> str:
        return hashlib.md5(str(x).encode()).hexdigest()

    tag = ', "tag": "Zebrafish"' if g % RARE_EVERY == 500 else ""
    pad = (md5(g * 7) * 4)[:(g * 37) % 150]
    return (f'{{"job": "{JOBS[g % 4]}", "url": "https://example.org/item/{g}?ref={md5(g)}", '
            f'"depth": {g % 7}{tag}, "pad": "{pad}"}}')


def fill(dsn: str, project: int, count: int, first: int = 1, chunk: int = 250_000, progress=None) -> float:
    """``count`` queued tasks with :func:`recipe` recipes (g = first…), server-side; seconds."""
    start = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        for lo in range(first, first + count, chunk):
            hi = min(lo + chunk, first + count) - 1
            conn.execute(f"INSERT INTO task (project, recipe, max_assign_time) SELECT %s, {RECIPE_SQL}, 3600"
                         " FROM generate_series(%s::int, %s::int) g", (project, lo, hi))
            if progress:
                progress(f"    {hi - first + 1:,}/{count:,} rows ({time.perf_counter() - start:.0f} s)")
    return time.perf_counter() - start


def summary_ms(seconds: list[float]) -> dict:
    """p50/p95/max in ms (nearest rank) of request times in seconds."""
    return {"n": len(seconds), "p50": percentile(seconds, 0.5), "p95": percentile(seconds, 0.95),
            "max": percentile(seconds, 1.0)}


def overlap(action_s: float, lead_s: float, window_s: float) -> float:
    """The fraction of a measurement window that the action covered, when the action started
    ``lead_s`` before the window opened and ran ``action_s``."""
    if window_s <= 0:
        return 0.0
    return round(max(0.0, min(window_s, action_s - lead_s)) / window_s, 3)


def window_for(action_alone_s: float, floor_s: float = 3.0, cap_s: float = 60.0) -> float:
    """A measurement window inside the action: 80 % of its duration alone (under load it only gets
    longer), at least ``floor_s``, at most ``cap_s``."""
    return round(min(cap_s, max(floor_s, 0.8 * action_alone_s)), 1)


def _search(bs: BenchSystem, project: int, term: str, repeats: int) -> dict:
    times, rows, nxt, codes = [], 0, None, {}
    for i in range(repeats + 2):  # two warm-up requests: connection, plan cache
        t0 = time.perf_counter()
        r = bs.admin.get(f"/project/tasks/{project}", params={"q": term})
        elapsed = time.perf_counter() - t0
        codes[str(r.status_code)] = codes.get(str(r.status_code), 0) + 1
        if r.status_code == 200:
            content = r.json()["content"]
            rows, nxt = len(content["tasks"]), content["next"]
        if i >= 2:
            times.append(elapsed)
    return {"term": term, "rows": rows, "next": nxt, "codes": codes, **summary_ms(times)}


def _action(bs: BenchSystem, project: int, priority: int) -> dict:
    t0 = time.perf_counter()
    r = bs.admin.http.post(f"{bs.system.url}/project/update_tasks/{project}",
                           json={"filter": {}, "priority": priority}, timeout=1800)
    out = {"seconds": round(time.perf_counter() - t0, 2), "status": r.status_code}
    if r.status_code == 200:
        out["affected_tasks"] = r.json()["content"]["affected_tasks"]
    else:
        out["body"] = r.text[:300]
    return out


def _fleet(bs: BenchSystem, cfg, project: int, workers: list, window: float, action_project: int | None,
           priority: int) -> dict:
    """16 workers cycling ``project`` for ``window`` s; with ``action_project``, the filter action
    started on it as the load starts."""
    done: dict = {}
    thread = None

    def start() -> None:
        nonlocal thread
        thread = threading.Thread(target=lambda: done.update(_action(bs, action_project, priority)))
        thread.start()

    warmup = 0.5
    res = run_load("http", {**bs.target, "project": project}, workers, window, warmup, cfg.load_procs,
                   bs.probe(), on_start=start if action_project else None)
    row = summarize(res, len(workers))
    if thread is not None:
        thread.join()
        row["action"] = done
        row["overlap"] = overlap(done["seconds"], 0.2 + warmup, window)
    return row


def part_admin(bs: BenchSystem, cfg, log) -> dict:
    big = bs.project("bench-admin-big")
    other = bs.project("bench-admin-other")
    workers = bs.workers(cfg.where_level)
    log(f"  loading {cfg.admin_tasks:,} tasks (INSERT … SELECT; setup) and {cfg.admin_other:,} in another project")
    with psycopg.connect(bs.dsn, autocommit=True) as conn:  # the index is built once after the load: faster
        definition = conn.execute("SELECT pg_get_indexdef('task_recipe_search'::regclass)").fetchone()[0]
        conn.execute("DROP INDEX task_recipe_search")
    load_s = fill(bs.dsn, big, cfg.admin_tasks, progress=log)
    floor.fill(bs.dsn, other, cfg.admin_other, cfg.max_assign_time, label="other")
    with psycopg.connect(bs.dsn, autocommit=True) as conn:
        t0 = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute(definition)
        index_s = time.perf_counter() - t0
        log(f"    trigram index built in {index_s:.0f} s")
        t0 = time.perf_counter()
        conn.execute("VACUUM (ANALYZE) task")
        conn.execute("VACUUM (ANALYZE) task_recipe")
        vacuum_s = time.perf_counter() - t0
        conn.execute("CHECKPOINT")
        sizes = dict(conn.execute(
            "SELECT relname, round(pg_relation_size(oid) / 1048576.0, 1)::float FROM pg_class WHERE relname = ANY(%s)",
            (["task", "task_recipe", "task_recipe_search", "task_project_id"],)).fetchall())
    out: dict = {"tasks": cfg.admin_tasks, "other_tasks": cfg.admin_other, "load_s": round(load_s, 1),
                 "index_build_s": round(index_s, 1),
                 "vacuum_analyze_s": round(vacuum_s, 1), "relation_mb": sizes}

    log("  search: first page of GET /project/tasks?q=")
    out["search"] = [_search(bs, big, term, cfg.admin_repeats) for term in (RARE, NO_MATCH)]
    for s in out["search"]:
        log(f"    q={s['term']!r}: p50 {s['p50']} ms, p95 {s['p95']} ms, rows {s['rows']}, codes {s['codes']}")

    log(f"  bulk: {cfg.admin_bulk_total:,} tasks in 10,000-task bulks vs COPY")
    bulk_project, copy_project = bs.project("bench-admin-bulk"), bs.project("bench-admin-copy")
    submitter = bs.submitter([bulk_project])
    items = [(recipe(g), 2_000_000_007 + g) for g in range(cfg.admin_bulk_total)]
    bodies = [json.dumps({"requests": [{"project": bulk_project, "recipe": r, "hash64": h}
                                       for r, h in items[k:k + 10_000]]}).encode()
              for k in range(0, len(items), 10_000)]
    bulk = _post_concurrently(bs.target, submitter, bodies, 1)
    bulk.pop("_lat", None)
    copy_s = floor.copy_rows(bs.dsn, [(copy_project, 0, r, 0, 0, 1, h) for r, h in items])
    bulk["copy_tasks_per_s"] = round(len(items) / copy_s, 1)
    bulk["ratio_to_copy"] = round(bulk["tasks_per_s"] / bulk["copy_tasks_per_s"], 3) if bulk["tasks_per_s"] else None
    out["bulk"] = bulk
    log(f"    bulk_submit {bulk['tasks_per_s']} tasks/s, COPY {bulk['copy_tasks_per_s']} tasks/s,"
        f" ratio {bulk['ratio_to_copy']}, non-200 {bulk['non_200']}")

    log("  filter action: update_tasks {filter: {}, priority} over the big project")
    floor.vacuum(bs.dsn)
    alone = _action(bs, big, 1)
    out["action_alone"] = alone
    log(f"    alone: {alone}")
    window = window_for(alone["seconds"], cap_s=cfg.admin_window)
    out["window_s"] = window
    fleets = []
    for label, project, priority in (("other project", other, 2), ("same project", big, 3)):
        for with_action in (False, True):
            if cfg.vacuum:  # each action leaves a million dead rows behind (autovacuum may be off)
                floor.vacuum(bs.dsn)
            row = _fleet(bs, cfg, project, workers, window, big if with_action else None, priority)
            row["fleet"], row["during_action"] = label, with_action
            fleets.append(row)
            log(f"    {label:<13} {'during action' if with_action else 'control':<13}: get p50 {row['get_ms']['p50']}"
                f" p99 {row['get_ms']['p99']} ms, release p99 {row['release_ms']['p99']} ms, non-200"
                f" {row['non_200']}, cycles/s {row['cycles_per_s']}"
                + (f", action {row['action']} overlap {row['overlap']}" if with_action else ""))
    out["fleets"] = fleets
    return out
