"""The service side of every RPC: one decorator that makes a nameko entrypoint out of a handler.

Every entrypoint takes ``(caller, params)`` and returns a reply dict (tracker.errors). The handler
runs in one database transaction with the caller's identity resolved inside it; an ApiError rolls
the transaction back (nothing changes on a refused request) and becomes its reply; a database
outage becomes 503.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from nameko.rpc import rpc
from sqlalchemy.exc import DBAPIError, OperationalError

from tracker.db import transaction
from tracker.errors import UNAVAILABLE, ApiError
from tracker.identity import identify

log = logging.getLogger("tracker.service")

Handler = Callable[..., dict]


def endpoint(handler: Handler) -> Any:
    @functools.wraps(handler)
    def entry(self, caller: dict | None = None, params: dict | None = None) -> dict:
        try:
            with transaction() as conn:
                ident = identify(conn, caller or {})
                return handler(self, conn, ident, params or {})
        except ApiError as exc:
            return exc.as_reply()
        except OperationalError as exc:
            log.warning("database unavailable in %s: %s", handler.__name__, exc.__class__.__name__)
            return UNAVAILABLE
        except DBAPIError as exc:
            if exc.connection_invalidated:
                return UNAVAILABLE
            raise

    return rpc(entry)
