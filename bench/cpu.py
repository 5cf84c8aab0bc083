"""CPU accounting per process group, from psutil ``cpu_times`` deltas.

Groups: the ``tracker run`` tree (``launcher``, ``gateway`` = gunicorn master and workers, one group
per service with its replicas summed), ``postgres: this db`` (backends connected to the system's
database), ``postgres: other`` (the server's background processes and backends of other databases —
other users of this machine land here), ``rabbitmq`` (every ``beam.smp``; it serves every vhost on the
machine) and ``load generator`` (the benchmark's own load processes).
"""

from __future__ import annotations

import threading
from collections import Counter

import psutil
import psycopg

PG_OURS, PG_OTHER, RABBIT, LOAD = "postgres: this db", "postgres: other", "rabbitmq", "load generator"


def _service_group(cmdline: list[str]) -> str:
    if any("gunicorn" in part for part in cmdline):
        return "gateway"
    if "serve" in cmdline:
        i = cmdline.index("serve")
        if i + 1 < len(cmdline):
            return "gateway" if cmdline[i + 1] == "gateway" else cmdline[i + 1]
    if "run" in cmdline:
        return "launcher"
    return "tracker: other"


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


class WaitSampler(threading.Thread):
    """Samples what the database's busy backends wait on (pg_stat_activity) every ``interval`` s."""

    def __init__(self, dsn: str, dbname: str, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.dsn, self.dbname, self.interval = dsn, dbname, interval
        self.samples = 0
        self.counts: Counter = Counter()
        self.halt = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.halt.wait(self.interval):
                rows = conn.execute(
                    "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU (not waiting)'), wait_event_type,"
                    " query FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
                    " AND state <> 'idle' AND backend_type = 'client backend'", (self.dbname,)).fetchall()
                self.samples += 1
                # lock waits name the statement that waits, e.g. "Lock:transactionid [INSERT INTO project_closures"
                self.counts.update(f"{w} [{' '.join(q.split())[:32]}]" if kind == "Lock" else w for w, kind, q in rows)

    def result(self) -> dict:
        """Average number of busy backends per state/wait event (top 8)."""
        n = max(1, self.samples)
        return {k: round(v / n, 2) for k, v in self.counts.most_common(8)}


class CpuProbe:
    """Snapshots CPU seconds of every interesting process; ``delta`` sums the change per group.

    With a ``dsn``, it also samples the database's wait events between ``start_waits`` and
    ``stop_waits``."""

    def __init__(self, tracker_pid: int | None, dbname: str | None, dsn: str | None = None) -> None:
        self.tracker_pid = tracker_pid
        self.dbname = dbname
        self.dsn = dsn
        self.sampler: WaitSampler | None = None

    def start_waits(self) -> None:
        if self.dsn and self.dbname:
            self.sampler = WaitSampler(self.dsn, self.dbname)
            self.sampler.start()

    def stop_waits(self) -> dict | None:
        if not self.sampler:
            return None
        self.sampler.halt.set()
        self.sampler.join(timeout=5)
        return self.sampler.result()

    def _processes(self, load_pids: list[int]):
        seen: set[int] = set()
        if self.tracker_pid:
            try:
                root = psutil.Process(self.tracker_pid)
                for proc in [root, *root.children(recursive=True)]:
                    seen.add(proc.pid)
                    yield proc, _service_group(proc.cmdline())
            except psutil.Error:
                pass
        for pid in load_pids:
            try:
                seen.add(pid)
                yield psutil.Process(pid), LOAD
            except psutil.Error:
                pass
        for proc in psutil.process_iter(["name"]):
            if proc.pid in seen:
                continue
            name = proc.info["name"] or ""
            if name == "postgres":
                try:
                    title = " ".join(proc.cmdline())
                except psutil.Error:
                    continue
                ours = bool(self.dbname) and f" {self.dbname} " in title
                yield proc, PG_OURS if ours else PG_OTHER
            elif name.startswith("beam"):
                yield proc, RABBIT

    def snapshot(self, load_pids: list[int] | None = None) -> dict:
        procs = {}
        for proc, group in self._processes(load_pids or []):
            try:
                procs[(proc.pid, proc.create_time())] = (group, _cpu(proc))
            except psutil.Error:
                continue
        t = psutil.cpu_times()
        busy = sum(t) - t.idle - getattr(t, "iowait", 0.0)
        return {"procs": procs, "busy": busy}

    @staticmethod
    def delta(before: dict, after: dict, wall: float) -> dict:
        groups: dict[str, float] = {}
        for key, (group, cpu) in after["procs"].items():
            base = before["procs"].get(key, (group, 0.0))[1]
            groups[group] = groups.get(group, 0.0) + max(0.0, cpu - base)
        busy = after["busy"] - before["busy"]
        return {
            "wall_s": round(wall, 3),
            "groups_s": {k: round(v, 3) for k, v in sorted(groups.items(), key=lambda kv: -kv[1])},
            "machine_busy_s": round(busy, 3),
            "unattributed_s": round(max(0.0, busy - sum(groups.values())), 3),
            "cores": psutil.cpu_count(),
        }


def tracker_seconds(cpu: dict) -> float:
    """CPU of the tracker's own processes (gateway, services, launcher), without PostgreSQL/RabbitMQ."""
    skip = {PG_OURS, PG_OTHER, RABBIT, LOAD}
    return sum(v for k, v in cpu["groups_s"].items() if k not in skip)
