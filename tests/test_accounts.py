"""Contract §6.2 (manager accounts), §6.3 (workers) and §7 (``tracker admin create``), end to end."""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.harness import Api
from tests.test_conventions import FAR_ID, PAUSED, assert_error

MANAGER_KEYS = {"id", "username", "tracker_admin", "register_time"}
WORKER_KEYS = {"id", "created", "alias", "paused"}
PASSWORD = "tt-test-password"


def username(prefix: str = "u") -> str:
    return prefix + uuid.uuid4().hex[:12]


def register(api: Api, name: str, password: str = PASSWORD) -> requests.Response:
    return requests.post(api.base + "/register", json={"username": name, "password": password}, timeout=30)


def login(api: Api, name: str, password: str = PASSWORD) -> requests.Response:
    return requests.post(api.base + "/login", json={"username": name, "password": password}, timeout=30)


def cookie_attributes(r: requests.Response) -> tuple[str, set[str]]:
    """The ``tt`` cookie's value and its attributes (lower-cased names, as written)."""
    header = r.headers["Set-Cookie"]
    first, *attrs = [part.strip() for part in header.split(";")]
    name, _, value = first.partition("=")
    assert name == "tt", header
    return value, {a.lower() for a in attrs}


def with_cookie(api: Api, token: str) -> Api:
    fresh = Api(api.base)
    fresh.http.cookies.set("tt", token)
    return fresh


def assert_manager(m: dict, name: str, admin: bool) -> None:
    assert set(m) == MANAGER_KEYS, m
    assert m["username"] == name
    assert m["tracker_admin"] is admin
    assert isinstance(m["id"], int) and m["id"] >= 1
    assert abs(m["register_time"] - time.time()) < 120


# --- register --------------------------------------------------------------------------------------


def lifetime(system) -> int:
    return int(system.env.get("TT_SESSION_LIFETIME") or 8 * 3600)


def test_register_shape_and_cookie(api, system):
    name = username()
    before = int(time.time())
    r = register(api, name)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"ok", "content"} and body["ok"] is True
    assert set(body["content"]) == {"manager"}
    assert_manager(body["content"]["manager"], name, admin=False)
    assert before - 1 <= body["content"]["manager"]["register_time"] <= int(time.time()) + 1
    token, attrs = cookie_attributes(r)
    assert len(token) >= 22  # ≥ 128 bits of randomness, in any text encoding
    assert "path=/" in attrs and "httponly" in attrs and "samesite=strict" in attrs
    assert "secure" not in attrs  # the test system serves plain HTTP
    assert f"max-age={lifetime(system)}" in attrs  # 8 h unless configured
    account = with_cookie(api, token).get("/account")
    assert account.status_code == 200, account.text
    assert account.json()["content"]["manager"] == body["content"]["manager"]


def test_password_and_session_are_stored_as_digests(api, system):
    name, password = username(), "stored-" + uuid.uuid4().hex[:10]
    r = register(api, name, password)
    token, _ = cookie_attributes(r)
    (stored,) = system.sql("SELECT password_hash FROM manager WHERE username = %s", name)[0]
    assert stored.startswith(("$argon2id$", "$2b$", "$2a$", "$2y$")) and password not in stored
    sessions = system.sql("SELECT token_digest FROM manager_session s JOIN manager m ON m.id = s.manager_id "
                          "WHERE m.username = %s", name)
    assert len(sessions) == 1 and token not in sessions[0][0]
    (left,) = system.sql("SELECT extract(epoch FROM s.expires - now())::int FROM manager_session s "
                         "JOIN manager m ON m.id = s.manager_id WHERE m.username = %s", name)[0]
    assert abs(left - lifetime(system)) < 120


def test_expired_session_is_401(api, system):
    m = api.new_manager()
    assert m.get("/account").status_code == 200
    system.sql("UPDATE manager_session SET expires = now() - interval '1 second' WHERE manager_id = %s", m.id)
    assert_error(m.get("/account"), 401)
    assert_error(m.get("/manager/list"), 401)
    assert m.get("/worker/stats").status_code == 200  # anonymous route: treated as anonymous


