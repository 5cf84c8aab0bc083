"""The gateway alone: the contract's checks it makes before any service is asked (API.md §1, §2).

The app is the real one (``create_app``) with the installed plugins' routes, served through
Falcon's test client; the RPC client is a fake that records every call and answers canned
replies. Replies are built only with tracker/errors.py's constructors, so a change of the RPC
reply shape changes them here too.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import threading
import time
from collections.abc import Callable

import falcon.testing
import pytest

from gateway.app import CORS_HEADERS, create_app
from gateway.security import CROSS_ORIGIN_MESSAGE
from tracker.errors import UNAVAILABLE, NotFound, RateLimited, Unauthorized, ok
from tracker.hashing import digest
from tracker.plugins import discover
from tracker.settings import get_settings
from tracker.wording import IDEMPOTENCY_HEADER
from tracker.wording import PAUSED as PAUSED_MESSAGE

LIMIT = 4096  # the body limit of the app under test (the real default is 16 MiB)
SECRET = base64.b64encode(bytes(range(32))).decode("ascii")
WORKER = {"X-Worker-ID": "7", "X-Secret": SECRET}
IDENTIFY = ("worker_svc", "identify")


@dataclasses.dataclass
class Call:
    service: str
    method: str  # the entrypoint the request is for (inside a batch: the item's own)
    caller: dict
    params: dict
    batch: bool = False  # it travelled in a coalesced batch (gateway/batching.py's sender thread)


class FakeRpc:
    """Records calls; answers ``replies[(service, method)]`` (a reply, or a function of the call),
    ``ok()`` when none is given. A coalesced batch is answered item by item, as services do."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.replies: dict[tuple[str, str], dict | Callable[[Call], dict]] = {}
        self.timeouts: list[float | None] = []  # each dispatch's timeout (a slow route's is longer)

    def _answer(self, call: Call) -> dict:
        self.calls.append(call)
        answer = self.replies.get((call.service, call.method), ok())
        return answer(call) if callable(answer) else answer

    def dispatch(self, service: str, calls: list[list], timeout: float | None = None) -> list:
        """tracker/service.py's one entrypoint: ``[caller, operation, params]`` per call."""
        self.timeouts.append(timeout)
        batched = threading.current_thread().name.startswith("batch-")
        return [self._answer(Call(service, op, caller, params, batch=batched)) for caller, op, params in calls]

    def operations(self) -> list[tuple[str, str]]:
        """The calls other than credential look-ups."""
        return [(c.service, c.method) for c in self.calls if (c.service, c.method) != IDENTIFY]


def make_client(rpc: FakeRpc, **settings) -> falcon.testing.TestClient:
    base = dataclasses.replace(get_settings(), max_body_bytes=LIMIT, gateway_batching=False, public_origins=())
    return falcon.testing.TestClient(create_app(dataclasses.replace(base, **settings), rpc, discover()))


@pytest.fixture
def rpc() -> FakeRpc:
    return FakeRpc()


@pytest.fixture
def client(rpc) -> falcon.testing.TestClient:
    return make_client(rpc)


def error(result, status: int, *words: str) -> dict:
    """An error answer: the status, strict JSON envelope with ok false and the words in its message."""
    assert result.status_code == status, result.text
    assert result.headers["content-type"].startswith("application/json")
    body = result.json
    assert body["ok"] is False and isinstance(body["message"], str) and body["message"], body
    for word in words:
        assert word in body["message"], body["message"]
    return body


def identity(worker_id: int | None = 7, paused: bool = False, manager_id: int | None = None) -> dict:
    """worker_svc.identify's success answer for these credentials."""
    return ok({"worker_id": worker_id, "worker_paused": paused, "manager_id": manager_id, "admin": False})


# --- 1 route match ------------------------------------------------------------------------------
def test_unknown_route_404_before_anything_else(client, rpc):
    r = client.simulate_post("/no/such/route", body=b"x" * (LIMIT + 1), headers={"X-Worker-ID": "junk"})
    assert error(r, 404) == {"ok": False, "message": "Not found"}
    assert rpc.calls == []


