"""Per-project rate limits (contract §5): one shared "next free time" T per limiter.

The state is a row of ``rate_limit`` in PostgreSQL (task_svc's table: this module is the library
task_svc admits and charges with, inside the transaction of the get or submit it limits; a project
update resets the rows, services/project_svc/store.py), so every service replica sees the same
limiter. A request locks its limiter row for the rest of its transaction, so the
admission test (t ≥ T), the operation and the charge (T := max(T, t) + n / r) happen as one step:
two requests can never both be admitted on the same token, and a request that hands out nothing
or fails is charged nothing (the contract's refund) simply by not charging it. The clock is the
database's, the only one all replicas share.

An unlimited project (rate 0) never touches the table, so the hot path pays nothing for limits it
does not have.

Every delay is finite. Rates below ``MIN_RATE`` are refused at the door (contract §6.4), and a rate
stored before that rule is charged as ``MIN_RATE``: ``1 / 5e-324`` is infinite, and an infinite T
made every later request a 429 carrying ``Infinity`` (not JSON) until the project was updated. A T
that is not finite or lies beyond any reachable horizon (such a row's legacy) counts as free.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from tracker.errors import RateLimited
from tracker.fields import MIN_RATE

ASSIGN, SUBMIT = 0, 1
TOO_MANY = "Too many requests"

# No charge exceeds 10 000 tasks (the bulk limit) / MIN_RATE = 10^7 s, so an admitted request never
# leaves T further than that ahead; beyond HORIZON (or NaN, which PostgreSQL sorts above every number)
# the row cannot come from this model and is reset rather than obeyed.
HORIZON = 1e8
_LOCK = text(f"""
    INSERT INTO rate_limit (project_id, kind, next_free) VALUES (:p, :k, 0)
    ON CONFLICT (project_id, kind) DO UPDATE SET next_free = CASE
        WHEN rate_limit.next_free < extract(epoch FROM clock_timestamp())::float8 + {HORIZON} THEN rate_limit.next_free
        ELSE 0 END
    RETURNING next_free, extract(epoch FROM clock_timestamp())::float8 AS now""")

_CHARGE = text("""
    UPDATE rate_limit SET next_free = greatest(next_free, :now) + :cost
    WHERE project_id = :p AND kind = :k""")


@dataclass(frozen=True)
class Admission:
    """A request admitted by one limiter; ``charge`` it with what it actually consumed."""

    project_id: int
    kind: int
    rate: float
    now: float

    def charge(self, conn: Connection, tokens: int) -> None:
        if self.rate > 0 and tokens > 0:
            conn.execute(_CHARGE, {"p": self.project_id, "k": self.kind, "now": self.now,
                                   "cost": tokens / max(self.rate, MIN_RATE)})


def admit(conn: Connection, project_id: int, kind: int, rate: float) -> Admission:
    """Admit the request or raise 429 with ``rate_limit_delay``; locks the limiter until commit."""
    if rate <= 0:
        return Admission(project_id, kind, 0.0, 0.0)
    row = conn.execute(_LOCK, {"p": project_id, "k": kind}).one()
    if row.now < row.next_free:
        raise RateLimited(TOO_MANY, rate_limit_delay=row.next_free - row.now)
    return Admission(project_id, kind, rate, row.now)
