"""Gateway routes of manager_svc (accounts and sessions; per-project roles are project_svc's)."""

from services.manager_svc.messages import Account, LoggedOut, Login, ManagerList, ManagerRecord, Register
from tracker.routing import Caller, Route, Session

ROUTES = [
    Route("POST", "/register", "register", body=Register, session=Session.OPEN, reply=ManagerRecord, errors=(409,),
          summary="Create a manager account and log in"),
    Route("POST", "/login", "login", body=Login, session=Session.OPEN, reply=ManagerRecord, summary="Log in"),
    Route("GET", "/logout", "logout", session=Session.CLOSE, status=204, summary="Log out"),
    Route("GET", "/account", "account", reply=Account, unauthorized=LoggedOut,
          summary="The logged-in manager"),
    Route("GET", "/manager/list", "list_managers", Caller.MANAGER, reply=ManagerList, summary="Every manager"),
    Route("GET", "/manager/promote/{id}", "promote", Caller.MANAGER, status=204, errors=(403,),
          summary="Make a tracker admin"),
    Route("GET", "/manager/demote/{id}", "demote", Caller.MANAGER, status=204, errors=(403,),
          summary="Revoke tracker admin"),
]