def test_concurrent_duplicate_registrations(api):
    name = username()
    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(r.status_code for r in pool.map(lambda _: register(api, name), range(8)))
    assert statuses == [200] + [409] * 7


def test_register_ids_increase(api):
    a = register(api, username()).json()["content"]["manager"]["id"]
    b = register(api, username()).json()["content"]["manager"]["id"]
    assert b > a


@pytest.mark.parametrize("name", ["ab", "x", "", "a" * 17, "é" * 17])
def test_register_bad_username(api, name):
    assert_error(register(api, name), 400, "username")


def _cjk(n: int) -> str:
    return "".join(chr(0x4E00 + secrets.randbelow(20000)) for _ in range(n))


@pytest.mark.parametrize("make", [
    lambda: uuid.uuid4().hex[:3], lambda: uuid.uuid4().hex[:16], lambda: _cjk(3), lambda: _cjk(16),
    lambda: "é" * 13 + uuid.uuid4().hex[:3],
])
def test_register_username_bounds_count_characters(api, make):
    name = make()
    r = register(api, name)
    assert r.status_code == 200, r.text
    assert r.json()["content"]["manager"]["username"] == name
    assert login(api, name).status_code == 200


@pytest.mark.parametrize("password", ["", "1234567", "p" * 129])
def test_register_bad_password(api, password):
    name = username()
    assert_error(register(api, name, password), 400, "password")
    assert_error(login(api, name, "whatever1"), 401)  # nothing was created


@pytest.mark.parametrize("password", ["q7w-e8r9", "p" * 128, "pässwörd"])
def test_register_password_bounds(api, password):
    name = username()
    assert register(api, name, password).status_code == 200
    assert login(api, name, password).status_code == 200


def test_register_missing_or_mistyped_fields(api):
    assert_error(api.post("/register", {"password": PASSWORD}), 400, "username")
    assert_error(api.post("/register", {"username": username()}), 400, "password")
    assert_error(api.post("/register", {"username": 12345, "password": PASSWORD}), 400, "username")
    assert_error(api.post("/register", {"username": username(), "password": 12345678}), 400, "password")
    assert_error(api.post("/register", raw=b"{nope"), 400)


def test_register_duplicate_is_409(api):
    name = username()
    first = register(api, name)
    assert first.status_code == 200
    dup = register(api, name, "another-password")
    assert_error(dup, 409)
    assert "tt=" not in dup.headers.get("Set-Cookie", "")
    assert login(api, name, "another-password").status_code == 401
    assert login(api, name).status_code == 200


def test_usernames_are_case_sensitive(api):
    base = uuid.uuid4().hex[:10]
    lower = register(api, "ab" + base)
    upper = register(api, "AB" + base)
    assert lower.status_code == 200 and upper.status_code == 200, (lower.text, upper.text)
    assert lower.json()["content"]["manager"]["id"] != upper.json()["content"]["manager"]["id"]
    assert login(api, "Ab" + base).status_code == 401


def test_first_manager_is_the_admin(admin):
    r = admin.get("/account")
    assert r.json()["content"]["manager"]["tracker_admin"] is True
    assert r.json()["content"]["manager"]["username"] == "admin"


# --- login / logout / account -----------------------------------------------------------------------


def test_login(api):
    name = username()
    registered = register(api, name).json()["content"]["manager"]
    r = login(api, name)
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True, "content": {"manager": registered}}
    token, attrs = cookie_attributes(r)
    assert "path=/" in attrs and "httponly" in attrs and "samesite=strict" in attrs
    assert with_cookie(api, token).get("/account").json()["content"]["manager"]["id"] == registered["id"]


def test_each_login_is_its_own_session(api):
    name = username()
    register(api, name)
    t1, _ = cookie_attributes(login(api, name))
    t2, _ = cookie_attributes(login(api, name))
    assert t1 != t2
    assert with_cookie(api, t1).get("/logout").status_code == 204
    assert_error(with_cookie(api, t1).get("/account"), 401)
    assert with_cookie(api, t2).get("/account").status_code == 200


