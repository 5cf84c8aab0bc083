"""Findings 3, 5 and 10 of the adversarial review (issue "Security: close what an adversarial review
found"), replayed end to end on the shared test system. Each attack is made as the review made it and
must be refused with the contract's answer, leaving the database exactly as it was.

- 3, cross-site admin takeover: §2 cross-origin refusal (403 ``Cross-origin request refused`` right
  after the route match), ``SameSite=Strict``.
- 5, MANAGE_ACCESS was every role: §6.2 ``set_role_for_project`` grants only bits the caller holds.
- 10 (part): look-alike usernames (§6.2 NFKC), common passwords, 50 sessions per manager, browser
  safety headers on every answer. The per-address limits (login, worker creation) need a system with
  them on: tests/security/test_review_limits.py.
"""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
import requests

from tests.harness import ROOT, Api
from tests.security.util import (
    ALL,
    EDIT,
    LIMIT,
    MAINTENANCE,
    MANAGE_ACCESS,
    READ,
    SECRET,
    UNKNOWN,
    assert_error,
    assert_ok,
    raw_http,
    raw_request,
    sql,
    uname,
    unchanged,
)

CROSS_ORIGIN = "Cross-origin request refused"
CROSS_SITE_NAVIGATION = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                    "Content-Security-Policy": "frame-ancestors 'none'"}
PASSWORD = "tt-test-password"

# Contract §2: "every POST route whose caller in the §6 table is a manager, a role or admin, and the GET
# routes /logout, /manager/promote/:id and /manager/demote/:id".
GUARDED = [
    ("GET", "/logout"), ("GET", "/manager/promote/{id}"), ("GET", "/manager/demote/{id}"),
    ("POST", "/manager/set_role_for_project/{id}"), ("POST", "/worker/set_paused"), ("POST", "/project/create"),
    ("POST", "/project/update/{id}"), ("POST", "/project/accept_request/{id}/{wid}"),
    ("POST", "/project/reject_request/{id}/{wid}"), ("POST", "/project/secret/{id}"),
    ("POST", "/project/webhook_secret/{id}"), ("POST", "/project/reset_failed_tasks/{id}"),
    ("POST", "/project/hard_reset/{id}"), ("POST", "/project/reclaim_assigned_tasks/{id}"),
    ("POST", "/project/retry_tasks/{id}"), ("POST", "/project/delete_tasks/{id}"),
    ("POST", "/project/update_tasks/{id}"), ("POST", "/task/edit/{id}"),
]
# "(not /register, /login, /worker/create, /logs, worker routes or the webhook)"
NOT_GUARDED = [("POST", "/register"), ("POST", "/login"), ("POST", "/worker/create"), ("POST", "/logs"),
               ("POST", "/worker/update"), ("POST", "/task/submit"), ("POST", "/git/receivehook")]


def admin_flag(system, manager_id: int) -> bool:
    return sql(system, "SELECT tracker_admin FROM manager WHERE id = %s", manager_id)[0][0]


def own_origin(system) -> str:
    return f"http://127.0.0.1:{system.port}"


# --- finding 3: cross-site admin takeover ------------------------------------------------------------


def test_cross_site_link_does_not_promote_the_attacker(api, admin, system):
    """The review: an admin following a link (top-level navigation, SameSite=Lax sent the cookie) got 204."""
    attacker = api.new_manager()
    with unchanged(system):
        r = admin.get(f"/manager/promote/{attacker.id}", headers=CROSS_SITE_NAVIGATION)
        assert_error(r, 403, CROSS_ORIGIN)
        assert "Set-Cookie" not in r.headers
        r = admin.get(f"/manager/demote/{attacker.id}", headers=CROSS_SITE_NAVIGATION)
        assert_error(r, 403, CROSS_ORIGIN)
    assert admin_flag(system, attacker.id) is False


