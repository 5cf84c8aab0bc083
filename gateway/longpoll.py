"""Long-polls (``?wait=S``) parked in the gateway, woken by PostgreSQL notifications.

A parked request is a gevent greenlet waiting on an Event: it holds no RPC, no service worker and
no database connection, so hundreds can wait while the same gunicorn process keeps answering.
Each gateway process keeps one LISTEN connection; task_svc sends ``NOTIFY tt_task_ready,
'<project>'`` in the transaction that makes a task assignable (submit, a release back to NEW,
reclaim, reset, a chain copy), and PostgreSQL delivers it only once that transaction commits.
Lease expiry sends nothing, so a parked request also wakes at the project's next expiry, which
the service reports with its empty answer.

A notification wakes at most ``WAKE_AT_ONCE`` of a project's parked requests, oldest first, and
each woken request that is handed something wakes the next (``pass_on``): a submit of one task to
a project with 10,000 parked requests costs at most 64 asks per gateway process, not 10,000
(which queued behind each other in the batcher past the RPC deadline and answered 503, measured
by bench/many_clients.py), and a submit of many tasks still reaches every waiter, a batch at a
time. A woken request that finds nothing parks again at the back: nothing was left for the
others either.

If the LISTEN connection is down (database restart), parked requests poll once a second until it
is back, so a wake-up is late at worst, never lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, defaultdict

import psycopg

from tracker.settings import Settings
from tracker.wording import TASK_READY_CHANNEL

log = logging.getLogger("gateway.longpoll")

CHANNEL = TASK_READY_CHANNEL
POLL_WITHOUT_LISTENER = 1.0
WAKE_AT_ONCE = 64  # parked requests one notification wakes: one full batch of asks (gateway/batching.py)


class Waiters:
    def __init__(self, settings: Settings) -> None:
        self._url = settings.libpq_url
        # per project, in parking order: the oldest are woken first (popitem(last=False) is one
        # atomic step, whichever thread wakes)
        self._parked: dict[int, OrderedDict[threading.Event, None]] = defaultdict(OrderedDict)
        self._listening = False
        self._started = False
        self._lock = threading.Lock()

    def park(self, project: int) -> threading.Event:
        """Register before asking for a task, so a notification in between is not missed."""
        self._ensure_listener()
        event = threading.Event()
        self._parked[project][event] = None
        return event

    def unpark(self, project: int, event: threading.Event) -> None:
        waiting = self._parked.get(project)
        if waiting is not None:
            waiting.pop(event, None)
            if not waiting:
                self._parked.pop(project, None)

    def wait(self, event: threading.Event, timeout: float) -> None:
        if not self._listening:
            timeout = min(timeout, POLL_WITHOUT_LISTENER)
        event.wait(max(0.0, timeout))

    def _ensure_listener(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._listen_forever, name="longpoll-listener", daemon=True).start()

    def pass_on(self, project: int) -> None:
        """A woken request was handed something: there may be more, wake the next one."""
        self._wake(project, 1)

    def _wake(self, project: int, count: int | None = WAKE_AT_ONCE) -> None:
        """Wake the ``count`` oldest parked requests (None: all). A woken one leaves the queue (it
        will ask anyway; a notification meanwhile wakes others), and parks again at the back before
        it asks."""
        waiting = self._parked.get(project)
        if waiting is None:
            return
        for _ in range(len(waiting) if count is None else count):
            try:
                event, _ = waiting.popitem(last=False)
            except KeyError:
                return
            event.set()

    def _wake_all(self, count: int | None = WAKE_AT_ONCE) -> None:
        for project in list(self._parked):
            self._wake(project, count)

    def _listen_forever(self) -> None:
        backoff = 0.5
        while True:
            try:
                with psycopg.connect(self._url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._listening = True
                    backoff = 0.5
                    self._wake_all()  # anything committed while we were not listening
                    for note in conn.notifies():
                        if note.payload.isdigit():
                            self._wake(int(note.payload))
            except Exception as exc:  # noqa: BLE001 - any connection failure: retry
                log.warning("long-poll listener lost the database: %s", exc.__class__.__name__)
            self._listening = False
            self._wake_all(None)  # every parked request: they poll (POLL_WITHOUT_LISTENER) until it is back
            time.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
