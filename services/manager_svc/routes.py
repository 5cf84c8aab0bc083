"""Gateway routes of manager_svc (accounts and sessions; per-project roles are project_svc's)."""

from services.manager_svc.messages import Login, Register
from tracker.routing import Caller, Route, Session

ROUTES = [
    Route("POST", "/register", "register", body=Register, session=Session.OPEN,
          summary="Create a manager account and log in"),
    Route("POST", "/login", "login", body=Login, session=Session.OPEN, summary="Log in"),
    Route("GET", "/logout", "logout", session=Session.CLOSE, summary="Log out"),
    Route("GET", "/account", "account", summary="The logged-in manager"),
    Route("GET", "/manager/list", "list_managers", Caller.MANAGER, summary="Every manager"),
    Route("GET", "/manager/promote/{id}", "promote", Caller.MANAGER, summary="Make a tracker admin"),
    Route("GET", "/manager/demote/{id}", "demote", Caller.MANAGER, summary="Revoke tracker admin"),
]
