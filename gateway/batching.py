"""Coalescing of concurrent hot requests into one batched RPC (task get, release, extend).

A broker round trip costs more CPU than the SQL of a whole worker cycle (measured: ~1.8 ms per
HTTP+RPC request, RabbitMQ the largest share), so one RPC per request caps the tracker far below
what PostgreSQL can do. Here, calls of one route in one gateway process queue up while a batch
of the same route is in flight, and go together as the next batch: a lone request is sent at
once (no added latency when idle), and under load each RPC carries as many requests as arrived
during the previous one. The service runs a batch in one transaction (tracker/service.py), each
call with its own identity, checks and reply; a request sent alone is simply a batch of one.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

from gateway.rpc import RpcClient
from tracker.contract import Reply
from tracker.errors import UNAVAILABLE

MAX_BATCH = 64
# Batches of one route in flight at once per gateway process. A batch spends most of its time
# waiting on database round trips, so a few in flight keep the service replicas busy; more would
# only shrink the batches.
IN_FLIGHT = int(os.environ.get("TT_BATCHES_IN_FLIGHT", "1"))


@dataclass
class _Pending:
    call: list  # [caller, operation, params]
    done: threading.Event = field(default_factory=threading.Event)
    answer: Reply = field(default_factory=lambda: UNAVAILABLE)


class Coalescer:
    """One per service per gateway process."""

    def __init__(self, rpc: RpcClient, service: str) -> None:
        self.rpc = rpc
        self.service = service
        self._queue: list[_Pending] = []
        self._senders = 0

    def call(self, call: list) -> Reply:
        """``call``: ``[caller, operation, params]`` (tracker/contract.py)."""
        pending = _Pending(call)
        self._queue.append(pending)
        if self._senders < IN_FLIGHT:
            self._senders += 1
            threading.Thread(target=self._send_all, name=f"batch-{self.service}", daemon=True).start()
        pending.done.wait()
        return pending.answer

    def _send_all(self) -> None:
        """Runs while there is anything to send; one of at most IN_FLIGHT senders."""
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                try:
                    answers = self.rpc.dispatch(self.service, [p.call for p in batch])
                except Exception:  # noqa: BLE001 - every caller still gets an answer (503)
                    answers = [UNAVAILABLE] * len(batch)
                for pending, answer in zip(batch, answers, strict=True):
                    pending.answer = answer
                    pending.done.set()
        finally:
            self._senders -= 1
