"""nameko entrypoints of manager_svc: registration, login, sessions, tracker admins."""

from __future__ import annotations

from services.manager_svc import store
from tracker.errors import ApiError, conflict, not_found, ok, unauthorized
from tracker.hashing import hash_password, offload, verify_password
from tracker.service import endpoint


class ManagerService:
    name = "manager_svc"

    @endpoint(once=True)
    def register(self, conn, ident, params):
        password_hash = offload(hash_password, params["password"])
        row = store.create(conn, params["username"], password_hash)
        if row is None:
            raise conflict("Username already taken")
        store.open_session(conn, row["id"], params["new_session_digest"], params["session_lifetime"])
        return ok({"manager": row})

    @endpoint
    def login(self, conn, ident, params):
        row = store.by_username(conn, params["username"])
        if not offload(verify_password, row.password_hash if row else None, params["password"]):
            raise unauthorized("Invalid username/password")
        store.open_session(conn, row.id, params["new_session_digest"], params["session_lifetime"])
        return ok({"manager": store.get(conn, row.id)})

    @endpoint
    def logout(self, conn, ident, params):
        if params.get("session_digest"):
            store.close_session(conn, params["session_digest"])
        return ok(status=204)

    @endpoint
    def account(self, conn, ident, params):
        if ident.manager_id is None:
            raise unauthorized("Unauthorized", {"logged_in": False})
        return ok({"logged_in": True, "manager": store.get(conn, ident.manager_id)})

    @endpoint
    def list_managers(self, conn, ident, params):
        ident.require_manager()
        return ok({"managers": store.list_all(conn)})

    def _set_admin(self, conn, ident, params, admin: bool):
        ident.require_manager()
        if store.get(conn, params["id"]) is None:
            raise not_found("Manager not found")
        ident.require_admin()
        if params["id"] == ident.manager_id:
            raise ApiError(403, "You cannot change your own admin status")
        store.set_admin(conn, params["id"], admin)
        return ok(status=204)

    @endpoint
    def promote(self, conn, ident, params):
        return self._set_admin(conn, ident, params, True)

    @endpoint
    def demote(self, conn, ident, params):
        return self._set_admin(conn, ident, params, False)
