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
from collections.abc import Callable
from typing import Any

from nameko.rpc import rpc
from sqlalchemy.exc import DBAPIError, OperationalError

from tracker import idempotency
from tracker.db import transaction
from tracker.errors import UNAVAILABLE, ApiError
from tracker.identity import identify

log = logging.getLogger("tracker.service")

Handler = Callable[..., dict]


def _run(service, handler: Handler, caller: dict, params: dict, request: str | None) -> dict:
    with transaction() as conn:
        ident = identify(conn, caller)
        keep = idempotency.KEYED_WINDOW if caller.get("keyed") else idempotency.REDELIVERY_WINDOW
        if request and caller.get("keyed"):
            stored = idempotency.lookup(conn, request)
            if stored is not None:
                return stored
        answer = handler(service, conn, ident, params)
        if request:
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
        except OperationalError as exc:
            log.warning("database unavailable in %s: %s", handler.__name__, exc.__class__.__name__)
            return UNAVAILABLE
        except DBAPIError as exc:
            if exc.connection_invalidated:
                return UNAVAILABLE
            raise

    return rpc(entry)
