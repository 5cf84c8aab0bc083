"""The benchmark's parts. Each takes a started BenchSystem (or starts its own) and returns a
JSON-ready dict; nothing here fails on a bad number — benchmarks report."""

from __future__ import annotations

import http.client
import json
import threading
import time

import psycopg

from bench import floor
from bench.cpu import LOAD, PG_OTHER, PG_OURS, RABBIT, tracker_seconds
from bench.env import BenchSystem
from bench.floor import NO_TASK
from bench.load import HttpDriver, LoadResult, latency, run_load


def summarize(res: LoadResult, workers: int) -> dict:
    s = res.stats
    out = {
        "workers": workers,
        "cycles": s.cycles,
        "cycles_per_s": round(s.cycles / res.duration, 1),
        "get_ms": latency(s.acquire_s),
        "release_ms": latency(s.release_s),
        "non_200": sum(v for k, v in s.codes.items() if not k.endswith(" 200")),
        "errors": sum(s.errors.values()),
        "no_task": s.no_task,
        "not_updated": s.not_updated,
        "codes": dict(sorted(s.codes.items())),
        "error_types": dict(s.errors),
        "load_procs": res.procs,
    }
    if res.failures:
        out["failures"] = res.failures
    if res.cpu:
        cpu, wall = res.cpu, res.cpu["wall_s"] or res.duration
        groups = cpu["groups_s"]
        out["cpu"] = cpu
        out["cpu_pct"] = {  # percent of one core over the window
            "tracker": round(100 * tracker_seconds(cpu) / wall, 1),
            "postgres": round(100 * groups.get(PG_OURS, 0.0) / wall, 1),
            "postgres_other": round(100 * groups.get(PG_OTHER, 0.0) / wall, 1),
            "rabbitmq": round(100 * groups.get(RABBIT, 0.0) / wall, 1),
            "load": round(100 * groups.get(LOAD, 0.0) / wall, 1),
            "machine_busy": round(100 * cpu["machine_busy_s"] / wall, 1),
        }
        out["load_share_of_busy_pct"] = round(100 * groups.get(LOAD, 0.0) / max(cpu["machine_busy_s"], 1e-9), 1)
        if s.cycles:
            out["cpu_s_per_1k_cycles"] = {k: round(1000 * v / s.cycles, 3) for k, v in groups.items()}
            out["cpu_s_per_1k_cycles"]["unattributed"] = round(1000 * cpu["unattributed_s"] / s.cycles, 3)
    return out


def _levels_line(row: dict) -> str:
    pct = row.get("cpu_pct", {})
    return (f"    {row['workers']:>3} workers: {row['cycles_per_s']:>8.1f} cycles/s  get p50 {row['get_ms']['p50']} ms"
            f"  non-200 {row['non_200']}  errors {row['errors']}  load CPU {pct.get('load', '?')}%")


# --- 1. worker cycle --------------------------------------------------------------------------------
def part_cycle(bs: BenchSystem, cfg, log) -> dict:
    project = bs.project("bench-cycle")
    workers = bs.workers(max(cfg.levels))
    log(f"  preloading {cfg.tasks:,} tasks")
    bs.top_up(project, cfg.tasks, cfg.max_assign_time)
    levels = []
    for n in cfg.levels:
        bs.top_up(project, cfg.tasks, cfg.max_assign_time)
        if cfg.vacuum:
            floor.vacuum(bs.dsn)
        res = run_load("http", {**bs.target, "project": project}, workers[:n], cfg.duration, cfg.warmup,
                       cfg.load_procs, bs.probe())
        row = summarize(res, n)
        levels.append(row)
        log(_levels_line(row))
    return {"queued_tasks": cfg.tasks, "duration_s": cfg.duration, "warmup_s": cfg.warmup,
            "max_assign_time": cfg.max_assign_time, "levels": levels}