def test_cross_site_logout_refused(api, system):
    m = api.new_manager()
    with unchanged(system):
        r = m.get("/logout", headers=CROSS_SITE_NAVIGATION)
        assert_error(r, 403, CROSS_ORIGIN)
        assert "Set-Cookie" not in r.headers  # the cookie is not expired either
    assert_ok(m.get("/account"))


def test_text_plain_post_from_another_origin_on_the_same_host(api, system):
    """The review: ``Origin: http://127.0.0.1:8080`` (another port of the same host), text/plain → 200."""
    owner = api.new_manager()  # not an admin: MANAGE_ACCESS through its own project
    pid = assert_ok(owner.post("/project/create", {"name": uname()}))["content"]["id"]
    accomplice = api.new_manager()
    with unchanged(system, pid):
        r = owner.post(f"/manager/set_role_for_project/{pid}",
                       raw=f'{{"manager": {accomplice.id}, "role": {READ}}}',
                       headers={"Content-Type": "text/plain", "Origin": "http://127.0.0.1:8080"})
        assert_error(r, 403, CROSS_ORIGIN)


def test_form_post_from_an_evil_origin_cannot_set_the_webhook_secret(api, system):
    owner = api.new_manager()
    pid = assert_ok(owner.post("/project/create", {"name": uname()}))["content"]["id"]
    with unchanged(system, pid):
        r = owner.post(f"/project/webhook_secret/{pid}", raw="webhook_secret=pwned-by-evil",
                       headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"})
        assert_error(r, 403, CROSS_ORIGIN)
        # The same JSON body, also refused.
        r = owner.post(f"/project/webhook_secret/{pid}", {"webhook_secret": "pwned-by-evil"},
                       headers={"Origin": "http://evil.example"})
        assert_error(r, 403, CROSS_ORIGIN)
    assert "pwned" not in assert_ok(owner.get(f"/project/webhook_secret/{pid}"))["content"]["webhook_secret"]


@pytest.fixture
def guarded_targets(api, admin, make_project):
    """Concrete paths and bodies that the admin could otherwise use on every guarded route."""
    pid = make_project()
    worker = api.new_worker()
    assert_ok(worker.post("/project/request_access", {"project": pid, "assign": True}))
    other = api.new_manager()
    return {
        "/logout": None,
        "/manager/promote/{id}": None, "/manager/demote/{id}": None,
        "/manager/set_role_for_project/{id}": {"manager": other.id, "role": ALL},
        "/worker/set_paused": {"worker": worker.id, "paused": True},
        "/project/create": {"name": uname()},
        "/project/update/{id}": {"motd": "pwned"},
        "/project/accept_request/{id}/{wid}": None, "/project/reject_request/{id}/{wid}": None,
        "/project/secret/{id}": {"secret": "pwned"}, "/project/webhook_secret/{id}": {"webhook_secret": "pwned-pwned"},
        "/project/reset_failed_tasks/{id}": None, "/project/hard_reset/{id}": None,
        "/project/reclaim_assigned_tasks/{id}": None,
        "/project/retry_tasks/{id}": {"filter": {}}, "/project/delete_tasks/{id}": {"filter": {}},
        "/project/update_tasks/{id}": {"filter": {}, "priority": 9}, "/task/edit/{id}": {"recipe": "pwned"},
    }, pid, worker.id, other.id


def _concrete(template: str, pid: int, wid: int, manager: int) -> str:
    path = template.replace("{wid}", str(wid))
    return path.replace("{id}", str(manager if template.startswith("/manager/promote") or
                                     template.startswith("/manager/demote") else pid))


@pytest.mark.parametrize("method,template", GUARDED, ids=[f"{m} {p}" for m, p in GUARDED])
@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}, {"Origin": "http://evil.example"},
    {"Origin": "null"}, {"Sec-Fetch-Site": "same-origin", "Origin": "http://evil.example"},
    {"Sec-Fetch-Site": "cross-site", "Origin": "SELF"},
], ids=["cross-site", "same-site", "evil-origin", "null-origin", "same-origin-but-evil-origin",
        "cross-site-own-origin"])
