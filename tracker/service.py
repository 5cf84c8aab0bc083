"""One path for every RPC: a service's operations run as batches of calls in one transaction.

A service (``class TaskService(Service)``) declares its operations with ``@operation`` and gets
one RPC entrypoint, ``dispatch``: a list of calls ``[caller, operation, params]``
(tracker/contract.py), answered by a list of replies. A single request is a batch of one; the
gateway puts concurrent hot requests into one batch (gateway/batching.py). A batch is one
transaction of three database round trips (tracker.db.script):

1. ``BEGIN`` with the worker row of every caller and the access row of every project call;
2. every call authenticated (its digest compared in constant time) before anything else — a stored
   reply is never handed out before that — then the operations in the order the service declares
   them. A *set-based* operation is a generator: it yields one statement for all of its calls of
   the batch, and the statements of all of them travel as one script; it answers each call from
   the rows. A per-call operation runs its handler once per call.
3. what the operations deferred to the commit (closure counters, ``NOTIFY``), the replies of
   state-changing calls (``once``: a redelivered or retried request answers its first reply
   instead of acting twice, tracker/idempotency.py), and ``COMMIT``. A ``once`` call answered
   without storing (a long-poll's "nothing yet", a refusal) looks up, in that round trip, whether
   an earlier run of its request stored a reply: a redelivered get whose first run handed out the
   last task answers that task. ``tests/test_redelivery.py`` delivers every such operation twice.

A refused call (a ``Refused`` error) stores nothing and changes nothing: a per-call handler runs
in a savepoint when it shares its batch, and a batch of one is rolled back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, PendingRollbackError

from tracker import access, idempotency, identity
from tracker.contract import Caller, Outcome, Reply
from tracker.db import deferred_parts, script, scripted_transaction, transaction
from tracker.errors import UNAVAILABLE, Refused
from tracker.identity import Identity, identify
from tracker.patches import rpc

log = logging.getLogger("tracker.service")
DEADLINE_MARGIN = 0.5  # seconds
# The request name of the per-call operation running in this greenthread: an operation that asks
# another service for a change names that call after its own, so that a redelivery of it replays
# the other service's reply instead of acting there again (git_svc → project_svc.set_version).
REQUEST: ContextVar[str | None] = ContextVar("tt_request", default=None)

SetBased = Callable[[Any, "Batch", list["Call"]], Generator[Any, list, None]]


@dataclass(frozen=True)
class Operation:
    """How the dispatcher runs one operation. ``once``: its reply is stored with its effect.
    ``message``: the model its params are validated into. ``project_of``: the project of a
    worker's call, whose access row the batch reads with the identities. ``set_based``: the
    handler is a generator over all of the batch's calls (see the module docstring);
    ``stepwise``: the handler opens its own transactions (a login commits its throttle event
    before it hashes) and runs alone; if also ``once``, a stored reply is answered without running
    it, and the handler stores its own (``idempotency.record``) with its last effect."""

    name: str
    handler: Callable
    once: bool = False
    message: type[BaseModel] | None = None
    project_of: Callable[[Any], int] | None = None
    set_based: bool = False
    stepwise: bool = False


def operation(message: type[BaseModel] | None = None, *, once: bool = False,
              project_of: Callable[[Any], int] | None = None, set_based: bool = False,
              stepwise: bool = False) -> Callable:
    """Declare a method of a ``Service`` as an operation (see ``Operation``)."""

    def mark(handler: Callable) -> Callable:
        handler.tt_operation = Operation(handler.__name__, handler, once, message, project_of, set_based, stepwise)
        return handler

    return mark


@dataclass(slots=True)
class Call:
    """One call of a batch, and what the batch learns about it."""

    caller: Caller
    op: Operation
    params: Any
    ident: Identity | None = None
    reply: Reply | None = None
    store: bool = False  # the reply is stored under ``caller.request`` at commit

    wired: dict | None = None

    def wire(self) -> dict:
        """The reply as sent (and stored): built once."""
        if self.wired is None:
            self.wired = (self.reply or UNAVAILABLE).wire()
        return self.wired

    @property
    def too_late(self) -> bool:
        """The gateway has stopped waiting (its deadline, minus a margin for the reply's way
        back): acting now would change state for a client that was already told 503."""
        deadline = self.caller.deadline
        return deadline is not None and time.time() > deadline - DEADLINE_MARGIN


class Batch:
    """The state of one batch's transaction: its calls and the connection they share."""

    def __init__(self, service: Service, calls: list[Call]) -> None:
        self.service = service
        self.calls = calls
        self.conn: Connection | None = None
        self.replay = False

    def answer(self, call: Call, reply: Reply) -> None:
        """A call's reply; stored at commit when its operation is ``once``."""
        call.reply = reply
        call.store = call.op.once and bool(call.caller.request) and not reply.park

    def refuse(self, call: Call, refusal: Refused) -> None:
        call.reply = refusal.reply()

    def run(self, replay: bool) -> None:
        """The whole batch in one transaction: per-call operations first, then the set-based
        ones, whose statements travel as one script in the order the service declares them."""
        for call in self.calls:
            call.ident, call.reply, call.store, call.wired = None, None, False, None
        self.replay = replay
        with preloaded(), scripted_transaction() as conn:
            self.conn = conn
            self._begin()
            pending = self._authenticate(replay)
            ops = self.service.operations.values()
            for op in ops:
                if not op.set_based:
                    self._per_call(op, [call for call in pending if call.op is op])
            self._set_based([(op, [call for call in pending if call.op is op]) for op in ops if op.set_based])
            self._commit()

    def _begin(self) -> None:
        """Open the transaction in the round trip that reads every caller's worker row and the
        access rows of project calls."""
        queries = {"identity": identity.preload_query([c.caller for c in self.calls])}
        pairs = [(c.op.project_of(c.params), c.caller.worker_id) for c in self.calls
                 if c.op.project_of is not None and c.caller.worker_id is not None and not c.caller.session_digest]
        queries["access"] = access.preload_query(pairs)
        wanted = [name for name, query in queries.items() if query is not None]
        results = dict(zip(wanted, script(self.conn, "BEGIN", *(queries[n] for n in wanted))[1:], strict=True))
        identity.use_preloaded(results.get("identity", []))
        access.use_preloaded(pairs, results.get("access", []))

    def _authenticate(self, replay: bool) -> list[Call]:
        """Identify every call; answer those refused and those answered before. Authentication
        comes first: a request name derived from an Idempotency-Key is guessable (public worker
        id + key), the secret is not (§6.5). Stored replies are looked up only where a hit is
        likely (client-keyed calls, or a rerun after a replay); otherwise storing detects it."""
        live = self.calls
        for call in live:
            try:
                call.ident = identify(self.conn, call.caller)
            except Refused as refusal:
                self.refuse(call, refusal)
        named = [c.caller.request for c in live
                 if c.ident is not None and c.op.once and c.caller.request and (replay or c.caller.keyed)]
        stored = idempotency.lookup_many(self.conn, named)
        for call in live:
            if call.ident is not None and call.caller.request in stored:
                call.reply = stored[call.caller.request]
        return [c for c in live if c.reply is None]

    def _per_call(self, op: Operation, calls: list[Call]) -> None:
        for call in calls:
            if len(self.calls) == 1:  # a refusal rolls the whole transaction back
                try:
                    self.answer(call, self._handle(op, call))
                except Refused as refusal:
                    raise RolledBack(call, refusal) from None
                continue
            try:
                with self.conn.begin_nested():
                    self.answer(call, self._handle(op, call))
            except Refused as refusal:
                self.refuse(call, refusal)

    def _handle(self, op: Operation, call: Call) -> Reply:
        token = REQUEST.set(call.caller.request)
        try:
            return op.handler(self.service, self.conn, call.ident, call.params)
        finally:
            REQUEST.reset(token)

    def _set_based(self, ops: list[tuple[Operation, list[Call]]]) -> None:
        """Every set-based operation's statement in one script; each then answers its calls."""
        steps = []
        for op, calls in ops:
            if calls:
                steps_gen = op.handler(self.service, self, calls)
                statement = next(steps_gen, None)
                if statement is not None:
                    steps.append((steps_gen, statement))
        results = script(self.conn, *(statement for _, statement in steps)) if steps else []
        for (steps_gen, _), rows in zip(steps, results, strict=True):
            try:
                steps_gen.send(rows)
            except StopIteration:
                continue
            raise RuntimeError("a set-based operation yields one statement")

    def _commit(self) -> None:
        """Store the replies and commit, in one round trip, after the parts deferred to the
        commit; a reply stored before (an earlier run of one of the calls committed) fails it:
        Replayed, and the batch runs again answering the stored reply."""
        windows = (idempotency.REDELIVERY_WINDOW, idempotency.KEYED_WINDOW)
        keep = [(c.caller.request, c.wire(), windows[c.caller.keyed]) for c in self.calls if c.store]
        deferred = deferred_parts(self.conn)
        unstored = self._unstored()
        if unstored:
            deferred.append((idempotency.LOOKUP, {"requests": list(unstored)}))
        if not keep:
            results = script(self.conn, *deferred, "COMMIT")
        else:
            try:
                results = script(self.conn, *deferred, (idempotency.RECORD_STRICT, idempotency.record_params(keep)),
                                 "COMMIT")
            except IntegrityError as exc:
                if idempotency.replayed(exc):
                    raise idempotency.Replayed("batch") from exc
                raise
        for row in results[len(deferred) - 1] if unstored else ():
            call = unstored[row["request"]]
            call.reply, call.store, call.wired = Reply.model_validate_json(row["reply"]), False, None

    def _unstored(self) -> dict[str, Call]:
        """The calls of a first run (not a replay) whose reply stores nothing although their
        operation is ``once``: a long-poll's "nothing yet" and refusals. A redelivery's first run
        may have committed a reply for one (the last task handed out, a rate limit charged):
        that reply is the answer. A call refused as unauthenticated is never answered one."""
        if self.replay:
            return {}
        return {c.caller.request: c for c in self.calls
                if c.op.once and c.caller.request and not c.caller.keyed and not c.store and c.reply is not None
                and c.reply.outcome is not Outcome.UNAUTHORIZED}


