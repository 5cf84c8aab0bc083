"""Domain errors and the reply constructors every layer uses.

Services refuse a call by raising one of the ``Refused`` errors below; they never name an HTTP
status. The gateway raises the same errors for what it refuses itself (size, credentials, syntax),
and turns every ``Reply`` into an HTTP answer through one table (gateway/replies.py).
"""

from __future__ import annotations

from typing import Any, ClassVar

from tracker import wording
from tracker.contract import Outcome, Reply


def envelope(ok: bool, content: Any = None, message: str | None = None, **extra: Any) -> dict:
    """The response body of contract §1.3."""
    body: dict[str, Any] = {"ok": ok}
    if message:
        body["message"] = message
    if content is not None:
        body["content"] = content
    body.update(extra)
    return body


def ok(content: Any = None, message: str | None = None) -> Reply:
    return Reply(content=content, message=message)


def declined(message: str, content: Any = None, **side: Any) -> Reply:
    """A negative answer that is not an error ("No task available"): 200 with ``ok: false``."""
    return Reply(outcome=Outcome.DECLINED, message=message, content=content, **side)


def with_counts(answer: Reply, **counts: int) -> Reply:
    """Attach what the operation did (tasks submitted, assigned, closed) for the gateway's metrics."""
    answer.counts = counts
    return answer


class Refused(Exception):
    """A call refused; raised anywhere before the refused call's first write."""

    outcome: ClassVar[Outcome]
    default: ClassVar[str]

    def __init__(self, message: str | None = None, content: Any = None, **extra: Any) -> None:
        self.message = message or self.default
        super().__init__(self.message)
        self.content = content
        self.extra = extra or None

    def reply(self) -> Reply:
        return Reply(outcome=self.outcome, message=self.message, content=self.content, extra=self.extra)


class Invalid(Refused):
    outcome, default = Outcome.INVALID, "Bad request"


class Unauthorized(Refused):
    outcome, default = Outcome.UNAUTHORIZED, wording.UNAUTHORIZED


class Forbidden(Refused):
    outcome, default = Outcome.FORBIDDEN, "Forbidden"


class NotFound(Refused):
    outcome, default = Outcome.NOT_FOUND, "Not found"


class Conflict(Refused):
    outcome, default = Outcome.CONFLICT, "Conflict"


class TooLarge(Refused):
    outcome, default = Outcome.TOO_LARGE, "Request body too large"


class RateLimited(Refused):
    outcome, default = Outcome.RATE_LIMITED, "Too many requests"


class Unavailable(Refused):
    outcome, default = Outcome.UNAVAILABLE, wording.UNAVAILABLE


class Internal(Refused):
    outcome, default = Outcome.INTERNAL, "Internal error"


UNAVAILABLE = Unavailable().reply()