def test_every_guarded_route_refuses_cross_origin(api, admin, system, guarded_targets, method, template, headers):
    bodies, pid, wid, other = guarded_targets
    path = _concrete(template, pid, wid, other)
    headers = {k: own_origin(system) if v == "SELF" else v for k, v in headers.items()}
    # The logout case uses a session of its own, so that a failure would not log the admin out.
    caller = Api(api.base).new_manager() if template == "/logout" else admin
    with unchanged(system, pid):
        r = caller.get(path, headers=headers) if method == "GET" else caller.post(path, bodies[template],
                                                                                   headers=headers)
        assert_error(r, 403, CROSS_ORIGIN)
        # Right after the route match, before any other check: no cookie (401), a bad id (400), bad worker
        # headers (401) all still answer the cross-origin 403.
        anonymous = Api(api.base)
        r = anonymous.get(path, headers=headers) if method == "GET" else anonymous.post(path, bodies[template],
                                                                                         headers=headers)
        assert_error(r, 403, CROSS_ORIGIN)
        if "{id}" in template:
            bad = template.replace("{id}", "abc").replace("{wid}", "0")
            r = caller.get(bad, headers=headers) if method == "GET" else caller.post(bad, {}, headers=headers)
            assert_error(r, 403, CROSS_ORIGIN)
        forged = {**headers, "X-Worker-ID": "1", "X-Secret": "not base64!"}
        r = caller.get(path, headers=forged) if method == "GET" else caller.post(path, bodies[template],
                                                                                  headers=forged)
        assert_error(r, 403, CROSS_ORIGIN)
    assert admin_flag(system, other) is False


def test_cross_origin_refused_before_the_body_size(api, admin, system):
    big = b'{"name": "' + b"x" * LIMIT + b'"}'
    with unchanged(system):
        r = admin.post("/project/create", raw=big, headers={"Origin": "http://evil.example"})
        assert_error(r, 403, CROSS_ORIGIN)
        assert_error(admin.post("/project/create", raw=big), 413)  # the same body, same origin: 413


def test_route_match_still_comes_first(api, admin, system):
    with unchanged(system):
        assert_error(admin.get("/manager/promote", headers=CROSS_SITE_NAVIGATION), 404)
        r = admin.post(f"/manager/promote/{admin.id}", headers=CROSS_SITE_NAVIGATION)
        assert_error(r, 405)
        assert "GET" in r.headers["Allow"]


