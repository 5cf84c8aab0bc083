"""Many clients (issue 16): one gateway process holding thousands of parked long-polls and slow
connections while normal requests keep answering; memory per parked request.

    .venv/bin/python -m bench.many_clients [--parked 10000] [--slow 1000] [--window 20]

Starts its own throwaway system (``bench.env.BenchSystem``, ``tracker run --gateway-workers 1``) with
two public projects: ``parked`` (no tasks, so ``GET /task/get/P?wait=S`` parks) and ``control``
(``--control-tasks`` queued tasks for the normal requests). Then, in order:

1. **control window**: ``--window`` s of normal requests without the load — ``--cyclers`` workers
   cycling ``GET /task/get/control`` + ``POST /task/release`` and ``--readers`` clients reading
   ``GET /project/get/parked`` — after a baseline of the gateway worker's RSS;
2. **parked**: ``--parked`` long-polls on the empty project from a child process (asyncio streams,
   ``--workers`` worker accounts reused), each re-asking on its keep-alive connection when its wait
   runs out; once every one has been asked (the gateway's ``tt_rpc_calls_total`` for ``get_tasks``)
   the worker's RSS again → memory per parked request;
3. **slow**: ``--slow`` connections, a share ``--idle-share`` idle, the rest sending a request one
   byte per second, each reconnecting when the gateway closes it; RSS again;
4. **loaded window**: the same normal requests for ``--window`` s, with all of the above open;
5. **drain**: ``--final-tasks`` tasks (default half of ``--parked``) bulk-submitted to the parked
   project: every parked request must answer, a task each until they are gone (no task twice), then
   "No task available" when its wait runs out; none with a 5xx (client side, and the gateway's own
   ``tt_http_requests_total``).

Prints tables and writes ``bench/results/many-clients-<stamp>.json``. A benchmark: exit 0 whatever
it finds; the verdict is in the output and the JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import queue
import re
import resource
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests.harness lives at the repository root
    sys.path.insert(0, str(ROOT))

from bench import many_clients_load  # noqa: E402
from bench.__main__ import git_rev  # noqa: E402
from bench.env import BenchSystem  # noqa: E402
from bench.floor import NO_TASK  # noqa: E402
from bench.load import HttpDriver, percentile  # noqa: E402
from bench.report import table  # noqa: E402
from tests.harness import Api, gateway_worker_pids  # noqa: E402

MiB = 1024 * 1024
KiB = 1024
_SAMPLE = re.compile(r"^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def log(msg: str) -> None:
    print(msg, flush=True)


# --- pure helpers (tests/unit/test_bench_many_clients.py) ------------------------------------------
def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` in a Prometheus text exposition whose labels include ``labels``;
    a label given as ``"5xx"`` matches any value starting with ``5``."""
    total = 0.0
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m or m.group(1) != name:
            continue
        have = dict(_LABEL.findall(m.group(2) or ""))
        if all(have.get(k, "")[:1] == v[0] if v.endswith("xx") else have.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


def per_item_kib(before: int | None, after: int | None, items: int) -> float | None:
    """Memory growth per item, KiB (None when either sample is missing or there are no items)."""
    if before is None or after is None or items <= 0:
        return None
    return round((after - before) / items / KiB, 2)


def summarise(records: list[tuple], seconds: float, slow_s: float = 1.0) -> dict:
    """Per kind of normal request: count, rate, p50/p99/max (ms) of the answered ones, errors by kind,
    and when (s into the window) the first 20 answers slower than ``slow_s`` started. ``records``:
    (kind, seconds or None when no answer came, outcome "ok" or an error label[, start offset s])."""
    out: dict = {}
    for kind in sorted({r[0] for r in records}):
        mine = [r for r in records if r[0] == kind]
        times = [r[1] for r in mine if r[1] is not None]
        errors = Counter(r[2] for r in mine if r[2] != "ok")
        slow = [(round(r[3], 2), round(r[1] * 1000)) for r in mine if len(r) > 3 and r[1] is not None and r[1] > slow_s]
        out[kind] = {"n": len(mine), "per_s": round(len(mine) / seconds, 1) if seconds else None,
                     "p50_ms": percentile(times, 0.5), "p99_ms": percentile(times, 0.99),
                     "max_ms": percentile(times, 1.0), "errors": sum(errors.values()), "error_kinds": dict(errors),
                     "slow": len(slow), "slow_at_s_ms": slow[:20]}
    return out


# --- normal requests ---------------------------------------------------------------------------------
class Reader(HttpDriver):
    """One client reading one path over a keep-alive connection (HttpDriver's raw socket)."""

    def __init__(self, target: dict, ident: tuple[int, str], path: str) -> None:
        super().__init__(target, ident)
        host = f"{target['host']}:{target['port']}"
        self.read_request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Worker-ID: {ident[0]}\r\n"
                             f"X-Secret: {ident[1]}\r\n\r\n").encode()

    def read(self) -> int:
        return self._request(self.read_request)[0]


