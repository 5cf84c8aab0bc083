"""Exactly-once effects over an at-least-once broker.

nameko acknowledges a request after replying, so a replica that dies between its commit and its
acknowledgement has the request redelivered to another replica; and a client that saw a 503 may
retry a request that did in fact commit. Both cases reach the service with a request name it has
seen: a fresh one per HTTP request (made by the gateway, carried unchanged by a redelivery), or
one derived from the client's ``Idempotency-Key`` header, the worker and the route.

A state-changing entrypoint stores its reply under that name in the same transaction as its
effect. A second run finds it and answers the first reply instead of acting again; if the first
run is still in flight, the unique key makes the second wait for it, then replay its answer.
"""

from __future__ import annotations

import json

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from tracker.contract import Reply

REDELIVERY_WINDOW = 15 * 60  # a per-request name only needs to outlive a redelivery
KEYED_WINDOW = 24 * 3600  # the contract's promise to clients that send Idempotency-Key


class Replayed(Exception):
    """The request committed before: roll this run back and answer the stored reply."""


def prune(conn: Connection, limit: int = 50_000) -> int:
    return conn.execute(text("""
        DELETE FROM rpc_outcome WHERE request IN (
            SELECT request FROM rpc_outcome WHERE expires < now() LIMIT :n)"""), {"n": limit}).rowcount


def lookup_many(conn: Connection, requests: list[str]) -> dict[str, Reply]:
    """The stored replies of those of ``requests`` that committed, by request name."""
    if not requests:
        return {}
    rows = conn.execute(text("SELECT request, reply FROM rpc_outcome WHERE request = ANY(:r) AND expires > now()"),
                        {"r": requests}).all()
    return {row.request: Reply.model_validate_json(row.reply) for row in rows}


# Stored replies travel as one JSON parameter: client-side binding (tracker.db.script) of a
# text[] escapes element by element in Python, json.dumps is C; ``r->1`` keeps each reply's JSON
# text as it came. No conflict clause: a reply stored before fails the statement, and with it
# the COMMIT that follows in the same script (tracker.service).
RECORD_STRICT = """
    INSERT INTO rpc_outcome (request, reply, expires)
    SELECT r->>0, CAST(r->1 AS text), now() + make_interval(secs => CAST(r->>2 AS integer))
    FROM json_array_elements(CAST(%(rows)s AS json)) AS r"""


def record_params(outcomes: list[tuple[str, dict, int]]) -> dict:
    return {"rows": json.dumps([[request, answer, keep] for request, answer, keep in outcomes],
                               separators=(",", ":"))}


# What a batch answered without storing (a long-poll's "nothing yet", a refusal) is checked
# against the replies stored before, in the commit's round trip: a redelivery whose first run
# committed answers that run's reply (tracker.service).
LOOKUP = """
    SELECT request, reply FROM rpc_outcome
    WHERE request = ANY(CAST(%(requests)s AS text[])) AND expires > now()"""

_RECORD_ONE = text("INSERT INTO rpc_outcome (request, reply, expires)"
                   " VALUES (:request, :reply, now() + make_interval(secs => :keep))")


def record(conn: Connection, request: str, reply: Reply, keyed: bool = False) -> None:
    """Store one reply in ``conn``'s transaction, for an operation that opens its own
    transactions (``stepwise``, tracker/service.py); Replayed if a run of the same request
    stored one before (the unique key makes this wait for a run still in flight)."""
    try:
        conn.execute(_RECORD_ONE, {"request": request, "reply": json.dumps(reply.wire(), separators=(",", ":")),
                                   "keep": KEYED_WINDOW if keyed else REDELIVERY_WINDOW})
    except IntegrityError as exc:
        if replayed(exc):
            raise Replayed(request) from exc
        raise


def replayed(exc: Exception) -> bool:
    """Whether a failed RECORD_STRICT met a stored reply (unique violation of its key)."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == "23505"
