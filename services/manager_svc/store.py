"""SQL of manager_svc (owns ``manager`` and ``manager_session``)."""

from __future__ import annotations

import time

from sqlalchemy import Connection, delete, func, insert, select, text, update

from services.manager_svc.tables import manager, manager_session

PUBLIC = (manager.c.id, manager.c.username, manager.c.tracker_admin, manager.c.register_time)
_FIRST_ADMIN_LOCK = 0x7474_0001  # serialises registrations so exactly one first admin exists
ADMIN_CHANGE_LOCK = 0x7474_0003  # serialises promotions and demotions, so one admin always remains
MAX_SESSIONS = 50  # live sessions per manager (contract §2); a login beyond ends the oldest


def by_username(conn: Connection, username: str):
    return conn.execute(select(*PUBLIC, manager.c.password_hash).where(manager.c.username == username)).first()


def get(conn: Connection, manager_id: int) -> dict | None:
    row = conn.execute(select(*PUBLIC).where(manager.c.id == manager_id)).mappings().first()
    return dict(row) if row else None


def create(conn: Connection, username: str, password_hash: str, admin: bool | None = None) -> dict | None:
    """None if the username is taken. ``admin=None``: admin iff this is the first manager ever."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _FIRST_ADMIN_LOCK})
    if by_username(conn, username) is not None:
        return None
    if admin is None:
        admin = conn.execute(select(func.count()).select_from(manager)).scalar() == 0
    row = conn.execute(
        insert(manager)
        .values(username=username, password_hash=password_hash, tracker_admin=admin,
                register_time=int(time.time()))
        .returning(*PUBLIC)
    ).mappings().one()
    return dict(row)


def open_session(conn: Connection, manager_id: int, token_digest: str, lifetime: int) -> None:
    """A new session; the manager's oldest ones beyond MAX_SESSIONS end, expired ones go.

    Logins of one manager are serialised on its row, so concurrent logins never leave more than
    MAX_SESSIONS. ``expires`` is taken after that lock, so it orders sessions by age.
    """
    conn.execute(select(manager.c.id).where(manager.c.id == manager_id).with_for_update(key_share=True))
    conn.execute(
        insert(manager_session).values(
            token_digest=token_digest, manager_id=manager_id,
            expires=func.clock_timestamp() + func.make_interval(0, 0, 0, 0, 0, 0, lifetime),
        )
    )
    conn.execute(delete(manager_session).where(manager_session.c.expires < func.now()))
    newest = (select(manager_session.c.token_digest).where(manager_session.c.manager_id == manager_id)
              .order_by(manager_session.c.expires.desc(), manager_session.c.token_digest).limit(MAX_SESSIONS))
    conn.execute(delete(manager_session).where(manager_session.c.manager_id == manager_id,
                                               manager_session.c.token_digest.not_in(newest)))


def close_session(conn: Connection, token_digest: str) -> None:
    conn.execute(delete(manager_session).where(manager_session.c.token_digest == token_digest))


def list_all(conn: Connection) -> list[dict]:
    return [dict(r) for r in conn.execute(select(*PUBLIC).order_by(manager.c.id)).mappings()]


def lock_admins(conn: Connection) -> None:
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADMIN_CHANGE_LOCK})


def is_admin(conn: Connection, manager_id: int) -> bool:
    return bool(conn.execute(select(manager.c.tracker_admin).where(manager.c.id == manager_id)).scalar())


def admin_count(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(manager).where(manager.c.tracker_admin)).scalar()


def set_admin(conn: Connection, manager_id: int, admin: bool) -> None:
    conn.execute(update(manager).where(manager.c.id == manager_id).values(tracker_admin=admin))