def test_login_refusals(api):
    name = username()
    register(api, name)
    for r in (login(api, name, "wrong-password"), login(api, username(), PASSWORD), login(api, name, PASSWORD + "x"),
              login(api, name.upper(), PASSWORD)):
        body = assert_error(r, 401)
        assert body["message"] == "Invalid username/password"
        assert "tt=" not in r.headers.get("Set-Cookie", "")


def test_login_malformed_body(api):
    assert_error(api.post("/login", raw=b"{bad json"), 400)
    assert_error(api.post("/login", {"username": username()}), 400, "password")
    assert_error(api.post("/login", {"password": PASSWORD}), 400, "username")
    assert_error(api.post("/login", {"username": 1, "password": PASSWORD}), 400, "username")
    assert_error(api.post("/login", raw=b"[]"), 400)


def test_logout_deletes_the_session_server_side(api, system):
    m = api.new_manager()
    token = m.http.cookies.get("tt")
    assert token
    r = m.get("/logout")
    assert r.status_code == 204
    assert r.content == b""
    assert "tt=" in r.headers.get("Set-Cookie", "")  # the cookie is expired client-side too
    old = with_cookie(api, token)
    body = assert_error(old.get("/account"), 401)
    assert body["content"] == {"logged_in": False}
    assert_error(old.get("/manager/list"), 401)
    assert system.sql("SELECT count(*) FROM manager_session WHERE manager_id = %s", m.id)[0][0] == 0


def test_logout_without_session_is_204(api):
    assert api.get("/logout").status_code == 204
    assert with_cookie(api, "forged-token").get("/logout").status_code == 204


def test_account(api):
    m = api.new_manager()
    r = m.get("/account")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"ok", "content"} and body["ok"] is True
    assert set(body["content"]) == {"logged_in", "manager"}
    assert body["content"]["logged_in"] is True
    assert_manager(body["content"]["manager"], m.username, admin=False)
    assert body["content"]["manager"]["id"] == m.id


@pytest.mark.parametrize("cookie", [None, "forged", "", "x" * 43])
def test_account_not_logged_in(api, cookie):
    client = api if cookie is None else with_cookie(api, cookie)
    body = assert_error(client.get("/account"), 401)
    assert body == {"ok": False, "message": "Unauthorized", "content": {"logged_in": False}}


# --- manager list, promote, demote --------------------------------------------------------------------


def test_manager_list(api, admin):
    m = api.new_manager()
    r = m.get("/manager/list")
    assert r.status_code == 200, r.text
    managers = r.json()["content"]["managers"]
    assert set(r.json()["content"]) == {"managers"}
    ids = [x["id"] for x in managers]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert admin.id in ids and m.id in ids
    for x in managers:
        assert set(x) == MANAGER_KEYS
        assert "password" not in str(x).lower()
    assert [x for x in managers if x["id"] == m.id][0]["username"] == m.username
    assert_error(api.get("/manager/list"), 401)
    assert_error(with_cookie(api, "forged").get("/manager/list"), 401)


@pytest.mark.parametrize("action", ["promote", "demote"])
def test_promote_demote_refusals(api, admin, action):
    m, other = api.new_manager(), api.new_manager()
    assert_error(api.get(f"/manager/{action}/{other.id}"), 401)
    assert_error(with_cookie(api, "forged").get(f"/manager/{action}/{other.id}"), 401)
    assert_error(m.get(f"/manager/{action}/{other.id}"), 403)
    assert_error(m.get(f"/manager/{action}/{m.id}"), 403)
    assert_error(admin.get(f"/manager/{action}/{FAR_ID}"), 404)
    assert_error(admin.get(f"/manager/{action}/abc"), 400, "'id'")
    assert_error(admin.get(f"/manager/{action}/0"), 400, "'id'")
    assert other.get("/account").json()["content"]["manager"]["tracker_admin"] is False
    assert m.get("/account").json()["content"]["manager"]["tracker_admin"] is False


