"""Where a reply becomes an HTTP answer: the one table from outcomes to statuses.

Services and the gateway's own checks speak in outcomes (tracker/contract.py); only here does an
outcome get its HTTP status. A successful reply takes the status its route declares (200, or 204
for the routes that answer without a body).
"""

from __future__ import annotations

from tracker.contract import Outcome, Reply
from tracker.errors import envelope

HTTP_STATUS: dict[Outcome, int] = {
    Outcome.DECLINED: 200,
    Outcome.INVALID: 400,
    Outcome.UNAUTHORIZED: 401,
    Outcome.FORBIDDEN: 403,
    Outcome.NOT_FOUND: 404,
    Outcome.CONFLICT: 409,
    Outcome.TOO_LARGE: 413,
    Outcome.RATE_LIMITED: 429,
    Outcome.INTERNAL: 500,
    Outcome.UNAVAILABLE: 503,
}


def http_status(reply: Reply, success: int = 200) -> int:
    return success if reply.outcome is Outcome.OK else HTTP_STATUS[reply.outcome]


def http_body(reply: Reply) -> dict:
    """The envelope of contract §1.3."""
    return envelope(reply.ok, reply.content, reply.message, **(reply.extra or {}))