def test_known_path_wrong_method_405_lists_the_methods(client, rpc):
    r = client.simulate_get("/task/submit", headers={"X-Worker-ID": "junk"})
    error(r, 405)
    assert "POST" in r.headers["allow"]
    assert rpc.calls == []


# --- 2 body size --------------------------------------------------------------------------------
def test_body_over_the_limit_413_before_credentials(client, rpc):
    r = client.simulate_post("/task/submit", body=b"{" + b" " * LIMIT + b"}")
    error(r, 413)
    assert rpc.calls == []


def test_body_of_exactly_the_limit_is_read(client, rpc):
    body = json.dumps({"project": 1, "recipe": "r"}).encode()
    r = client.simulate_post("/task/submit", body=body + b" " * (LIMIT - len(body)), headers=WORKER)
    assert r.status_code == 200, r.text
    assert rpc.operations() == [("task_svc", "submit")]


# --- 3 credentials present and well-formed ------------------------------------------------------
@pytest.mark.parametrize("headers", [{}, {"X-Worker-ID": "7"}, {"X-Secret": SECRET}], ids=["none", "id", "secret"])
def test_worker_route_without_both_headers_401_before_syntax(client, rpc, headers):
    r = client.simulate_get("/task/get/not-a-number", headers=headers)
    error(r, 401)
    assert rpc.calls == []


@pytest.mark.parametrize("headers", [
    {"X-Worker-ID": "seven", "X-Secret": SECRET},
    {"X-Worker-ID": "0", "X-Secret": SECRET},
    {"X-Worker-ID": str(1 << 63), "X-Secret": SECRET},
    {"X-Worker-ID": "7", "X-Secret": "not base64!"},
    {"X-Worker-ID": "7", "X-Secret": ""},
], ids=["word", "zero", "over-int63", "bad-base64", "empty-secret"])
def test_malformed_worker_headers_401_on_any_route_without_an_rpc(client, rpc, headers):
    for method, path in (("POST", "/task/submit"), ("GET", "/project/list"), ("POST", "/worker/create"),
                         ("GET", "/")):
        r = client.simulate_request(method, path, headers=headers, body=b"not json")
        error(r, 401, "Invalid worker credentials")
    assert rpc.calls == []


def test_manager_route_without_cookie_401_before_syntax(client, rpc):
    r = client.simulate_post("/project/update/abc", body=b"not json")
    error(r, 401)
    assert rpc.calls == []


# --- 4/5 syntax, and 401 before 400 through identify ---------------------------------------------
def test_syntax_400_names_the_parameter_after_credentials_are_confirmed(client, rpc):
    rpc.replies[IDENTIFY] = identity()
    r = client.simulate_get("/task/get/abc", headers=WORKER)
    error(r, 400, "'project'")
    assert [(c.service, c.method) for c in rpc.calls] == [IDENTIFY]
    assert rpc.calls[0].caller == {"worker_id": 7, "worker_digest": digest(bytes(range(32)))}


@pytest.mark.parametrize("path, body", [
    ("/task/submit", b"{"),
    ("/task/submit", b'{"project": 1}'),
    ("/task/release", b'{"task_id": "one"}'),
], ids=["malformed", "missing-field", "wrong-type"])
def test_invalid_worker_credentials_401_before_body_400(client, rpc, path, body):
    rpc.replies[IDENTIFY] = Unauthorized("Invalid worker credentials").reply()
    error(client.simulate_post(path, body=body, headers=WORKER), 401, "Invalid worker credentials")
    assert rpc.operations() == []


def test_valid_credentials_then_body_400_names_the_field(client, rpc):
    rpc.replies[IDENTIFY] = identity()
    error(client.simulate_post("/task/submit", body=b'{"project": 1}', headers=WORKER), 400, "'recipe'")
    assert rpc.operations() == []


