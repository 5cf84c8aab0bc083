"""The service side of every RPC: one decorator that makes a nameko entrypoint out of a handler.

Every entrypoint takes ``(caller, params)`` and returns a reply dict (tracker.errors). The handler
runs in one database transaction with the caller's identity resolved inside it; an ApiError rolls
the transaction back (nothing changes on a refused request) and becomes its reply; a database
outage becomes 503. ``@endpoint(once=True)`` marks a state-changing entrypoint: its reply is
stored with its effect, so a redelivered or retried request answers the first reply instead of
acting twice (tracker/idempotency.py).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import nameko.rpc
from amqp.exceptions import AMQPError
from kombu.exceptions import KombuError
from nameko.amqp.publish import Publisher
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, PendingRollbackError

from tracker import access, idempotency, identity
from tracker.db import script, scripted_transaction, transaction
from tracker.errors import UNAVAILABLE, ApiError
from tracker.identity import identify

log = logging.getLogger("tracker.service")

Handler = Callable[..., dict]


class Rpc(nameko.rpc.Rpc):
    """nameko's RPC entrypoint, but a reply that cannot be published does not kill the service.

    nameko 2.14 lets the publish error escape, which kills the container and every in-flight
    request with it (seen when RabbitMQ restarts). The request is simply left unacknowledged: the
    broker requeues it when the old channel dies, and its redelivery answers the stored reply
    (tracker/idempotency.py) instead of acting twice.
    """

    def handle_result(self, message, worker_ctx, result, exc_info):
        try:
            return super().handle_result(message, worker_ctx, result, exc_info)
        except (KombuError, AMQPError, OSError) as exc:
            log.warning("could not reply to %s (%s); left for redelivery", self.method_name, exc.__class__.__name__)
            return result, exc_info


rpc = Rpc.decorator


class ReplyPublisher(Publisher):
    """Replies go out transient and unconfirmed. A confirm is a broker round trip per reply
    (measured: ~15 % of task_svc's time), and it buys nothing: a lost reply already means a
    timeout for the waiting gateway and a redelivery that replays the stored reply."""

    use_confirms = False
    delivery_mode = 1  # transient


nameko.rpc.Responder.publisher_cls = ReplyPublisher
DEADLINE_MARGIN = 0.5  # seconds


def too_late(caller: dict) -> bool:
    """The gateway has stopped waiting (its deadline, minus a margin for the reply's way back):
    acting now would change state for a client that was already told 503."""
    deadline = caller.get("deadline")
    return deadline is not None and time.time() > deadline - DEADLINE_MARGIN


def _keep(caller: dict) -> int:
    return idempotency.KEYED_WINDOW if caller.get("keyed") else idempotency.REDELIVERY_WINDOW


def _run(service, handler: Handler, caller: dict, params: dict, request: str | None) -> dict:
    with transaction() as conn:
        ident = identify(conn, caller)
        keep = _keep(caller)
        if request and caller.get("keyed"):
            stored = idempotency.lookup(conn, request)
            if stored is not None:
                return stored
        answer = handler(service, conn, ident, params)
        if request and not answer.get("park"):
            idempotency.record(conn, request, answer, keep)
        return answer


def _replay(request: str | None) -> dict | None:
    """The stored reply of a request that committed in an earlier run, if any."""
    if not request:
        return None
    with transaction() as conn:
        return idempotency.lookup(conn, request)


def endpoint(handler: Handler | None = None, *, once: bool = False) -> Any:
    if handler is None:
        return functools.partial(endpoint, once=once)

    @functools.wraps(handler)
    def entry(self, caller: dict | None = None, params: dict | None = None) -> dict:
        caller, params = caller or {}, params or {}
        if too_late(caller):
            return UNAVAILABLE
        request = caller.get("request") if once else None
        try:
            try:
                return _run(self, handler, caller, params, request)
            except idempotency.Replayed:
                return _replay(request) or UNAVAILABLE
            except ApiError as exc:
                # A run refused only because an earlier run of it committed (e.g. a redelivered
                # submit meeting its own task as a duplicate) answers what that run answered;
                # never to a caller whose credentials failed.
                if exc.status == 401:
                    return exc.as_reply()
                return _replay(request) or exc.as_reply()
        except (OperationalError, PendingRollbackError) as exc:
            log.warning("database unavailable in %s: %s", handler.__name__, exc.__class__.__name__)
            return UNAVAILABLE
        except DBAPIError as exc:
            if exc.connection_invalidated:
                return UNAVAILABLE
            raise

    return rpc(entry)


def _begin(conn, calls: list, project_of: Callable[[dict], int] | None) -> None:
    """Open the batch's transaction in the round trip that reads the identities (and, for
    project routes, the access rows) of the whole batch (tracker.db.script)."""
    queries = {"identity": identity.preload_query([caller for caller, _ in calls])}
    pairs = []
    if project_of is not None:
        pairs = [(project_of(params), caller["worker_id"]) for caller, params in calls
                 if caller.get("worker_id") is not None and not caller.get("session_digest")]
        queries["access"] = access.preload_query(pairs)
    wanted = [name for name, query in queries.items() if query is not None]
    results = dict(zip(wanted, script(conn, "BEGIN", *(queries[name] for name in wanted))[1:], strict=True))
    identity.use_preloaded(results.get("identity", []))
    if project_of is not None:
        access.use_preloaded(pairs, results.get("access", []))


def _commit(conn, fresh: list[tuple[str, dict, int]]) -> None:
    """Store the batch's replies and commit, in one round trip; a reply stored before (an earlier
    run of one of the calls committed) fails both: Replayed."""
    if not fresh:
        script(conn, "COMMIT")
        return
    try:
        script(conn, (idempotency.RECORD_STRICT, idempotency.record_params(fresh)), "COMMIT")
    except IntegrityError as exc:
        if idempotency.replayed(exc):
            raise idempotency.Replayed("batch") from exc
        raise


FastPath = Callable[[Any, Any, list], list]


def _run_fast(service, conn, fast: FastPath, calls: list, stored: dict, answers: list, fresh: list) -> set[int]:
    """Let the set-based fast path answer what it can; the rest take the per-call handler."""
    candidates, idents = [], []
    for i, (caller, _) in enumerate(calls):
        if caller.get("request") in stored:
            continue
        try:
            idents.append(identify(conn, caller))
        except ApiError:
            continue  # the per-call path answers it (401)
        candidates.append(i)
    done = set()
    for i, answer in zip(candidates, fast(service, conn, [(ident, calls[i][1]) for i, ident in
                                                          zip(candidates, idents, strict=True)]), strict=True):
        if answer is None:
            continue
        answers[i] = answer
        done.add(i)
        request = calls[i][0].get("request")
        if request:
            fresh.append((request, answer, _keep(calls[i][0])))
    return done


def _run_batch(service, handler: Handler, calls: list, order: Callable[[dict], Any], replay: bool,
               project_of: Callable[[dict], int] | None = None, fast: FastPath | None = None) -> list[dict]:
    answers: list[dict] = [UNAVAILABLE] * len(calls)
    with preloaded(), scripted_transaction() as conn:
        _begin(conn, calls, project_of)
        # Stored replies are looked up first only where a hit is likely: client-keyed calls, or
        # a rerun after a replay was detected. Otherwise storing detects it (Replayed, below).
        looked_up = [c["request"] for c, _ in calls if c.get("request") and (replay or c.get("keyed"))]
        stored = idempotency.lookup_many(conn, looked_up)
        fresh: list[tuple[str, dict, int]] = []
        done: set[int] = set()
        if fast is not None:
            done = _run_fast(service, conn, fast, calls, stored, answers, fresh)
        # A fixed lock order (e.g. by task id for releases) keeps concurrent batches deadlock-free.
        for i in sorted(range(len(calls)), key=lambda i: order(calls[i][1])):
            caller, params = calls[i]
            request = caller.get("request")
            if i in done:
                continue
            if request in stored:
                answers[i] = stored[request]
                continue
            try:
                answers[i] = handler(service, conn, identify(conn, caller), params)
            except ApiError as exc:
                answers[i] = exc.as_reply()
                continue
            if request and not answers[i].get("park"):
                fresh.append((request, answers[i], _keep(caller)))
        _commit(conn, fresh)
    return answers


@contextmanager
def preloaded():
    """A batch's preloaded rows are visible to its own greenthread only, and only while it runs."""
    tokens = [identity.PRELOADED.set(None), access.PRELOADED.set(None)]
    try:
        yield
    finally:
        access.PRELOADED.reset(tokens[1])
        identity.PRELOADED.reset(tokens[0])


