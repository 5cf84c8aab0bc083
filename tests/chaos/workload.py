"""The chaos tests' workload, clients and checks, shared by test_chaos.py (processes killed,
servers restarted) and test_broker_cluster.py (RabbitMQ cluster nodes killed): README.md says what
is checked and how.

Clients behave like real ones: a 503, a connection error or a timeout is retried; submits and
releases carry an ``Idempotency-Key`` header and a retry resends the SAME request with the SAME key
until a definitive answer arrives. Every response is recorded. At the end (queue drained, or no
progress any more) ``run_chaos`` checks the §8 guarantees:

- every task of a bulk answered 200 exists exactly once (by hash64), none that was not accepted;
- the bulk answers add up (``submitted`` sums to the stored tasks, no ``duplicates``: all hashes are
  unique, so a replayed bulk must answer its first reply);
- every task is CLOSED; the project's ``closed_task_count`` and the workers' counters equal the
  number of CLOSED tasks, and each closure was answered ``updated: true`` to exactly one release;
- no task was held by two workers at once, none was handed out after it closed;
- no response was a 500, no other unexpected status; every chaos event recovered.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
import uuid
import zlib
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

import requests

from tests.harness import Api, gateway_worker_pids

QUORUM_EVERY = 10  # every 10th task needs two matching verifications
MAX_ASSIGN_TIME = 600  # no lease expires during the run: any re-assignment of a held task is a bug
RECOVERY_TIMEOUT = 120.0
RETRY = {500, 502, 503, 504}  # a real client retries these (500 is still counted as a failure)
NO_TASK = "No task available"


@dataclass(frozen=True)
class Sizes:
    """How much work: the ``TT_CHAOS_*`` knobs (README.md), over a test's own defaults."""

    workers: int = 16
    bulks: int = 100
    bulk_size: int = 100
    submit_pause: float = 0.4  # between bulks: spreads them over the chaos
    stall: float = 60.0  # drain: give up after this long without progress
    run_limit: float = 1500.0  # whole workload, seconds

    @classmethod
    def from_env(cls, **defaults) -> Sizes:
        base = cls(**defaults)
        return cls(
            workers=int(os.environ.get("TT_CHAOS_WORKERS", base.workers)),
            bulks=int(os.environ.get("TT_CHAOS_BULKS", base.bulks)),
            bulk_size=int(os.environ.get("TT_CHAOS_BULK_SIZE", base.bulk_size)),
            submit_pause=float(os.environ.get("TT_CHAOS_SUBMIT_PAUSE", base.submit_pause)),
            stall=float(os.environ.get("TT_CHAOS_STALL", base.stall)),
            run_limit=float(os.environ.get("TT_CHAOS_LIMIT", base.run_limit)),
        )