def test_same_origin_and_headerless_requests_pass(api, admin, system):
    m = api.new_manager()
    own = own_origin(system)
    for headers in ({}, {"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, {"Origin": own},
                    {"Origin": own.upper()},
                    {"Sec-Fetch-Site": "same-origin", "Origin": own, "Sec-Fetch-Mode": "cors"}):
        r = admin.get(f"/manager/promote/{m.id}", headers=headers)
        assert r.status_code == 204, (headers, r.text)
        assert admin_flag(system, m.id) is True
        r = admin.get(f"/manager/demote/{m.id}", headers=headers)
        assert r.status_code == 204, (headers, r.text)
        assert admin_flag(system, m.id) is False
    # Another host name, scheme or port of this very machine is another origin.
    port = system.port
    for origin in (f"http://localhost:{port}", f"https://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}",
                   f"http://127.0.0.1:{port}.evil.example", f"http://user@127.0.0.1:{port}"):
        with unchanged(system):
            assert_error(admin.get(f"/manager/promote/{m.id}", headers={"Origin": origin}), 403, CROSS_ORIGIN)


def test_unguarded_routes_ignore_the_origin(api, admin, system, make_project, grant):
    """Logins, registrations, worker creation, /logs, worker routes and the webhook are not guarded."""
    evil = {**CROSS_SITE_NAVIGATION, "Origin": "http://evil.example"}
    name = uname("u")
    r = Api(api.base).post("/register", {"username": name, "password": PASSWORD}, headers=evil)
    assert_ok(r)
    assert_ok(Api(api.base).post("/login", {"username": name, "password": PASSWORD}, headers=evil))
    worker = Api(api.base)
    created = assert_ok(worker.post("/worker/create", {"alias": "x-origin"}, headers=evil))["content"]["worker"]
    worker.http.headers.update({"X-Worker-ID": str(created["id"]), "X-Secret": created["secret"]})
    worker.id = created["id"]
    assert_ok(worker.post("/worker/update", {"alias": "renamed"}, headers=evil))
    pid = make_project()
    grant(worker, pid)
    assert_ok(worker.post("/task/submit", {"project": pid, "recipe": "x-origin"}, headers=evil))
    assert_ok(Api(api.base).post("/logs", {"level": 3, "since": 1}, headers=evil))
    hook = Api(api.base).post("/git/receivehook", {"repository": {"full_name": "no/such"}}, headers=evil)
    assert hook.status_code != 403 or CROSS_ORIGIN not in hook.text, hook.text
    # Reads with a manager's cookie are not guarded either (no state changes).
    assert_ok(admin.get("/account", headers=evil))
    assert_ok(admin.get(f"/project/webhook_secret/{pid}", headers=evil))


def test_openapi_marks_exactly_the_guarded_routes(api):
    doc = api.get("/openapi.json").json()
    marked = {(m.upper(), p) for p, ops in doc["paths"].items() for m, op in ops.items()
              if op.get("x-cross-origin-refused")}
    assert set(GUARDED) <= marked
    assert not marked & set(NOT_GUARDED)
    for method, path in marked:  # beyond the list: only manager POST routes (e.g. later manager routes)
        op = doc["paths"][path][method.lower()]
        assert (method, path) in GUARDED or (method == "POST" and op["security"] == [{"session": []}]), path
        assert "403" in op["responses"] and CROSS_ORIGIN in op["responses"]["403"]["description"]
        assert CROSS_ORIGIN in op["description"]


def test_session_cookie_is_samesite_strict(api):
    name = uname("u")
    for r in (requests.post(api.base + "/register", json={"username": name, "password": PASSWORD}, timeout=30),
              requests.post(api.base + "/login", json={"username": name, "password": PASSWORD}, timeout=30)):
        cookie = r.headers["Set-Cookie"]
        attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"samesite=strict", "httponly", "path=/"} <= attributes, cookie
        assert "samesite=lax" not in attributes


# --- finding 5: MANAGE_ACCESS was every role ----------------------------------------------------------


@pytest.fixture
def delegation(api, system):
    """A project created by a manager who is not an admin (so it holds every bit), with a manager
    holding MANAGE_ACCESS only (role 4, as in the review) and a role-less one."""
    creator = api.new_manager()
    pid = assert_ok(creator.post("/project/create", {"name": uname()}))["content"]["id"]
    m4, other = api.new_manager(), api.new_manager()
    assert_ok(creator.post(f"/manager/set_role_for_project/{pid}", {"manager": m4.id, "role": MANAGE_ACCESS}))
    return pid, creator, m4, other


def roles(system, pid: int) -> dict[int, int]:
    return dict(sql(system, "SELECT manager_id, role FROM manager_role WHERE project_id = %s", pid))


def set_role(caller: Api, pid: int, manager: int, role: int):
    return caller.post(f"/manager/set_role_for_project/{pid}", {"manager": manager, "role": role})


def test_manage_access_cannot_grant_what_it_lacks(system, delegation):
    pid, creator, m4, other = delegation
    before = roles(system, pid)
    assert before == {creator.id: ALL, m4.id: MANAGE_ACCESS}
    with unchanged(system, pid):
        assert_error(set_role(m4, pid, m4.id, ALL), 403, "own role")  # the review: its own role to 31
        assert_error(set_role(m4, pid, other.id, SECRET | MAINTENANCE), 403)  # the review: another to 24
        assert_error(set_role(m4, pid, creator.id, 0), 403)  # the review: the creator's to 0
        assert_error(set_role(m4, pid, other.id, MANAGE_ACCESS | READ), 403)  # one bit held, one not
        assert_error(set_role(m4, pid, creator.id, ALL), 403)  # a no-op on a manager holding bits it lacks
        assert_error(set_role(m4, pid, m4.id, 0), 403, "own role")  # not even giving its own role up
        assert_error(set_role(m4, pid, m4.id, MANAGE_ACCESS), 403, "own role")
    assert roles(system, pid) == before


