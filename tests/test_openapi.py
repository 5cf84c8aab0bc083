"""``GET /openapi.json`` (contract §6.1): a valid OpenAPI document of exactly the routes of the contract,
whose request schemas agree with the gateway's validation and whose reply schemas match real answers."""

from __future__ import annotations

import json
import uuid

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import OpenAPIV30SpecValidator, validate

from tests.harness import Api, assert_ok

# The route table of contract §6, written out (``:id`` → ``{id}``, as §6 says the document spells it).
CONTRACT_ROUTES = {
    ("GET", "/"), ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/openapi.json"),
    ("POST", "/register"), ("POST", "/login"), ("GET", "/logout"), ("GET", "/account"),
    ("GET", "/manager/list"), ("GET", "/manager/list_for_project/{id}"),
    ("GET", "/manager/promote/{id}"), ("GET", "/manager/demote/{id}"),
    ("POST", "/manager/set_role_for_project/{id}"),
    ("POST", "/worker/create"), ("POST", "/worker/update"), ("POST", "/worker/set_paused"),
    ("GET", "/worker/get/{id}"), ("GET", "/worker/stats"),
    ("POST", "/project/create"), ("GET", "/project/get/{id}"), ("GET", "/project/list"),
    ("POST", "/project/update/{id}"),
    ("GET", "/project/monitoring-between/{id}"), ("GET", "/project/monitoring/{id}"),
    ("GET", "/project/assignees/{id}"), ("GET", "/project/access_list/{id}"),
    ("POST", "/project/request_access"),
    ("POST", "/project/accept_request/{id}/{wid}"), ("POST", "/project/reject_request/{id}/{wid}"),
    ("GET", "/project/secret/{id}"), ("POST", "/project/secret/{id}"),
    ("GET", "/project/webhook_secret/{id}"), ("POST", "/project/webhook_secret/{id}"),
    ("POST", "/project/reset_failed_tasks/{id}"), ("POST", "/project/hard_reset/{id}"),
    ("POST", "/project/reclaim_assigned_tasks/{id}"),
    ("POST", "/task/submit"), ("POST", "/task/bulk_submit"), ("GET", "/task/get/{project}"),
    ("POST", "/task/release"), ("POST", "/task/extend"),
    ("POST", "/log/trace"), ("POST", "/log/info"), ("POST", "/log/warn"), ("POST", "/log/error"),
    ("POST", "/logs"),
    ("POST", "/git/receivehook"),
    ("GET", "/project/tasks/{id}"), ("GET", "/task/view/{id}"), ("POST", "/project/retry_tasks/{id}"),
    ("POST", "/project/delete_tasks/{id}"), ("POST", "/project/update_tasks/{id}"), ("POST", "/task/edit/{id}"),
    ("GET", "/docs"),  # not in the contract's table: the gateway's interactive reference (gateway/docs.py)
    ("GET", "/ui/"),  # not in the contract's table: the manager web UI (gateway/ui.py)
}
METHODS = ("get", "post", "put", "patch", "delete", "head", "options", "trace")


@pytest.fixture(scope="module")
def doc(system) -> dict:
    r = Api(system.url).get("/openapi.json")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].split(";")[0] == "application/json"
    return r.json()


def operations(doc: dict) -> set[tuple[str, str]]:
    return {(m.upper(), path) for path, item in doc["paths"].items() for m in item if m in METHODS}


def schema_validator(doc: dict, schema: dict) -> OAS30Validator:
    """A validator of ``schema`` (a part of ``doc``) whose ``#/components/...`` refs resolve in ``doc``.

    OpenAPI 3.0 schema semantics (draft 4 + ``nullable``): ``1.0`` is not an integer, as for the gateway.
    """
    return OAS30Validator({**schema, "components": doc["components"]})


