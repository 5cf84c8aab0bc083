"""Typed errors: one class per kind of refusal, each carrying the HTTP status and the server's message.

Callers catch the kind they can handle (``NotFound``, ``Conflict``…) instead of comparing status
codes. The original Go tracker used other codes for some of these cases (403 for bad worker
credentials on task get/release, 400 or 500 for duplicates, plain-text 404); ``error_for`` maps
those to the same classes, so a worker program behaves the same against either server.
"""

from __future__ import annotations

import re


class TrackerError(Exception):
    """Any error answer of the tracker (or a request that could not be completed)."""

    def __init__(self, status: int, message: str, body: dict | None = None) -> None:
        super().__init__(f"{status} {message}" if status else message)
        self.status = status
        self.message = message
        self.body = body or {}


class BadRequest(TrackerError):
    """400: malformed or invalid input; the message names the field."""


class PausedWorker(BadRequest):
    """400 ``A manager has paused you``: this worker may not take tasks until un-paused."""


class Unauthorized(TrackerError):
    """401: worker credentials (or manager session) missing or invalid."""


class Forbidden(TrackerError):
    """403: authenticated but not permitted (no ASSIGN/SUBMIT access, hidden project…)."""


class NotFound(TrackerError):
    """404: unknown project, worker, task or route (e.g. ``/task/extend`` on the original tracker)."""


class Conflict(TrackerError):
    """409: duplicate task hash, duplicate access request, duplicate name."""


class PayloadTooLarge(TrackerError):
    """413: request body over the server's limit."""


class RateLimited(TrackerError):
    """429 that the client did not wait out (delay longer than ``max_rate_limit_wait``)."""

    def __init__(self, status: int, message: str, body: dict | None = None) -> None:
        super().__init__(status, message, body)
        self.delay = float((body or {}).get("rate_limit_delay") or 0.0)


class ServerError(TrackerError):
    """5xx other than 503 (a server bug), or 503 still answered after every retry."""


class Unavailable(ServerError):
    """The tracker could not be reached or stayed unavailable (503) through every retry."""


_BY_STATUS: dict[int, type[TrackerError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
    413: PayloadTooLarge, 429: RateLimited, 503: Unavailable,
}

# The original tracker's words for cases whose status differs from the contract's.
_ORIGINAL_AUTH = re.compile(r"worker id|secret|signature|unauthori[sz]ed|not specified", re.I)
_ORIGINAL_DUPLICATE = re.compile(r"duplicate|unique constraint|already exists", re.I)
_PAUSED = "A manager has paused you"


def error_for(status: int, message: str, body: dict | None = None) -> TrackerError:
    """The exception for an error answer, mapping the original tracker's codes onto ours."""
    if status == 400 and _PAUSED in message:
        return PausedWorker(status, message, body)
    if status == 403 and _ORIGINAL_AUTH.search(message) and "access" not in message.lower():
        return Unauthorized(status, message, body)  # original: bad worker credentials were 403
    if status in (400, 500) and _ORIGINAL_DUPLICATE.search(message):
        return Conflict(status, message, body)  # original: duplicates were 400 (tasks) or 500 (names)
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else TrackerError
    return cls(status, message, body)