# --- 2. storage floor -------------------------------------------------------------------------------
def part_floor(bs: BenchSystem, cfg, log) -> dict:
    project = bs.project("bench-floor")
    ids = [w[0] for w in bs.workers(cfg.floor_connections)]  # real ids: worker_closures has a foreign key
    modes = []
    for mode in cfg.floor_modes:
        bs.top_up(project, cfg.tasks, cfg.max_assign_time)
        if cfg.vacuum:
            floor.vacuum(bs.dsn)
        res = run_load(f"sql-{mode}", {"dsn": bs.dsn, "project": project}, ids, cfg.duration, cfg.warmup,
                       cfg.load_procs, bs.probe())
        row = {"mode": mode, "connections": len(ids), **summarize(res, len(ids))}
        modes.append(row)
        log(f"    floor {mode:<5}: {row['cycles_per_s']:>8.1f} cycles/s  assign p50 {row['get_ms']['p50']} ms"
            f"  load CPU {row.get('cpu_pct', {}).get('load', '?')}%")
    return {"queued_tasks": cfg.tasks, "connections": len(ids), "modes": modes}


# --- 3. bulk submit ---------------------------------------------------------------------------------
def _post_all(target: dict, ident: tuple[int, str], bodies: list[bytes]) -> dict:
    headers = {"X-Worker-ID": str(ident[0]), "X-Secret": ident[1], "Content-Type": "application/json"}
    conn = http.client.HTTPConnection(target["host"], target["port"], timeout=120)
    lat, codes, submitted, duplicates, errors = [], {}, 0, 0, 0
    start = time.perf_counter()
    for body in bodies:
        t0 = time.perf_counter()
        try:
            conn.request("POST", "/task/bulk_submit", body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection(target["host"], target["port"], timeout=120)
            continue
        lat.append(time.perf_counter() - t0)
        codes[str(resp.status)] = codes.get(str(resp.status), 0) + 1
        if resp.status == 200:
            content = json.loads(data)["content"]
            submitted += content["submitted"]
            duplicates += content["duplicates"]
    elapsed = time.perf_counter() - start
    conn.close()
    return {"requests": len(bodies), "seconds": round(elapsed, 3), "submitted": submitted, "duplicates": duplicates,
            "tasks_per_s": round(submitted / elapsed, 1) if elapsed else None, "request_ms": latency(lat),
            "codes": codes, "non_200": sum(v for k, v in codes.items() if k != "200"), "errors": errors,
            "_lat": lat}


def _post_concurrently(target: dict, ident: tuple[int, str], bodies: list[bytes], clients: int) -> dict:
    """The bodies split over ``clients`` threads, each posting its share in turn on its own
    connection; one wall clock for all."""
    if clients <= 1:
        return _post_all(target, ident, bodies)
    shares: list[dict] = [{} for _ in range(clients)]

    def run(k: int) -> None:
        shares[k] = _post_all(target, ident, bodies[k::clients])

    start = time.perf_counter()
    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    submitted = sum(s["submitted"] for s in shares)
    codes: dict = {}
    for s in shares:
        for k, v in s["codes"].items():
            codes[k] = codes.get(k, 0) + v
    return {"requests": len(bodies), "seconds": round(elapsed, 3), "submitted": submitted,
            "duplicates": sum(s["duplicates"] for s in shares),
            "tasks_per_s": round(submitted / elapsed, 1) if elapsed else None,
            "request_ms": latency([x for s in shares for x in s.pop("_lat")]),
            "codes": codes, "non_200": sum(s["non_200"] for s in shares), "errors": sum(s["errors"] for s in shares)}


def part_bulk(bs: BenchSystem, cfg, log) -> dict:
    total = cfg.bulk_total
    shapes = [(size, clients) for size in cfg.bulk_sizes for clients in cfg.bulk_clients]
    projects = {shape: bs.project(f"bench-bulk-{shape[0]}-{shape[1]}") for shape in shapes}
    copy_project = bs.project("bench-bulk-copy")
    submitter = bs.submitter(list(projects.values()))
    pad = "x" * 40
    items = [(f'{{"job": "bulk", "n": {i}, "pad": "{pad}"}}', 1_000_000_007 + i) for i in range(total)]
    runs = []
    for (size, clients), project in projects.items():
        bodies = [json.dumps({"requests": [{"project": project, "recipe": r, "hash64": h}
                                           for r, h in items[k:k + size]]}).encode()
                  for k in range(0, total, size)]  # encoded beforehand: the client's JSON is not timed
        name = f"bulk_submit x{size:,}" + (f", {clients} clients" if clients > 1 else "")
        probe = bs.probe()
        before, t0 = probe.snapshot(), time.monotonic()
        row = {"method": name, "bulk": size, "clients": clients,
               **_post_concurrently(bs.target, submitter, bodies, clients)}
        row.pop("_lat", None)
        # CPU per bulk of each process group: steadier than tasks/s on a shared machine
        groups = probe.delta(before, probe.snapshot(), time.monotonic() - t0)["groups_s"]
        row["cpu_ms_per_bulk"] = {k: round(1000 * v / len(bodies), 2) for k, v in groups.items()
                                  if k not in (PG_OTHER, RABBIT)}
        with psycopg.connect(bs.dsn) as conn:
            row["stored"] = conn.execute("SELECT count(*) FROM task WHERE project = %s", (project,)).fetchone()[0]
        runs.append(row)
        cpu = ", ".join(f"{k} {v}" for k, v in row["cpu_ms_per_bulk"].items())
        log(f"    {name}: {row['tasks_per_s']} tasks/s, stored {row['stored']:,}, non-200 {row['non_200']};"
            f" CPU ms per bulk: {cpu}")
    rows = [(copy_project, 0, r, 0, 0, 1, h) for r, h in items]
    seconds = floor.copy_rows(bs.dsn, rows)
    copy = {"method": "COPY", "rows": total, "seconds": round(seconds, 3), "tasks_per_s": round(total / seconds, 1)}
    log(f"    COPY: {copy['tasks_per_s']} tasks/s")
    for row in runs:
        row["ratio_to_copy"] = round(row["tasks_per_s"] / copy["tasks_per_s"], 4) if row["tasks_per_s"] else None
    return {"tasks": total, "runs": runs, "copy": copy}


def _sequential_cycles(target: dict, ident: tuple[int, str], cycles: int, max_s: float) -> dict:
    driver = HttpDriver(target, ident)
    get_s, rel_s, codes, no_task = [], [], {}, 0
    deadline = time.monotonic() + max_s
    for i in range(cycles + 20):  # the first 20 warm the connection and caches
        if time.monotonic() > deadline:
            break
        t0 = time.monotonic()
        status, task = driver.acquire()
        t1 = time.monotonic()
        codes[f"get {status}"] = codes.get(f"get {status}", 0) + 1
        if task is None or task == NO_TASK:
            no_task += task == NO_TASK
            continue
        status, _ = driver.release(task)
        t2 = time.monotonic()
        codes[f"release {status}"] = codes.get(f"release {status}", 0) + 1
        if i >= 20:
            get_s.append(t1 - t0)
            rel_s.append(t2 - t1)
    driver.close()
    return {"get_ms": latency(get_s), "release_ms": latency(rel_s), "codes": codes, "no_task": no_task,
            "non_200": sum(v for k, v in codes.items() if not k.endswith(" 200"))}


def part_growth(bs: BenchSystem, cfg, log) -> dict:
    project = bs.project("bench-growth")
    other = bs.project("bench-growth-other")
    ident = bs.workers(1)[0]
    if cfg.growth_other:
        log(f"  loading {cfg.growth_other:,} tasks into another project")
        floor.fill(bs.dsn, other, cfg.growth_other, cfg.max_assign_time, label="other", progress=log)
    steps = []
    for size in sorted(cfg.growth):
        log(f"  growing the project to {size:,} queued tasks")
        t0 = time.perf_counter()
        added = bs.top_up(project, size, cfg.max_assign_time)
        load_s = time.perf_counter() - t0
        vacuum_s = floor.vacuum(bs.dsn)
        checkpoint_s = floor.checkpoint(bs.dsn)
        with psycopg.connect(bs.dsn, autocommit=True) as conn:
            table_rows = conn.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'task'").fetchone()[0]
            table_mb = conn.execute("SELECT pg_total_relation_size('task') / 1048576.0").fetchone()[0]
        step = {"queued": size, "other_rows": cfg.growth_other, "table_rows": table_rows,
                "table_mb": round(float(table_mb), 1), "added": added, "load_s": round(load_s, 2),
                "load_rows_per_s": round(added / load_s) if added and load_s else None,
                "vacuum_s": round(vacuum_s, 2), "checkpoint_s": round(checkpoint_s, 2),
                "pick": floor.pick_buffers(bs.dsn, project),
                **_sequential_cycles({**bs.target, "project": project}, ident, cfg.growth_cycles, cfg.growth_max_s)}
        steps.append(step)
        log(f"    {size:>11,} queued: get p50 {step['get_ms']['p50']} ms (n={step['get_ms']['n']}),"
            f" pick {step['pick']['buffers']} buffers, table {step['table_mb']} MB")
    return {"cycles": cfg.growth_cycles, "steps": steps}


# --- 6. statistics: a bulk-loaded project before and after ANALYZE -------------------------------------
def _analysed(dsn: str) -> dict:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT reltuples::bigint, n_mod_since_analyze, last_analyze IS NOT NULL"
                           " FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid"
                           " WHERE c.relname = 'task'").fetchone()
    return {"reltuples": row[0], "mod_since_analyze": row[1], "analysed": row[2]}