def body_validator(doc: dict, method: str, path: str) -> OAS30Validator:
    return schema_validator(doc, doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"])


def check_answer(doc: dict, method: str, path: str, r) -> dict:
    """The live answer ``r`` matches the schema the document gives its status on this operation."""
    responses = doc["paths"][path][method.lower()]["responses"]
    assert str(r.status_code) in responses, f"{method} {path}: status {r.status_code} not documented"
    body = r.json()
    schema = responses[str(r.status_code)]["content"]["application/json"]["schema"]
    errors = [e.message for e in schema_validator(doc, schema).iter_errors(body)]
    assert not errors, f"{method} {path} {r.status_code} {body}: {errors}"
    return body


# --- the document ------------------------------------------------------------------------------
def test_served_raw_and_valid(system, doc):
    # 3.0.x on purpose: its integer excludes 1.0, like the contract's int (§1.2); see gateway/openapi.py.
    assert doc["openapi"].startswith("3.0.")
    assert "ok" not in doc  # raw, no envelope
    validate(doc)  # picks the validator of the document's version
    validate(doc, cls=OpenAPIV30SpecValidator)
    assert doc["info"]["version"]


def test_every_contract_route_and_nothing_else(doc):
    assert operations(doc) == CONTRACT_ROUTES


def test_path_parameters_are_declared_as_positive_int64(doc):
    for (method, path) in CONTRACT_ROUTES:
        op = doc["paths"][path][method.lower()]
        names = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
        assert names == [seg[1:-1] for seg in path.split("/") if seg.startswith("{")], (method, path)
        for p in op.get("parameters", []):
            if p["in"] == "path":
                assert p["required"] is True
                assert p["schema"] == {"type": "integer", "minimum": 1, "maximum": (1 << 63) - 1}


def test_documented_routes_equal_wired_routes(doc):
    """The gateway's Falcon router (the app gunicorn serves) and the document list the same routes."""
    from gateway.app import create_app
    from tracker.plugins import discover

    app = create_app()
    wired, stack = set(), list(app._router._roots)
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.resource is not None:
            wired |= {(m.upper(), node.uri_template) for m in METHODS if hasattr(node.resource, f"on_{m}")}
    assert wired == operations(doc)
    declared = {(r.method, r.path) for p in discover().values() for r in p.route_list()}
    assert declared <= wired
    assert {path for _, path in wired - declared} == {"/", "/healthz", "/readyz", "/metrics", "/openapi.json",
                                                      "/docs", "/ui/"}


def test_built_once_from_the_installed_plugins(doc):
    from gateway.openapi import document_bytes
    from tracker.shapes import Project
    from tracker.views import PROJECT_PUBLIC

    assert document_bytes() is document_bytes()  # cached per process
    assert json.loads(document_bytes()) == doc  # the gateway serves what the definitions give
    assert tuple(Project.model_fields) == PROJECT_PUBLIC


def test_credentials_follow_the_route_caller(doc):
    schemes = doc["components"]["securitySchemes"]
    assert schemes["workerId"] == {**schemes["workerId"], "type": "apiKey", "in": "header", "name": "X-Worker-ID"}
    assert schemes["workerSecret"]["name"] == "X-Secret" and schemes["workerSecret"]["in"] == "header"
    assert schemes["session"] == {**schemes["session"], "type": "apiKey", "in": "cookie", "name": "tt"}
    worker = {"workerId": [], "workerSecret": []}
    assert doc["paths"]["/task/get/{project}"]["get"]["security"] == [worker]
    assert doc["paths"]["/project/create"]["post"]["security"] == [{"session": []}]
    assert {} in doc["paths"]["/project/get/{id}"]["get"]["security"]
    hook = doc["paths"]["/git/receivehook"]["post"]
    headers = {p["name"] for p in hook["parameters"] if p["in"] == "header"}
    assert {"X-Hub-Signature-256", "X-Gitea-Signature", "X-Gogs-Signature"} <= headers


def test_statuses_of_the_contract_are_documented(doc):
    def codes(method, path):
        return set(doc["paths"][path][method]["responses"])

    for method, path in CONTRACT_ROUTES - {("GET", p) for p in ("/", "/healthz", "/readyz", "/metrics",
                                                                 "/openapi.json", "/docs", "/ui/")}:
        assert {"400", "401", "404", "413", "503"} <= codes(method.lower(), path), (method, path)
    for path in ("/logout", "/manager/promote/{id}", "/manager/demote/{id}"):
        responses = doc["paths"][path]["get"]["responses"]
        assert "204" in responses and "content" not in responses["204"] and "200" not in responses
    assert {"403", "409", "429"} <= codes("post", "/task/submit")
    assert "429" in codes("get", "/task/get/{project}")
    assert "409" in codes("post", "/register") and "409" in codes("post", "/project/request_access")
    assert "403" in codes("post", "/git/receivehook")
    rate_limited = doc["paths"]["/task/submit"]["post"]["responses"]["429"]["content"]["application/json"]["schema"]
    assert not schema_validator(doc, rate_limited).is_valid({"ok": False, "message": "Too many requests"})
    assert schema_validator(doc, rate_limited).is_valid({"ok": False, "message": "x", "rate_limit_delay": 0.4})
    metrics = doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]


