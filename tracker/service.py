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
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, PendingRollbackError

from tracker import access, idempotency, identity
from tracker.db import deferred_parts, script, scripted_transaction, transaction
from tracker.errors import UNAVAILABLE, ApiError
from tracker.identity import identify
from tracker.patches import rpc

log = logging.getLogger("tracker.service")

Handler = Callable[..., dict]


@dataclass(frozen=True)
class FastPlan:
    """A set-based fast path's part of a batch: statements for the batch's one fast script
    (tracker.db.script), and how to answer from their rows: an answer, or None for a call the
    per-call handler takes, per call offered."""

    parts: list
    finish: Callable[[list[list[dict]]], list]


FastPath = Callable[[Any, Any, list], FastPlan]


DEADLINE_MARGIN = 0.5  # seconds


def too_late(caller: dict) -> bool:
    """The gateway has stopped waiting (its deadline, minus a margin for the reply's way back):
    acting now would change state for a client that was already told 503."""
    deadline = caller.get("deadline")
    return deadline is not None and time.time() > deadline - DEADLINE_MARGIN


def _keep(caller: dict) -> int:
    return idempotency.KEYED_WINDOW if caller.get("keyed") else idempotency.REDELIVERY_WINDOW


def _run(service, handler: Handler, caller: dict, params: dict, request: str | None,
         project_of: Callable[[dict], int] | None) -> dict:
    """One call in one transaction: opened with the caller's identity (and project access) read,
    committed with its stored reply (tracker.db.script: BEGIN and COMMIT cost no round trip)."""
    with preloaded(), scripted_transaction() as conn:
        _begin(conn, [(caller, params, project_of)])
        ident = identify(conn, caller)
        if request and caller.get("keyed"):
            stored = idempotency.lookup(conn, request)
            if stored is not None:
                return stored
        answer = handler(service, conn, ident, params)
        _commit(conn, [(request, answer, _keep(caller))] if request and not answer.get("park") else [])
        return answer


def _replay(request: str | None) -> dict | None:
    """The stored reply of a request that committed in an earlier run, if any."""
    if not request:
        return None
    with transaction() as conn:
        return idempotency.lookup(conn, request)


def endpoint(handler: Handler | None = None, *, once: bool = False,
             project_of: Callable[[dict], int] | None = None) -> Any:
    """``once``: the reply is stored with the effect (exactly-once). ``project_of``: the project a
    worker's call acts on, whose access row is then read with the caller's identity."""
    if handler is None:
        return functools.partial(endpoint, once=once, project_of=project_of)

    @functools.wraps(handler)
    def entry(self, caller: dict | None = None, params: dict | None = None) -> dict:
        caller, params = caller or {}, params or {}
        if too_late(caller):
            return UNAVAILABLE
        request = caller.get("request") if once else None
        with outage_is_503(handler.__name__) as answer:
            try:
                answer.reply = _run(self, handler, caller, params, request, project_of)
            except idempotency.Replayed:
                answer.reply = _replay(request) or UNAVAILABLE
            except ApiError as exc:
                # A run refused only because an earlier run of it committed (e.g. a redelivered
                # submit meeting its own task as a duplicate) answers what that run answered;
                # never to a caller whose credentials failed.
                answer.reply = exc.as_reply() if exc.status == 401 else (_replay(request) or exc.as_reply())
        return answer.reply

    return rpc(entry)


@dataclass
class _Answer:
    reply: Any = None


@contextmanager
def outage_is_503(name: str, unavailable: Any = UNAVAILABLE):
    """The reply of a call whose database went away is a 503 (``unavailable``), not a crash: set
    ``.reply`` of the yielded holder inside the block."""
    answer = _Answer()
    try:
        yield answer
    except (OperationalError, PendingRollbackError) as exc:
        log.warning("database unavailable in %s: %s", name, exc.__class__.__name__)
        answer.reply = unavailable
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        answer.reply = unavailable


