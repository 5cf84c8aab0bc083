"""The typed RPC contract between the gateway and the services.

Every service has one RPC entrypoint, ``dispatch``, that takes a list of calls
``[caller, operation, params]`` and answers a list of replies in the same order: a single request
is a batch of one (tracker/service.py). ``Caller`` says who asks and how the request is named;
``Reply`` says what came of it in domain terms — an ``Outcome``, never an HTTP status. The gateway
maps outcomes to statuses in one table (gateway/replies.py).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class Outcome(StrEnum):
    OK = "ok"  # done: the route's success status, ``ok: true``
    DECLINED = "declined"  # a negative answer that is not an error: 200 with ``ok: false``
    INVALID = "invalid"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"
    INTERNAL = "internal"  # a service failed unexpectedly (a bug)
    UNAVAILABLE = "unavailable"


class Caller(BaseModel):
    """Who is asking, as the gateway saw it: digests only (never a raw secret), and the name the
    request's reply is stored under (tracker/idempotency.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    worker_id: int | None = None
    worker_digest: str | None = None
    session_digest: str | None = None
    request: str | None = None  # a fresh name per HTTP request, or one derived from Idempotency-Key
    keyed: bool = False  # named by the client's Idempotency-Key
    deadline: float | None = None  # unix seconds after which the gateway no longer waits

    def wire(self) -> dict:
        return self.model_dump(exclude_defaults=True)


class Reply(BaseModel):
    """What came of one call. ``content`` and ``message`` become the envelope's (contract §1.3);
    ``extra`` adds top-level envelope keys (``rate_limit_delay``); ``counts`` feed the gateway's
    metrics; ``park``/``retry_in`` tell a long-poll to wait for a notification (gateway/longpoll.py)."""

    model_config = ConfigDict(extra="forbid")

    outcome: Outcome = Outcome.OK
    content: Any = None
    message: str | None = None
    extra: dict[str, Any] | None = None
    counts: dict[str, int] | None = None
    park: bool = False
    retry_in: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    def wire(self) -> dict:
        return self.model_dump(exclude_defaults=True)
