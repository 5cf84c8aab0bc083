"""Soak: the worker cycle at a fixed moderate rate for N minutes, watching latency, errors and memory.

    .venv/bin/python -m bench.soak [--minutes 10] [--rate 50] [--workers 8] [--replicas 2] [--gateway-workers 2]

Starts its own throwaway system (``bench.env.BenchSystem``: own database, AMQP vhost and port, via
``tracker run``), a public project kept topped up by ``POST /task/bulk_submit``, and ``--workers``
worker accounts that run get + release OK, each paced to ``rate / workers`` cycles per second (a
worker that falls behind does not burst to catch up). Reports per minute: cycles, errors, get and
release p50/p99, load average; and the RSS of every process of the system (launcher, gunicorn master
and workers, each service replica, the PostgreSQL backends of its database summed, RabbitMQ) at
start, after warm-up and at the end, flagging any process whose end RSS is more than ``--flag-pct``
above its post-warm-up RSS. Writes ``bench/results/soak-<stamp>.json``, ``soak-latest.json`` and
``soak-latest.png``. A benchmark, not a test: the exit status is 0 whatever it finds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import queue
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlsplit

import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests.harness lives at the repository root
    sys.path.insert(0, str(ROOT))

from bench import floor  # noqa: E402
from bench.__main__ import git_rev  # noqa: E402
from bench.cpu import _service_group  # noqa: E402
from bench.env import BenchSystem  # noqa: E402
from bench.load import HttpDriver, percentile  # noqa: E402
from bench.report import table  # noqa: E402
from tests.harness import PG_ADMIN, Api  # noqa: E402

MiB = 1024 * 1024
PG, PG_AVG, RABBIT = "postgres backends", "postgres per backend", "rabbitmq"


def log(msg: str) -> None:
    print(msg, flush=True)


# --- load: paced workers in separate processes ------------------------------------------------------
def _paced_worker(target: dict, ident: tuple[int, str], interval: float, first: float, end: float,
                  stop, sink: list, lock: threading.Lock) -> None:
    """Run cycles on a fixed schedule (one every ``interval`` s) until ``end``; append one record per cycle:
    (start offset s, get s or None, release s or None, outcome) with outcome "ok" or an error label."""
    driver = HttpDriver(target, ident)
    clock = time.monotonic
    due = first
    while not stop.is_set():
        now = clock()
        if now < due:
            time.sleep(due - now)
        t0 = clock()
        if t0 >= end:
            break
        get_s = rel_s = None
        try:
            status, task = driver.acquire()
            get_s = clock() - t0
            if status != 200:
                outcome = f"get {status}"
            elif task == floor.NO_TASK:
                outcome = "get no-task"
            else:
                t1 = clock()
                status, updated = driver.release(task)
                rel_s = clock() - t1
                outcome = "ok" if status == 200 and updated is True else (
                    f"release {status}" if status != 200 else "release not-updated")
        except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
            outcome = f"{'get' if get_s is None else 'release'} {type(exc).__name__}"
            time.sleep(0.05)
        with lock:
            sink.append((t0, get_s, rel_s, outcome))
        due += interval
        if clock() > due + interval:  # fell behind by more than one slot: resume the schedule from now
            due = clock()
    driver.close()


def _load_process(target: dict, idents: list, intervals: list, firsts: list, end: float, stop, out) -> None:
    sink: list = []
    lock = threading.Lock()
    threads = [threading.Thread(target=_paced_worker, args=(target, ident, iv, f0, end, stop, sink, lock),
                                daemon=True) for ident, iv, f0 in zip(idents, intervals, firsts, strict=True)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(1.0)
        with lock:
            batch, sink[:] = list(sink), []
        if batch:
            out.put(("records", os.getpid(), batch))
    with lock:
        out.put(("records", os.getpid(), list(sink)))
    out.put(("done", os.getpid(), None))


# --- memory ------------------------------------------------------------------------------------------
def _mem(proc: psutil.Process) -> tuple[int, int | None]:
    try:
        info = proc.memory_full_info()
        return info.rss, info.uss
    except psutil.AccessDenied:
        return proc.memory_info().rss, None


def _listens_on(proc: psutil.Process, port: int) -> bool:
    try:
        return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in proc.net_connections("inet"))
    except psutil.Error:
        return False


def memory_sample(tracker_pid: int, dbname: str, amqp_port: int) -> dict:
    """RSS/USS (bytes) of every process of the system, keyed by a stable label.

    Services: ``<name>.<n>`` (replicas numbered by pid); gateway: ``gateway master`` and ``gateway worker <n>``;
    ``launcher`` is ``tracker run``; PostgreSQL backends of the system's database are summed (``n`` = count);
    RabbitMQ is the ``beam.smp`` listening on the system's AMQP port (it serves every vhost on the machine, not only
    this system's); other Erlang VMs (``rabbitmqctl`` runs, other brokers) are left out."""
    procs: dict[str, dict] = {}
    by_group: dict[str, list[psutil.Process]] = defaultdict(list)
    try:
        root = psutil.Process(tracker_pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        tree = []
    for proc in tree:
        try:
            by_group[_service_group(proc.cmdline())].append(proc)
        except psutil.Error:
            continue
    for group, members in by_group.items():
        members.sort(key=lambda p: p.pid)
        if group == "gateway":
            pids = {p.pid for p in members}
            masters = [p for p in members if p.ppid() not in pids]
            workers = [p for p in members if p.ppid() in pids]
            labelled = [("gateway master", p) for p in masters] + [
                (f"gateway worker {i}", p) for i, p in enumerate(workers, 1)]
        elif group == "launcher":
            labelled = [("launcher", p) for p in members]
        else:
            labelled = [(f"{group}.{i}" if len(members) > 1 else group, p) for i, p in enumerate(members, 1)]
        for label, proc in labelled:
            try:
                rss, uss = _mem(proc)
            except psutil.Error:
                continue
            procs[label] = {"group": group, "pid": proc.pid, "rss": rss, "uss": uss}
    pg = {"group": PG, "pid": None, "rss": 0, "uss": 0, "n": 0}
    rabbit = {"group": RABBIT, "pid": None, "rss": 0, "uss": 0, "n": 0}
    for proc in psutil.process_iter(["name"]):
        name = proc.info["name"] or ""
        try:
            if name == "postgres" and f" {dbname} " in " ".join(proc.cmdline()):
                entry = pg
            elif name.startswith("beam") and _listens_on(proc, amqp_port):
                entry = rabbit
            else:
                continue
            rss, uss = _mem(proc)
        except psutil.Error:
            continue
        entry["rss"] += rss
        entry["uss"] = None if uss is None or entry["uss"] is None else entry["uss"] + uss
        entry["n"] += 1
        entry["pid"] = proc.pid if entry["n"] == 1 else None
    procs[PG] = pg
    if pg["n"]:  # the pool opens connections as concurrency needs them: the average separates growth per backend
        procs[PG_AVG] = {"group": PG_AVG, "pid": None, "n": pg["n"], "rss": pg["rss"] // pg["n"],
                         "uss": None if pg["uss"] is None else pg["uss"] // pg["n"]}
    if rabbit["n"]:
        procs[RABBIT] = rabbit
    return procs


def _order(label: str) -> tuple:
    group_rank = 0 if label == "launcher" else 1 if label.startswith("gateway") else 2 if "_svc" in label else 3
    return group_rank, label


def memory_summary(samples: list[dict], warm_s: float, flag_pct: float) -> list[dict]:
    """Per process: RSS at start, after warm-up (first sample at or after ``warm_s``), at the end, the post-warm-up
    maximum and least-squares trend, and the end-vs-warm-up change; ``flag`` when it exceeds ``flag_pct``."""
    warm = next((s for s in samples if s["t"] >= warm_s), samples[-1])
    start, end = samples[0], samples[-1]
    after = [s for s in samples if s["t"] >= warm["t"]]
    rows = []
    for label in sorted(set().union(*(s["procs"] for s in samples)), key=_order):
        def at(sample, key, label=label):
            entry = sample["procs"].get(label)
            return entry.get(key) if entry else None
        series = [(s["t"], s["procs"][label]["rss"]) for s in after if label in s["procs"]]
        w_rss, e_rss, w_uss, e_uss = at(warm, "rss"), at(end, "rss"), at(warm, "uss"), at(end, "uss")
        change = round(100 * (e_rss - w_rss) / w_rss, 2) if w_rss and e_rss is not None else None
        uss_change = round(100 * (e_uss - w_uss) / w_uss, 2) if w_uss and e_uss is not None else None
        slope = None
        if len(series) >= 3:
            n = len(series)
            mt = sum(t for t, _ in series) / n
            mr = sum(r for _, r in series) / n
            var = sum((t - mt) ** 2 for t, _ in series)
            slope = round(sum((t - mt) * (r - mr) for t, r in series) / var * 60 / MiB, 3) if var else None
        pids = {s["procs"][label]["pid"] for s in samples if label in s["procs"]}
        rows.append({
            "label": label, "group": (end["procs"].get(label) or warm["procs"].get(label) or {}).get("group"),
            "pid": at(end, "pid"), "restarted": label not in (PG, PG_AVG, RABBIT) and len(pids) > 1,
            "n_start": at(start, "n"), "n_warm": at(warm, "n"), "n_end": at(end, "n"),
            "rss_start": at(start, "rss"), "rss_warm": w_rss, "rss_end": e_rss,
            "rss_max_after_warm": max((r for _, r in series), default=None),
            "uss_warm": w_uss, "uss_end": e_uss, "uss_change_pct": uss_change,
            "change_pct": change, "trend_mib_per_min": slope,
            "flag": change is not None and change > flag_pct,
        })
    return rows


# --- per-minute stats ---------------------------------------------------------------------------------
def minute_stats(records: list, start: float, minute: int, samples: list, rate: float, total_s: float) -> dict:
    lo, hi = start + 60 * minute, start + min(60 * (minute + 1), total_s)
    mine = [r for r in records if lo <= r[0] < hi]
    outcomes = Counter(r[3] for r in mine)
    gets = [r[1] for r in mine if r[1] is not None]
    rels = [r[2] for r in mine if r[2] is not None]
    loads = [s["load1"] for s in samples if 60 * minute <= s["t"] < 60 * (minute + 1)]
    busy = [s["cpu_busy_pct"] for s in samples if 60 * minute <= s["t"] < 60 * (minute + 1)
            and s.get("cpu_busy_pct") is not None]
    return {
        "minute": minute + 1, "seconds": round(hi - lo, 1), "target": round(rate * (hi - lo)),
        "attempts": len(mine), "cycles": outcomes.pop("ok", 0),
        "errors": sum(outcomes.values()), "error_kinds": dict(outcomes),
        "get_p50_ms": percentile(gets, 0.5), "get_p99_ms": percentile(gets, 0.99), "get_max_ms": percentile(gets, 1.0),
        "release_p50_ms": percentile(rels, 0.5), "release_p99_ms": percentile(rels, 0.99),
        "load1": round(sum(loads) / len(loads), 2) if loads else None,
        "cpu_busy_pct": round(sum(busy) / len(busy), 1) if busy else None,
    }


def minute_row(m: dict) -> list:
    return [m["minute"], m["cycles"], m["target"], round(m["cycles"] / m["seconds"], 2), m["errors"],
            m["get_p50_ms"], m["get_p99_ms"], m["get_max_ms"], m["release_p50_ms"], m["release_p99_ms"],
            m["load1"], m["cpu_busy_pct"]]


MINUTE_HEADERS = ["min", "cycles", "target", "cyc/s", "errors", "get p50", "get p99", "get max", "rel p50",
                  "rel p99", "load1", "busy%"]


def _live(values: list) -> str:
    return "  ".join(("-" if v is None else str(v)).rjust(7) for v in values)


def _mib(v) -> str:
    return "-" if v is None else f"{v / MiB:.1f}"


def _signed(v, digits: int = 1) -> str:
    return "-" if v is None else f"{v:+.{digits}f}"


def render_memory(rows: list[dict], flag_pct: float) -> str:
    out = []
    for r in rows:
        label = r["label"] + (f" (n={r['n_start']}/{r['n_warm']}/{r['n_end']})" if r["n_end"] is not None else "")
        out.append([label, r["pid"] or "-", _mib(r["rss_start"]), _mib(r["rss_warm"]), _mib(r["rss_end"]),
                    _mib(r["rss_max_after_warm"]), _signed(r["change_pct"]), _signed(r["trend_mib_per_min"], 2),
                    _signed(r["uss_change_pct"]),
                    (f"OVER +{flag_pct:g}%" if r["flag"] else "") + (" restarted" if r["restarted"] else "")])
    return table("Memory (RSS MiB; change = end vs after warm-up; trend = least squares after warm-up)",
                 ["process", "pid", "start", "warm", "end", "max", "change%", "MiB/min", "uss chg%", "flag"],
                 out, left=(0, 9))


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result["memory"]["samples"]
    groups: dict[str, dict[float, float]] = defaultdict(dict)
    for s in samples:
        for entry in s["procs"].values():
            if entry["group"] == PG_AVG:
                continue
            g = groups[entry["group"]]
            g[s["t"]] = g.get(s["t"], 0.0) + entry["rss"] / MiB
    fig, axes = plt.subplots(1, 2, figsize=(14, 5))
    for name, series in sorted(groups.items()):
        ax = axes[1] if name in (PG, RABBIT) else axes[0]
        ts = sorted(series)
        ax.plot([t / 60 for t in ts], [series[t] for t in ts], label=name, marker=".", markersize=3)
    pg_uss = [(s["t"] / 60, s["procs"][PG]["uss"] / MiB) for s in samples
              if s["procs"].get(PG, {}).get("uss") is not None]
    if pg_uss:
        axes[1].plot(*zip(*pg_uss, strict=True), label="postgres backends (USS)", linestyle="--")
    warm = result["meta"]["warmup_minutes"]
    for ax, title in zip(axes, ["tracker processes (replicas summed)", "PostgreSQL backends (this db), RabbitMQ"],
                         strict=True):
        ax.axvline(warm, color="grey", linestyle="--", linewidth=1)
        ax.set_title(title)
        ax.set_xlabel("minutes")
        ax.set_ylabel("RSS MiB")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    meta = result["meta"]
    fig.suptitle(f"soak {meta['stamp']}: {meta['rate']} cycles/s, {meta['workers']} workers, "
                 f"{' '.join(meta['run_args'])} (rev {meta['git_rev']})")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --- orchestration ------------------------------------------------------------------------------------
class Feeder:
    """Keeps the project's queue near ``target`` tasks with bulk submits (unique hash64 per task).

    The queue size is tracked, not queried (no extra database connection to skew the backend count):
    queued = submitted - tasks handed out."""

    def __init__(self, base: str, ident: tuple[int, str], project: int, target: int, lease: int) -> None:
        self.api = Api(base, {"X-Worker-ID": str(ident[0]), "X-Secret": ident[1]})
        self.project, self.target, self.lease = project, target, lease
        self.submitted = 0
        self.bulks = 0
        self.failures: Counter = Counter()

    def top_up(self, handed_out: int, max_bulk: int = 10_000) -> int:
        missing = self.target - (self.submitted - handed_out)
        added = 0
        while missing > 0:
            n = min(missing, max_bulk)
            items = [{"project": self.project, "recipe": f"soak {self.submitted + i}", "hash64": self.submitted + i + 1,
                      "max_assign_time": self.lease} for i in range(n)]
            for _attempt in range(5):
                try:
                    r = self.api.post("/task/bulk_submit", {"requests": items})
                except Exception as exc:  # noqa: BLE001
                    self.failures[type(exc).__name__] += 1
                    time.sleep(1)
                    continue
                if r.status_code == 200:
                    break
                self.failures[str(r.status_code)] += 1
                time.sleep(min(5.0, r.json().get("rate_limit_delay", 1) if r.status_code == 429 else 1.0))
            else:
                return added
            self.submitted += n
            self.bulks += 1
            added += n
            missing -= n
        return added


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--minutes", type=float, default=10, help="length of the soak (load phase)")
    p.add_argument("--rate", type=float, default=50, help="target worker cycles per second, all workers together")
    p.add_argument("--workers", type=int, default=8, help="worker accounts, each paced to rate/workers")
    p.add_argument("--load-procs", type=int, default=2, help="load generator processes (workers spread over them)")
    p.add_argument("--warmup-minutes", type=float, default=1, help="memory baseline = first sample after this")
    p.add_argument("--sample-s", type=float, default=10, help="memory sampling (and queue top-up) interval")
    p.add_argument("--queue", type=int, default=5000, help="queued tasks kept in the project (bulk-submitted)")
    p.add_argument("--lease", type=int, default=600, help="max_assign_time of the submitted tasks, seconds")
    p.add_argument("--flag-pct", type=float, default=10, help="flag processes whose RSS grew more than this")
    p.add_argument("--replicas", type=int, default=2, help="tracker run --replicas (processes per service)")
    p.add_argument("--gateway-workers", type=int, default=2, help="tracker run --gateway-workers")
    p.add_argument("--scale", action="append", default=[], metavar="NAME=N", help="tracker run --scale (repeatable)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="results directory")
    p.add_argument("--no-write", dest="write", action="store_false", help="print only; write no files")
    p.add_argument("--no-plot", dest="plot", action="store_false", help="write no PNG")
    args = p.parse_args(argv)
    if args.rate <= 0 or args.workers < 1 or args.minutes <= 0:
        p.error("--rate, --workers and --minutes must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    run_args = ["--replicas", str(args.replicas), "--gateway-workers", str(args.gateway_workers)]
    for item in args.scale:
        run_args += ["--scale", item]
    meta = {"stamp": stamp, "git_rev": git_rev(), "cores": psutil.cpu_count(), "run_args": run_args,
            "minutes": args.minutes, "rate": args.rate, "workers": args.workers, "warmup_minutes": args.warmup_minutes,
            "sample_s": args.sample_s, "queue": args.queue, "flag_pct": args.flag_pct,
            "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]}
    try:
        meta["postgres"] = floor.server_settings(PG_ADMIN)
    except Exception as exc:  # noqa: BLE001 - the system start will say what is wrong
        log(f"cannot read PostgreSQL settings: {exc!r}")
    log(f"soak {stamp}: {args.rate:g} cycles/s over {args.workers} workers for {args.minutes:g} min; "
        f"tracker run {' '.join(run_args)}; load average {meta['load_avg_at_start']} on {meta['cores']} cores")
    if meta.get("postgres", {}).get("autovacuum") == "off":
        log("note: autovacuum is off on this PostgreSQL server; dead task rows accumulate during the soak")

    records: list = []
    samples: list[dict] = []
    minutes: list[dict] = []
    started = time.monotonic()
    with BenchSystem(run_args, log=log) as bs:
        system = bs.system
        project = bs.project("soak")
        feeder = Feeder(system.url, bs.submitter([project]), project, args.queue, args.lease)
        feeder.top_up(0)
        idents = bs.workers(args.workers)
        meta.update(system=system.name, project=project)
        log(f"  project {project}: {feeder.submitted} tasks queued; {len(idents)} workers")

        amqp_port = urlsplit(system.env["TT_AMQP_URI"]).port or 5672

        def sample(t: float) -> dict:
            s = {"t": round(t, 1), "load1": round(os.getloadavg()[0], 2), "cpu_busy_pct": psutil.cpu_percent(None),
                 "procs": memory_sample(system.proc.pid, system.name, amqp_port)}
            samples.append(s)
            return s

        psutil.cpu_percent(interval=None)
        time.sleep(1)
        first = sample(0.0)
        first["cpu_busy_pct"] = None
        log(f"  start memory: {sum(e['rss'] for e in first['procs'].values()) / MiB:,.0f} MiB RSS over "
            f"{len(first['procs'])} entries")

        # load processes: worker i of W is due every W/rate s, phases spread over one interval
        interval = args.workers / args.rate
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        stop = ctx.Event()
        start = time.monotonic() + 2.0
        end = start + 60 * args.minutes
        nprocs = max(1, min(args.load_procs, args.workers))
        children = []
        for k in range(nprocs):
            ids = list(range(k, args.workers, nprocs))
            children.append(ctx.Process(target=_load_process, daemon=True, args=(
                bs.target | {"project": project}, [idents[i] for i in ids], [interval] * len(ids),
                [start + interval * i / args.workers for i in ids], end, stop, out)))
        for child in children:
            child.start()
        log("\nPer minute, live (latencies ms; errors = non-200, no task, not updated, exceptions)")
        log(_live(MINUTE_HEADERS))
        done = 0
        handed_out = 0
        next_sample = start + args.sample_s
        printed = 0
        try:
            while done < len(children):
                try:
                    tag, _pid, batch = out.get(timeout=0.5)
                    if tag == "done":
                        done += 1
                    else:
                        records.extend(batch)
                        handed_out += sum(1 for r in batch if r[2] is not None or r[3].startswith("release "))
                except queue.Empty:
                    pass
                now = time.monotonic()
                if now >= next_sample and now < end + 1:
                    sample(now - start)
                    feeder.top_up(handed_out)
                    next_sample += args.sample_s
                while printed < int((now - start - 5) // 60) and printed < int(args.minutes + 0.999):
                    minutes.append(minute_stats(records, start, printed, samples, args.rate, 60 * args.minutes))
                    m = minutes[-1]
                    extra = f"   {m['error_kinds']}" if m["errors"] else ""
                    log(_live(minute_row(m)) + extra)
                    printed += 1
        except KeyboardInterrupt:
            log("interrupted; reporting what was measured")
            meta["interrupted"] = True
            stop.set()
        final = sample(time.monotonic() - start)
        stop.set()
        for child in children:
            child.join(timeout=30)
            if child.is_alive():
                child.kill()
        while printed < int(args.minutes + 0.999):
            minutes.append(minute_stats(records, start, printed, samples, args.rate, 60 * args.minutes))
            log(_live(minute_row(minutes[-1])))
            printed += 1
        meta["tasks_submitted"] = feeder.submitted
        meta["bulk_submits"] = feeder.bulks
        meta["bulk_failures"] = dict(feeder.failures)
        log(f"  final sample at {final['t']:.0f} s; {feeder.submitted} tasks submitted in {feeder.bulks} bulks")

    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    meta["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    mem_rows = memory_summary(samples, 60 * args.warmup_minutes, args.flag_pct)
    outcomes = Counter(r[3] for r in records)
    gets = [r[1] for r in records if r[1] is not None]
    totals = {"cycles": outcomes.pop("ok", 0), "errors": sum(outcomes.values()), "error_kinds": dict(outcomes),
              "get_p50_ms": percentile(gets, 0.5), "get_p99_ms": percentile(gets, 0.99),
              "get_max_ms": percentile(gets, 1.0)}
    flagged = [r for r in mem_rows if r["flag"]]
    result = {"meta": meta, "totals": totals, "minutes": minutes,
              "memory": {"summary": mem_rows, "samples": samples},
              "verdict": {"memory_within_pct": not flagged, "flagged": [
                  {"label": r["label"], "change_pct": r["change_pct"]} for r in flagged]}}

    print(table(f"Per minute (target {args.rate:g} cycles/s; latencies ms; load1 = 1-min load average, "
                f"{meta['cores']} cores)", MINUTE_HEADERS, [minute_row(m) for m in minutes]))
    kinds = Counter()
    for m in minutes:
        kinds.update(m["error_kinds"])
    print(f"\ntotal: {totals['cycles']:,} cycles, {totals['errors']} errors {dict(kinds) or ''}; get p50 "
          f"{totals['get_p50_ms']} ms, p99 {totals['get_p99_ms']} ms, max {totals['get_max_ms']} ms; "
          f"load average start {meta['load_avg_at_start']} end {meta['load_avg_at_end']}")
    print(render_memory(mem_rows, args.flag_pct))
    if flagged:
        print(f"\nOVER +{args.flag_pct:g}% after warm-up: " + ", ".join(
            f"{r['label']} {r['change_pct']:+.1f}%" for r in flagged))
    else:
        print(f"\nevery process stayed within +{args.flag_pct:g}% of its post-warm-up RSS")
    print("(RabbitMQ serves every vhost on this machine. PostgreSQL: n = backends of this database, the pools open "
          "connections as they need them; a backend's RSS includes the shared buffers it has touched, uss chg% is "
          "private memory.)")
    if args.write:
        args.out.mkdir(parents=True, exist_ok=True)
        text = json.dumps(result, indent=1)
        for name in (f"soak-{stamp}.json", "soak-latest.json"):
            (args.out / name).write_text(text)
            print(f"wrote {args.out / name}")
        if args.plot:
            png = args.out / "soak-latest.png"
            plot(result, png)
            print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
