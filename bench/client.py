"""``python -m bench.client``: what the Python client costs against the raw worker cycle, same run.

One throwaway system; the same public project kept topped up with queued tasks; rounds that
alternate (so machine drift hits both alike):

- **raw**: the bench's lean load generator (``bench.load``, prebuilt requests on plain sockets)
  with ``--workers`` worker identities doing get → release OK;
- **client**: ``task_tracker_client.Worker`` with ``concurrency=--workers`` handler threads on a
  no-op handler (one identity: gets ask for several tasks at once with ``count``), in this process;
- **client-1x**: ``--workers`` separate ``Worker`` objects of concurrency 1 (one identity each, plain
  gets) — the shape of a fleet of single-threaded workers.

Reported: cycles/s per round, the mean of each mode, and client ÷ raw. Example::

    .venv/bin/python -m bench.client                      # 16 workers, 2 rounds of 15 s
    .venv/bin/python -m bench.client --duration 10 --rounds 1 --modes raw,client
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from task_tracker_client import Client, RetryPolicy, Worker  # noqa: E402

from bench.env import BenchSystem  # noqa: E402
from bench.load import run_load  # noqa: E402

MODES = ("raw", "client", "client-1x")


def log(msg: str) -> None:
    print(msg, flush=True)


def measure_client(bs: BenchSystem, project: int, idents: list[tuple[int, str]], per_worker: int,
                   warmup: float, duration: float) -> dict:
    """Run Workers (one per identity, ``per_worker`` threads each) and count releases in the window."""
    clients = [Client(bs.system.url, wid, secret, retry=RetryPolicy(attempts=5)) for wid, secret in idents]
    workers = [Worker(c, project, lambda task: None, concurrency=per_worker, wait=5, handle_signals=False)
               for c in clients]
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    for t in threads:
        t.start()
    time.sleep(warmup)
    ok0, cpu0, t0 = sum(w.stats.ok for w in workers), time.process_time(), time.monotonic()
    time.sleep(duration)
    ok1, cpu1, t1 = sum(w.stats.ok for w in workers), time.process_time(), time.monotonic()
    for w in workers:
        w.stop()
    for t in threads:
        t.join(timeout=30)
    gets = sum(w.stats.gets for w in workers)
    for c in clients:
        c.close()
    cycles = ok1 - ok0
    return {"cycles": cycles, "cycles_per_s": round(cycles / (t1 - t0), 1),
            "client_cpu_ms_per_cycle": round(1000 * (cpu1 - cpu0) / max(cycles, 1), 3),
            "tasks_per_get": round(sum(w.stats.ok for w in workers) / max(gets, 1), 2),
            "retries": sum(c.stats.retries for c in clients)}


def measure_raw(bs: BenchSystem, idents: list[tuple[int, str]], project: int, warmup: float, duration: float,
                procs: int) -> dict:
    res = run_load("http", {**bs.target, "project": project}, idents, duration, warmup, procs)
    s = res.stats
    return {"cycles": s.cycles, "cycles_per_s": round(s.cycles / res.duration, 1),
            "errors": sum(s.errors.values()), "non_200": sum(v for k, v in s.codes.items() if not k.endswith(" 200"))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.client", description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=16)
    p.add_argument("--duration", type=float, default=15.0, help="seconds measured per mode and round")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {','.join(MODES)}")
    p.add_argument("--tasks", type=int, default=40_000, help="queued tasks kept in the project")
    p.add_argument("--load-procs", type=int, default=2, help="processes of the raw load generator")
    p.add_argument("--gateway-workers", type=int, help="tracker run --gateway-workers")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="where the JSON goes")
    p.add_argument("--no-write", dest="write", action="store_false")
    args = p.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    run_args = ["--gateway-workers", str(args.gateway_workers)] if args.gateway_workers else []
    rows: list[dict] = []
    with BenchSystem(run_args, log) as bs:
        project = bs.project("client-bench")
        idents = bs.workers(args.workers)
        for rnd in range(args.rounds):
            for mode in modes:
                added = bs.top_up(project, args.tasks, 3600)
                log(f"  round {rnd + 1} {mode}: topped up {added} tasks")
                if mode == "raw":
                    row = measure_raw(bs, idents, project, args.warmup, args.duration, args.load_procs)
                elif mode == "client":
                    row = measure_client(bs, project, idents[:1], args.workers, args.warmup, args.duration)
                else:
                    row = measure_client(bs, project, idents, 1, args.warmup, args.duration)
                row.update(mode=mode, round=rnd + 1)
                rows.append(row)
                log(f"    {mode:>9}: {row['cycles_per_s']:>8.1f} cycles/s  {json.dumps(row)}")
    means = {}
    for m in modes:
        rates = [r["cycles_per_s"] for r in rows if r["mode"] == m]
        means[m] = round(sum(rates) / max(1, len(rates)), 1)
    log("\n== client vs raw worker cycle, same run")
    for m, v in means.items():
        ratio = f"  = {v / means['raw']:.3f} of raw" if "raw" in means and means["raw"] and m != "raw" else ""
        log(f"  {m:>9}: {v:>8.1f} cycles/s{ratio}")
    if args.write:
        args.out.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        path = args.out / f"client-{stamp}.json"
        path.write_text(json.dumps({"stamp": stamp, "args": {k: str(v) for k, v in vars(args).items()},
                                    "load_avg": os.getloadavg(),
                                    "transport": "httpcore", "rows": rows,
                                    "means": means}, indent=2))
        log(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