@dataclass(frozen=True)
class Member:
    """One entrypoint that a batch (batch_endpoint) can carry.

    ``single`` is its ``@endpoint(once=True)`` handler; ``order`` gives its calls a fixed lock
    order (e.g. by task id), which keeps concurrent batches deadlock-free; ``project_of`` names
    the project of a call whose access rows the batch preloads; ``fast`` is an optional
    set-based path answering many calls with one statement (None = not covered).
    """

    single: Any
    order: Callable[[dict], Any]
    project_of: Callable[[dict], int] | None = None
    fast: FastPath | None = None

    @property
    def handler(self) -> Handler:
        return self.single.__wrapped__


def _begin(conn, calls: list[tuple[dict, dict, Callable[[dict], int] | None]]) -> None:
    """Open the transaction in the round trip that reads the identities of every call, and the
    access rows of those on a project route (``project_of``) (tracker.db.script)."""
    queries = {"identity": identity.preload_query([caller for caller, _, _ in calls])}
    pairs = [(project_of(params), caller["worker_id"]) for caller, params, project_of in calls
             if project_of is not None and caller.get("worker_id") is not None and not caller.get("session_digest")]
    queries["access"] = access.preload_query(pairs)
    wanted = [name for name, query in queries.items() if query is not None]
    results = dict(zip(wanted, script(conn, "BEGIN", *(queries[name] for name in wanted))[1:], strict=True))
    identity.use_preloaded(results.get("identity", []))
    access.use_preloaded(pairs, results.get("access", []))


def _commit(conn, fresh: list[tuple[str, dict, int]]) -> None:
    """Store the batch's replies and commit, in one round trip; a reply stored before (an earlier
    run of one of the calls committed) fails both: Replayed."""
    deferred = deferred_parts(conn)
    if not fresh:
        script(conn, *deferred, "COMMIT")
        return
    try:
        script(conn, *deferred, (idempotency.RECORD_STRICT, idempotency.record_params(fresh)), "COMMIT")
    except IntegrityError as exc:
        if idempotency.replayed(exc):
            raise idempotency.Replayed("batch") from exc
        raise


def _plan_fast(service, conn, fast: FastPath, calls: list, stored: dict) -> tuple[list[int], FastPlan]:
    """The calls a fast path is offered (identified, not answered before) and its plan for them."""
    candidates, idents = [], []
    for i, (caller, _) in enumerate(calls):
        if caller.get("request") in stored:
            continue
        try:
            idents.append(identify(conn, caller))
        except ApiError:
            continue  # the per-call path answers it (401)
        candidates.append(i)
    return candidates, fast(service, conn, [(ident, calls[i][1]) for i, ident in zip(candidates, idents, strict=True)])


def _run_fast(service, conn, members: dict[str, Member], groups: dict[str, list], stored: dict,
              answers: list, fresh: list) -> set[int]:
    """Every member's fast path, their statements in one script; returns the calls answered."""
    plans = []
    for name, member in members.items():
        if member.fast is not None and groups[name]:
            index = groups[name]
            candidates, plan = _plan_fast(service, conn, member.fast, [call[:2] for call in index], stored)
            plans.append((index, candidates, plan))
    parts = [part for _, _, plan in plans for part in plan.parts]
    results = script(conn, *parts) if parts else []
    done: set[int] = set()
    for index, candidates, plan in plans:
        mine, results = results[:len(plan.parts)], results[len(plan.parts):]
        for k, answer in zip(candidates, plan.finish(mine), strict=True):
            if answer is None:
                continue
            i = index[k][3]
            answers[i] = answer
            done.add(i)
            request = index[k][0].get("request")
            if request:
                fresh.append((request, answer, _keep(index[k][0])))
    return done


def _run_member(service, conn, member: Member, calls: list, done: set[int], stored: dict, answers: list,
                fresh: list) -> None:
    """The calls of one member that its fast path left, each by its handler, in lock order."""
    for caller, params, _, i in sorted(calls, key=lambda call: member.order(call[1])):
        request = caller.get("request")
        if i in done:
            continue
        try:
            # Authenticate before any stored reply is given out: a request name derived from an
            # Idempotency-Key is guessable (public worker id + key), the secret is not (§6.5).
            ident = identify(conn, caller)
            if request in stored:
                answers[i] = stored[request]
                continue
            answers[i] = member.handler(service, conn, ident, params)
        except ApiError as exc:
            answers[i] = exc.as_reply()
            continue
        if request and not answers[i].get("park"):
            fresh.append((request, answers[i], _keep(caller)))