def test_manage_access_hands_on_only_its_own_bits(system, delegation):
    pid, creator, m4, other = delegation
    assert_ok(set_role(m4, pid, other.id, MANAGE_ACCESS))
    assert roles(system, pid)[other.id] == MANAGE_ACCESS
    assert_ok(set_role(m4, pid, other.id, 0))  # other holds nothing m4 lacks: m4 may take it away
    assert other.id not in roles(system, pid)
    assert_ok(set_role(creator, pid, m4.id, MANAGE_ACCESS | READ))
    assert_ok(set_role(m4, pid, other.id, READ))
    with unchanged(system, pid):
        assert_error(set_role(m4, pid, other.id, READ | EDIT), 403)
    # A manager holding a bit m4 lacks (EDIT, from the creator) is out of m4's reach, even for bits m4 holds.
    assert_ok(set_role(creator, pid, other.id, READ | EDIT))
    with unchanged(system, pid):
        assert_error(set_role(m4, pid, other.id, READ), 403, "lack")
        assert_error(set_role(m4, pid, other.id, 0), 403, "lack")
    # The creator holds every bit: it may grant and remove anything, but not change its own role.
    assert_ok(set_role(creator, pid, other.id, ALL))
    assert_ok(set_role(creator, pid, other.id, 0))
    with unchanged(system, pid):
        assert_error(set_role(creator, pid, creator.id, READ), 403, "own role")


def test_checks_after_existence_and_manage_access(api, system, delegation):
    pid, creator, m4, other = delegation
    nobody = api.new_manager()
    with unchanged(system, pid):
        assert_error(set_role(m4, pid, UNKNOWN, READ), 404)  # 404 before 403 (§1.4)
        assert_error(set_role(m4, UNKNOWN, other.id, READ), 404)
        assert_error(set_role(nobody, pid, other.id, 0), 403, "MANAGE_ACCESS")
        assert_error(set_role(nobody, pid, nobody.id, ALL), 403)


def test_tracker_admin_is_exempt(admin, system, delegation):
    pid, creator, m4, other = delegation
    assert_ok(set_role(admin, pid, creator.id, 0))
    assert_ok(set_role(admin, pid, admin.id, READ))  # its own role too
    assert_ok(set_role(admin, pid, other.id, SECRET | MAINTENANCE))
    assert roles(system, pid) == {m4.id: MANAGE_ACCESS, admin.id: READ, other.id: SECRET | MAINTENANCE}


# --- finding 10: look-alike usernames -------------------------------------------------------------------


def register(api: Api, name: str, password: str = PASSWORD) -> requests.Response:
    return requests.post(api.base + "/register", json={"username": name, "password": password}, timeout=30)


def login(api: Api, name: str, password: str = PASSWORD, **kw) -> requests.Response:
    return requests.post(api.base + "/login", json={"username": name, "password": password}, timeout=30, **kw)


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def test_fullwidth_name_is_the_ascii_name(api, system):
    """The review registered ``ｒｏｏｔ１`` beside ``root1``: NFKC makes them one name."""
    plain = "r" + uuid.uuid4().hex[:10]
    wide = fullwidth(plain)
    assert wide != plain
    r = register(api, wide)
    assert assert_ok(r)["content"]["manager"]["username"] == plain
    assert sql(system, "SELECT count(*) FROM manager WHERE username = %s", wide) == [(0,)]
    with unchanged(system):
        assert_error(register(api, plain, "another-password"), 409)
        assert_error(register(api, wide, "another-password"), 409)
    assert_ok(login(api, plain))
    assert_ok(login(api, wide))  # login normalises the same way


