"""Long-polls (``?wait=S``) parked in the gateway, woken by PostgreSQL notifications.

A parked request is a gevent greenlet waiting on an Event: it holds no RPC, no service worker and
no database connection, so hundreds can wait while the same gunicorn process keeps answering.
Each gateway process keeps one LISTEN connection; task_svc sends ``NOTIFY tt_task_ready,
'<project>'`` in the transaction that makes a task assignable (submit, a release back to NEW,
reclaim, reset, a chain copy), and PostgreSQL delivers it only once that transaction commits.
Lease expiry sends nothing, so a parked request also wakes at the project's next expiry, which
the service reports with its empty answer.

If the LISTEN connection is down (database restart), parked requests poll once a second until it
is back, so a wake-up is late at worst, never lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict

import psycopg

from tracker.settings import Settings
from tracker.wording import TASK_READY_CHANNEL

log = logging.getLogger("gateway.longpoll")

CHANNEL = TASK_READY_CHANNEL
POLL_WITHOUT_LISTENER = 1.0


class Waiters:
    def __init__(self, settings: Settings) -> None:
        self._url = settings.libpq_url
        self._parked: dict[int, set[threading.Event]] = defaultdict(set)
        self._listening = False
        self._started = False
        self._lock = threading.Lock()

    def park(self, project: int) -> threading.Event:
        """Register before asking for a task, so a notification in between is not missed."""
        self._ensure_listener()
        event = threading.Event()
        self._parked[project].add(event)
        return event

    def unpark(self, project: int, event: threading.Event) -> None:
        waiting = self._parked.get(project)
        if waiting is not None:
            waiting.discard(event)
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

    def _wake(self, project: int) -> None:
        for event in list(self._parked.get(project, ())):
            event.set()

    def _wake_all(self) -> None:
        for project in list(self._parked):
            self._wake(project)

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
            self._wake_all()
            time.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