def test_promote_takes_effect_on_existing_session(api, admin):
    m = api.new_manager()
    w = api.new_worker()
    assert_error(m.post("/worker/set_paused", {"worker": w.id, "paused": True}), 403)
    r = admin.get(f"/manager/promote/{m.id}")
    assert r.status_code == 204 and r.content == b""
    assert m.get("/account").json()["content"]["manager"]["tracker_admin"] is True
    assert m.post("/worker/set_paused", {"worker": w.id, "paused": True}).status_code == 200
    assert api.get(f"/worker/get/{w.id}").json()["content"]["worker"]["paused"] is True
    listed = [x for x in admin.get("/manager/list").json()["content"]["managers"] if x["id"] == m.id]
    assert listed[0]["tracker_admin"] is True
    # promoting again is harmless
    assert admin.get(f"/manager/promote/{m.id}").status_code == 204

    r = admin.get(f"/manager/demote/{m.id}")
    assert r.status_code == 204 and r.content == b""
    assert m.get("/account").json()["content"]["manager"]["tracker_admin"] is False
    assert_error(m.post("/worker/set_paused", {"worker": w.id, "paused": False}), 403)
    assert api.get(f"/worker/get/{w.id}").json()["content"]["worker"]["paused"] is True


def test_admin_cannot_change_own_status(api, admin):
    m = api.new_manager()
    assert admin.get(f"/manager/promote/{m.id}").status_code == 204
    assert_error(m.get(f"/manager/demote/{m.id}"), 403)
    assert_error(m.get(f"/manager/promote/{m.id}"), 403)
    assert m.get("/account").json()["content"]["manager"]["tracker_admin"] is True
    # a promoted admin can act on other managers, the original admin included
    other = api.new_manager()
    assert m.get(f"/manager/promote/{other.id}").status_code == 204
    assert m.get(f"/manager/demote/{other.id}").status_code == 204
    assert admin.get(f"/manager/demote/{m.id}").status_code == 204


# --- workers: create ------------------------------------------------------------------------------------