def normal_window(target: dict, control: int, parked: int, idents: list, cyclers: int, readers: int,
                  seconds: float) -> tuple[dict, list]:
    """Closed-loop normal requests for ``seconds``: worker cycles on ``control``, reads of ``parked``."""
    records: list = []
    lock = threading.Lock()
    start = time.monotonic()
    end = start + seconds

    def cycle(ident) -> None:
        driver = HttpDriver(target | {"project": control}, ident)
        while (t0 := time.monotonic()) < end:
            mine = []
            try:
                status, task = driver.acquire()
                mine.append(("task get", time.monotonic() - t0,
                             "ok" if status == 200 and task != NO_TASK else
                             ("no-task" if status == 200 else f"status {status}"), t0 - start))
                if status == 200 and task != NO_TASK:
                    t1 = time.monotonic()
                    status, updated = driver.release(task)
                    mine.append(("task release", time.monotonic() - t1,
                                 "ok" if status == 200 and updated else f"status {status}" if status != 200
                                 else "not-updated", t1 - start))
            except Exception as exc:  # noqa: BLE001 - counted, the window goes on
                mine.append(("task get" if not mine else "task release", None, type(exc).__name__))
                time.sleep(0.05)
            with lock:
                records.extend(mine)
        driver.close()

    def read(ident) -> None:
        driver = Reader(target | {"project": parked}, ident, f"/project/get/{parked}")
        while (t0 := time.monotonic()) < end:
            try:
                status = driver.read()
                rec = ("project get", time.monotonic() - t0, "ok" if status == 200 else f"status {status}", t0 - start)
            except Exception as exc:  # noqa: BLE001
                rec = ("project get", None, type(exc).__name__)
                time.sleep(0.05)
            with lock:
                records.append(rec)
        driver.close()

    threads = [threading.Thread(target=cycle, args=(idents[i],), daemon=True) for i in range(cyclers)]
    threads += [threading.Thread(target=read, args=(idents[cyclers + i],), daemon=True) for i in range(readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 90)
    return summarise(records, time.monotonic() - start), records


# --- the gateway worker --------------------------------------------------------------------------------
def memory(pid: int) -> dict:
    proc = psutil.Process(pid)
    try:
        info = proc.memory_full_info()
        rss, uss = info.rss, info.uss
    except psutil.AccessDenied:
        rss, uss = proc.memory_info().rss, None
    return {"rss": rss, "uss": uss, "fds": proc.num_fds(), "t": time.time()}


class Sampler(threading.Thread):
    """RSS of the gateway worker every second while a window runs (its maximum is reported)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[dict] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(1.0):
            try:
                self.samples.append(memory(self.pid))
            except psutil.Error:
                return

    def stop(self) -> list[dict]:
        self.stopping.set()
        self.join(5)
        return self.samples


def raise_fd_limit(wanted: int) -> tuple[int, int]:
    """This process and everything it starts (the system, the client child) inherit the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


class Child:
    """The client process (bench.many_clients_load) and the latest progress it reported."""

    def __init__(self, cfg: dict) -> None:
        ctx = mp.get_context("spawn")
        self.out = ctx.Queue()
        self.stop, self.open_slow = ctx.Event(), ctx.Event()
        self.submit_at = ctx.Value("d", 0.0)
        self.proc = ctx.Process(target=many_clients_load.run, daemon=True,
                                args=(cfg, self.out, self.stop, self.open_slow, self.submit_at))
        self.latest: dict = {}
        self.history: list[tuple[float, dict]] = []
        self.final: dict | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)

    def start(self) -> None:
        self.proc.start()
        self._reader.start()

    def _read(self) -> None:
        while self.final is None:
            try:
                tag, snap = self.out.get(timeout=1.0)
            except queue.Empty:
                if not self.proc.is_alive():
                    return
                continue
            if tag == "done":
                self.final = snap
            else:
                self.latest = snap
                self.history.append((time.monotonic(), snap))

    def wait_for(self, check, timeout: float, what: str) -> float:
        """Seconds until ``check(latest)`` holds; raises on timeout or a dead child."""
        start = time.monotonic()
        while not check(self.latest):
            if not self.proc.is_alive():
                raise RuntimeError(f"the client process died while waiting for {what}")
            if time.monotonic() - start > timeout:
                raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}; last progress {self.latest}")
            time.sleep(0.25)
        return time.monotonic() - start

    def finish(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while self.final is None and time.monotonic() < deadline and self.proc.is_alive():
            time.sleep(0.25)
        if self.final is None:
            self.stop.set()
            end = time.monotonic() + 15
            while self.final is None and time.monotonic() < end and self.proc.is_alive():
                time.sleep(0.25)
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
        return self.final or {"missing": True, **self.latest}


def _metrics(url: str) -> str:
    return requests.get(url + "/metrics", timeout=30).text


def _bulk_submit(api: Api, project: int, count: int, lease: int) -> float:
    """``count`` tasks in bulks of at most 10,000; returns seconds. Retries a 503 (busy machine)."""
    start = time.monotonic()
    done = 0
    while done < count:
        n = min(10_000, count - done)
        items = [{"project": project, "recipe": f"parked {done + i}", "hash64": done + i + 1,
                  "max_assign_time": lease} for i in range(n)]
        for attempt in range(5):
            r = api.post("/task/bulk_submit", {"requests": items})
            if r.status_code == 200:
                break
            log(f"  bulk submit answered {r.status_code}: {r.text[:200]}")
            if attempt == 4:
                raise RuntimeError("bulk submit failed")
            time.sleep(2)
        done += n
    return time.monotonic() - start


# --- report ------------------------------------------------------------------------------------------
def _ms(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def _mib(v) -> str:
    return "-" if v is None else f"{v / MiB:.1f}"


def _span(values: list[float]) -> str:
    return f"{min(values)} … {max(values)} ({len(values)})" if values else "-"


def render(result: dict) -> str:
    meta, out = result["meta"], []
    rows = []
    for window in ("control", "loaded", "drain"):
        for kind, s in result["normal"][window].items():
            rows.append([window, kind, s["n"], s["per_s"], _ms(s["p50_ms"]), _ms(s["p99_ms"]), _ms(s["max_ms"]),
                         s["slow"], s["errors"], json.dumps(s["error_kinds"]) if s["errors"] else ""])
    out.append(table(f"Normal requests, {meta['window_s']:g} s each (ms; closed loop: {meta['cyclers']} worker "
                     f"cycles + {meta['readers']} readers; > 1 s = answers slower than a second; drain = from the "
                     "submit on)",
                     ["window", "request", "n", "per s", "p50", "p99", "max", "> 1 s", "errors", "kinds"], rows,
                     left=(0, 1, 9)))
    for window in ("loaded", "drain"):
        for kind, s in result["normal"][window].items():
            if s["slow"]:
                out.append(f"  {window} {kind}: slow answers started at (s into the window, ms) {s['slow_at_s_ms']}")
    mem = result["memory"]
    base = mem["baseline"]
    rows = []
    for stage, label in (("baseline", "baseline (idle)"), ("after_control", "after control window"),
                         ("parked", f"{meta['parked']:,} parked"), ("slow", f"+ {meta['slow']:,} slow"),
                         ("loaded_max", "max during loaded window"), ("end", "after drain")):
        m = mem.get(stage)
        if not m:
            continue
        rows.append([label, _mib(m["rss"]), _mib(m["uss"]), m.get("fds", "-"),
                     _mib(m["rss"] - base["rss"]) if m.get("rss") else "-"])
    out.append(table(f"Gateway worker (pid {meta['gateway_worker_pid']}) memory, MiB",
                     ["stage", "RSS", "USS", "fds", "RSS - baseline"], rows, left=(0,)))
    per = result["per_connection_kib"]
    out.append(f"memory per parked request: {per['parked_rss']} KiB RSS ({per['parked_uss']} KiB USS); "
               f"per slow connection: {per['slow_rss']} KiB RSS")
    lp, fin = result["long_polls"], result["drain"]
    out.append(table("Parked long-polls", ["", "value"], [
        ["opened (all asked) in", f"{lp['open_s']} s"],
        ["in flight during loaded window: min / mean", f"{lp['in_flight_min']} / {lp['in_flight_mean']}"],
        ["re-asks (wait ran out) before the drain", lp["reasks"]],
        ["other answers before the drain", json.dumps(lp["before"])],
        ["client errors (connect/reset/timeout)", json.dumps(lp["errors"])],
        [f"drain: tasks submitted ({fin['submit_s']} s to submit)", fin["tasks_submitted"]],
        ["drain: answered with a task (distinct ids)", f"{fin['task']} ({fin['distinct_task_ids']})"],
        ["drain: answered No task available", fin["no_task"]],
        ["drain: other answers", json.dumps(fin["other"])],
        ["drain: other answers came, s after the submit", _span([t for _, t in fin["other_after_s"]])],
        ["drain: unanswered", fin["unresolved"]],
        ["drain: task answers after the submit p50 / p99 / max", f"{fin['task_p50_s']} / {fin['task_p99_s']} / "
                                                                 f"{fin['task_max_s']} s"],
        ["drain: no-task answers after the submit p50 / max", f"{fin['no_task_p50_s']} / {fin['no_task_max_s']} s"],
    ], left=(0,)))
    sl = result["slow"]
    out.append(table("Slow connections", ["", "value"], [
        ["kinds", f"{sl['idle']} idle, {sl['trickle']} trickling 1 byte/s (reconnect {meta['slow_pause']:g} s "
                  "after a close)"],
        ["open during loaded window: min / mean", f"{sl['open_min']} / {sl['open_mean']}"],
        ["connects / closed by the gateway", f"{sl['connects']} / {sl['closed']}"],
        ["lifetime until the gateway closed it p50 / max", f"{sl['lifetime_p50_s']} / {sl['lifetime_max_s']} s"],
        ["bytes a trickle had sent when closed p50 / max", f"{sl['bytes_p50']} / {sl['bytes_max']}"],
        ["answers / errors", f"{json.dumps(sl['answers'])} / {json.dumps(sl['errors'])}"],
    ], left=(0,)))
    v, syslog = result["verdict"], result["system_log"]
    out.append(f"\nsystem log: {syslog['warnings_or_errors']} warning/error lines of {syslog['lines']}"
               + "".join(f"\n  {line[:200]}" for line in syslog["last"][-8:]))
    out.append(f"\ngateway 5xx answers (its own metrics): {v['gateway_5xx']}; worker restarted: "
               f"{v['worker_restarted']}; verdict: {'OK' if v['ok'] else 'PROBLEMS: ' + '; '.join(v['problems'])}")
    out.append(f"load average start {meta['load_avg_at_start']} end {meta.get('load_avg_at_end')} on "
               f"{meta['cores']} cores (shared machine: other runs add to it)")
    return "\n".join(out)


# --- orchestration -------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.many_clients", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--parked", type=int, default=10_000, help="parked long-polls")
    p.add_argument("--slow", type=int, default=1_000, help="slow connections (idle or trickling)")
    p.add_argument("--idle-share", type=float, default=0.5, help="share of the slow connections that send nothing")
    p.add_argument("--slow-pause", type=float, default=0.5, help="seconds before a closed slow connection reconnects")
    p.add_argument("--wait", type=int, default=30, help="the long-polls' ?wait= (contract: at most 30)")
    p.add_argument("--workers", type=int, default=100, help="worker accounts the long-polls share")
    p.add_argument("--window", type=float, default=20, help="seconds of normal requests per window")
    p.add_argument("--cyclers", type=int, default=4, help="normal clients cycling get + release on the control project")
    p.add_argument("--readers", type=int, default=1, help="normal clients reading GET /project/get")
    p.add_argument("--control-tasks", type=int, default=50_000, help="tasks queued in the control project")
    p.add_argument("--final-tasks", type=int, default=None, help="tasks submitted to drain (default: parked / 2)")
    p.add_argument("--connect-concurrency", type=int, default=200, help="client connects in progress at once")
    p.add_argument("--open-timeout", type=float, default=180, help="seconds allowed to open every long-poll")
    p.add_argument("--gateway-workers", type=int, default=1, help="tracker run --gateway-workers")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="results directory")
    p.add_argument("--no-write", dest="write", action="store_false", help="print only; write no files")
    args = p.parse_args(argv)
    if args.parked < 1 or args.slow < 0 or args.window <= 0 or not 0 <= args.idle_share <= 1:
        p.error("--parked ≥ 1, --slow ≥ 0, --window > 0, 0 ≤ --idle-share ≤ 1")
    if not 1 <= args.wait <= 30:
        p.error("--wait must be 1 … 30 (contract §6.5)")
    if args.final_tasks is None:
        args.final_tasks = args.parked // 2
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    run_args = ["--gateway-workers", str(args.gateway_workers)]
    limit = raise_fd_limit(args.parked + args.slow + 1024)
    meta = {"stamp": stamp, "git_rev": git_rev(), "cores": psutil.cpu_count(), "run_args": run_args,
            "parked": args.parked, "slow": args.slow, "idle_share": args.idle_share, "slow_pause": args.slow_pause,
            "wait": args.wait, "workers": args.workers, "window_s": args.window, "cyclers": args.cyclers,
            "readers": args.readers, "final_tasks": args.final_tasks, "fd_limit": list(limit),
            "gateway_connections": os.environ.get("TT_GATEWAY_CONNECTIONS") or "default",
            "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]}
    log(f"many clients {stamp}: {args.parked:,} parked long-polls + {args.slow:,} slow connections on one gateway "
        f"process; tracker run {' '.join(run_args)}; fd limit {limit}; load average {meta['load_avg_at_start']} "
        f"on {meta['cores']} cores")
    mem: dict = {}
    seen: dict = {}
    try:
        result = _measure(args, meta, mem, seen)
    except Exception as exc:  # noqa: BLE001 - a benchmark reports what broke, and what it saw until then
        failure = f"{type(exc).__name__}: {str(exc)[:500]}"
        child = seen.get("child")
        progress = child.latest if child else None
        if child:
            child.stop.set()
        result = {"meta": meta, "memory": mem, "client_progress": progress, "failure": failure}
        print(f"\nFAILED: {failure}\nlast client progress: {progress}\nmemory: {mem}")
    else:
        print(render(result))
    if args.write:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"many-clients-{stamp}.json"
        path.write_text(json.dumps(result, indent=1))
        print(f"wrote {path}")
    return 0


def _measure(args: argparse.Namespace, meta: dict, mem: dict, seen: dict) -> dict:  # noqa: PLR0915 - linear
    """The run itself (module docstring); fills ``mem`` and ``seen["child"]`` (the client process and
    its last progress) as it goes, so a failure can still be reported."""
    run_args = meta["run_args"]
    with BenchSystem(run_args, log=log) as bs:
        system = bs.system
        parked, control = bs.project("parked"), bs.project("control")
        bs.top_up(control, args.control_tasks, 3600)
        idents = bs.workers(args.workers + args.cyclers + args.readers)
        normal_idents, poll_idents = idents[:args.cyclers + args.readers], idents[args.cyclers + args.readers:]
        submitter = bs.submitter([parked])
        pids = gateway_worker_pids(system)
        if len(pids) != args.gateway_workers:
            raise RuntimeError(f"expected {args.gateway_workers} gateway worker(s), found {pids}")
        wpid = pids[0]
        meta.update(system=system.name, parked_project=parked, control_project=control, gateway_worker_pid=wpid)
        target = bs.target
        log(f"  projects parked={parked} control={control} ({args.control_tasks:,} tasks); "
            f"{len(idents)} workers; gateway worker pid {wpid}")

        normal_window(target, control, parked, normal_idents, args.cyclers, args.readers, 3)  # warm-up
        mem["baseline"] = memory(wpid)
        log(f"  baseline RSS {_mib(mem['baseline']['rss'])} MiB; control window {args.window:g} s")
        control_stats, _ = normal_window(target, control, parked, normal_idents, args.cyclers, args.readers,
                                         args.window)
        mem["after_control"] = memory(wpid)

        calls_before = metric_sum(_metrics(system.url), "tt_rpc_calls_total", operation="get_tasks")
        cfg = {"host": target["host"], "port": target["port"], "project": parked, "wait": args.wait,
               "idents": poll_idents, "parked": args.parked, "slow": args.slow, "idle_share": args.idle_share,
               "slow_pause": args.slow_pause, "connect_concurrency": args.connect_concurrency}
        child = Child(cfg)
        seen["child"] = child
        child.start()
        log(f"  opening {args.parked:,} long-polls …")
        open_s = child.wait_for(lambda s: s.get("lp_connected", 0) >= args.parked, args.open_timeout,
                                "every long-poll to be sent")
        # every one asked task_svc once (then it parks); re-asks only add to the count
        child.wait_for(lambda s: metric_sum(_metrics(system.url), "tt_rpc_calls_total", operation="get_tasks")
                       >= calls_before + args.parked, 60, "the gateway to ask for every long-poll")
        open_s = round(open_s, 1)
        time.sleep(2)
        mem["parked"] = memory(wpid)
        mem["parked"]["in_flight"] = child.latest.get("lp_in_flight")
        log(f"  {child.latest.get('lp_in_flight')} long-polls in flight after {open_s} s; "
            f"RSS {_mib(mem['parked']['rss'])} MiB, {mem['parked']['fds']} fds")

        child.open_slow.set()
        if args.slow:
            # sampled at once: the gateway closes a connection that sends no complete request within
            # gunicorn's keep-alive timeout (2 s), and the client reconnects
            child.wait_for(lambda s: s.get("slow_connects", 0) >= args.slow, 60, "every slow connection to open")
        mem["slow"] = memory(wpid)
        mem["slow"]["slow_open"] = child.latest.get("slow_open")
        log(f"  {child.latest.get('slow_open')} slow connections open; RSS {_mib(mem['slow']['rss'])} MiB, "
            f"{mem['slow']['fds']} fds; loaded window {args.window:g} s")

        sampler = Sampler(wpid)
        sampler.start()
        window_start = time.monotonic()
        loaded_stats, _ = normal_window(target, control, parked, normal_idents, args.cyclers, args.readers,
                                        args.window)
        window_end = time.monotonic()
        samples = sampler.stop()
        in_window = [s for t, s in child.history if window_start <= t <= window_end]
        if samples:
            mem["loaded_max"] = max(samples, key=lambda m: m["rss"])
        before_drain = dict(child.latest)

        log(f"  drain: submitting {args.final_tasks:,} tasks to project {parked}")
        api = Api(system.url, {"X-Worker-ID": str(submitter[0]), "X-Secret": submitter[1]})
        during: dict = {}
        drain_normal = threading.Thread(target=lambda: during.update(normal_window(
            target, control, parked, normal_idents, args.cyclers, args.readers, args.window)[0]), daemon=True)
        drain_normal.start()  # the normal requests again, while the parked ones are woken and answered
        submit_s = _bulk_submit(api, parked, args.final_tasks, 3600) if args.final_tasks else 0.0
        child.submit_at.value = time.monotonic()
        final = child.finish(args.wait + 40)
        drain_normal.join(args.window + 60)
        mem["end"] = memory(wpid)
        text = _metrics(system.url)
        gateway_5xx = metric_sum(text, "tt_http_requests_total", status="5xx")
        worker_restarted = gateway_worker_pids(system) != [wpid]
        lines = system.log_path.read_text(errors="replace").splitlines() if system.log_path.exists() else []
        noted = [line for line in lines if re.search(r"WARNING|ERROR|CRITICAL|Traceback", line)]
        system_log = {"lines": len(lines), "warnings_or_errors": len(noted), "last": noted[-30:]}
    meta["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]

    def pct(values: list, q: float):
        v = percentile(values, q)
        return None if v is None else round(v / 1000, 2)

    ids, task_after = final.get("task_ids", []), final.get("task_after_s", [])
    final_kinds = Counter(final.get("final", {}))
    drain = {"tasks_submitted": args.final_tasks, "submit_s": round(submit_s, 2),
             "task": final_kinds.pop("task", 0), "no_task": final_kinds.pop("no-task", 0),
             "other": dict(final_kinds), "unresolved": final.get("unresolved"),
             "distinct_task_ids": len(set(ids)), "other_after_s": final.get("other_after_s", []),
             "task_p50_s": pct(task_after, 0.5), "task_p99_s": pct(task_after, 0.99),
             "task_max_s": pct(task_after, 1.0),
             "no_task_p50_s": pct(final.get("no_task_after_s", []), 0.5),
             "no_task_max_s": pct(final.get("no_task_after_s", []), 1.0)}
    in_flight = [s.get("lp_in_flight", 0) for s in in_window]
    slow_open = [s.get("slow_open", 0) for s in in_window]
    lifetimes, sent = final.get("slow_lifetimes", []), final.get("slow_bytes", [])
    idle = round(args.slow * args.idle_share)
    result = {
        "meta": meta,
        "normal": {"control": control_stats, "loaded": loaded_stats, "drain": during},
        "system_log": system_log,
        "memory": mem,
        "per_connection_kib": {
            "parked_rss": per_item_kib(mem["baseline"]["rss"], mem["parked"]["rss"], args.parked),
            "parked_uss": per_item_kib(mem["baseline"]["uss"], mem["parked"]["uss"], args.parked),
            # per connection the gateway held when sampled (its descriptors), as they come and go
            "slow_rss": per_item_kib(mem["parked"]["rss"], mem["slow"]["rss"],
                                     mem["slow"]["fds"] - mem["parked"]["fds"])},
        "long_polls": {"open_s": open_s, "in_flight_min": min(in_flight, default=None),
                       "in_flight_mean": round(sum(in_flight) / len(in_flight)) if in_flight else None,
                       "reasks": final.get("reasks"), "before": final.get("before", {}),
                       "errors": final.get("errors", {}), "before_drain": before_drain},
        "drain": drain,
        "slow": {"idle": idle, "trickle": args.slow - idle, "open_min": min(slow_open, default=None),
                 "open_mean": round(sum(slow_open) / len(slow_open)) if slow_open else None,
                 "connects": final.get("slow_connects"), "closed": final.get("slow_closed"),
                 "lifetime_p50_s": pct(lifetimes, 0.5), "lifetime_max_s": pct(lifetimes, 1.0),
                 "bytes_p50": round(percentile(sent, 0.5) / 1000) if sent else None,
                 "bytes_max": round(percentile(sent, 1.0) / 1000) if sent else None,
                 "answers": final.get("slow_answers", {}), "errors": final.get("slow_errors", {})},
    }
    problems = []
    if gateway_5xx:
        problems.append(f"{gateway_5xx:g} answers with a 5xx")
    if worker_restarted:
        problems.append("the gateway worker restarted")
    expected_tasks = min(args.final_tasks, args.parked)
    if drain["task"] != expected_tasks or drain["distinct_task_ids"] != drain["task"]:
        problems.append(f"{drain['task']} tasks handed out ({drain['distinct_task_ids']} distinct), "
                        f"expected {expected_tasks}")
    if drain["no_task"] != args.parked - expected_tasks or drain["unresolved"]:
        problems.append(f"{drain['no_task']} no-task answers and {drain['unresolved']} unanswered, expected "
                        f"{args.parked - expected_tasks} and 0")
    for window, stats in result["normal"].items():
        errors = sum(s["errors"] for s in stats.values())
        if errors:
            problems.append(f"{errors} normal requests failed in the {window} window")
    if sum(final.get("errors", {}).values()) or final.get("before") or drain["other"]:
        problems.append("long-poll errors or unexpected answers")
    result["verdict"] = {"ok": not problems, "problems": problems, "gateway_5xx": gateway_5xx,
                         "worker_restarted": worker_restarted}
    return result


if __name__ == "__main__":
    sys.exit(main())
