"""Gateway routes of manager_svc (accounts and sessions; per-project roles are project_svc's)."""

from services.manager_svc.messages import Account, LoggedOut, Login, ManagerList, ManagerRecord, Register
from tracker.routing import Caller, ClientAddress, CloseSession, CrossOrigin, Doc, OpenSession, Route

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

REFUSED_CROSS_ORIGIN = CrossOrigin(refused=True)  # GET routes that change state with a manager's cookie

ROUTES = [
    Route("POST", "/register", "register", body=Register, extras=(OpenSession(),),
          doc=Doc("Create a manager account and log in", REGISTER_NOTE, reply=ManagerRecord, errors=(409,))),
    Route("POST", "/login", "login", body=Login, extras=(OpenSession(), ClientAddress()),
          doc=Doc("Log in (failed logins throttled)", LOGIN_NOTE, reply=ManagerRecord, errors=(429,))),
    Route("GET", "/logout", "logout", extras=(CloseSession(), REFUSED_CROSS_ORIGIN),
          doc=Doc("Log out", status=204)),
    Route("GET", "/account", "account", doc=Doc("The logged-in manager", reply=Account, unauthorized=LoggedOut)),
    Route("GET", "/manager/list", "list_managers", Caller.MANAGER, doc=Doc("Every manager", reply=ManagerList)),
    Route("GET", "/manager/promote/{id}", "promote", Caller.MANAGER, extras=(REFUSED_CROSS_ORIGIN,),
          doc=Doc("Make a tracker admin", status=204, errors=(403,))),
    Route("GET", "/manager/demote/{id}", "demote", Caller.MANAGER, extras=(REFUSED_CROSS_ORIGIN,),
          doc=Doc("Revoke tracker admin (never the last one)", DEMOTE_NOTE, status=204, errors=(403, 409))),
]