def part_stats(bs: BenchSystem, cfg, log) -> dict:
    """The hot path's plans must not depend on statistics (tests/test_plans.py): on a fresh system
    (task table never analysed), another project holding tasks and ``--stats-tasks`` loaded into a
    new project with no ANALYZE (a big import with autovacuum off or lagging), the ``--where-level``
    cycle; then ``ANALYZE task`` (no VACUUM: only the statistics change) and the same cycle again."""
    other = bs.project("bench-stats-other")
    project = bs.project("bench-stats")
    workers = bs.workers(cfg.where_level)
    if cfg.stats_other:
        floor.fill(bs.dsn, other, cfg.stats_other, cfg.max_assign_time, label="other", progress=log)
    log(f"  loading {cfg.stats_tasks:,} tasks, no ANALYZE")
    load_s = floor.fill(bs.dsn, project, cfg.stats_tasks, cfg.max_assign_time, label="stats", progress=log)
    floor.checkpoint(bs.dsn)  # the load's write-back would otherwise compete with the first run only
    runs = []
    for label in ("never analysed", "after ANALYZE"):
        if label == "after ANALYZE":
            with psycopg.connect(bs.dsn, autocommit=True) as conn:
                t0 = time.perf_counter()
                conn.execute("ANALYZE task")
                analyse_s = time.perf_counter() - t0
        stats = _analysed(bs.dsn)
        res = run_load("http", {**bs.target, "project": project}, workers, cfg.duration, cfg.warmup,
                       cfg.load_procs, bs.probe())
        row = {"statistics": label, **stats, **summarize(res, cfg.where_level)}
        runs.append(row)
        log(f"    {label:<15}" + _levels_line(row)[4:])
    ratio = round(runs[0]["cycles_per_s"] / runs[1]["cycles_per_s"], 3) if runs[1]["cycles_per_s"] else None
    log(f"    never analysed / after ANALYZE: {ratio}")
    return {"tasks": cfg.stats_tasks, "other_tasks": cfg.stats_other, "workers": cfg.where_level,
            "load_s": round(load_s, 2), "analyse_s": round(analyse_s, 2), "runs": runs, "ratio": ratio}


# --- 5b. task_svc replicas -------------------------------------------------------------------------
def part_replicas(cfg, log, run_args_for) -> dict:
    runs = []
    for count in cfg.replica_counts:
        log(f"  system with task_svc={count}")
        with BenchSystem(run_args_for(count), log) as bs:
            project = bs.project("bench-replicas")
            workers = bs.workers(cfg.where_level)
            bs.top_up(project, cfg.tasks, cfg.max_assign_time)
            if cfg.vacuum:
                floor.vacuum(bs.dsn)
            res = run_load("http", {**bs.target, "project": project}, workers, cfg.duration, cfg.warmup,
                           cfg.load_procs, bs.probe())
            row = {"task_svc": count, **summarize(res, cfg.where_level)}
            runs.append(row)
            log(_levels_line(row))
    return {"workers": cfg.where_level, "runs": runs}
