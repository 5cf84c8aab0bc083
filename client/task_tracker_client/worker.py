"""The worker loop: fetch tasks, run a handler on each, release the result, keep leases alive, and stop
gracefully.

Threads and why:
- the thread that calls ``run`` fetches: it long-polls (``wait``) and, when several handler slots
  are free, asks for that many tasks in one request (``count``), so a fleet of handlers costs one
  get per batch instead of one per task;
- ``concurrency`` handler threads run the handler and release (OK / FAIL with the traceback logged
  to the tracker / SKIP on ``Skip``);
- a lease keeper extends the lease of any task whose handler has run past half of its
  ``max_assign_time``, so a slow handler keeps its task instead of seeing it handed to another
  worker.

Graceful stop (``stop()``, SIGINT or SIGTERM): no new gets; tasks in flight finish; after ``grace``
seconds those still running are released as SKIP (back to the queue at once, retries unchanged).
A get already in flight when the stop comes is waited for (at most ``wait`` seconds) and whatever
it brings is released as SKIP, so no task is left stranded under a lease. A second signal skips
the grace period.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from task_tracker_client.client import Client
from task_tracker_client.errors import NotFound, PausedWorker, ServerError, TrackerError
from task_tracker_client.models import Result, Task

log = logging.getLogger("task_tracker_client.worker")

_COUNTER = {Result.OK: "ok", Result.FAIL: "failed", Result.SKIP: "skipped"}
MAX_LOG_MESSAGE = 60_000  # the tracker accepts 65,536 characters per log message


class Skip(Exception):  # noqa: N818 - it is a control signal, not an error
    """Raise from a handler to release the task as SKIP (back to the queue, retries unchanged)."""


class Fail(Exception):  # noqa: N818
    """Raise from a handler to release the task as FAIL with just this message logged to the tracker
    (any other exception also fails the task, and logs its whole traceback)."""


@dataclass
class WorkerStats:
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    not_updated: int = 0       # releases the server refused (lease lost, awaiting verification)
    abandoned: int = 0         # released SKIP by a stop after the grace period
    lease_extensions: int = 0
    leases_lost: int = 0
    gets: int = 0
    empty_gets: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    @property
    def done(self) -> int:
        return self.ok + self.failed + self.skipped + self.abandoned


@dataclass
class _InFlight:
    task: Task
    started: float
    extend_at: float            # monotonic time of the next lease extension (inf: none needed)
    lock: threading.Lock = field(default_factory=threading.Lock)
    finished: bool = False      # the handler thread owns the release
    abandoned: bool = False     # the stop released it as SKIP


def verification_of(value: Any) -> int:
    """A handler's return value as a verification number: an int as is, text or bytes by a stable
    64-bit hash (so workers producing the same output agree), anything else 0."""
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, (bytes, bytearray)):
        return int.from_bytes(hashlib.blake2b(value, digest_size=8).digest(), "big", signed=True)
    return 0


class Worker:
    """Run ``handler(task)`` on the tasks of ``project`` with ``concurrency`` threads.

    The handler returning normally releases the task OK (its return value may carry the
    verification, see ``verification_of``); raising ``Skip`` releases SKIP; raising anything else
    releases FAIL and logs the traceback to the tracker (scope ``scope``).
    """

    def __init__(self, client: Client, project: int, handler: Callable[[Task], Any], concurrency: int = 4, *,
                 wait: int = 10, grace: float = 30.0, scope: str = "worker", log_failures: bool = True,
                 handle_signals: bool = True, gather: float = 0.002) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.client = client
        self.project = int(project)
        self.handler = handler
        self.concurrency = int(concurrency)
        self.wait = max(0, min(30, int(wait)))
        self.grace = grace
        self.scope = scope
        self.log_failures = log_failures
        self.handle_signals = handle_signals
        self.gather = gather  # seconds to let more slots free up before a get, so gets carry more tasks
        self.stats = WorkerStats()
        self._inflight: dict[int, _InFlight] = {}
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._abandon = threading.Event()
        self._finished = threading.Event()
        self._keeper_wake = threading.Event()
        self._keeper_due = 0.0  # monotonic time the lease keeper wakes up at next (it sets this)
        self._queue: queue.SimpleQueue[_InFlight | None] = queue.SimpleQueue()  # C: no Condition per put/get
        self._fatal: BaseException | None = None

    # --- control ----------------------------------------------------------------------------------------
    def stop(self, abandon: bool = False) -> None:
        """Ask the loop to stop (thread- and signal-safe). ``abandon``: do not wait the grace period."""
        self._stopping.set()
        if abandon:
            self._abandon.set()
        with self._cond:
            self._cond.notify_all()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def in_flight(self) -> list[Task]:
        with self._cond:
            return [e.task for e in self._inflight.values()]

    def run(self, max_tasks: int | None = None, until_empty: bool = False) -> WorkerStats:
        """Work until stopped, ``max_tasks`` tasks were taken, or (``until_empty``) the project has no
        assignable task and none is in flight. Returns the counters; raises the first fatal error
        (bad credentials, no access, unknown project) after in-flight tasks are settled."""
        restore = self._install_signals()
        threads = [threading.Thread(target=self._handler_loop, name=f"ttc-handler-{i}", daemon=True)
                   for i in range(self.concurrency)]
        keeper = threading.Thread(target=self._lease_keeper, name="ttc-lease-keeper", daemon=True)
        for t in [*threads, keeper]:
            t.start()
        try:
            self._fetch_loop(max_tasks, until_empty)
        except BaseException as exc:  # noqa: BLE001 - settle in-flight tasks first, then re-raise
            self._fatal = self._fatal or exc
        finally:
            self._stopping.set()
            self._drain()
            for _ in threads:
                self._queue.put(None)
            self._finished.set()
            self._keeper_wake.set()
            for t in threads:
                t.join(timeout=1.0)
            restore()
        if self._fatal is not None:
            raise self._fatal
        return self.stats

    # --- fetching ---------------------------------------------------------------------------------------
    def _fetch_loop(self, max_tasks: int | None, until_empty: bool) -> None:
        taken = 0
        failures = 0
        while not self._stopping.is_set():
            if max_tasks is not None and taken >= max_tasks:
                return
            free = self._free_slots()
            if free == 0:
                return  # stopping
            if max_tasks is not None:
                free = min(free, max_tasks - taken)
            wait = 0 if until_empty else self.wait
            t0 = time.monotonic()
            try:
                tasks = (self.client.get_tasks(self.project, count=min(free, 100), wait=wait)
                         if self.concurrency > 1 else self._one(wait))
                failures = 0
            except PausedWorker as exc:
                log.warning("paused by a manager (%s); asking again in 30 s", exc.message)
                self._stopping.wait(30)
                continue
            except ServerError as exc:  # unreachable through every retry: keep the worker alive
                failures += 1
                pause = min(60.0, 2.0 ** failures)
                log.warning("task get failed (%s); trying again in %.0f s", exc, pause)
                self._stopping.wait(pause)
                continue
            self.stats.add("gets")
            if tasks:
                taken += len(tasks)
                self._dispatch(tasks)
                continue
            self.stats.add("empty_gets")
            if until_empty:
                if not self._wait_for_change():
                    return
            elif time.monotonic() - t0 < wait / 2:
                # The server ignored ``wait`` (the original tracker): do not spin.
                self._stopping.wait(min(5.0, max(1.0, wait / 2)))

    def _one(self, wait: int) -> list[Task]:
        task = self.client.get_task(self.project, wait=wait)
        return [task] if task else []

    def _free_slots(self) -> int:
        """Block until at least one handler slot is free (0 when stopping). Then wait ``gather``
        seconds more if others are about to free up, so the next get asks for several tasks."""
        with self._cond:
            while len(self._inflight) >= self.concurrency and not self._stopping.is_set():
                self._cond.wait(0.5)
            if self._stopping.is_set():
                return 0
            if self.gather and self._inflight and self.concurrency - len(self._inflight) < self.concurrency // 2:
                self._cond.wait(self.gather)
            return self.concurrency - len(self._inflight)

    def _wait_for_change(self) -> bool:
        """For ``until_empty``: False when nothing is in flight (the queue is really empty), else wait
        until an in-flight task settles (it may go back to the queue) and ask again."""
        with self._cond:
            if not self._inflight:
                return False
            before = len(self._inflight)
            while len(self._inflight) >= before and not self._stopping.is_set():
                self._cond.wait(0.5)
            return True

    def _dispatch(self, tasks: list[Task]) -> None:
        if self._stopping.is_set():  # the stop came while the get was in flight: give them back
            for task in tasks:
                self._release(task, Result.SKIP)
                self.stats.add("skipped")
            return
        now = time.monotonic()
        entries = []
        with self._cond:
            for task in tasks:
                lease = task.max_assign_time or 0
                entry = _InFlight(task, now, now + lease / 2 if lease > 0 else float("inf"))
                self._inflight[task.id] = entry
                entries.append(entry)
        for entry in entries:
            self._queue.put(entry)
        # Wake the keeper only for a deadline before its next planned look (≤ 1 s away): with the
        # usual leases of minutes a get costs no keeper wake-up at all.
        if min(e.extend_at for e in entries) < self._keeper_due:
            self._keeper_wake.set()

    # --- handling ---------------------------------------------------------------------------------------
    def _handler_loop(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is None:
                return
            try:
                self._handle(entry)
            finally:
                with self._cond:
                    self._inflight.pop(entry.task.id, None)
                    self._cond.notify_all()

    def _handle(self, entry: _InFlight) -> None:
        task = entry.task
        verification = 0
        try:
            value = self.handler(task)
        except Skip:
            result = Result.SKIP
        except Exception as exc:  # noqa: BLE001 - any handler error fails the task
            result = Result.FAIL
            self._report_failure(task, exc)
        else:
            result = Result.OK
            verification = verification_of(value)
        with entry.lock:
            if entry.abandoned:
                return  # the stop released it already
            entry.finished = True
        updated = self._release(task, result, verification)
        self.stats.add(_COUNTER[result])
        if updated is False:
            self.stats.add("not_updated")

    def _report_failure(self, task: Task, exc: BaseException) -> None:
        if isinstance(exc, Fail):
            text = str(exc)
        else:
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        log.warning("task %s failed: %s", task.id, exc)
        if self.log_failures:
            message = f"task {task.id} failed:\n{text}"
            if len(message) > MAX_LOG_MESSAGE:
                message = message[:1000] + "\n…\n" + message[-(MAX_LOG_MESSAGE - 1100):]
            try:
                self.client.log("error", message, scope=self.scope)
            except TrackerError as err:
                log.warning("could not log the failure of task %s to the tracker: %s", task.id, err)

    def _release(self, task: Task, result: Result, verification: int = 0) -> bool | None:
        try:
            return self.client.release(task.id, result, verification)
        except TrackerError as exc:
            log.error("release of task %s (%s) failed: %s", task.id, result.name, exc)
            return None

    # --- leases -----------------------------------------------------------------------------------------
    def _lease_keeper(self) -> None:
        while not self._finished.is_set():
            now = time.monotonic()
            next_due = now + 1.0
            with self._cond:
                entries = list(self._inflight.values())
            for entry in entries:
                if entry.extend_at <= now and not (entry.finished or entry.abandoned):
                    self._extend(entry, now)
            with self._cond:  # under the lock _dispatch adds under: a task added later sees this due
                for entry in self._inflight.values():
                    next_due = min(next_due, entry.extend_at)
                self._keeper_due = next_due
            self._keeper_wake.wait(max(0.01, next_due - time.monotonic()))
            self._keeper_wake.clear()

    def _extend(self, entry: _InFlight, now: float) -> None:
        task = entry.task
        lease = task.max_assign_time
        try:
            kept = self.client.extend(task.id, lease)
        except NotFound as exc:
            log.warning("cannot extend the lease of task %s (%s): the tracker has no /task/extend, or the "
                        "task is gone", task.id, exc.message)
            entry.extend_at = float("inf")
            return
        except TrackerError as exc:
            log.warning("lease extension of task %s failed (%s); trying again", task.id, exc)
            entry.extend_at = now + min(1.0, lease / 4)
            return
        if kept:
            entry.extend_at = time.monotonic() + lease / 2
            self.stats.add("lease_extensions")
        else:
            entry.extend_at = float("inf")
            self.stats.add("leases_lost")
            log.warning("lost the lease of task %s (reclaimed or reassigned); its release will be refused",
                        task.id)

    # --- stopping ---------------------------------------------------------------------------------------
    def _drain(self) -> None:
        """Wait up to ``grace`` seconds for in-flight tasks, then release the rest as SKIP."""
        deadline = time.monotonic() + (self.grace or 0)
        with self._cond:
            while self._inflight and time.monotonic() < deadline and not self._abandon.is_set():
                self._cond.wait(0.1)
            leftover = list(self._inflight.values())
        for entry in leftover:
            with entry.lock:
                if entry.finished:
                    continue
                entry.abandoned = True
            self._release(entry.task, Result.SKIP)
            self.stats.add("abandoned")
            log.warning("task %s still running after the grace period: released as SKIP", entry.task.id)

    def _install_signals(self) -> Callable[[], None]:
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            return lambda: None

        def on_signal(signum: int, frame: Any) -> None:
            first = not self._stopping.is_set()
            log.warning("%s: %s", signal.Signals(signum).name,
                        "stopping: finishing tasks in flight" if first else "stopping now")
            self.stop(abandon=not first)

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for s, handler in previous.items():
                signal.signal(s, handler)

        return restore