def test_no_credentials_no_identify_on_a_syntax_error(client, rpc):
    error(client.simulate_get("/project/get/abc"), 400, "'id'")
    assert rpc.calls == []


def test_unknown_session_on_a_manager_route_401_before_400(client, rpc):
    rpc.replies[IDENTIFY] = identity(worker_id=None, manager_id=None)
    error(client.simulate_post("/project/update/abc", cookies={"tt": "stale"}), 401)
    assert [c.caller for c in rpc.calls] == [{"session_digest": digest("stale")}]


def test_live_session_on_a_manager_route_gets_the_400(client, rpc):
    rpc.replies[IDENTIFY] = identity(worker_id=None, manager_id=3)
    error(client.simulate_post("/project/update/abc", cookies={"tt": "live"}), 400, "'id'")


def test_paused_worker_400_on_task_get_before_syntax(client, rpc):
    rpc.replies[IDENTIFY] = identity(paused=True)
    error(client.simulate_get("/task/get/abc", headers=WORKER), 400, PAUSED_MESSAGE)
    error(client.simulate_get("/task/get/1", params={"count": "0"}, headers=WORKER), 400, PAUSED_MESSAGE)
    assert rpc.operations() == []


def test_paused_worker_gets_the_syntax_400_on_other_routes(client, rpc):
    rpc.replies[IDENTIFY] = identity(paused=True)
    body = error(client.simulate_post("/task/submit", body=b'{"project": 1}', headers=WORKER), 400, "'recipe'")
    assert PAUSED_MESSAGE not in body["message"]


def test_a_valid_request_reaches_its_service_with_the_parsed_params(client, rpc):
    rpc.replies[("task_svc", "get_tasks")] = ok({"id": 5})
    r = client.simulate_get("/task/get/12", params={"count": "3"}, headers=WORKER)
    assert r.status_code == 200 and r.json == {"ok": True, "content": {"id": 5}}
    (call,) = rpc.calls
    assert (call.service, call.method, call.params) == ("task_svc", "get_tasks", {"project": 12, "count": 3})
    assert call.caller["worker_id"] == 7 and call.caller["worker_digest"] == digest(bytes(range(32)))
    assert call.caller["deadline"] > 0 and call.caller["request"]


def test_a_slow_route_waits_the_admin_timeout_and_says_so_in_its_deadline(rpc):
    client = make_client(rpc, rpc_timeout=7.0, admin_rpc_timeout=900.0)
    before = time.time()
    r = client.simulate_post("/project/retry_tasks/4", json={"filter": {"q": "50%"}}, cookies={"tt": "s"})
    assert r.status_code == 200, r.text
    client.simulate_get("/project/tasks/4", params={"status": "failed", "q": "a_b", "order": "desc"},
                        cookies={"tt": "s"})
    retry, listing = rpc.calls
    assert retry.params == {"id": 4, "ids": None, "filter": {"status": None, "q": "50%", "assignee": None}}
    assert listing.params == {"id": 4, "status": "failed", "q": "a_b", "order": "desc"}
    assert rpc.timeouts == [900.0, 7.0]
    assert before + 899 < retry.caller["deadline"] < time.time() + 901
    assert before + 6 < listing.caller["deadline"] < time.time() + 8


def test_service_replies_are_relayed_unchanged(client, rpc):
    rpc.replies[("project_svc", "get")] = RateLimited("Rate limited", rate_limit_delay=1.5).reply()
    r = client.simulate_get("/project/get/1")
    assert r.status_code == 429 and r.json == {"ok": False, "message": "Rate limited", "rate_limit_delay": 1.5}
    rpc.replies[("project_svc", "get")] = UNAVAILABLE
    assert error(client.simulate_get("/project/get/1"), 503) == {"ok": False, "message": "Service unavailable"}