# --- request bodies agree with the gateway ---------------------------------------------------------
def agree(doc: dict, caller: Api, path: str, samples: list, template: str | None = None) -> None:
    """Each sample body: the schema accepts it ⇔ the gateway does not answer 400. ``template``: the
    document's path when ``path`` has its parameters filled in."""
    validator = body_validator(doc, "post", template or path)
    for body in samples:
        r = caller.post(path, body)
        assert r.status_code != 413 and r.status_code < 500, r.text
        assert validator.is_valid(body) == (r.status_code != 400), (path, body, r.status_code, r.text)


def test_worker_and_account_bodies(doc, api, admin):
    agree(doc, api, "/worker/create", [
        {}, {"alias": "w"}, {"alias": None}, {"alias": ""}, {"alias": "x", "unknown": [1]},
        {"alias": "unassigned"}, {"alias": 5}, {"alias": "a\u0000b"}, {"alias": ["w"]},
        {"alias": "a" * 256}, {"alias": "\U0001F600" * 256}, {"alias": "a" * 257},
    ])
    # Only bodies whose fate the schema decides: a username's length and characters count after NFKC
    # normalisation and a password must not be a common one (§6.2), which the document describes in words.
    agree(doc, Api(api.base), "/register", [
        {"username": "u" + uuid.uuid4().hex[:8]},
        {"username": "u" + uuid.uuid4().hex[:8], "password": "short"},
        {"username": "u" + uuid.uuid4().hex[:8], "password": "tt-test-password"},
        {"username": None, "password": "tt-test-password"},
    ])
    agree(doc, admin, "/worker/set_paused", [{"worker": 0, "paused": True}, {"worker": 1, "paused": 1},
                                             {"worker": (1 << 63) - 1, "paused": False}])


def test_project_bodies(doc, admin):
    def name():
        return "oa-" + uuid.uuid4().hex[:10]

    agree(doc, admin, "/project/create", [
        {"name": name()}, {"name": name(), "chain": None, "motd": None, "assign_rate": 1},
        {"name": name(), "public": True, "hidden": False}, {"name": name(), "public": False, "hidden": True},
        {"name": ""}, {"name": name(), "public": True, "hidden": True}, {"name": name(), "priority": -1},
        {"name": name(), "priority": 1.0}, {"name": name(), "assign_rate": -0.5}, {"name": name(), "hidden": "yes"},
        {"motd": "no name"},
        # contract §6.4 rates: 0 or 0.001 … 1,000,000; §1.1 lengths in characters
        {"name": name(), "assign_rate": 0.001, "submit_rate": 1_000_000}, {"name": name(), "assign_rate": 5e-324},
        {"name": name(), "submit_rate": 0.0009}, {"name": name(), "submit_rate": 1_000_000.5},
        {"name": name() + "n" * 243}, {"name": name() + "n" * 244}, {"name": name(), "motd": "\U0001F600" * 4096},
        {"name": name(), "motd": "m" * 4097}, {"name": name(), "clone_url": "c" * 2049},
        {"name": name(), "git_repo": "g" * 513}, {"name": name(), "version": "v" * 257},
    ])
    worker = Api(admin.base).new_worker()
    project = admin.post("/project/create", {"name": name()}).json()["content"]["id"]
    agree(doc, worker, "/project/request_access", [
        {"project": project, "assign": False, "submit": False}, {"project": project},
        {"project": project, "assign": None, "submit": True}, {"project": 0, "assign": True},
    ])


