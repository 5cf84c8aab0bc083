"""The load generator: worker cycles (acquire a task, release it OK) from several processes.

Each load process runs one thread per simulated worker. HTTP workers keep one keep-alive socket
each (requests prebuilt, answers read by Content-Length); SQL workers (the storage floor) one database
connection each.
Every run is time-based: after ``warmup`` seconds a measurement window of ``duration`` seconds
opens; a cycle counts when its release completes inside the window, a latency when its request
completes inside it. The parent takes CPU snapshots (``bench.cpu``) at the window's edges, so the
load processes' own CPU is reported next to the system's.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from bench.floor import NO_TASK, BareDriver, StoreDriver

RELEASE_PATH = "/task/release"


class HttpDriver:
    """One worker over one keep-alive connection: GET /task/get/{project}, POST /task/release.

    Requests are written as prebuilt bytes and answers read by Content-Length on a plain socket:
    ``http.client`` parses every header block with the email package, which made the load
    generator cost half as much CPU as the gateway it measures (and it shares the machine).
    """

    def __init__(self, target: dict, ident: tuple[int, str]) -> None:
        self.address = (target["host"], target["port"])
        host = f"{target['host']}:{target['port']}"
        credentials = f"X-Worker-ID: {ident[0]}\r\nX-Secret: {ident[1]}\r\n"
        self.get_request = (f"GET /task/get/{target['project']} HTTP/1.1\r\nHost: {host}\r\n"
                            f"{credentials}\r\n").encode()
        self.post_head = (f"POST {RELEASE_PATH} HTTP/1.1\r\nHost: {host}\r\n{credentials}"
                          "Content-Type: application/json\r\nContent-Length: ").encode()
        self.sock: socket.socket | None = None
        self.buffer = b""

    def _request(self, request: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=60)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buffer = b""
        try:
            self.sock.sendall(request)
            while (end := self.buffer.find(b"\r\n\r\n")) < 0:
                self._fill()
            head, self.buffer = self.buffer[:end].decode("latin-1"), self.buffer[end + 4:]
            status = int(head[9:12])
            length, close = 0, False
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                name = name.lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection":
                    close = value.strip().lower() == "close"
            while len(self.buffer) < length:
                self._fill()
            body, self.buffer = self.buffer[:length], self.buffer[length:]
        except (OSError, ValueError):
            self.close()
            raise
        if close:
            self.close()
        return status, body

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("connection closed by the server")
        self.buffer += chunk

    def acquire(self):
        status, data = self._request(self.get_request)
        if status != 200:
            return status, None
        doc = json.loads(data)
        return status, (doc["content"]["task"]["id"] if doc["ok"] else NO_TASK)

    def release(self, task_id: int):
        body = b'{"task_id": %d, "result": 0}' % task_id
        status, data = self._request(self.post_head + b"%d\r\n\r\n" % len(body) + body)
        return status, status == 200 and json.loads(data)["content"]["updated"]

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


DRIVERS = {"http": HttpDriver, "sql-bare": BareDriver, "sql-store": StoreDriver}


@dataclass
class Stats:
    cycles: int = 0
    acquire_s: list = field(default_factory=list)
    release_s: list = field(default_factory=list)
    codes: Counter = field(default_factory=Counter)  # "get 200", "release 503", …
    no_task: int = 0
    not_updated: int = 0
    errors: Counter = field(default_factory=Counter)  # exceptions by type

    def merge(self, other: Stats) -> None:
        self.cycles += other.cycles
        self.acquire_s += other.acquire_s
        self.release_s += other.release_s
        self.codes.update(other.codes)
        self.no_task += other.no_task
        self.not_updated += other.not_updated
        self.errors.update(other.errors)


def _worker_loop(driver, win_start: float, win_end: float, stats: Stats) -> None:
    clock = time.monotonic
    while clock() < win_end:
        t0 = clock()
        try:
            status, task = driver.acquire()
        except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
            stats.errors[f"get {type(exc).__name__}"] += 1
            time.sleep(0.05)
            continue
        t1 = clock()
        if win_start <= t1 <= win_end:
            stats.acquire_s.append(t1 - t0)
            stats.codes[f"get {status}"] += 1
            stats.no_task += task == NO_TASK
        if task is None or task == NO_TASK:
            time.sleep(0.02)
            continue
        try:
            status, updated = driver.release(task)
        except Exception as exc:  # noqa: BLE001
            stats.errors[f"release {type(exc).__name__}"] += 1
            continue
        t2 = clock()
        if win_start <= t2 <= win_end:
            stats.release_s.append(t2 - t1)
            stats.codes[f"release {status}"] += 1
            if status == 200 and updated:
                stats.cycles += 1
            elif status == 200:
                stats.not_updated += 1


def _process_main(kind: str, target: dict, idents: list, start_at, go, warmup: float, duration: float,
                  out: mp.Queue) -> None:
    try:
        drivers = [DRIVERS[kind](target, ident) for ident in idents]
    except Exception as exc:  # noqa: BLE001
        out.put(("error", os.getpid(), repr(exc)))
        return
    out.put(("ready", os.getpid(), None))
    go.wait()
    win_start = start_at.value + warmup
    win_end = win_start + duration
    per_thread = [Stats() for _ in drivers]
    threads = [threading.Thread(target=_worker_loop, args=(d, win_start, win_end, s), daemon=True)
               for d, s in zip(drivers, per_thread, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = Stats()
    for s in per_thread:
        total.merge(s)
    for d in drivers:
        d.close()
    out.put(("result", os.getpid(), total))


@dataclass
class LoadResult:
    stats: Stats
    duration: float
    cpu: dict | None
    procs: int
    failures: list


def run_load(kind: str, target: dict, idents: list, duration: float, warmup: float, procs: int,
             probe=None, on_start=None) -> LoadResult:
    """Run ``len(idents)`` concurrent workers spread over ``procs`` processes for one window.

    ``on_start`` (optional) is called once every load process is ready, as the load starts
    (``warmup`` + 0.2 s before the window opens): what the window measures the fleet during."""
    ctx = mp.get_context("spawn")
    procs = max(1, min(procs, len(idents)))
    out = ctx.Queue()
    go = ctx.Event()
    start_at = ctx.Value("d", 0.0)
    shares = [idents[i::procs] for i in range(procs)]
    children = [ctx.Process(target=_process_main, args=(kind, target, share, start_at, go, warmup, duration, out),
                            daemon=True) for share in shares]
    for child in children:
        child.start()
    failures = []
    for _ in children:
        try:
            tag, pid, info = out.get(timeout=120)
        except queue.Empty:
            failures.append("a load process did not start in 120 s")
            break
        if tag == "error":
            failures.append(f"load process {pid}: {info}")
    if failures:
        go.set()
        for child in children:
            child.kill()
        raise RuntimeError("; ".join(failures))
    start_at.value = time.monotonic() + 0.2
    go.set()
    if on_start is not None:
        on_start()
    load_pids = [c.pid for c in children]
    cpu = None
    win_start = start_at.value + warmup
    time.sleep(max(0.0, win_start - time.monotonic()))
    before = probe.snapshot(load_pids) if probe else None
    t_before = time.monotonic()
    if probe:
        probe.start_waits()
    time.sleep(max(0.0, win_start + duration - time.monotonic()))
    if probe:
        cpu = probe.delta(before, probe.snapshot(load_pids), time.monotonic() - t_before)
        cpu["pg_busy_backends"] = probe.stop_waits()
    total = Stats()
    for _ in children:
        try:
            tag, pid, info = out.get(timeout=duration + 180)
        except queue.Empty:
            failures.append("a load process did not report")
            break
        total.merge(info)
    for child in children:
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
    return LoadResult(total, duration, cpu, procs, failures)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1) of seconds, returned in milliseconds."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(q * len(ordered) + 0.999999) - 1))
    return round(ordered[rank] * 1000, 3)


def latency(values: list[float]) -> dict:
    mean = round(1000 * sum(values) / len(values), 3) if values else None
    return {"n": len(values), "p50": percentile(values, 0.5), "p99": percentile(values, 0.99),
            "max": percentile(values, 1.0), "mean": mean}
