"""nameko entrypoints of manager_svc: registration, login, sessions, tracker admins."""

from __future__ import annotations

from services.manager_svc import store
from services.manager_svc.messages import (
    Account,
    LoggedOut,
    LoginAttempt,
    Logout,
    ManagerList,
    ManagerRecord,
    ManagerRef,
    Registration,
)
from tracker import idempotency, throttle
from tracker.contract import Caller, Reply
from tracker.db import transaction
from tracker.errors import Conflict, Forbidden, NotFound, Unauthorized, ok
from tracker.fields import NoParams
from tracker.hashing import hash_password, offload, verify_password
from tracker.identity import identify
from tracker.service import Service, operation
from tracker.settings import get_settings
from tracker.shapes import content
from tracker.wording import UNAUTHORIZED

TOO_MANY_FAILURES = "Too many failed logins; try again later"


def _store_reply(conn, caller: Caller, reply: Reply) -> None:
    if caller.request:
        idempotency.record(conn, caller.request, reply, caller.keyed)


def login_limits(client: str, username: str) -> tuple[str, list[throttle.Limit]]:
    """The pair's subject, and the limits a login attempt is counted against (contract §6.2)."""
    settings = get_settings()
    pair = throttle.subject("login-pair", client, username)
    return pair, [throttle.Limit(pair, settings.login_failures_per_pair),
                  throttle.Limit(throttle.subject("login-address", client), settings.login_failures_per_address)]


class ManagerService(Service):
    name = "manager_svc"

    @operation(Registration, once=True)
    def register(self, conn, ident, params: Registration):
        password_hash = offload(hash_password, params.password)
        row = store.create(conn, params.username, password_hash)
        if row is None:
            raise Conflict("Username already taken")
        store.open_session(conn, row["id"], params.new_session_digest, params.session_lifetime)
        return ok(content(ManagerRecord, manager=row))

    @operation(LoginAttempt, once=True, stepwise=True)
    def login(self, caller, params: LoginAttempt):
        """Three steps, so that a throttled attempt costs no hashing and no attempt escapes the count:
        1. admit the attempt and commit it as a failure (a throttled one answers 429 here, with
        nothing recorded and the password unchecked); 2. check the password, holding no database
        connection; 3. on success, take the failure back, clear the pair and open the session.
        Exactly once (``once``): the reply is stored with the last step's effect — the session, or
        the failure counted — and a run of the same request that meets it stored takes its own
        attempt back and answers it (tracker/service.py ``_stepwise``)."""
        pair, limits = login_limits(params.client, params.username)
        with transaction() as conn:
            identify(conn, caller)  # worker headers, if sent, must be valid (401, contract §2)
            attempt = throttle.admit(conn, limits, TOO_MANY_FAILURES)
            row = store.by_username(conn, params.username)
        try:
            if not offload(verify_password, row.password_hash if row else None, params.password):
                failure = Unauthorized("Invalid username/password")
                with transaction() as conn:
                    _store_reply(conn, caller, failure.reply())
                raise failure
            with transaction() as conn:
                reply = ok(content(ManagerRecord, manager=store.get(conn, row.id)))
                _store_reply(conn, caller, reply)
                throttle.forget(conn, attempt)
                throttle.clear(conn, pair)
                store.open_session(conn, row.id, params.new_session_digest, params.session_lifetime)
                return reply
        except idempotency.Replayed:
            with transaction() as conn:
                throttle.forget(conn, attempt)
            raise

    @operation(Logout, once=True)
    def logout(self, conn, ident, params: Logout):
        if params.session_digest:
            store.close_session(conn, params.session_digest)
        return ok()

    @operation(NoParams)
    def account(self, conn, ident, params):
        if ident.manager_id is None:
            raise Unauthorized(UNAUTHORIZED, content(LoggedOut, logged_in=False))
        return ok(content(Account, logged_in=True, manager=store.get(conn, ident.manager_id)))

    @operation(NoParams)
    def list_managers(self, conn, ident, params):
        ident.require_manager()
        return ok(content(ManagerList, managers=store.list_all(conn)))

    def _set_admin(self, conn, ident, params: ManagerRef, admin: bool):
        ident.require_manager()
        target = store.get(conn, params.id)
        if target is None:
            raise NotFound("Manager not found")
        ident.require_admin()
        if params.id == ident.manager_id:
            raise Forbidden("You cannot change your own admin status")
        # Admin changes run one at a time; what was read before the lock is read again after it.
        # Of two admins demoting each other at once, the second finds its target the last admin
        # (409); a caller demoted meanwhile by a third admin is no longer one (403).
        store.lock_admins(conn)
        if not admin and store.is_admin(conn, params.id) and store.admin_count(conn) <= 1:
            raise Conflict("The tracker must keep at least one admin")
        if not store.is_admin(conn, ident.manager_id):
            raise Forbidden("Tracker admin required")
        store.set_admin(conn, params.id, admin)
        return ok()

    @operation(ManagerRef, once=True)
    def promote(self, conn, ident, params: ManagerRef):
        return self._set_admin(conn, ident, params, True)

    @operation(ManagerRef, once=True)
    def demote(self, conn, ident, params: ManagerRef):
        return self._set_admin(conn, ident, params, False)
