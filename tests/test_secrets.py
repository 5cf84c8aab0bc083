"""Project secrets of contract §6.4, end to end through the gateway.

``GET/POST /project/secret/:id`` (read: a worker with a granted access row, or a manager with SECRET;
write: SECRET) and ``GET/POST /project/webhook_secret/:id`` (SECRET), their defaults (§3: ``"{}"``
and a generated webhook secret), body validation, and that neither value ever leaks into a Project
object.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

import pytest

from tests.harness import Api, assert_error, assert_ok

UNKNOWN = 1 << 62
READ, EDIT, MANAGE_ACCESS, SECRET, MAINTENANCE, ALL = 1, 2, 4, 8, 16, 31
VISIBILITY = {"public": {"public": True}, "private": {}, "hidden": {"hidden": True}}


def read_secret(client: Api, pid) -> str:
    body = assert_ok(client.get(f"/project/secret/{pid}"))
    assert set(body["content"]) == {"secret"}, body
    assert isinstance(body["content"]["secret"], str)
    return body["content"]["secret"]


def read_webhook_secret(client: Api, pid) -> str:
    body = assert_ok(client.get(f"/project/webhook_secret/{pid}"))
    assert set(body["content"]) == {"webhook_secret"}, body
    assert isinstance(body["content"]["webhook_secret"], str)
    return body["content"]["webhook_secret"]


def set_secret(client: Api, pid, value):
    return client.post(f"/project/secret/{pid}", {"secret": value})


def set_webhook_secret(client: Api, pid, value):
    return client.post(f"/project/webhook_secret/{pid}", {"webhook_secret": value})


def stored(system, pid: int) -> tuple[str, str]:
    return tuple(system.sql("SELECT secret, webhook_secret FROM project WHERE id = %s", pid)[0])


def manager_with_role(api: Api, admin: Api, pid: int, role: int) -> Api:
    m = api.new_manager()
    if role:
        assert_ok(admin.post(f"/manager/set_role_for_project/{pid}", {"manager": m.id, "role": role}))
    return m


def unique() -> str:
    return uuid.uuid4().hex


# --- defaults and round trips ----------------------------------------------------------------------------
def test_default_secret_is_empty_object_text(admin, make_project):
    assert read_secret(admin, make_project()) == "{}"


def test_set_then_get_secret(admin, system, make_project):
    pid = make_project()
    value = json.dumps({"token": unique(), "note": "héllo ✓"})
    r = set_secret(admin, pid, value)
    assert r.status_code == 200 and r.json() == {"ok": True}, r.text
    assert read_secret(admin, pid) == value
    assert stored(system, pid)[0] == value


@pytest.mark.parametrize("value", ["", "plain text, not JSON", "x" * 65_536, "é" * 65_536, "line\nbreak\ttab"])
def test_secret_is_free_form_text(admin, make_project, value):
    pid = make_project()
    assert_ok(set_secret(admin, pid, value))
    assert read_secret(admin, pid) == value


def test_secret_over_65536_characters_400(admin, system, make_project):
    """§1.1: the project secret is at most 65,536 characters."""
    pid = make_project()
    assert_error(set_secret(admin, pid, "x" * 65_537), 400, "'secret'", "65536")
    assert stored(system, pid)[0] == "{}"


@pytest.mark.parametrize("value", ["", "short", "x" * 1025])
def test_webhook_secret_of_8_to_1024_characters(admin, system, make_project, value):
    """§1.1: webhook_secret 8–1,024 characters (and never empty, §6.4)."""
    pid = make_project()
    before = stored(system, pid)
    assert_error(set_webhook_secret(admin, pid, value), 400, "'webhook_secret'")
    assert stored(system, pid) == before
    for good in ("8-chars!", "y" * 1024):
        assert_ok(set_webhook_secret(admin, pid, good))
        assert read_webhook_secret(admin, pid) == good


def test_set_secret_touches_only_its_project(admin, make_project):
    a, b = make_project(), make_project()
    assert_ok(set_secret(admin, a, "only-a"))
    assert read_secret(admin, b) == "{}"


def test_set_secret_leaves_webhook_secret_alone(admin, system, make_project):
    pid = make_project()
    hook = read_webhook_secret(admin, pid)
    assert_ok(set_secret(admin, pid, "new"))
    assert read_webhook_secret(admin, pid) == hook
    assert stored(system, pid) == ("new", hook)


def test_default_webhook_secret_is_generated(admin, system, make_project):
    a, b = make_project(), make_project()
    sa, sb = read_webhook_secret(admin, a), read_webhook_secret(admin, b)
    assert sa and sb and sa != sb
    assert len(sa) >= 16
    assert stored(system, a)[1] == sa


def test_set_then_get_webhook_secret(admin, system, make_project):
    pid = make_project()
    value = "hook-" + unique()
    r = set_webhook_secret(admin, pid, value)
    assert r.status_code == 200 and r.json() == {"ok": True}, r.text
    assert read_webhook_secret(admin, pid) == value
    assert stored(system, pid) == ("{}", value)


def test_new_webhook_secret_signs_the_git_hook(api, admin, make_project):
    """The stored value is the one the webhook checks (§6.7): new secret accepted, old one refused."""
    repo = "owner/" + unique()
    pid = make_project(git_repo=repo)
    old = read_webhook_secret(admin, pid)
    new = "hook-" + unique()
    assert_ok(set_webhook_secret(admin, pid, new))
    payload = json.dumps({"ref": "refs/heads/main", "after": "cafe" + unique()[:8],
                          "repository": {"full_name": repo, "default_branch": "main"}}).encode()

    def signed(key: str):
        sig = hmac.new(key.encode(), payload, hashlib.sha256).hexdigest()
        return api.post("/git/receivehook", raw=payload, headers={"X-Hub-Signature-256": "sha256=" + sig,
                                                                    "Content-Type": "application/json"})

    assert_error(signed(old), 403)
    assert admin.get(f"/project/get/{pid}").json()["content"]["project"]["version"] == ""
    assert_ok(signed(new))
    assert admin.get(f"/project/get/{pid}").json()["content"]["project"]["version"] == json.loads(payload)["after"]


# --- never in a Project object ---------------------------------------------------------------------------
def test_secrets_never_in_project_objects(api, admin, make_project, grant):
    secret, hook = "s-" + unique(), "h-" + unique()
    pid = make_project(public=True)
    assert_ok(set_secret(admin, pid, secret))
    assert_ok(set_webhook_secret(admin, pid, hook))
    w = api.new_worker()
    grant(w, pid)
    assert_ok(w.post("/task/submit", {"project": pid, "recipe": "r"}))
    answers = [admin.get(f"/project/get/{pid}"), api.get(f"/project/get/{pid}"), admin.get("/project/list"),
               api.get("/project/list"), w.get(f"/task/get/{pid}")]
    projects = []
    for r in answers:
        body = assert_ok(r)
        assert secret not in r.text and hook not in r.text, r.request.url
        content = body["content"]
        projects += content["projects"] if "projects" in content else [content.get("project")
                                                                        or content["task"]["project"]]
    assert pid in [p["id"] for p in projects]
    for p in projects:  # neither key, not even as a null placeholder
        assert "secret" not in p and "webhook_secret" not in p, p


# --- GET /project/secret permissions -------------------------------------------------------------------
WORKER_CELLS = [
    ("assign", True), ("submit", True), ("assign+submit", True), ("pending", False), ("none", False),
]


@pytest.mark.parametrize("visibility", list(VISIBILITY))
@pytest.mark.parametrize(("access", "allowed"), WORKER_CELLS, ids=[c[0] for c in WORKER_CELLS])
def test_get_secret_by_worker(api, admin, make_project, grant, visibility, access, allowed):
    pid = make_project(**VISIBILITY[visibility])
    value = "for-workers-" + unique()
    assert_ok(set_secret(admin, pid, value))
    w = api.new_worker()
    if access == "pending":
        assert_ok(w.post("/project/request_access", {"project": pid, "assign": True, "submit": True}))
    elif access != "none":
        grant(w, pid, assign="assign" in access, submit="submit" in access)
    r = w.get(f"/project/secret/{pid}")
    if allowed:
        assert assert_ok(r)["content"] == {"secret": value}
    else:
        assert_error(r, 403)
        assert value not in r.text


def test_get_secret_access_on_another_project_does_not_count(api, make_project, grant):
    pid, other = make_project(), make_project()
    w = api.new_worker()
    grant(w, other)
    assert_error(w.get(f"/project/secret/{pid}"), 403)
    assert read_secret(w, other) == "{}"


def test_get_secret_revoked_access_403_at_once(api, admin, make_project, grant):
    pid = make_project()
    w = api.new_worker()
    grant(w, pid)
    assert read_secret(w, pid) == "{}"
    assert_ok(admin.post(f"/project/reject_request/{pid}/{w.id}"))
    assert_error(w.get(f"/project/secret/{pid}"), 403)


def test_get_secret_anonymous_401(api, admin, make_project):
    pid = make_project(public=True)
    value = "anon-" + unique()
    assert_ok(set_secret(admin, pid, value))
    r = api.get(f"/project/secret/{pid}")
    assert_error(r, 401)
    assert value not in r.text


def test_get_secret_bad_worker_credentials_401(api, make_project, grant):
    pid = make_project()
    w = api.new_worker()
    grant(w, pid)
    assert_error(api.get(f"/project/secret/{pid}", headers={"X-Worker-ID": str(w.id), "X-Secret": "AAAA"}), 401)


@pytest.mark.parametrize(("role", "allowed"), [
    (SECRET, True), (ALL, True), (SECRET | READ, True),
    (0, False), (ALL & ~SECRET, False), (READ, False), (MAINTENANCE, False),
])
def test_get_secret_by_manager_role(api, admin, make_project, role, allowed):
    pid = make_project(hidden=True)
    value = "for-managers-" + unique()
    assert_ok(set_secret(admin, pid, value))
    m = manager_with_role(api, admin, pid, role)
    r = m.get(f"/project/secret/{pid}")
    if allowed:
        assert assert_ok(r)["content"] == {"secret": value}
    else:
        assert_error(r, 403)
        assert value not in r.text


def test_get_secret_role_on_another_project_does_not_count(api, admin, make_project):
    pid, other = make_project(), make_project()
    m = manager_with_role(api, admin, other, SECRET)
    assert_error(m.get(f"/project/secret/{pid}"), 403)


def test_get_secret_creator_passes(api):
    m = api.new_manager()
    pid = assert_ok(m.post("/project/create", {"name": "sec-" + unique()[:12]}))["content"]["id"]
    assert read_secret(m, pid) == "{}"
    assert read_webhook_secret(m, pid)


def test_get_secret_either_identity_passes(api, admin, make_project, grant):
    """Valid worker headers and a session: a permission check passes if either identity passes (§2)."""
    pid = make_project()
    role_less = api.new_manager()
    w = api.new_worker()
    grant(w, pid, assign=True, submit=False)
    both = Api(role_less.base, dict(w.http.headers))
    both.http.cookies.update(role_less.http.cookies)
    assert read_secret(both, pid) == "{}"
    # and the other way round: a worker without access beside a SECRET manager
    secret_manager = manager_with_role(api, admin, pid, SECRET)
    both = Api(secret_manager.base, dict(api.new_worker().http.headers))
    both.http.cookies.update(secret_manager.http.cookies)
    assert read_secret(both, pid) == "{}"


# --- SECRET-only routes: POST secret, GET/POST webhook_secret ------------------------------------------
def _post_secret(pid):
    return "POST", f"/project/secret/{pid}", {"secret": "changed-" + unique()}


def _get_webhook(pid):
    return "GET", f"/project/webhook_secret/{pid}", None


def _post_webhook(pid):
    return "POST", f"/project/webhook_secret/{pid}", {"webhook_secret": "changed-" + unique()}


SECRET_ONLY = {"post_secret": _post_secret, "get_webhook_secret": _get_webhook, "post_webhook_secret": _post_webhook}


def _call(client: Api, method: str, path: str, body):
    return client.get(path) if method == "GET" else client.post(path, body)


@pytest.mark.parametrize("route", list(SECRET_ONLY))
class TestSecretOnly:
    def test_secret_role_passes(self, api, admin, system, make_project, route):
        pid = make_project()
        m = manager_with_role(api, admin, pid, SECRET)
        method, path, body = SECRET_ONLY[route](pid)
        r = _call(m, method, path, body)
        if method == "POST":
            assert r.status_code == 200 and r.json() == {"ok": True}, r.text
            assert list(body.values())[0] in stored(system, pid)
        else:
            assert assert_ok(r)["content"] == {"webhook_secret": stored(system, pid)[1]}

    def test_admin_passes(self, admin, make_project, route):
        pid = make_project()
        assert_ok(_call(admin, *SECRET_ONLY[route](pid)))

    @pytest.mark.parametrize("role", [0, ALL & ~SECRET, READ | EDIT, MAINTENANCE])
    def test_without_secret_403_nothing_changes(self, api, admin, system, make_project, route, role):
        pid = make_project()
        before = stored(system, pid)
        m = manager_with_role(api, admin, pid, role)
        r = _call(m, *SECRET_ONLY[route](pid))
        assert_error(r, 403)
        assert before[1] not in r.text
        assert stored(system, pid) == before

    def test_anonymous_401_nothing_changes(self, api, system, make_project, route):
        pid = make_project(public=True)
        before = stored(system, pid)
        r = _call(api, *SECRET_ONLY[route](pid))
        assert_error(r, 401)
        assert before[1] not in r.text
        assert stored(system, pid) == before

    def test_worker_with_access_401_nothing_changes(self, api, system, make_project, grant, route):
        """A worker's access reads the secret but never writes it nor sees the webhook secret.

        These routes need SECRET, a manager role: without a session cookie the caller is not a
        manager at all, which is 401 on a manager-only route (contract §2, §4), whatever worker
        headers come along. Nothing leaks and nothing changes.
        """
        pid = make_project()
        w = api.new_worker()
        grant(w, pid)
        before = stored(system, pid)
        r = _call(w, *SECRET_ONLY[route](pid))
        assert_error(r, 401)
        assert before[1] not in r.text
        assert stored(system, pid) == before

    @pytest.mark.parametrize("bad", ["0", "-1", "abc", "1.5", str(1 << 63)])
    def test_bad_id_400(self, admin, route, bad):
        method, _, body = SECRET_ONLY[route](1)
        assert_error(_call(admin, method, f"/project/{route.split('_', 1)[1]}/{bad}", body), 400, "id")

    def test_unknown_project_404(self, admin, route):
        assert_error(_call(admin, *SECRET_ONLY[route](UNKNOWN)), 404)

    def test_unknown_project_404_before_permission(self, api, route):
        assert_error(_call(api.new_manager(), *SECRET_ONLY[route](UNKNOWN)), 404)


def test_get_secret_bad_id_and_unknown_project(admin, api):
    for bad in ("0", "-1", "abc"):
        assert_error(admin.get(f"/project/secret/{bad}"), 400, "id")
    assert_error(admin.get(f"/project/secret/{UNKNOWN}"), 404)
    assert_error(api.new_worker().get(f"/project/secret/{UNKNOWN}"), 404)


# --- body validation -------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [{}, {"secret": None}, {"secret": 5}, {"secret": ["x"]}, {"secret": {"a": 1}},
                                  {"secret": True}, {"other": "x"}])
def test_post_secret_bad_body_400_names_field(admin, system, make_project, body):
    pid = make_project()
    assert_error(admin.post(f"/project/secret/{pid}", body), 400, "secret")
    assert stored(system, pid)[0] == "{}"


@pytest.mark.parametrize("body", [{}, {"webhook_secret": None}, {"webhook_secret": ""}, {"webhook_secret": 5},
                                  {"webhook_secret": ["x"]}, {"webhook_secret": False}, {"secret": "x"}])
def test_post_webhook_secret_bad_body_400_names_field(admin, system, make_project, body):
    pid = make_project()
    before = stored(system, pid)
    assert_error(admin.post(f"/project/webhook_secret/{pid}", body), 400, "webhook_secret")
    assert stored(system, pid) == before


@pytest.mark.parametrize("route", ["secret", "webhook_secret"])
@pytest.mark.parametrize("raw", [b"{not json", b"[1]", b'"x"',
                                 b'{"secret": "a\\u0000b", "webhook_secret": "a\\u0000b"}'])
def test_post_malformed_body_400(admin, system, make_project, route, raw):
    pid = make_project()
    before = stored(system, pid)
    assert_error(admin.post(f"/project/{route}/{pid}", raw=raw), 400)
    assert stored(system, pid) == before


@pytest.mark.parametrize("route", ["secret", "webhook_secret"])
def test_body_validation_before_existence_and_permission(api, make_project, route):
    """§1.4: field validation (step 5) answers before unknown project (6) and permission (7)."""
    role_less = api.new_manager()
    assert_error(role_less.post(f"/project/{route}/{UNKNOWN}", {}), 400, route)
    assert_error(role_less.post(f"/project/{route}/{make_project()}", {}), 400, route)


@pytest.mark.parametrize("route", ["secret", "webhook_secret"])
def test_anonymous_401_before_body_validation(api, make_project, route):
    assert_error(api.post(f"/project/{route}/{make_project()}", {}), 401)


def test_secret_form_content_type_is_json(admin, make_project):
    pid = make_project()
    r = admin.post(f"/project/secret/{pid}", raw=json.dumps({"secret": "curl"}),
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_ok(r)
    assert read_secret(admin, pid) == "curl"