def batch_endpoint(single: Any, *, order: Callable[[dict], Any], project_of: Callable[[dict], int] | None = None,
                   fast: FastPath | None = None) -> Any:
    """An RPC that runs many calls of ``single``'s handler in one transaction, for the gateway's
    coalescer (gateway/batching.py): one broker round trip and one commit for a whole batch.

    Each call gets its own identity, checks and reply, and its reply is stored as with
    ``@endpoint(once=True)``. The handler must raise ApiError only before its first write, since
    a refused call is not rolled back separately; a batch that meets an earlier run of one of its
    calls is rolled back and run again, and then replays that call's stored reply.
    """
    handler = single.__wrapped__

    def entry(self, calls: list | None = None) -> list[dict]:
        calls = [(caller or {}, params or {}) for caller, params in calls or []]
        if calls and all(too_late(caller) for caller, _ in calls):
            return [UNAVAILABLE] * len(calls)
        try:
            try:
                return _run_batch(self, handler, calls, order, False, project_of, fast)
            except idempotency.Replayed:
                return _run_batch(self, handler, calls, order, True, project_of, fast)
        except (OperationalError, PendingRollbackError) as exc:
            log.warning("database unavailable in %s batch: %s", handler.__name__, exc.__class__.__name__)
            return [UNAVAILABLE] * len(calls)
        except DBAPIError as exc:
            if exc.connection_invalidated:
                return [UNAVAILABLE] * len(calls)
            raise

    entry.__name__ = entry.__qualname__ = f"{handler.__name__}_batch"
    entry.__doc__ = batch_endpoint.__doc__
    return rpc(entry)