def test_two_compositions_are_one_name(api, system):
    suffix = uuid.uuid4().hex[:8]
    composed, decomposed = "r\u00f6ot" + suffix, "ro\u0308ot" + suffix
    assert composed != decomposed
    assert assert_ok(register(api, decomposed))["content"]["manager"]["username"] == composed
    with unchanged(system):
        assert_error(register(api, composed, "another-password"), 409)
        assert_error(register(api, decomposed, "another-password"), 409)
    assert_ok(login(api, composed))
    assert_ok(login(api, decomposed))


@pytest.mark.parametrize("name,why", [
    ("r\u043eot{}", "several scripts"),  # Cyrillic о beside Latin letters (our choice beyond NFKC)
    ("ro\u200bot{}", "U+200B"),  # zero-width space
    ("root{}\u200f", "U+200F"),  # right-to-left mark
    ("\u202eroot{}", "U+202E"),  # right-to-left override
    ("ro\u200dot{}", "U+200D"),  # zero-width joiner
    ("\ufeffroot{}", "U+FEFF"),  # byte order mark
    ("ro\u00adot{}", "U+00AD"),  # soft hyphen (format)
    ("ro ot{}", "U+0020"), ("ro\u00a0ot{}", "U+0020"),  # space; no-break space (NFKC: a space)
    ("ro\tot{}", "U+0009"), ("ro\u0085ot{}", "U+0085"),  # control characters
    ("root@{}", "U+0040"), ("ro1\u0301ot{}", "U+0301"),  # punctuation; a combining mark nothing composes with
], ids=["cyrillic-o", "zwsp", "rlm", "rlo", "zwj", "bom", "shy", "space", "nbsp", "tab", "nel", "at", "combining"])
def test_look_alike_and_invisible_names_refused(api, system, name, why):
    name = name.format(uuid.uuid4().hex[:6])
    with unchanged(system):
        assert_error(register(api, name), 400, "username", why)


@pytest.mark.parametrize("name", ["ab", "a" * 17, "\ufb03", "\u3000\u3000ab"])
def test_length_counts_after_normalisation(api, system, name):
    """``ﬃ`` (1 character) is ``ffi`` (3) after NFKC: accepted; ``ab`` is 2: refused."""
    if name == "\ufb03":
        if sql(system, "SELECT count(*) FROM manager WHERE username = 'ffi'")[0][0] == 0:
            assert assert_ok(register(api, name))["content"]["manager"]["username"] == "ffi"
        with unchanged(system):
            assert_error(register(api, "ffi"), 409)
        return
    with unchanged(system):
        assert_error(register(api, name), 400, "username")


def test_unicode_names_of_one_script_still_register(api):
    def digits(n: int) -> str:
        return str(uuid.uuid4().int)[:n]

    for name in ("Ελένη" + digits(6), "Дмитрий" + digits(6), "山田たろう" + digits(6), "김민준" + digits(6),
                 "a.b-c_" + uuid.uuid4().hex[:6]):
        r = register(api, name)
        assert assert_ok(r)["content"]["manager"]["username"] == name
        assert_ok(login(api, name))


# --- finding 10: common passwords ----------------------------------------------------------------------


@pytest.mark.parametrize("password", ["password", "12345678", "Password1", "qwertyuiop", "iloveyou", "PASSWORD123"])
def test_common_passwords_refused(api, system, password):
    with unchanged(system):
        assert_error(register(api, uname("u"), password), 400, "password", "common")


def test_common_password_refused_by_the_cli_too(system):
    name = uname("op")
    result = system.tracker("admin", "create", name, input="12345678\n")
    assert result.returncode == 2, result.stderr
    assert "common" in result.stderr and "12345678" not in result.stdout + result.stderr
    assert sql(system, "SELECT count(*) FROM manager WHERE username = %s", name) == [(0,)]


