"""Ship Python ``logging`` records to the tracker's ``/log/*`` routes.

Records are queued and sent by one background thread, so logging never blocks a handler on the
network and a tracker outage never raises into the program. The HTTP libraries' own records
(``httpx``, ``httpcore``) and this package's are never shipped: sending them would log the
sending, forever.
"""

from __future__ import annotations

import logging
import queue
import threading

from task_tracker_client.client import Client
from task_tracker_client.errors import TrackerError

_NEVER_SHIPPED = ("httpx", "httpcore", "task_tracker_client")


def route_for(levelno: int) -> str:
    """Python level → the tracker's four log routes."""
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warn"
    if levelno >= logging.INFO:
        return "info"
    return "trace"


class TrackerLogHandler(logging.Handler):
    """``logging.getLogger().addHandler(TrackerLogHandler(client, scope="crawl"))``.

    ``scope`` defaults to the record's logger name. At most ``capacity`` records wait; beyond that
    new ones are dropped (counted in ``dropped``) rather than growing memory without bound.
    """

    def __init__(self, client: Client, scope: str | None = None, level: int = logging.INFO,
                 capacity: int = 10_000) -> None:
        super().__init__(level)
        self.client = client
        self.scope = scope
        self.dropped = 0
        self._queue: queue.Queue[logging.LogRecord | None] = queue.Queue(capacity)
        self._thread = threading.Thread(target=self._send_loop, name="ttc-log-shipper", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(_NEVER_SHIPPED):
            return
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def _send_loop(self) -> None:
        while True:
            record = self._queue.get()
            try:
                if record is None:
                    return
                try:
                    message = self.format(record)
                    self.client.log(route_for(record.levelno), message[:65_536] or "-",
                                    scope=(self.scope or record.name or "python")[:256], timestamp=int(record.created))
                except (TrackerError, ValueError):
                    self.dropped += 1
            finally:
                self._queue.task_done()

    def flush(self) -> None:
        """Wait until every queued record was sent (or dropped)."""
        if self._thread.is_alive():
            self._queue.join()

    def close(self) -> None:
        if self._thread.is_alive():
            self.flush()
            self._queue.put(None)
            self._thread.join(timeout=5)
        super().close()
