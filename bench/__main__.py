"""``python -m bench``: run the benchmark suite against a throwaway system it starts itself.

Examples::

    .venv/bin/python -m bench --quick                     # smoke run, ~3 minutes
    .venv/bin/python -m bench                             # full run
    .venv/bin/python -m bench --parts cycle,floor --levels 16 --duration 30
    .venv/bin/python -m bench --gateway-workers 4 --scale task_svc=2 --parts cycle
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests.harness lives at the repository root
    sys.path.insert(0, str(ROOT))

from bench import admin, floor, parts, report  # noqa: E402
from bench.env import RUN_SH_ENV, BenchSystem  # noqa: E402
from tests.harness import PG_ADMIN  # noqa: E402

PARTS = ("cycle", "floor", "bulk", "growth", "replicas", "stats", "admin")
QUICK = {"tasks": 10_000, "duration": 10.0, "warmup": 2.0, "bulk_total": 10_000, "growth": [1_000, 10_000, 100_000],
         "growth_other": 100_000, "growth_cycles": 200, "stats_tasks": 100_000, "stats_other": 10_000,
         "admin_tasks": 100_000, "admin_other": 20_000, "admin_repeats": 10, "admin_bulk_total": 20_000}
FULL = {"tasks": 100_000, "duration": 15.0, "warmup": 3.0, "bulk_total": 100_000,
        "growth": [10_000, 1_000_000, 10_000_000], "growth_other": 2_000_000, "growth_cycles": 1500,
        "stats_tasks": 1_000_000, "stats_other": 100_000,
        "admin_tasks": 1_000_000, "admin_other": 100_000, "admin_repeats": 30, "admin_bulk_total": 50_000}


def _ints(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short smoke run (small loads, short levels)")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    p.add_argument("--levels", type=_ints, default=[1, 4, 16, 64], help="concurrent workers per cycle level")
    p.add_argument("--duration", type=float, help="seconds measured per level (default 15; quick 10)")
    p.add_argument("--warmup", type=float, help="seconds of load before each measurement window (3; quick 2)")
    p.add_argument("--tasks", type=int, help="queued tasks kept in the cycle/floor projects (100000; quick 10000)")
    p.add_argument("--max-assign-time", type=int, default=3600, help="lease of the preloaded tasks, seconds")
    p.add_argument("--load-procs", type=int, default=2, help="load generator processes")
    p.add_argument("--floor-connections", type=int, default=16, help="connections of the storage floor")
    p.add_argument("--floor-modes", default="bare,store", help="bare (2 statements) and/or store (task_svc's SQL)")
    p.add_argument("--bulk-total", type=int, help="tasks submitted per bulk size (100000; quick 10000)")
    p.add_argument("--bulk-sizes", type=_ints, default=[1_000, 10_000], help="items per bulk_submit request")
    p.add_argument("--bulk-clients", type=_ints, default=[1, 4],
                   help="concurrent submitting clients per bulk run (1 = sequential requests)")
    p.add_argument("--growth", type=_ints, help="queued tasks in the project per growth step "
                   "(10000,1000000,10000000; quick 1000,10000,100000)")
    p.add_argument("--growth-other", type=int, help="tasks in another project during growth (2000000; quick 100000)")
    p.add_argument("--growth-cycles", type=int, help="sequential cycles measured per growth step (1500; quick 200)")
    p.add_argument("--growth-max-s", type=float, default=120, help="time cap per growth step")
    p.add_argument("--stats-tasks", type=int,
                   help="tasks bulk-loaded without ANALYZE in part stats (1000000; quick 100000)")
    p.add_argument("--stats-other", type=int, help="tasks in another project in part stats (100000; quick 10000)")
    p.add_argument("--admin-tasks", type=int, help="tasks in the searched/acted-on project of part admin "
                   "(1000000; quick 100000)")
    p.add_argument("--admin-other", type=int,
                   help="queued tasks in the other project of part admin (100000; quick 20000)")
    p.add_argument("--admin-repeats", type=int, help="measured requests per search term (30; quick 10)")
    p.add_argument("--admin-bulk-total", type=int, help="tasks bulk-submitted (10,000 per bulk) and COPYed "
                   "in part admin (50000; quick 20000)")
    p.add_argument("--admin-window", type=float, default=30.0,
                   help="longest fleet window of part admin, s (else 80%% of the action's duration alone)")
    p.add_argument("--where-level", type=int, default=16, help="workers of the CPU breakdown, replica and stats runs")
    p.add_argument("--replica-counts", type=_ints, default=[1, 2], help="task_svc replica counts compared")
    p.add_argument("--no-vacuum", dest="vacuum", action="store_false",
                   help="do not VACUUM ANALYZE the task table before each measured run")
    # passed through to `tracker run`
    p.add_argument("--replicas", type=int, help="tracker run --replicas (processes per service)")
    p.add_argument("--gateway-workers", type=int, help="tracker run --gateway-workers")
    p.add_argument("--scale", action="append", default=[], metavar="NAME=N", help="tracker run --scale (repeatable)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="results directory")
    p.add_argument("--no-write", dest="write", action="store_false", help="print only; write no files")
    args = p.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        p.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    args.floor_modes = [x.strip() for x in args.floor_modes.split(",") if x.strip()]
    return args


def run_args(args: argparse.Namespace, task_svc: int | None = None) -> list[str]:
    out: list[str] = []
    if args.replicas:
        out += ["--replicas", str(args.replicas)]
    if args.gateway_workers:
        out += ["--gateway-workers", str(args.gateway_workers)]
    for item in args.scale:
        if task_svc is None or not item.startswith("task_svc="):
            out += ["--scale", item]
    if task_svc is not None:
        out += ["--scale", f"task_svc={task_svc}"]
    return out


def git_rev() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def log(msg: str) -> None:
    print(msg, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    results: dict = {"meta": {
        "stamp": stamp, "quick": args.quick, "git_rev": git_rev(), "cores": psutil.cpu_count(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()], "run_args": run_args(args),
        "queue_type": {**os.environ, **RUN_SH_ENV}.get("TT_QUEUE_TYPE", "quorum"),
        "parts": args.parts, "where_level": args.where_level,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }}
    try:
        results["meta"]["postgres"] = floor.server_settings(PG_ADMIN)
    except Exception as exc:  # noqa: BLE001 - the system start will say what is wrong
        log(f"cannot read PostgreSQL settings: {exc!r}")
    if results["meta"].get("postgres", {}).get("autovacuum") == "off":
        log("note: autovacuum is off on this server; " + (
            "the bench runs VACUUM (ANALYZE) on the task table before each measured run" if args.vacuum
            else "--no-vacuum given: dead rows accumulate across runs"))
    started = time.monotonic()
    main_parts = [x for x in ("cycle", "floor", "bulk", "growth") if x in args.parts]
    try:
        if main_parts:
            log(f"== system for parts {', '.join(main_parts)}")
            with BenchSystem(run_args(args), log) as bs:
                for name, fn in (("cycle", parts.part_cycle), ("floor", parts.part_floor),
                                 ("bulk", parts.part_bulk), ("growth", parts.part_growth)):
                    if name in main_parts:
                        log(f"== part {name}")
                        try:
                            results[name] = fn(bs, args, log)
                        except Exception as exc:  # noqa: BLE001 - report it, keep the other parts
                            log(f"  part {name} failed: {exc!r}")
                            results.setdefault("failures", {})[name] = repr(exc)
        if "replicas" in args.parts:
            log("== part replicas")
            try:
                results["replicas"] = parts.part_replicas(args, log, lambda n: run_args(args, task_svc=n))
            except Exception as exc:  # noqa: BLE001
                log(f"  part replicas failed: {exc!r}")
                results.setdefault("failures", {})["replicas"] = repr(exc)
        for name, header, fn in (
                ("stats", "its own fresh system: a task table nothing has analysed", parts.part_stats),
                ("admin", "its own system: a project of --admin-tasks tasks", admin.part_admin)):
            if name in args.parts:
                log(f"== part {name} ({header})")
                try:
                    with BenchSystem(run_args(args), log) as bs:
                        results[name] = fn(bs, args, log)
                except Exception as exc:  # noqa: BLE001
                    log(f"  part {name} failed: {exc!r}")
                    results.setdefault("failures", {})[name] = repr(exc)
    except KeyboardInterrupt:
        log("interrupted; reporting what was measured")
        results["meta"]["interrupted"] = True
    results["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
    results["meta"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(report.render(results), flush=True)
    if results.get("failures"):
        print(f"\nfailed parts: {results['failures']}")
    if args.write:
        for path in report.write(results, args.out):
            print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0  # benchmarks report; they never fail CI


if __name__ == "__main__":
    sys.exit(main())