def test_worker_create_shape(api):
    before = int(time.time())
    r = api.post("/worker/create", {"alias": "crawler-1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"ok", "content"} and body["ok"] is True
    worker = body["content"]["worker"]
    assert set(worker) == WORKER_KEYS | {"secret"}
    assert worker["alias"] == "crawler-1" and worker["paused"] is False
    assert isinstance(worker["id"], int) and worker["id"] >= 1
    assert before - 1 <= worker["created"] <= int(time.time()) + 1
    assert len(base64.b64decode(worker["secret"], validate=True)) == 32
    assert len(worker["secret"]) == 44 and worker["secret"].endswith("=")


def test_worker_secrets_differ(api):
    secrets = {api.new_worker().secret for _ in range(5)}
    assert len(secrets) == 5


@pytest.mark.parametrize("body", [None, {}, {"alias": ""}, {"alias": None}])
def test_worker_default_alias(api, body):
    r = api.post("/worker/create", raw=b"") if body is None else api.post("/worker/create", body)
    assert r.status_code == 200, r.text
    assert r.json()["content"]["worker"]["alias"] == "default_alias"


def test_worker_create_reserved_alias(api):
    before = len(api.get("/worker/stats").json()["content"]["stats"])
    assert_error(api.post("/worker/create", {"alias": "unassigned"}), 400, "alias")
    assert len(api.get("/worker/stats").json()["content"]["stats"]) == before
    # only the exact word is reserved
    assert api.post("/worker/create", {"alias": "Unassigned"}).status_code == 200


def test_worker_secret_is_never_stored_raw(api, system):
    w = api.new_worker()
    raw = base64.b64decode(w.secret)
    rows = system.sql("SELECT * FROM worker WHERE id = %s", w.id)
    assert len(rows) == 1
    for value in rows[0]:
        text = value.hex() if isinstance(value, bytes | memoryview) else str(value)
        assert w.secret not in text and w.secret.rstrip("=") not in text
        assert raw.hex() not in text.lower()
        assert value != raw
    every_text = system.sql("SELECT row_to_json(w)::text FROM worker w")
    assert all(w.secret not in r[0] for r in every_text)


# --- workers: update -------------------------------------------------------------------------------------


def test_worker_update(api):
    w = api.new_worker("before")
    r = w.post("/worker/update", {"alias": "after"})
    assert r.status_code == 200 and r.json() == {"ok": True}
    assert api.get(f"/worker/get/{w.id}").json()["content"]["worker"]["alias"] == "after"


@pytest.mark.parametrize("body", [{}, {"alias": ""}, {"alias": "unassigned"}, {"alias": None}, {"alias": 3}])
def test_worker_update_bad_alias(api, body):
    w = api.new_worker("keep")
    assert_error(w.post("/worker/update", body), 400, "alias")
    assert api.get(f"/worker/get/{w.id}").json()["content"]["worker"]["alias"] == "keep"


def test_worker_update_needs_credentials(api, admin):
    assert_error(api.post("/worker/update", {"alias": "x"}), 401)
    assert_error(admin.post("/worker/update", {"alias": "x"}), 401)


def test_worker_update_changes_only_the_caller(api):
    a, b = api.new_worker("a"), api.new_worker("b")
    assert a.post("/worker/update", {"alias": "a2"}).status_code == 200
    assert api.get(f"/worker/get/{b.id}").json()["content"]["worker"]["alias"] == "b"


# --- workers: set_paused ---------------------------------------------------------------------------------


def test_set_paused(api, admin):
    w = api.new_worker()
    r = admin.post("/worker/set_paused", {"worker": w.id, "paused": True})
    assert r.status_code == 200 and r.json() == {"ok": True}
    assert api.get(f"/worker/get/{w.id}").json()["content"]["worker"]["paused"] is True
    stats = {s["id"]: s for s in api.get("/worker/stats").json()["content"]["stats"]}
    assert stats[w.id]["paused"] is True
    r = admin.post("/worker/set_paused", {"worker": w.id, "paused": False})
    assert r.status_code == 200
    assert api.get(f"/worker/get/{w.id}").json()["content"]["worker"]["paused"] is False


def test_set_paused_refusals(api, admin):
    w = api.new_worker()
    manager = api.new_manager()
    body = {"worker": w.id, "paused": True}
    assert_error(api.post("/worker/set_paused", body), 401)
    assert_error(w.post("/worker/set_paused", body), 401)  # a worker is not a manager
    assert_error(manager.post("/worker/set_paused", body), 403)
    assert_error(admin.post("/worker/set_paused", {"worker": FAR_ID, "paused": True}), 404)
    assert_error(admin.post("/worker/set_paused", {"paused": True}), 400, "worker")
    assert_error(admin.post("/worker/set_paused", {"worker": w.id}), 400, "paused")
    assert_error(admin.post("/worker/set_paused", {}), 400)
    assert api.get(f"/worker/get/{w.id}").json()["content"]["worker"]["paused"] is False


def test_paused_worker_cannot_get_but_can_submit(api, admin, make_project, grant):
    project = make_project()
    w = api.new_worker()
    grant(w, project)
    assert w.post("/task/submit", {"project": project, "recipe": "one"}).status_code == 200
    assert admin.post("/worker/set_paused", {"worker": w.id, "paused": True}).status_code == 200
    body = assert_error(w.get(f"/task/get/{project}"), 400)
    assert body == {"ok": False, "message": PAUSED}
    r = w.post("/task/submit", {"project": project, "recipe": "two"})
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True
    assert w.post("/worker/update", {"alias": "still-me"}).status_code == 200
    assert w.get("/worker/stats").status_code == 200
    # the pause takes effect at once both ways
    assert admin.post("/worker/set_paused", {"worker": w.id, "paused": False}).status_code == 200
    r = w.get(f"/task/get/{project}")
    assert r.status_code == 200 and r.json()["content"]["task"]["recipe"] == "one"


# --- workers: get and stats ------------------------------------------------------------------------------


def test_worker_get(api):
    w = api.new_worker("visible")
    r = api.get(f"/worker/get/{w.id}")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"ok", "content"} and body["ok"] is True
    worker = body["content"]["worker"]
    assert set(worker) == WORKER_KEYS  # never a secret, not even null
    assert worker["id"] == w.id and worker["alias"] == "visible" and worker["paused"] is False
    assert w.secret not in r.text


def test_worker_get_as_admin_has_no_secret(api, admin):
    w = api.new_worker()
    r = admin.get(f"/worker/get/{w.id}")
    assert set(r.json()["content"]["worker"]) == WORKER_KEYS
    assert w.secret not in r.text


def test_worker_get_errors(api):
    assert_error(api.get("/worker/get/abc"), 400, "'id'")
    assert_error(api.get(f"/worker/get/{FAR_ID}"), 404)


def test_worker_stats(api):
    a, b = api.new_worker("stat-a"), api.new_worker("stat-b")
    r = api.get("/worker/stats")
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] is True and set(body["content"]) == {"stats"}
    stats = body["content"]["stats"]
    ids = [s["id"] for s in stats]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    for s in stats:
        assert set(s) == {"id", "alias", "closed_task_count", "paused"}
        assert isinstance(s["closed_task_count"], int)
    by_id = {s["id"]: s for s in stats}
    assert by_id[a.id] == {"id": a.id, "alias": "stat-a", "closed_task_count": 0, "paused": False}
    assert by_id[b.id]["alias"] == "stat-b"
    assert a.secret not in r.text