# --- recording -----------------------------------------------------------------------------------
class Recorder:
    """Every HTTP attempt: who, which route, status (or exception name), when, how long, which key."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.lock = threading.Lock()
        self.rows: list[dict] = []
        self.events: list[dict] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    def add(self, actor: str, route: str, status, sent: float, got: float, key: str | None, note=None) -> None:
        row = {"t": round(sent - self.t0, 3), "dt": round(got - sent, 3), "actor": actor, "route": route,
               "status": status, "key": key}
        if note is not None:
            row["note"] = note
        with self.lock:
            self.rows.append(row)

    def event(self, name: str, **info) -> dict:
        entry = {"t": round(self.now(), 2), "event": name, **info}
        with self.lock:
            self.events.append(entry)
        print(f"[chaos {entry['t']:7.2f}s] {name} {info}", flush=True)
        return entry


@dataclass
class Answer:
    status: int | str | None  # HTTP status, or None when the client gave up (deadline)
    data: dict | None
    first_sent: float
    last_sent: float
    received: float
    attempts: int


def call(session: requests.Session, rec: Recorder, method: str, url: str, *, route: str, actor: str,
         body=None, key: str | None = None, deadline: float) -> Answer:
    """Send until a definitive answer (not 5xx, not a connection error or timeout); a retry is the
    same request with the same Idempotency-Key. Gives up (status None) after ``deadline``."""
    headers = {"Idempotency-Key": key} if key else {}
    delay, first, attempts = 0.2, None, 0
    while True:
        sent = time.monotonic()
        first = first if first is not None else sent
        attempts += 1
        data, note = None, None
        try:
            r = session.request(method, url, json=body, headers=headers, timeout=(5, 30))
            status = r.status_code
            try:
                data = r.json()
            except ValueError:
                note = r.text[:200]
        except requests.RequestException as exc:
            status = type(exc).__name__
        got = time.monotonic()
        rec.add(actor, route, status, sent, got, key, note)
        if isinstance(status, int) and status == 429:
            time.sleep(min(5.0, float((data or {}).get("rate_limit_delay", 1.0))))
            continue
        if isinstance(status, int) and status not in RETRY:
            return Answer(status, data, first, sent, got, attempts)
        if time.monotonic() > deadline:
            return Answer(None, None, first, sent, got, attempts)
        time.sleep(delay * random.uniform(0.5, 1.5))
        delay = min(delay * 2, 2.0)


@dataclass
class Hold:
    task: int
    worker: int
    vc: int
    got: float  # the get's answer arrived: the task was surely held from here ...
    release_sent: float | None = None  # ... until the first release attempt left
    release_status: int | str | None = None
    updated: bool | None = None
    release_attempts: int = 0
    get_attempts: int = 0


@dataclass
class Bulk:
    index: int
    key: str
    hashes: list[int]
    status: int | str | None
    content: dict | None
    attempts: int
    seconds: float


@dataclass
class Run:
    api_url: str
    project: int
    rec: Recorder
    deadline: float
    stop: threading.Event = field(default_factory=threading.Event)
    submitted_all: threading.Event = field(default_factory=threading.Event)
    holds: list[Hold] = field(default_factory=list)
    bulks: list[Bulk] = field(default_factory=list)
    sizes: Sizes = field(default_factory=Sizes.from_env)
    anomalies: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def anomaly(self, text: str) -> None:
        with self.lock:
            self.anomalies.append(f"t={self.rec.now():.2f} {text}")


def verification_of(recipe: str) -> int:
    return zlib.crc32(recipe.encode())  # the same for every worker: quorum tasks close


# --- actors --------------------------------------------------------------------------------------
def worker_loop(run: Run, index: int, w: Api) -> None:
    actor = f"w{index}"
    while not run.stop.is_set():
        key = f"get-{uuid.uuid4().hex}"  # sent on the get too: honoured if the server ever supports it
        a = call(w.http, run.rec, "GET", f"{run.api_url}/task/get/{run.project}", route="get", actor=actor,
                 key=key, deadline=run.deadline)
        if a.status is None:
            run.anomaly(f"{actor}: get gave up after {a.attempts} attempts")
            return
        body = a.data or {}
        if a.status == 200 and body.get("ok") is False and body.get("message") == NO_TASK:
            time.sleep(random.uniform(0.1, 0.4))
            continue
        if a.status != 200 or not body.get("ok"):
            run.anomaly(f"{actor}: get answered {a.status} {body}")
            time.sleep(0.5)
            continue
        task = body["content"]["task"]
        hold = Hold(task["id"], w.id, task["verification_count"], a.received, get_attempts=a.attempts)
        if task["assignee"] != w.id or task["status"] != 1:
            run.anomaly(f"{actor}: task {task['id']} handed out with assignee {task['assignee']} "
                        f"status {task['status']}")
        time.sleep(random.uniform(0, 0.01))  # "work"
        body = {"task_id": task["id"], "result": 0, "verification": verification_of(task["recipe"])}
        r = call(w.http, run.rec, "POST", f"{run.api_url}/task/release", route="release", actor=actor, body=body,
                 key=f"rel-{uuid.uuid4().hex}", deadline=run.deadline + 120)
        hold.release_sent, hold.release_status, hold.release_attempts = r.first_sent, r.status, r.attempts
        if r.status == 200 and r.data and r.data.get("ok"):
            hold.updated = (r.data.get("content") or {}).get("updated")
        else:
            run.anomaly(f"{actor}: release of {task['id']} answered {r.status} {r.data}")
        with run.lock:
            run.holds.append(hold)


def submitter_loop(run: Run, sub: Api) -> None:
    try:
        for b in range(run.sizes.bulks):
            if run.stop.is_set():
                break
            items, hashes = [], []
            for i in range(run.sizes.bulk_size):
                h = b * run.sizes.bulk_size + i + 1
                hashes.append(h)
                items.append({"project": run.project, "recipe": f"job-{b}-{i}", "hash64": h,
                              "max_assign_time": MAX_ASSIGN_TIME,
                              "verification_count": 2 if h % QUORUM_EVERY == 0 else 1})
            key = f"bulk-{uuid.uuid4().hex}"
            a = call(sub.http, run.rec, "POST", f"{run.api_url}/task/bulk_submit", route="bulk_submit",
                     actor="submitter", body={"requests": items}, key=key, deadline=run.deadline)
            run.bulks.append(Bulk(b, key, hashes, a.status, (a.data or {}).get("content"), a.attempts,
                                  round(a.received - a.first_sent, 3)))
            if a.status != 200:
                run.anomaly(f"bulk {b} answered {a.status} {a.data}")
            time.sleep(run.sizes.submit_pause)
    finally:
        run.submitted_all.set()


# --- chaos ---------------------------------------------------------------------------------------
def recovered(stack) -> str | None:
    """None when the tracker is whole again: /readyz 200, every service consumed by all its replicas,
    every gateway worker up. Otherwise what is missing."""
    system = stack.system
    try:
        r = requests.get(system.url + "/readyz", timeout=3)
        if r.status_code != 200:
            return f"/readyz {r.status_code} {r.text[:200]}"
    except requests.RequestException as exc:
        return f"/readyz {type(exc).__name__}"
    try:
        counts = system.consumers()
    except Exception as exc:  # noqa: BLE001 - broker not reachable yet
        return f"consumers: {type(exc).__name__}"
    short = {svc: n for svc, n in counts.items() if n < system.replicas}
    if short:
        return f"consumers {short}"
    if len(gateway_worker_pids(system)) < system.gateway_workers:
        return "gateway workers missing"
    return None


def wait_recovered(stack, rec: Recorder, name: str, started: float, replaced=None) -> dict:
    """``replaced``: for a killed process, a check that its replacement runs (the broker may still
    count the dead process's consumer for a moment)."""
    deadline = time.monotonic() + RECOVERY_TIMEOUT
    problem = "?"
    while time.monotonic() < deadline:
        problem = replaced() if replaced else None
        problem = problem or recovered(stack)
        if problem is None:
            return rec.event(f"{name}: recovered", seconds=round(time.monotonic() - started, 2))
        time.sleep(0.5)
    return rec.event(f"{name}: NOT recovered", seconds=RECOVERY_TIMEOUT, problem=problem)


# --- analysis ------------------------------------------------------------------------------------
def double_holds(holds: list[Hold]) -> tuple[list[str], list[str]]:
    """Pairs of holds of one task by different workers whose sure intervals [got, release_sent]
    overlap; and holds that began after an earlier hold's release closed the task."""
    by_task: dict[int, list[Hold]] = defaultdict(list)
    for h in holds:
        by_task[h.task].append(h)
    doubled, after_close = [], []
    for task, hs in by_task.items():
        hs.sort(key=lambda h: h.got)
        for i, a in enumerate(hs):
            a_end = a.release_sent if a.release_sent is not None else float("inf")
            for b in hs[i + 1:]:
                if b.worker != a.worker and b.got < a_end:
                    doubled.append(f"task {task}: worker {a.worker} held it [{a.got:.3f}, {a_end:.3f}] "
                                   f"while worker {b.worker} got it at {b.got:.3f}")
                if a.updated is True and b.got > a_end:
                    after_close.append(f"task {task}: closed by worker {a.worker}'s release, then handed to "
                                       f"worker {b.worker}")
    return doubled, after_close


def log_excerpts(path, limit: int = 60) -> dict:
    text = path.read_text(errors="replace") if path.exists() else ""
    lines = text.splitlines()
    pattern = re.compile(r"Traceback|ERROR|CRITICAL|exited with code|Error|WARNING", re.I)
    hits = [ln for ln in lines if pattern.search(ln)]
    return {
        "lines": len(lines),
        "tracebacks": sum("Traceback" in ln for ln in lines),
        "errors": sum(" ERROR " in f" {ln} " or "ERROR " in ln for ln in lines),
        "exited": [ln for ln in lines if "exited with code" in ln],
        "first_hits": hits[:limit],
    }


def run_chaos(stack, tmp_path, chaos_summary, chaos_loop, sizes: Sizes, events: str,
              extra: dict | None = None) -> dict:
    """The whole run: a project, ``sizes.workers`` workers cycling and a submitter, with
    ``chaos_loop(run, stack, t0, results)`` in a thread of its own (it appends one entry per event,
    each with its ``recovery``); then the drain, the checks, the summary (``chaos_summary.json``,
    with ``extra``'s entries as the chaos loop left them). Fails (assert) naming every check that
    did not hold; returns the summary."""
    system = stack.system
    api = Api(system.url)
    admin = api.new_manager("admin")
    r = admin.post("/project/create", {"name": "chaos", "public": True})
    assert r.status_code == 200, r.text
    pid = r.json()["content"]["id"]
    submitter = api.new_worker("submitter")
    r = submitter.post("/project/request_access", {"project": pid, "assign": False, "submit": True})
    assert r.status_code == 200, r.text
    assert admin.post(f"/project/accept_request/{pid}/{submitter.id}").status_code == 200
    workers = [api.new_worker(f"chaos-{i}") for i in range(sizes.workers)]
    assert system.consumers()["task_svc"] >= 2

    t0, wall_t0 = time.monotonic(), time.time()
    rec = Recorder(t0)
    run = Run(system.url, pid, rec, deadline=t0 + sizes.run_limit, sizes=sizes)
    chaos_results: list[dict] = []
    threads = [threading.Thread(target=worker_loop, args=(run, i, w), name=f"w{i}", daemon=True)
               for i, w in enumerate(workers)]
    threads.append(threading.Thread(target=submitter_loop, args=(run, submitter), name="submitter", daemon=True))
    chaos = threading.Thread(target=chaos_loop, args=(run, stack, t0, chaos_results), name="chaos", daemon=True)
    for t in threads:
        t.start()
    chaos.start()

    # --- drain: submissions and chaos over, then until nothing NEW remains or progress stops -------
    run.submitted_all.wait(timeout=sizes.run_limit)
    chaos.join(timeout=sizes.run_limit)
    rec.event("submissions and chaos done")
    last, last_change, progress = None, time.monotonic(), []
    while time.monotonic() < run.deadline:
        try:
            counts = dict(system.sql("SELECT status, count(*) FROM task WHERE project = %s GROUP BY status", pid))
        except Exception as exc:  # noqa: BLE001 - keep polling; the database may still be coming back
            counts = {"error": type(exc).__name__}
        snapshot = (counts.get(1, 0), counts.get(3, 0))
        if snapshot != last:
            last, last_change = snapshot, time.monotonic()
            progress.append({"t": round(rec.now(), 1), "counts": {str(k): v for k, v in counts.items()}})
        if "error" not in counts and counts.get(1, 0) == 0:
            break
        if time.monotonic() - last_change > sizes.stall:
            rec.event("drain stalled", new=snapshot[0], closed=snapshot[1])
            break
        time.sleep(2)
    rec.event("drain over")
    run.stop.set()
    for t in threads:
        t.join(timeout=180)
    stuck_threads = [t.name for t in threads if t.is_alive()]
    elapsed = rec.now()

    # --- final state ------------------------------------------------------------------------------
    rows = system.sql("SELECT id, hash64, status, assignee, verification_count FROM task WHERE project = %s", pid)
    status_counts = Counter(r[2] for r in rows)
    closed_db = status_counts.get(3, 0)
    project = call(api.http, rec, "GET", f"{system.url}/project/get/{pid}", route="final", actor="checker",
                   deadline=time.monotonic() + 60)
    project_counter = (project.data or {}).get("content", {}).get("project", {}).get("closed_task_count")
    stats = call(api.http, rec, "GET", f"{system.url}/worker/stats", route="final", actor="checker",
                 deadline=time.monotonic() + 60)
    by_worker = {s["id"]: s["closed_task_count"] for s in (stats.data or {}).get("content", {}).get("stats", [])}
    worker_closed = sum(by_worker.get(w.id, 0) for w in workers)

    accepted = {h for b in run.bulks if b.status == 200 for h in b.hashes}
    refused = {h for b in run.bulks if b.status != 200 for h in b.hashes}
    hash_counts = Counter(r[1] for r in rows)
    missing = sorted(accepted - set(hash_counts))
    duplicated = sorted(h for h, n in hash_counts.items() if n > 1)
    unexpected = sorted(set(hash_counts) - accepted)
    submitted_sum = sum((b.content or {}).get("submitted", 0) for b in run.bulks if b.status == 200)
    duplicates_sum = sum((b.content or {}).get("duplicates", 0) for b in run.bulks if b.status == 200)

    holds = list(run.holds)
    doubled, after_close = double_holds(holds)
    closes = Counter(h.task for h in holds if h.updated is True)
    closed_twice = sorted(t for t, n in closes.items() if n > 1)
    vc1_not_updated = [h for h in holds if h.vc == 1 and h.release_status == 200 and h.updated is not True]
    seen = {(h.task, h.worker) for h in holds}
    released = {(h.task, h.worker) for h in holds if h.release_status == 200}
    not_closed = [r for r in rows if r[2] != 3]
    leftovers = Counter()
    for tid, _h, status, assignee, _vc in not_closed:
        if status != 1:
            leftovers[f"status {status}"] += 1
        elif assignee is None:
            leftovers["NEW, unassigned (never handed out, or back in the pool)"] += 1
        elif (tid, assignee) not in seen:
            leftovers["NEW, assigned to a worker that never received it (get answer lost)"] += 1
        elif (tid, assignee) in released:
            leftovers["NEW, assigned to a worker whose release was answered 200"] += 1
        else:
            leftovers["NEW, held by a worker whose release got no definitive answer"] += 1
    orphans = [r[0] for r in not_closed if r[2] == 1 and r[3] is not None and (r[0], r[3]) not in seen]
    # when were the leftovers last assigned, on the test's clock (to match with the events)?
    leftover_detail = [
        {"task": tid, "status": status, "assignee": assignee, "vc": vc, "hash64": h,
         "assigned_at_t": None if at is None else round(at - wall_t0, 2),
         "seen_by_assignee": (tid, assignee) in seen,
         "holds": [asdict(x) | {"got": round(x.got - t0, 3), "release_sent": x.release_sent and round(
             x.release_sent - t0, 3)} for x in holds if x.task == tid]}
        for tid, h, status, assignee, vc, at in system.sql(
            "SELECT id, hash64, status, assignee, verification_count,"
            " extract(epoch FROM lease_deadline)::float8 - max_assign_time"
            " FROM task WHERE project = %s AND status <> 3 ORDER BY id LIMIT 30", pid)]

    statuses = Counter((row["route"], str(row["status"])) for row in rec.rows)
    five_hundreds = [row for row in rec.rows if row["status"] == 500]
    unexpected_status = [row for row in rec.rows
                         if isinstance(row["status"], int) and row["status"] not in (200, 429, 503)]
    failures_by_second = Counter((int(row["t"]), row["route"], str(row["status"])) for row in rec.rows
                                 if row["status"] != 200)

    (tmp_path / "responses.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rec.rows))
    (tmp_path / "holds.jsonl").write_text("".join(json.dumps(asdict(h)) + "\n" for h in holds))

    summary = {
        "elapsed_s": round(elapsed, 1),
        "started_unix": round(wall_t0, 3),
        "setup": {**asdict(sizes), "replicas": system.replicas, "gateway_workers": system.gateway_workers,
                  "events": events},
        "bulks": {"answered_200": sum(b.status == 200 for b in run.bulks), "not_200": len(run.bulks) - sum(
            b.status == 200 for b in run.bulks), "retried": sum(b.attempts > 1 for b in run.bulks),
            "attempts": sum(b.attempts for b in run.bulks), "submitted_sum": submitted_sum,
            "duplicates_sum": duplicates_sum},
        "tasks": {"accepted": len(accepted), "in_db": len(rows), "missing": len(missing),
                  "duplicated": len(duplicated), "unexpected": len(unexpected),
                  "from_refused_bulks_in_db": len(refused & set(hash_counts)),
                  "by_status": {str(k): v for k, v in sorted(status_counts.items())},
                  "not_closed": len(not_closed), "not_closed_why": dict(leftovers)},
        "closures": {"closed_in_db": closed_db, "project_closed_task_count": project_counter,
                     "workers_closed_task_count_sum": worker_closed, "releases_answered_updated_true": sum(
                         closes.values()), "closed_twice": len(closed_twice)},
        "holds": {"total": len(holds), "double_held": len(doubled), "handed_out_after_close": len(after_close),
                  "vc1_release_not_updated": len(vc1_not_updated),
                  "get_retried": sum(h.get_attempts > 1 for h in holds),
                  "release_retried": sum(h.release_attempts > 1 for h in holds)},
        "responses": {"total": len(rec.rows), "http_500": len(five_hundreds),
                      "unexpected_status": len(unexpected_status),
                      "by_route_status": {f"{k[0]} {k[1]}": v for k, v in sorted(statuses.items())}},
        "events": rec.events,
        "anomalies": run.anomalies[:40],
        "anomaly_count": len(run.anomalies),
        "stuck_threads": stuck_threads,
        "examples": {"missing": missing[:10], "unexpected": unexpected[:10], "double_held": doubled[:10],
                     "after_close": after_close[:10], "closed_twice": closed_twice[:10], "orphans": orphans[:10],
                     "vc1_not_updated": [asdict(h) for h in vc1_not_updated[:5]],
                     "http_500": five_hundreds[:10], "unexpected_status": unexpected_status[:10]},
        "failures_by_second": [[t, route, status, n] for (t, route, status), n in sorted(failures_by_second.items())],
        "drain_progress": progress[-30:],
        "leftovers": leftover_detail,
        "system_log": str(system.log_path),
        "system_log_summary": log_excerpts(system.log_path, limit=15),
        "files": {"responses": str(tmp_path / "responses.jsonl"), "holds": str(tmp_path / "holds.jsonl")},
    }
    summary.update(extra or {})
    (tmp_path / "system_log_excerpts.txt").write_text("\n".join(log_excerpts(system.log_path, 400)["first_hits"]))
    path = chaos_summary(summary, tmp_path / "chaos_summary.json")
    compact = {k: summary[k] for k in ("elapsed_s", "bulks", "tasks", "closures", "holds")}
    compact["responses"] = {k: v for k, v in summary["responses"].items() if k != "by_route_status"}
    print("\nCHAOS SUMMARY", json.dumps(compact, indent=1), f"\nfull summary: {path}", flush=True)

    checks = {
        "every bulk answered 200": not summary["bulks"]["not_200"],
        "every accepted task stored exactly once": not missing and not duplicated,
        "no task stored that was not accepted": not unexpected,
        "bulk answers add up (no replayed bulk answered 'duplicates')":
            submitted_sum == len(accepted) and duplicates_sum == 0,
        "every task CLOSED": not not_closed and len(rows) == len(accepted),
        "project closed_task_count == CLOSED tasks": project_counter == closed_db,
        "workers' closed_task_count sum == CLOSED tasks": worker_closed == closed_db,
        "each closure answered updated:true exactly once": not closed_twice and sum(closes.values()) == closed_db,
        "no task held by two workers at once": not doubled,
        "no task handed out after it closed": not after_close,
        "every verification_count-1 release by its holder closed the task": not vc1_not_updated,
        "no 500": not five_hundreds,
        "no unexpected status": not unexpected_status,
        "every chaos event recovered": all("NOT" not in (e.get("recovery") or {}).get("event", "NOT")
                                           for e in chaos_results),
        "no worker thread stuck": not stuck_threads,
    }
    failed = [name for name, ok in checks.items() if not ok]
    summary["checks"] = checks
    chaos_summary(summary, path)
    details = {"tasks": summary["tasks"], "closures": summary["closures"], "holds": summary["holds"],
               "http_500": len(five_hundreds), "unexpected_status": unexpected_status[:3],
               "anomalies": run.anomalies[:5]}
    assert not failed, f"chaos checks failed: {failed}; {json.dumps(details)}; summary: {path}"
    return summary
