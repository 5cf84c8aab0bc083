"""Abuse throttles over a sliding 10-minute window, in shared state (contract §6.2, §6.3, §7).

Failed logins (per (username, client address) and per address) and worker creations (per address)
are counted as rows of ``throttle_event``, one per event, keyed by a *subject*: a digest naming
what is counted, so neither usernames nor addresses are stored in the clear. Every replica reads
the same rows, so a limit holds across the whole deployment.

``admit`` serialises the callers of one subject with a transaction-scoped advisory lock, counts,
and either refuses (429, nothing recorded: a refused attempt is never counted) or records the
event in the caller's transaction. A caller that must commit the event before slow work (a login
hashes a password) admits in a short transaction of its own and ``forget``s the event afterwards
if it turns out not to count (a successful login). Each recording also prunes up to
``PRUNE_BATCH`` expired rows, so the table holds about one window of events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, text

from tracker.errors import RateLimited
from tracker.hashing import digest

WINDOW = 600  # seconds: every throttle of the contract counts per 10 minutes
PRUNE_BATCH = 100
_LOCK_SPACE = 0x7474_0002  # advisory lock key space of the throttle subjects (two-int form)

_LOCK = text("SELECT pg_advisory_xact_lock(:space, hashtext(:subject))")
# For each subject, the event that must leave the window before the count drops below the limit:
# with the newest first, the limit-th one; its time left in the window is that subject's delay.
# The longest delay over the subjects, or NULL when every one of them admits now.
_DELAY = text(
    "SELECT max(greatest(extract(epoch FROM x.at + make_interval(secs => :window) - clock_timestamp()), 0.001))"
    " FROM unnest(CAST(:subjects AS text[]), CAST(:skips AS int[])) AS l(subject, skip)"
    " CROSS JOIN LATERAL (SELECT e.at FROM throttle_event e WHERE e.subject = l.subject"
    " AND e.at > clock_timestamp() - make_interval(secs => :window) ORDER BY e.at DESC OFFSET l.skip LIMIT 1) x"
)
_RECORD = text("INSERT INTO throttle_event (subject) SELECT unnest(CAST(:subjects AS text[])) RETURNING id")
_PRUNE = text(
    "DELETE FROM throttle_event WHERE id IN (SELECT id FROM throttle_event"
    " WHERE at < clock_timestamp() - make_interval(secs => :window) LIMIT :batch FOR UPDATE SKIP LOCKED)"
)


@dataclass(frozen=True)
class Limit:
    subject: str
    limit: int  # events allowed in the window; 0 = no limit


def subject(kind: str, *parts: str) -> str:
    """The key of one counter, e.g. ``subject("login-pair", address, username)``."""
    return f"{kind}:{digest(chr(0).join(parts))}"


def delay(conn: Connection, limits: Sequence[Limit]) -> float | None:
    """Seconds until every one of ``limits`` admits again, or None if they all admit now."""
    params = {"subjects": [lim.subject for lim in limits], "skips": [lim.limit - 1 for lim in limits],
              "window": WINDOW}
    wait = conn.execute(_DELAY, params).scalar()
    return None if wait is None else float(wait)


def admit(conn: Connection, limits: Sequence[Limit], message: str) -> list[int]:
    """Record one event for each limited subject and return their ids, or raise 429 with
    ``rate_limit_delay`` (the longest wait among the exhausted limits) and record nothing.

    A refusal takes one read and no lock (events are only added under the lock, so a count at the
    limit stays there until the window moves): a flood of throttled attempts does not queue. An
    admission locks its subjects until the caller's transaction ends and counts again, so
    concurrent callers of one subject are counted one after the other and a limit is never
    overshot.
    """
    active = sorted((lim for lim in limits if lim.limit > 0), key=lambda lim: lim.subject)
    if not active:
        return []
    wait = delay(conn, active)
    if wait is None:
        for lim in active:
            conn.execute(_LOCK, {"space": _LOCK_SPACE, "subject": lim.subject})
        wait = delay(conn, active)
    if wait is not None:
        raise RateLimited(message, rate_limit_delay=round(wait, 3) or 0.001)
    ids = list(conn.execute(_RECORD, {"subjects": [lim.subject for lim in active]}).scalars())
    conn.execute(_PRUNE, {"window": WINDOW, "batch": PRUNE_BATCH})
    return ids


def forget(conn: Connection, ids: Sequence[int]) -> None:
    """Drop events recorded by ``admit`` that did not count after all."""
    if ids:
        conn.execute(text("DELETE FROM throttle_event WHERE id = ANY(:ids)"), {"ids": list(ids)})


def clear(conn: Connection, subject_key: str) -> None:
    """Forget every event of one subject (a successful login clears its pair)."""
    conn.execute(text("DELETE FROM throttle_event WHERE subject = :subject"), {"subject": subject_key})