def test_worker_stats_counts_closures(api, make_project, grant):
    project = make_project()
    w = api.new_worker()
    grant(w, project)
    for recipe in ("x", "y"):
        assert w.post("/task/submit", {"project": project, "recipe": recipe}).status_code == 200
    for _ in range(2):
        task = w.get(f"/task/get/{project}").json()["content"]["task"]
        r = w.post("/task/release", {"task_id": task["id"], "result": 0})
        assert r.json()["content"]["updated"] is True, r.text
    stats = {s["id"]: s for s in api.get("/worker/stats").json()["content"]["stats"]}
    assert stats[w.id]["closed_task_count"] == 2


# --- §7: tracker admin create -----------------------------------------------------------------------------


def _output(result) -> str:
    return result.stdout + result.stderr


def test_admin_create(system, api):
    name, password = username("op"), "S3cret-" + uuid.uuid4().hex
    result = system.tracker("admin", "create", name, input=password + "\n")
    assert result.returncode == 0, _output(result)
    assert password not in _output(result)
    r = login(api, name, password)
    assert r.status_code == 200, r.text
    assert_manager(r.json()["content"]["manager"], name, admin=True)
    token, _ = cookie_attributes(r)
    other = api.new_manager()
    assert with_cookie(api, token).get(f"/manager/promote/{other.id}").status_code == 204


def test_admin_create_password_without_newline_and_only_first_line(system, api):
    name, password = username("op"), "first-line-" + uuid.uuid4().hex[:8]
    result = system.tracker("admin", "create", name, input=password + "\nsecond line ignored\n")
    assert result.returncode == 0, _output(result)
    assert login(api, name, password).status_code == 200
    name2 = username("op")
    result = system.tracker("admin", "create", name2, input=password)
    assert result.returncode == 0, _output(result)
    assert login(api, name2, password).status_code == 200


def test_admin_create_existing_username(system, api):
    m = api.new_manager()
    password = "replacement-" + uuid.uuid4().hex[:8]
    result = system.tracker("admin", "create", m.username, input=password + "\n")
    assert result.returncode == 1, _output(result)
    assert password not in _output(result)
    assert login(api, m.username, password).status_code == 401
    assert login(api, m.username).status_code == 200
    assert m.get("/account").json()["content"]["manager"]["tracker_admin"] is False


@pytest.mark.parametrize("name,stdin", [
    ("ab", "good-password\n"),
    ("a" * 17, "good-password\n"),
    (None, "short\n"),
    (None, "p" * 129 + "\n"),
    (None, ""),
    (None, "\n"),
])
def test_admin_create_invalid_input(system, api, name, stdin):
    name = name or username("op")
    result = system.tracker("admin", "create", name, input=stdin)
    assert result.returncode == 2, _output(result)
    secret = stdin.strip()
    if secret:
        assert secret not in _output(result)
    assert system.sql("SELECT count(*) FROM manager WHERE username = %s", name)[0][0] == 0