def test_secret_and_log_bodies(doc, admin, make_project):
    project = make_project()
    agree(doc, admin, f"/project/secret/{project}", [{"secret": "s" * 65536}, {"secret": ""}, {"secret": "s" * 65537}],
          "/project/secret/{id}")
    agree(doc, admin, f"/project/webhook_secret/{project}", [
        {"webhook_secret": "w" * 8}, {"webhook_secret": "w" * 1024}, {"webhook_secret": "w" * 7},
        {"webhook_secret": "w" * 1025}, {"webhook_secret": ""},
    ], "/project/webhook_secret/{id}")
    worker = Api(admin.base).new_worker()
    for path in ("/log/info", "/log/error"):
        agree(doc, worker, path, [
            {"scope": "s" * 256, "message": "m" * 65536, "timestamp": 1}, {"scope": "s" * 257, "message": "m",
                                                                           "timestamp": 1},
            {"scope": "s", "message": "m" * 65537, "timestamp": 1}, {"scope": "s", "message": "", "timestamp": 1},
        ])


def test_webhook_declined_answers_match_the_document(doc, admin, make_project):
    """The two 200 ok-false answers of §6.7 (another branch; a delivery already applied) are documented."""
    import hashlib
    import hmac

    repo = "oa/" + uuid.uuid4().hex[:10]
    project = make_project(git_repo=repo)
    secret = admin.get(f"/project/webhook_secret/{project}").json()["content"]["webhook_secret"]
    anon = Api(admin.base)

    def send(ref: str, delivery: str):
        raw = json.dumps({"ref": ref, "after": "abc", "repository": {"full_name": repo}}).encode()
        return anon.post("/git/receivehook", raw=raw, headers={
            "X-Gitea-Signature": hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest(),
            "X-Gitea-Delivery": delivery})

    assert check_answer(doc, "POST", "/git/receivehook", send("refs/heads/other", "d1"))["ok"] is False
    assert check_answer(doc, "POST", "/git/receivehook", send("refs/heads/master", "d2")) == {"ok": True}
    body = check_answer(doc, "POST", "/git/receivehook", send("refs/heads/master", "d2"))
    assert body == {"ok": False, "message": "ignored: delivery already applied"}
    declined = doc["paths"]["/git/receivehook"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert not schema_validator(doc, declined).is_valid({"ok": False, "message": "some other reason"})


def test_task_bodies(doc, admin, make_project, grant):
    worker = Api(admin.base).new_worker()
    project = make_project()
    grant(worker, project)

    def item(**fields):
        return {"project": project, "recipe": "r", **fields}

    agree(doc, worker, "/task/submit", [
        item(), item(hash64=(1 << 64) - 1), item(unique_string="u-" + uuid.uuid4().hex, hash64=0),
        item(hash64=None, hash_u64=12345), item(priority=-32768, max_retries=32767, verification_count=0),
        item(hash64=1, hash_u64=2), item(hash64=0, hash_u64=0), item(unique_string="x", hash64=5),
        item(unique_string="y", hash_u64=-3), item(priority=40000), item(max_retries=2.0), item(recipe=""),
        item(hash64=1 << 64), {"recipe": "r"}, item(max_assign_time=-1), item(project=True),
    ])
    agree(doc, worker, "/task/bulk_submit", [
        {"requests": [item(hash64=901)]}, [item(hash64=902), item(hash64=903)], {"requests": []}, [],
        [item(recipe="")], {"requests": None}, {"requests": [item(), None]},
    ])
    agree(doc, worker, "/task/release", [
        {"task_id": (1 << 62)}, {"task_id": (1 << 62), "result": 2, "verification": (1 << 64) - 1},
        {"task_id": 0}, {"task_id": 1, "result": 3}, {"task_id": 1, "verification": 1 << 64}, {},
    ])
    agree(doc, worker, "/task/extend", [{"task_id": 1 << 62, "seconds": 1}, {"task_id": 1, "seconds": 0},
                                        {"task_id": 1, "seconds": 604801}])


def test_task_admin_bodies_and_answers(doc, admin, make_project, grant):
    """Selections, updates and edits (contract §6.8): the schema accepts a body ⇔ the gateway does
    not answer 400; and each route's live answers match its reply schema."""
    worker = Api(admin.base).new_worker()
    project, target = make_project(), make_project()
    grant(worker, project)
    grant(worker, target)
    ids = [assert_ok(worker.post("/task/submit", {"project": project, "recipe": f"r{i}", "hash64": 700 + i}))
           ["content"]["id"] for i in range(4)]
    assert_ok(worker.post("/task/submit", {"project": target, "recipe": "there", "hash64": 703}))
    selections = [{"ids": [1 << 62]}, {"filter": {}}, {"filter": {"status": "closed", "q": "zz", "assignee": 1}},
                  {"ids": [1 << 62], "filter": None}, {"ids": None, "filter": {"status": "failed"}},
                  {}, {"ids": [1], "filter": {}}, {"ids": []}, {"ids": [0]}, {"filter": {"status": "x"}},
                  {"filter": {"q": ""}}, {"filter": []}, {"ids": None, "filter": None}]
    for action in ("retry_tasks", "delete_tasks"):
        agree(doc, admin, f"/project/{action}/{project}", [{**s, "filter": {"status": "closed"}} if s == {"filter": {}}
                                                           else s for s in selections],
              f"/project/{action}/{{id}}")
    agree(doc, admin, f"/project/update_tasks/{project}", [
        {"filter": {"status": "closed"}, "priority": 1}, {"ids": [1 << 62], "move_to": target},
        {"filter": {"status": "closed"}}, {"filter": {"status": "closed"}, "priority": None},
        {"filter": {"status": "closed"}, "priority": 32768}, {"ids": [1 << 62], "move_to": 0},
        {"priority": 1},
    ], "/project/update_tasks/{id}")
    agree(doc, admin, f"/task/edit/{ids[0]}", [
        {"priority": 2}, {"retry": False}, {"recipe": "r0", "max_retries": 1, "max_assign_time": 0,
                                            "verification_count": 1},
        {}, {"retry": None}, {"recipe": ""}, {"priority": 1.5}, {"retry": 1}, {"max_assign_time": -1},
    ], "/task/edit/{id}")

    body = check_answer(doc, "GET", "/project/tasks/{id}", admin.get(f"/project/tasks/{project}?limit=2"))
    assert len(body["content"]["tasks"]) == 2 and body["content"]["next"] == body["content"]["tasks"][1]["id"]
    body = check_answer(doc, "GET", "/project/tasks/{id}", admin.get(f"/project/tasks/{project}?order=desc"))
    assert body["content"]["next"] is None
    check_answer(doc, "GET", "/project/tasks/{id}", admin.get(f"/project/tasks/{project}?status=nope"))
    check_answer(doc, "GET", "/task/view/{id}", admin.get(f"/task/view/{ids[0]}"))
    check_answer(doc, "GET", "/task/view/{id}", admin.get(f"/task/view/{1 << 62}"))
    check_answer(doc, "POST", "/task/edit/{id}", admin.post(f"/task/edit/{ids[0]}", {"priority": 3, "retry": True}))
    check_answer(doc, "POST", "/project/retry_tasks/{id}", admin.post(f"/project/retry_tasks/{project}",
                                                                      {"ids": ids}))
    body = check_answer(doc, "POST", "/project/update_tasks/{id}", admin.post(
        f"/project/update_tasks/{project}", {"filter": {}, "move_to": target, "priority": 4}))
    assert body["content"] == {"affected_tasks": 3, "conflicts": 1}
    body = check_answer(doc, "POST", "/project/update_tasks/{id}", admin.post(
        f"/project/update_tasks/{project}", {"filter": {}, "priority": 4}))
    assert body["content"] == {"affected_tasks": 1}
    check_answer(doc, "POST", "/project/delete_tasks/{id}", admin.post(f"/project/delete_tasks/{target}",
                                                                       {"filter": {}}))
    take = assert_ok(worker.get(f"/task/get/{project}"))["content"]["task"]
    check_answer(doc, "POST", "/task/edit/{id}", admin.post(f"/task/edit/{take['id']}", {"priority": 1}))  # 409


# --- live answers match the documented reply schemas -------------------------------------------------
def test_live_answers_match_reply_schemas(system, doc, admin, make_project, grant):
    anon = Api(system.url)
    check_answer(doc, "GET", "/", anon.get("/"))
    check_answer(doc, "GET", "/healthz", anon.get("/healthz"))
    check_answer(doc, "GET", "/readyz", anon.get("/readyz"))
    r = anon.post("/worker/create", {"alias": "oa"})
    assert r.status_code == 200
    check_answer(doc, "POST", "/worker/create", r)
    worker = anon.new_worker("oa-worker")
    check_answer(doc, "GET", "/worker/get/{id}", anon.get(f"/worker/get/{worker.id}"))
    check_answer(doc, "GET", "/worker/get/{id}", anon.get(f"/worker/get/{(1 << 62)}"))  # 404 envelope

    project = make_project(assign_rate=0.01, version="v1", motd="hi")
    grant(worker, project)
    check_answer(doc, "GET", "/project/get/{id}", anon.get(f"/project/get/{project}"))
    check_answer(doc, "GET", "/project/list", anon.get("/project/list"))
    check_answer(doc, "GET", "/project/access_list/{id}", admin.get(f"/project/access_list/{project}"))
    check_answer(doc, "GET", "/manager/list_for_project/{id}", admin.get(f"/manager/list_for_project/{project}"))
    check_answer(doc, "GET", "/account", admin.get("/account"))
    body = check_answer(doc, "GET", "/account", anon.get("/account"))
    assert body["content"] == {"logged_in": False}

    # Nothing to take yet: the "No task available" 200 answers, single and batch.
    body = check_answer(doc, "GET", "/task/get/{project}", worker.get(f"/task/get/{project}"))
    assert body["ok"] is False
    body = check_answer(doc, "GET", "/task/get/{project}", worker.get(f"/task/get/{project}?count=3"))
    assert body["content"] == {"tasks": []}

    r = worker.post("/task/bulk_submit", [{"project": project, "recipe": f"r{i}", "max_assign_time": 60}
                                          for i in range(3)])
    check_answer(doc, "POST", "/task/bulk_submit", r)
    body = check_answer(doc, "GET", "/task/get/{project}", worker.get(f"/task/get/{project}"))
    task = body["content"]["task"]
    # assign_rate 0.01/s: the next get is rate limited, with rate_limit_delay.
    body = check_answer(doc, "GET", "/task/get/{project}", worker.get(f"/task/get/{project}?count=2"))
    assert "rate_limit_delay" in body
    check_answer(doc, "POST", "/task/extend", worker.post("/task/extend", {"task_id": task["id"], "seconds": 30}))
    body = check_answer(doc, "POST", "/task/release", worker.post("/task/release", {"task_id": task["id"]}))
    assert body["content"]["updated"] is True
    body = check_answer(doc, "POST", "/task/release", worker.post("/task/release", {"task_id": task["id"]}))
    assert body["content"]["updated"] is False and body["message"]
    body = check_answer(doc, "POST", "/task/extend", worker.post("/task/extend", {"task_id": task["id"],
                                                                                   "seconds": 30}))
    assert body["content"]["updated"] is False
    admin.post(f"/project/update/{project}", {"assign_rate": 0})
    body = check_answer(doc, "GET", "/task/get/{project}", worker.get(f"/task/get/{project}?count=5"))
    assert len(body["content"]["tasks"]) == 2

    check_answer(doc, "GET", "/project/monitoring/{id}", anon.get(f"/project/monitoring/{project}?count=5"))
    check_answer(doc, "POST", "/project/reclaim_assigned_tasks/{id}",
                 admin.post(f"/project/reclaim_assigned_tasks/{project}"))
    check_answer(doc, "GET", "/project/secret/{id}", worker.get(f"/project/secret/{project}"))

    r = worker.post("/log/info", {"scope": "oa", "message": "hello", "timestamp": 1_700_000_000})
    check_answer(doc, "POST", "/log/info", r)
    body = check_answer(doc, "POST", "/logs", anon.post("/logs", {"level": 5, "since": 1_600_000_000}))
    assert body["content"]["logs"]
    body = check_answer(doc, "GET", "/worker/stats", anon.get("/worker/stats"))
    assert body["content"]["stats"]
    check_answer(doc, "POST", "/task/submit", worker.post("/task/submit", {"project": project, "recipe": ""}))
    check_answer(doc, "POST", "/git/receivehook", anon.post("/git/receivehook", {"repository": {"full_name": "a/b"}}))


def test_abuse_rules_are_documented(doc, api, admin):
    """Review findings 3-6, 10: the 429s with rate_limit_delay, the cross-origin 403, the demotion 409,
    SameSite=Strict and the browser safety headers are in the document, and live answers match it."""
    def responses(method, path):
        return doc["paths"][path][method]["responses"]

    for path in ("/login", "/worker/create"):
        op = doc["paths"][path]["post"]
        assert op["responses"]["429"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/RateLimited"}
        assert "429" in op["description"] and "rate_limit_delay" in op["description"]
    assert "409" in responses("get", "/manager/demote/{id}")
    assert "409" in doc["paths"]["/manager/demote/{id}"]["get"]["description"]
    assert "403" in responses("get", "/logout")
    assert "bits it holds" in doc["paths"]["/manager/set_role_for_project/{id}"]["post"]["description"]
    assert "SameSite=Strict" in responses("post", "/login")["200"]["headers"]["Set-Cookie"]["description"]
    for path, item in doc["paths"].items():
        for op in item.values():
            for status, response in op["responses"].items():
                headers = response.get("headers", {})
                assert headers.get("X-Content-Type-Options", {}).get("schema") == {"type": "string",
                                                                                    "enum": ["nosniff"]}, (path, status)
                assert headers["X-Frame-Options"]["schema"]["enum"] == ["DENY"]
                assert headers["Content-Security-Policy"]["schema"]["pattern"] == "frame-ancestors 'none'"
    # A live 429 of /login (the per-pair default, 10 failures) and a live cross-origin 403 match their schemas.
    m = Api(api.base).new_manager()
    for _ in range(10):
        assert Api(api.base).post("/login", {"username": m.username, "password": "wrong-password"}).status_code == 401
    body = check_answer(doc, "POST", "/login", Api(api.base).post("/login", {"username": m.username,
                                                                             "password": "tt-test-password"}))
    assert body["rate_limit_delay"] > 0
    r = admin.get(f"/manager/promote/{m.id}", headers={"Sec-Fetch-Site": "cross-site"})
    assert check_answer(doc, "GET", "/manager/promote/{id}", r)["message"] == "Cross-origin request refused"