# --- cross-origin guard (§2) ---------------------------------------------------------------------
@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
], ids=["other-origin", "null-origin", "cross-site", "same-site"])
def test_guarded_route_refuses_another_origin_first(client, rpc, headers):
    # Before the body size and the credentials: right after the route match.
    r = client.simulate_post("/project/create", body=b"x" * (LIMIT + 1), headers=headers)
    error(r, 403, CROSS_ORIGIN_MESSAGE)
    error(client.simulate_get("/logout", headers=headers, cookies={"tt": "s"}), 403, CROSS_ORIGIN_MESSAGE)
    assert rpc.calls == []


def test_guarded_route_passes_its_own_origin_and_headerless_requests(client, rpc):
    rpc.replies[("project_svc", "create")] = ok({"id": 1})
    body = {"name": "p"}
    own = f"http://{falcon.testing.helpers.DEFAULT_HOST}"  # the test client's Host: the request's own origin
    for headers in ({}, {"Origin": own}, {"Sec-Fetch-Site": "same-origin"},
                    {"Sec-Fetch-Site": "none"}):
        r = client.simulate_post("/project/create", json=body, headers=headers, cookies={"tt": "s"})
        assert r.status_code == 200, (headers, r.text)
    assert rpc.operations() == [("project_svc", "create")] * 4


