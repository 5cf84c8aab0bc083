"""Gateway routes of manager_svc (accounts and sessions; per-project roles are project_svc's)."""

from services.manager_svc.messages import Account, LoggedOut, Login, ManagerList, ManagerRecord, Register
from tracker.routing import Caller, Route, Session

LOGIN_NOTE = (
    "Failed logins are counted per (username, client address) and per client address over a sliding 10-minute "
    "window, across every replica. Past 10 failures of a pair or 1,000 of an address (`TT_LOGIN_FAILURES_PER_PAIR`, "
    "`TT_LOGIN_FAILURES_PER_ADDRESS`) further attempts of that pair / from that address answer **429** with "
    "`rate_limit_delay` (seconds until the oldest counted failure leaves the window), even with the right password, "
    "which is then not checked; 429s are not counted; a success clears its pair. The client address is the TCP "
    "peer, or the nearest untrusted `X-Forwarded-For` hop when the peer is a trusted proxy (`TT_TRUSTED_PROXIES`). "
    "The username is NFKC-normalised, as /register stores it.")
REGISTER_NOTE = ("The username is NFKC-normalised first, then checked and stored; a name that differs from an "
                 "existing one only by its Unicode composition is a 409.")
DEMOTE_NOTE = ("A demotion that would leave no tracker admin is a **409**, also when two admins demote each other at "
               "the same moment (one of the two succeeds).")

ROUTES = [
    Route("POST", "/register", "register", body=Register, session=Session.OPEN, reply=ManagerRecord, errors=(409,),
          description=REGISTER_NOTE, summary="Create a manager account and log in"),
    Route("POST", "/login", "login", body=Login, session=Session.OPEN, reply=ManagerRecord, errors=(429,),
          client_address=True, description=LOGIN_NOTE, summary="Log in (failed logins throttled)"),
    Route("GET", "/logout", "logout", session=Session.CLOSE, status=204, same_origin=True, summary="Log out"),
    Route("GET", "/account", "account", reply=Account, unauthorized=LoggedOut,
          summary="The logged-in manager"),
    Route("GET", "/manager/list", "list_managers", Caller.MANAGER, reply=ManagerList, summary="Every manager"),
    Route("GET", "/manager/promote/{id}", "promote", Caller.MANAGER, status=204, errors=(403,), same_origin=True,
          summary="Make a tracker admin"),
    Route("GET", "/manager/demote/{id}", "demote", Caller.MANAGER, status=204, errors=(403, 409), same_origin=True,
          description=DEMOTE_NOTE, summary="Revoke tracker admin (never the last one)"),
]