def test_the_list_is_shipped_inside_the_package(tmp_path):
    """10,000 entries, most common first, in the ``tracker`` package's data: a wheel (what a
    non-editable install and the Docker image install) carries it, with its note of origin."""
    import gzip
    import zipfile

    from tracker.accounts import common_passwords

    found = common_passwords()
    assert len(found) == 10_000
    assert {"123456", "password", "12345678", "qwerty"} <= found
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("task_tracker-*.whl")
    with zipfile.ZipFile(wheel) as z:
        lines = gzip.decompress(z.read("tracker/data/common-passwords.txt.gz")).decode().splitlines()
        note = z.read("tracker/data/README.md").decode()
    assert len(lines) == 10_000 and lines[:4] == ["123456", "123456789", "qwerty", "password"]
    assert "Django" in note and "BSD" in note and "Redistribution and use" in note


# --- finding 10: unlimited sessions per manager ------------------------------------------------------------


def test_at_most_50_live_sessions_a_new_login_ends_the_oldest(api, system):
    m = api.new_manager()
    tokens = [m.http.cookies["tt"]]
    for _ in range(54):
        r = login(api, m.username)
        assert_ok(r)
        tokens.append(r.cookies["tt"])
    assert sql(system, "SELECT count(*) FROM manager_session WHERE manager_id = %s", m.id) == [(50,)]
    for i, token in enumerate(tokens):
        r = requests.get(api.base + "/account", cookies={"tt": token}, timeout=30)
        assert r.status_code == (401 if i < 5 else 200), (i, r.text)


# --- finding 10: browser safety headers ------------------------------------------------------------------


def test_every_answer_carries_the_browser_safety_headers(api, admin, system):
    anon = Api(api.base)
    answers = {
        "index": anon.get("/"), "healthz": anon.get("/healthz"), "readyz": anon.get("/readyz"),
        "metrics": anon.get("/metrics"), "openapi": anon.get("/openapi.json"), "404": anon.get("/nope"),
        "405": anon.post("/worker/stats"), "400": anon.post("/worker/create", raw=b"{nope"),
        "401": anon.get("/account"), "403": admin.get(f"/manager/promote/{admin.id}"),
        "204": requests.get(api.base + "/logout", timeout=30), "options": anon.http.options(api.base + "/task/get/1"),
        "413": anon.post("/worker/create", raw=b"x" * (LIMIT + 1)),
        "cross-origin": admin.get(f"/manager/promote/{admin.id}", headers=CROSS_SITE_NAVIGATION),
        "login": anon.post("/login", {"username": uname("u"), "password": "wrong-password"}),
    }
    for name, r in answers.items():
        for header, value in SECURITY_HEADERS.items():
            assert r.headers.get(header) == value, (name, r.status_code, dict(r.headers))
    # Answers gunicorn writes itself (a request line or headers it cannot take) carry them as well.
    status, headers, _ = raw_http(system, raw_request("GET", b"/" + b"a" * 9000))
    assert status == 414, status
    for header, value in SECURITY_HEADERS.items():
        assert headers.get(header.lower()) == value, headers


# --- finding 4, on the shared system: X-Forwarded-For is no way around the login throttle ---------------


def test_forwarded_for_is_not_believed_without_a_trusted_proxy(api, system):
    """No trusted proxy is configured here: every attempt counts for the TCP peer, whatever the
    X-Forwarded-For header claims (the per-pair limit is the contract's default, 10)."""
    m = api.new_manager()
    for i in range(10):
        assert_error(login(api, m.username, "wrong-password", headers={"X-Forwarded-For": f"198.51.100.{i}"}), 401)
    events = sql(system, "SELECT count(*) FROM throttle_event")[0][0]
    with unchanged(system):
        for spoof in ("203.0.113.9", "10.0.0.1, 203.0.113.9", "127.0.0.1"):
            body = assert_error(login(api, m.username, headers={"X-Forwarded-For": spoof}), 429)
            assert 590 < body["rate_limit_delay"] <= 600, body
    assert sql(system, "SELECT count(*) FROM throttle_event")[0][0] == events  # 429s are not counted