def test_configured_public_origin_passes(rpc):
    client = make_client(rpc, public_origins=("https://ui.example",))
    r = client.simulate_post("/project/create", json={"name": "p"}, cookies={"tt": "s"},
                             headers={"Origin": "https://ui.example:443"})
    assert r.status_code == 200, r.text
    error(client.simulate_post("/project/create", json={"name": "p"}, cookies={"tt": "s"},
                               headers={"Origin": "https://ui.example:8443"}), 403, CROSS_ORIGIN_MESSAGE)


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/login", {"username": "someone", "password": "secret-password"}),
    ("POST", "/worker/create", {}),
    ("POST", "/logs", {"level": 1, "since": 1}),
], ids=["login", "worker-create", "logs"])
def test_unguarded_routes_ignore_the_origin(client, rpc, method, path, body):
    r = client.simulate_request(method, path, json=body, headers={"Origin": "http://evil.example",
                                                                  "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 200, r.text
    assert len(rpc.operations()) == 1


# --- Idempotency-Key (extension) ------------------------------------------------------------------
SUBMIT = {"project": 1, "recipe": "r"}


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\tkey", "ключ"], ids=["empty", "256", "control", "non-ascii"])
def test_invalid_idempotency_key_400_naming_the_header(client, rpc, key):
    rpc.replies[IDENTIFY] = identity()
    headers = {**WORKER, IDEMPOTENCY_HEADER: key}
    error(client.simulate_post("/task/submit", json=SUBMIT, headers=headers), 400, IDEMPOTENCY_HEADER)
    assert rpc.operations() == []


def test_idempotency_key_names_the_request_per_worker_and_route(client, rpc):
    other = {"X-Worker-ID": "8", "X-Secret": SECRET}
    for headers, path, body in (
        (WORKER, "/task/submit", SUBMIT),
        (WORKER, "/task/submit", SUBMIT),  # the retry
        (other, "/task/submit", SUBMIT),
        (WORKER, "/task/release", {"task_id": 1}),
    ):
        r = client.simulate_post(path, json=body, headers={**headers, IDEMPOTENCY_HEADER: "k" * 255})
        assert r.status_code == 200, r.text
    first, retry, other_worker, other_route = (c.caller for c in rpc.calls)
    assert first["keyed"] is True and first["request"] == retry["request"]
    assert len({first["request"], other_worker["request"], other_route["request"]}) == 3


def test_unkeyed_requests_are_named_afresh(client, rpc):
    for _ in range(2):
        client.simulate_post("/task/submit", json=SUBMIT, headers=WORKER)
    first, second = (c.caller for c in rpc.calls)
    assert "keyed" not in first and first["request"] != second["request"]


def test_idempotency_key_ignored_where_the_route_takes_none(client, rpc):
    r = client.simulate_post("/task/extend", json={"task_id": 1, "seconds": 5},
                             headers={**WORKER, IDEMPOTENCY_HEADER: ""})
    assert r.status_code == 200, r.text
    assert "keyed" not in rpc.calls[0].caller


# --- CORS (§1.1) -----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/task/submit", "/no/such/route", "/"])
def test_options_on_any_path_200_with_the_cors_headers(client, rpc, path):
    r = client.simulate_options(path, headers={"X-Worker-ID": "junk"})
    assert r.status_code == 200 and r.json == {"ok": True}
    for name, value in CORS_HEADERS.items():
        assert r.headers[name] == value
    assert r.headers["Access-Control-Allow-Methods"] == "GET, POST, OPTIONS"
    assert rpc.calls == []


def test_every_answer_allows_any_origin(client, rpc):
    for r in (client.simulate_get("/project/get/1"), client.simulate_get("/nowhere"),
              client.simulate_post("/task/submit")):
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert r.headers["X-Content-Type-Options"] == "nosniff"


# --- strict JSON ------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
def test_a_reply_with_a_non_finite_number_is_500_not_invalid_json(client, rpc, value):
    rpc.replies[("project_svc", "get")] = ok({"rate": value})
    r = client.simulate_get("/project/get/1")
    assert error(r, 500) == {"ok": False, "message": "Internal error"}
    json.loads(r.text, parse_constant=lambda name: pytest.fail(f"{name} in the answer"))


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_literals_in_a_body_400(client, rpc, literal):
    rpc.replies[IDENTIFY] = identity()
    body = f'{{"project": 1, "recipe": "r", "priority": {literal}}}'.encode()
    error(client.simulate_post("/task/submit", body=body, headers=WORKER), 400, "malformed JSON")
    assert rpc.operations() == []


def test_body_parsed_as_json_whatever_the_content_type(client, rpc):
    r = client.simulate_post("/worker/update", body=b'{"Alias": "w"}', headers={
        **WORKER, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    assert rpc.calls[0].params == {"alias": "w"}  # field names match case-insensitively too


# --- session cookie (§2) -------------------------------------------------------------------------------
LOGIN = {"username": "someone", "password": "secret-password"}


def test_login_sets_a_session_cookie_whose_digest_the_service_stored(rpc):
    client = make_client(rpc, session_lifetime=3600)
    rpc.replies[("manager_svc", "login")] = ok({"id": 1})
    r = client.simulate_post("/login", json=LOGIN)
    assert r.status_code == 200, r.text
    cookie = r.cookies["tt"]
    assert cookie.path == "/" and cookie.http_only and cookie.same_site == "Strict" and not cookie.secure
    assert cookie.max_age == 3600 and len(cookie.value) >= 22  # ≥ 128 bits
    params = rpc.calls[0].params
    assert params["new_session_digest"] == digest(cookie.value) and params["session_lifetime"] == 3600
    assert params["client"] == "127.0.0.1"


def test_secure_cookies_when_configured(rpc):
    rpc.replies[("manager_svc", "register")] = ok({"id": 1})
    r = make_client(rpc, secure_cookies=True).simulate_post("/register", json=LOGIN)
    assert r.status_code == 200 and r.cookies["tt"].secure


def test_each_login_gets_a_new_token(client, rpc):
    values = {client.simulate_post("/login", json=LOGIN).cookies["tt"].value for _ in range(3)}
    assert len(values) == 3


def test_failed_login_sets_no_cookie(client, rpc):
    rpc.replies[("manager_svc", "login")] = Unauthorized("Invalid username or password").reply()
    r = client.simulate_post("/login", json=LOGIN)
    error(r, 401)
    assert "tt" not in r.cookies and "set-cookie" not in r.headers


def test_logout_expires_the_cookie_and_names_the_session(client, rpc):
    rpc.replies[("manager_svc", "logout")] = ok()
    r = client.simulate_get("/logout", cookies={"tt": "token"})
    assert r.status_code == 204 and r.content == b""
    assert r.cookies["tt"].value == "" and r.cookies["tt"].expires is not None
    assert rpc.calls[0].params["session_digest"] == digest("token")


def test_failed_logout_keeps_the_cookie(client, rpc):
    rpc.replies[("manager_svc", "logout")] = UNAVAILABLE
    r = client.simulate_get("/logout", cookies={"tt": "token"})
    error(r, 503)
    assert "set-cookie" not in r.headers


def test_other_routes_never_touch_the_cookie(client, rpc):
    r = client.simulate_get("/account", cookies={"tt": "token"})
    assert r.status_code == 200 and "set-cookie" not in r.headers


# --- batching (gateway/batching.py) ---------------------------------------------------------------------
@pytest.mark.parametrize("batching", [False, True], ids=["off", "on"])
@pytest.mark.parametrize("path, method, kwargs, rpc_method", [
    ("/task/release", "POST", {"json": {"task_id": 9, "result": 1}}, "release"),
    ("/task/get/4", "GET", {}, "get_tasks"),
], ids=["release", "get"])
def test_batching_carries_the_same_call_and_reply(rpc, batching, path, method, kwargs, rpc_method):
    client = make_client(rpc, gateway_batching=batching)
    answer = ok({"updated": True})
    rpc.replies[("task_svc", rpc_method)] = lambda call: answer
    r = client.simulate_request(method, path, headers=WORKER, **kwargs)
    assert r.status_code == 200 and r.json == {"ok": True, "content": {"updated": True}}
    (call,) = rpc.calls
    assert (call.service, call.method) == ("task_svc", rpc_method)
    assert call.batch is batching
    assert call.caller["worker_id"] == 7


def test_batched_error_reply_is_relayed(rpc):
    client = make_client(rpc, gateway_batching=True)
    rpc.replies[("task_svc", "release")] = NotFound("Task not found").reply()
    error(client.simulate_post("/task/release", json={"task_id": 9}, headers=WORKER), 404, "Task not found")
    assert rpc.calls[0].batch is True


def test_unbatched_routes_never_batch(rpc):
    client = make_client(rpc, gateway_batching=True)
    client.simulate_post("/task/submit", json=SUBMIT, headers=WORKER)
    assert rpc.calls[0].batch is False


# --- the app gunicorn serves ---------------------------------------------------------------------------
def test_index_checks_worker_headers_when_sent(client, rpc):
    rpc.replies[IDENTIFY] = Unauthorized("Invalid worker credentials").reply()
    error(client.simulate_get("/", headers=WORKER), 401)
    r = client.simulate_get("/")
    assert r.status_code == 200 and r.json["content"]["name"] == "task_tracker"


def test_openapi_documents_the_plugins_the_app_was_made_with(rpc):
    only = {"worker_svc": discover()["worker_svc"]}
    app = create_app(dataclasses.replace(get_settings()), rpc, only)
    paths = falcon.testing.TestClient(app).simulate_get("/openapi.json").json["paths"]
    assert "/worker/create" in paths and "/task/submit" not in paths
    assert falcon.testing.TestClient(app).simulate_post("/task/submit").status_code == 404


def test_request_names_are_unique_and_a_forked_child_takes_a_new_prefix():
    """Request names key stored replies: two gateway processes forked from one master must never
    hand out the same name (the prefix is drawn again in the child, without a getpid per request)."""
    from gateway.routes import RequestNames

    names = RequestNames()
    first, second = names.next(), names.next()
    assert first != second and first[:24] == second[:24]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first name, then out at once
        os.write(write, names.next().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    os.close(read)
    assert child[:24] != first[:24]
    assert names.next()[:24] == first[:24]