def _run_batch(service, members: dict[str, Member], calls: list, replay: bool) -> list[dict]:
    answers: list[dict] = [UNAVAILABLE] * len(calls)
    with preloaded(), scripted_transaction() as conn:
        _begin(conn, [(caller, params, members[name].project_of) for caller, params, name in calls])
        # Stored replies are looked up first only where a hit is likely: client-keyed calls, or
        # a rerun after a replay was detected. Otherwise storing detects it (Replayed, below).
        looked_up = [c["request"] for c, _, _ in calls if c.get("request") and (replay or c.get("keyed"))]
        stored = idempotency.lookup_many(conn, looked_up)
        fresh: list[tuple[str, dict, int]] = []
        # Each call as (caller, params, name, position in the batch), grouped by member.
        groups: dict[str, list] = {name: [] for name in members}
        for i, (caller, params, name) in enumerate(calls):
            groups[name].append((caller, params, name, i))
        done = _run_fast(service, conn, members, groups, stored, answers, fresh)
        for name, member in members.items():  # members in their declared order
            _run_member(service, conn, member, groups[name], done, stored, answers, fresh)
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


def batch_endpoint(**members: Member) -> Any:
    """An RPC that runs many calls of the ``members`` entrypoints in one transaction, for the
    gateway's coalescer (gateway/batching.py): one broker round trip and one commit for a whole
    batch. A call is ``[caller, params, entrypoint name]``; members run in the order given.

    Each call gets its own identity, checks and reply, and its reply is stored as with
    ``@endpoint(once=True)``. A handler must raise ApiError only before its first write, since
    a refused call is not rolled back separately; a batch that meets an earlier run of one of its
    calls is rolled back and run again, and then replays that call's stored reply.
    """

    def entry(self, calls: list | None = None) -> list[dict]:
        calls = [(c[0] or {}, c[1] or {}, c[2] if len(c) > 2 else "") for c in calls or []]
        unknown = [i for i, (_, _, name) in enumerate(calls) if name not in members]
        if unknown:
            log.error("batch names unknown entrypoints: %s", sorted({calls[i][2] for i in unknown}))
            return [UNAVAILABLE] * len(calls)
        if calls and all(too_late(caller) for caller, _, _ in calls):
            return [UNAVAILABLE] * len(calls)
        with outage_is_503("a batch", [UNAVAILABLE] * len(calls)) as answer:
            try:
                answer.reply = _run_batch(self, members, calls, False)
            except idempotency.Replayed:
                answer.reply = _run_batch(self, members, calls, True)
        return answer.reply

    entry.__doc__ = batch_endpoint.__doc__
    return rpc(entry)


def stepwise_endpoint(handler: Callable[[Any, dict, dict], dict]) -> Any:
    """An RPC whose handler opens its own transactions (tracker.db.transaction), for work that
    must commit in steps: a login commits its throttle event before it hashes the password, so
    concurrent attempts count each other and no database connection is held while hashing.

    No reply is stored (use ``endpoint`` for that), and the handler resolves the caller's identity
    itself (tracker.identity.identify) in its first transaction. As with ``endpoint``, an
    ApiError becomes its reply and a database outage a 503.
    """

    @functools.wraps(handler)
    def entry(self, caller: dict | None = None, params: dict | None = None) -> dict:
        caller, params = caller or {}, params or {}
        if too_late(caller):
            return UNAVAILABLE
        with outage_is_503(handler.__name__) as answer:
            try:
                answer.reply = handler(self, caller, params)
            except ApiError as exc:
                answer.reply = exc.as_reply()
        return answer.reply

    return rpc(entry)