class Service:
    """Base of every nameko service: collects its ``@operation`` methods, in declaration order,
    behind the one RPC entrypoint ``dispatch``."""

    name: str
    operations: dict[str, Operation] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.operations = {name: fn.tt_operation for name, fn in vars(cls).items() if hasattr(fn, "tt_operation")}

    @rpc
    def dispatch(self, calls: list | None = None) -> list[dict]:
        """Run ``calls`` (``[caller, operation, params]`` each); their replies, in order."""
        try:
            batch = [self._parse(*call) for call in calls or []]
        except (ValidationError, KeyError, TypeError) as exc:
            log.error("%s: malformed batch: %s", self.name, exc)
            return [UNAVAILABLE.wire()] * len(calls or [])
        live = [call for call in batch if not call.too_late]
        if len(live) == 1 and live[0].op.stepwise:
            live[0].reply = self._stepwise(live[0])
        elif live:
            self._run(Batch(self, live))
        return [call.wire() for call in batch]

    def _parse(self, caller: dict, name: str, params: dict) -> Call:
        op = self.operations[name]
        if op.message is not None:
            params = op.message.model_validate(params)
        return Call(Caller.model_validate(caller), op, params)

    def _stepwise(self, call: Call) -> Reply:
        """A stepwise operation; if ``once``, its stored reply when an earlier run stored one
        (before or, still in flight, while this one ran: ``idempotency.Replayed``)."""
        request = call.caller.request if call.op.once else None
        with outage_is_503(call.op.name) as answer:
            answer.reply = _stored(request) if request else None
            if answer.reply is None:
                try:
                    answer.reply = call.op.handler(self, call.caller, call.params)
                except Refused as refusal:
                    answer.reply = refusal.reply()
                except idempotency.Replayed:
                    answer.reply = _stored(request) or UNAVAILABLE
        return answer.reply

    def _run(self, batch: Batch) -> None:
        """Run the batch (again, answering stored replies, if it met one of its calls committed
        by an earlier run); on a database outage every call answers 503."""
        with outage_is_503("a batch") as answer:
            try:
                try:
                    batch.run(replay=False)
                except idempotency.Replayed:
                    batch.run(replay=True)
            except RolledBack as rolled:
                call, reply = rolled.call, rolled.refusal.reply()
                if reply.outcome is not Outcome.UNAUTHORIZED and call.op.once and call.caller.request:
                    # Refused only because an earlier run committed (a redelivered submit meeting
                    # its own task as a duplicate): answer what that run answered.
                    reply = _stored(call.caller.request) or reply
                call.reply, call.wired = reply, None
            answer.reply = batch
        if answer.reply is not batch:
            for call in batch.calls:
                call.reply, call.wired = UNAVAILABLE, None


class RolledBack(Exception):
    """The one call of a batch of one was refused: its transaction is rolled back."""

    def __init__(self, call: Call, refusal: Refused) -> None:
        super().__init__(refusal.message)
        self.call, self.refusal = call, refusal


def _stored(request: str) -> Reply | None:
    with transaction() as conn:
        return idempotency.lookup_many(conn, [request]).get(request)


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


@contextmanager
def preloaded():
    """A batch's preloaded rows are visible to its own greenthread only, and only while it runs."""
    tokens = [identity.PRELOADED.set(None), access.PRELOADED.set(None)]
    try:
        yield
    finally:
        access.PRELOADED.reset(tokens[1])
        identity.PRELOADED.reset(tokens[0])


