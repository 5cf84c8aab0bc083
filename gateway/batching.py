"""Coalescing of concurrent hot requests into one batched RPC (task get, task release).

A broker round trip costs more CPU than the SQL of a whole worker cycle (measured: ~1.8 ms per
HTTP+RPC request, RabbitMQ the largest share), so one RPC per request caps the tracker far below
what PostgreSQL can do. Here, calls of one route in one gateway process queue up while a batch
of the same route is in flight, and go together as the next batch: a lone request is sent at
once (no added latency when idle), and under load each RPC carries as many requests as arrived
during the previous one. The service runs a batch in one transaction (tracker.service.
batch_endpoint), each call with its own identity, checks and reply.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from gateway.rpc import RpcPool
from tracker.errors import UNAVAILABLE

MAX_BATCH = 64


@dataclass
class _Pending:
    caller: dict
    params: dict
    done: threading.Event = field(default_factory=threading.Event)
    answer: dict = field(default_factory=lambda: UNAVAILABLE)


class Coalescer:
    """One per (service, batch entrypoint) per gateway process."""

    def __init__(self, pool: RpcPool, service: str, method: str) -> None:
        self.pool = pool
        self.service = service
        self.method = method
        self._queue: list[_Pending] = []
        self._sending = False

    def call(self, caller: dict, params: dict) -> dict:
        pending = _Pending(caller, params)
        self._queue.append(pending)
        if not self._sending:
            self._sending = True
            threading.Thread(target=self._send_all, name=f"batch-{self.method}", daemon=True).start()
        pending.done.wait()
        return pending.answer

    def _send_all(self) -> None:
        """Runs while there is anything to send; the one sender of this coalescer."""
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                try:
                    answers = self.pool.call(self.service, self.method, [[p.caller, p.params] for p in batch])
                except Exception:  # noqa: BLE001 - every caller still gets an answer (503)
                    answers = UNAVAILABLE
                if not isinstance(answers, list) or len(answers) != len(batch):
                    answers = [answers if isinstance(answers, dict) else UNAVAILABLE] * len(batch)
                for pending, answer in zip(batch, answers, strict=True):
                    pending.answer = answer
                    pending.done.set()
        finally:
            self._sending = False
