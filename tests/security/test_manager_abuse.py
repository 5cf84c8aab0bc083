"""Managers (and pretenders) reaching past their roles: every manager route without its role, forged,
expired and logged-out session cookies. Each refusal leaves the database exactly as it was.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest
import requests

from tests.harness import Api
from tests.security.util import (
    ALL,
    EDIT,
    MAINTENANCE,
    MANAGE_ACCESS,
    READ,
    SECRET,
    assert_error,
    assert_ok,
    assert_raw_error,
    raw_http,
    raw_request,
    sql,
    uname,
    unchanged,
)

ADMIN = 0  # not a project role: the route needs tracker_admin


@dataclass
class Targets:
    pid: int
    pending: Api  # worker with a pending request on pid
    granted: Api  # worker with a granted row on pid
    accomplice: Api  # a role-less manager the attacker would like to empower
    admin_id: int


# name: (role needed, request builder(targets, attacker id or None) -> (method, path, body))
ROUTES = {
    "update": (EDIT, lambda t, me: ("POST", f"/project/update/{t.pid}",
                                    {"motd": "pwned", "paused": True, "priority": 9, "hidden": True})),
    "update_rates": (EDIT, lambda t, me: ("POST", f"/project/update/{t.pid}", {"assign_rate": 0.001})),
    "access_list": (MANAGE_ACCESS, lambda t, me: ("GET", f"/project/access_list/{t.pid}", None)),
    "accept_request": (MANAGE_ACCESS, lambda t, me: ("POST", f"/project/accept_request/{t.pid}/{t.pending.id}",
                                                     None)),
    "reject_request": (MANAGE_ACCESS, lambda t, me: ("POST", f"/project/reject_request/{t.pid}/{t.granted.id}",
                                                     None)),
    "set_role_self": (MANAGE_ACCESS, lambda t, me: ("POST", f"/manager/set_role_for_project/{t.pid}",
                                                    {"manager": me or t.accomplice.id, "role": ALL})),
    "set_role_other": (MANAGE_ACCESS, lambda t, me: ("POST", f"/manager/set_role_for_project/{t.pid}",
                                                     {"manager": t.accomplice.id, "role": ALL})),
    "secret_post": (SECRET, lambda t, me: ("POST", f"/project/secret/{t.pid}", {"secret": "pwned"})),
    "webhook_secret_get": (SECRET, lambda t, me: ("GET", f"/project/webhook_secret/{t.pid}", None)),
    "webhook_secret_post": (SECRET, lambda t, me: ("POST", f"/project/webhook_secret/{t.pid}",
                                                   {"webhook_secret": "pwned-hook"})),
    "reset_failed_tasks": (MAINTENANCE, lambda t, me: ("POST", f"/project/reset_failed_tasks/{t.pid}", None)),
    "hard_reset": (MAINTENANCE, lambda t, me: ("POST", f"/project/hard_reset/{t.pid}", None)),
    "reclaim_assigned_tasks": (MAINTENANCE, lambda t, me: ("POST", f"/project/reclaim_assigned_tasks/{t.pid}",
                                                           None)),
    "list_tasks": (READ, lambda t, me: ("GET", f"/project/tasks/{t.pid}", None)),
    "retry_tasks": (MAINTENANCE, lambda t, me: ("POST", f"/project/retry_tasks/{t.pid}", {"filter": {}})),
    "delete_tasks": (MAINTENANCE, lambda t, me: ("POST", f"/project/delete_tasks/{t.pid}", {"filter": {}})),
    "update_tasks": (MAINTENANCE, lambda t, me: ("POST", f"/project/update_tasks/{t.pid}",
                                                 {"filter": {}, "priority": 9})),
    "promote_self": (ADMIN, lambda t, me: ("GET", f"/manager/promote/{me or t.accomplice.id}", None)),
    "promote_other": (ADMIN, lambda t, me: ("GET", f"/manager/promote/{t.accomplice.id}", None)),
    "demote_admin": (ADMIN, lambda t, me: ("GET", f"/manager/demote/{t.admin_id}", None)),
    "set_paused": (ADMIN, lambda t, me: ("POST", "/worker/set_paused", {"worker": t.granted.id, "paused": True})),
}


def call(client: Api, method: str, path: str, body):
    return client.get(path) if method == "GET" else client.post(path, body)


@pytest.fixture
def targets(api, admin, scene) -> Targets:
    assert_ok(scene.outsider.post("/project/request_access", {"project": scene.pid, "assign": True}))
    return Targets(scene.pid, scene.outsider, scene.intruder, api.new_manager(), admin.id)


def _with_role(api: Api, admin: Api, pid: int, role: int) -> Api:
    m = api.new_manager()
    if role:
        assert_ok(admin.post(f"/manager/set_role_for_project/{pid}", {"manager": m.id, "role": role}))
    return m


@pytest.mark.parametrize("route", list(ROUTES))
def test_manager_route_without_the_role_403_nothing_changes(api, admin, system, make_project, targets, route):
    bit, make = ROUTES[route]
    callers = {
        "no role": _with_role(api, admin, targets.pid, 0),
        "every other role": _with_role(api, admin, targets.pid, ALL & ~bit if bit else ALL),
    }
    own = api.new_manager()  # everything on a project of its own, nothing here
    assert_ok(own.post("/project/create", {"name": uname()}))
    callers["role on own project"] = own
    with unchanged(system, targets.pid):
        for who, m in callers.items():
            method, path, body = make(targets, m.id)
            r = call(m, method, path, body)
            assert r.status_code == 403, (who, r.status_code, r.text)
            assert_error(r, 403)
            assert "pwned" not in r.text


@pytest.mark.parametrize("route", list(ROUTES))
def test_manager_route_anonymous_or_worker_401_nothing_changes(api, system, targets, route):
    _, make = ROUTES[route]
    method, path, body = make(targets, None)
    with unchanged(system, targets.pid):
        assert_error(call(api, method, path, body), 401)
        assert_error(call(targets.granted, method, path, body), 401)  # worker headers are no session
        assert_error(call(targets.pending, method, path, body), 401)


def test_revoked_role_refused_at_once(api, admin, system, targets):
    m = _with_role(api, admin, targets.pid, ALL)
    assert_ok(admin.post(f"/manager/set_role_for_project/{targets.pid}", {"manager": m.id, "role": 0}))
    with unchanged(system, targets.pid):
        for route, (_, make) in ROUTES.items():
            method, path, body = make(targets, m.id)
            r = call(m, method, path, body)
            assert r.status_code == 403, (route, r.text)


# --- escalation through project fields ---------------------------------------------------------


def test_chain_into_a_project_without_edit_403(api, admin, system, make_project):
    victim = make_project(hidden=True)
    m = api.new_manager()
    own = assert_ok(m.post("/project/create", {"name": uname()}))["content"]["id"]
    name = uname()
    with unchanged(system, victim, own):
        assert_error(m.post("/project/create", {"name": name, "chain": victim}), 403)
        assert_error(m.post(f"/project/update/{own}", {"chain": victim}), 403)
        assert_error(m.post(f"/project/update/{own}", {"chain": victim, "motd": "also pwned"}), 403)
    assert sql(system, "SELECT count(*) FROM project WHERE name = %s", name) == [(0,)]


def test_non_admin_cannot_make_a_project_public(api, system):
    m = api.new_manager()
    own = assert_ok(m.post("/project/create", {"name": uname()}))["content"]["id"]
    name = uname()
    with unchanged(system, own):
        assert_error(m.post("/project/create", {"name": name, "public": True}), 403)
        assert_error(m.post(f"/project/update/{own}", {"public": True}), 403)
        assert_error(m.post(f"/project/update/{own}", {"public": True, "motd": "pwned"}), 403)
    assert sql(system, "SELECT count(*) FROM project WHERE name = %s", name) == [(0,)]


# --- forged, expired and logged-out sessions -----------------------------------------------------


@pytest.fixture
def victim(api, admin, make_project):
    """A manager with READ on a hidden project and every role on a project of its own."""
    hidden = make_project(hidden=True)
    m = api.new_manager()
    assert_ok(admin.post(f"/manager/set_role_for_project/{hidden}", {"manager": m.id, "role": READ}))
    own = assert_ok(m.post("/project/create", {"name": uname()}))["content"]["id"]
    assert_ok(m.get(f"/project/get/{hidden}"))
    return m, hidden, own


def assert_session_refused(system, base: str, token: str, hidden: int, own: int) -> None:
    """The cookie is no session: 401 on manager-only routes, anonymous on anonymous-allowed ones."""
    cookies = {"tt": token}

    def get(path):
        return requests.get(base + path, cookies=cookies, timeout=30)

    def post(path, body):
        return requests.post(base + path, json=body, cookies=cookies, timeout=30)

    name = uname()
    with unchanged(system, hidden, own):
        body = assert_error(get("/account"), 401)
        assert body["content"] == {"logged_in": False}, body
        assert_error(get("/manager/list"), 401)
        assert_error(post("/project/create", {"name": name}), 401)
        assert_error(post(f"/project/update/{own}", {"motd": "pwned"}), 401)
        assert_error(post(f"/project/hard_reset/{own}", None), 401)
        assert_error(post(f"/project/secret/{own}", {"secret": "pwned"}), 401)
        assert_error(get(f"/project/webhook_secret/{own}"), 401)
        assert_error(get(f"/project/secret/{own}"), 401)  # anonymous on a worker-or-manager route
        assert_error(get(f"/project/get/{hidden}"), 401)  # anonymous, not the READ manager
        listed = [p["id"] for p in assert_ok(get("/project/list"))["content"]["projects"]]
        assert hidden not in listed
        assert_ok(get("/worker/stats"))
    assert sql(system, "SELECT count(*) FROM project WHERE name = %s", name) == [(0,)]


@pytest.mark.parametrize("kind", ["random", "empty", "long", "ascii-junk", "appended", "truncated",
                                  "digest", "uppercased"])
def test_forged_session_cookie(api, system, victim, kind):
    m, hidden, own = victim
    real = m.http.cookies.get("tt")
    token = {
        "random": secrets.token_urlsafe(32),
        "empty": "",
        "long": "A" * 4000,
        "ascii-junk": "!#$%&'*+-.^_`|~" * 4,
        "appended": real + "A",
        "truncated": real[:-1],
        "digest": sql(system, "SELECT token_digest FROM manager_session WHERE manager_id = %s", m.id)[0][0],
        "uppercased": real.upper() if real.upper() != real else real.lower(),
    }[kind]
    assert token != real
    assert_session_refused(system, api.base, token, hidden, own)
    with unchanged(system, hidden, own):
        r = requests.get(api.base + "/logout", cookies={"tt": token}, timeout=30)
        assert r.status_code == 204, r.text  # "anyone": and it must not end the victim's session
    assert_ok(m.get("/account"))


@pytest.mark.parametrize("cookie", [b"tt=\xc3\xa9t\xc3\xa9", b"tt=\xff\xfe\xfd", b"tt=\x80" * 3, b"tt=\xe2\x82"])
def test_non_ascii_session_cookie(api, system, victim, cookie):
    _, hidden, own = victim
    with unchanged(system, hidden, own):
        for path in ("/account", "/manager/list"):
            assert_raw_error(raw_http(system, raw_request("GET", path.encode(), [b"Cookie: " + cookie])), (401,))
        answer = raw_http(system, raw_request("POST", b"/project/create", [b"Cookie: " + cookie],
                                              b'{"name": "non-ascii-cookie"}'))
        assert_raw_error(answer, (401,))
        answer = raw_http(system, raw_request("GET", f"/project/get/{hidden}".encode(), [b"Cookie: " + cookie]))
        assert_raw_error(answer, (401,))  # anonymous


def test_expired_session(api, system, victim):
    m, hidden, own = victim
    token = m.http.cookies.get("tt")
    sql(system, "UPDATE manager_session SET expires = now() - interval '1 hour' WHERE manager_id = %s", m.id)
    assert_session_refused(system, api.base, token, hidden, own)


def test_session_expiring_now(api, system, victim):
    m, hidden, own = victim
    sql(system, "UPDATE manager_session SET expires = now() WHERE manager_id = %s", m.id)
    assert_session_refused(system, api.base, m.http.cookies.get("tt"), hidden, own)


def test_logged_out_session(api, system, victim):
    m, hidden, own = victim
    second = Api(api.base)  # a second session of the same manager, by login
    assert_ok(second.post("/login", {"username": m.username, "password": "tt-test-password"}))
    token = second.http.cookies.get("tt")
    assert token and token != m.http.cookies.get("tt")
    assert_ok(second.get("/account"))
    r = requests.get(api.base + "/logout", cookies={"tt": token}, timeout=30)
    assert r.status_code == 204, r.text
    assert_session_refused(system, api.base, token, hidden, own)
    assert_ok(m.get("/account"))  # logging out one session leaves the others alone


def test_old_session_after_demotion_loses_admin(api, admin, system, make_project):
    """A promoted manager's cookie carries no admin once demoted (sessions read the current flag)."""
    hidden = make_project(hidden=True)
    m = api.new_manager()
    assert admin.get(f"/manager/promote/{m.id}").status_code == 204
    assert_ok(m.get(f"/project/get/{hidden}"))
    assert admin.get(f"/manager/demote/{m.id}").status_code == 204
    victim_worker = api.new_worker()
    with unchanged(system, hidden):
        assert_error(m.get(f"/project/get/{hidden}"), 403)
        assert_error(m.post(f"/project/hard_reset/{hidden}"), 403)
        assert_error(m.post("/worker/set_paused", {"worker": victim_worker.id, "paused": True}), 403)
        assert_error(m.get(f"/manager/promote/{m.id}"), 403)
