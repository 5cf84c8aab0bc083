"""Contract §1 (conventions) and §2 (authentication), end to end through the real gateway.

Every case goes over HTTP to a whole running system, so the gateway's generic check order, the
envelope and the field rules are exercised exactly as clients see them.
"""

from __future__ import annotations

import base64
import os

import pytest
import requests

from tests.harness import Api

MIB = 1024 * 1024
LIMIT = 16 * MIB
INT63_MAX = (1 << 63) - 1
FAR_ID = INT63_MAX  # valid syntax, never an existing row
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, X-Worker-ID, X-Secret",
}
PAUSED = "A manager has paused you"


def assert_error(r: requests.Response, status: int, *fragments: str) -> dict:
    """An error answer: the status, a JSON envelope with ok false and a message containing each fragment."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    body = r.json()
    assert body["ok"] is False, body
    assert isinstance(body.get("message"), str) and body["message"], body
    for fragment in fragments:
        assert fragment in body["message"], (fragment, body)
    return body


def random_secret() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def raw_post(api: Api, path: str, data: bytes, headers: dict | None = None) -> requests.Response:
    return requests.post(api.base + path, data=data, headers=headers or {}, timeout=60)


@pytest.fixture
def paused_worker(api, admin) -> Api:
    w = api.new_worker("paused")
    r = admin.post("/worker/set_paused", {"worker": w.id, "paused": True})
    assert r.status_code == 200, r.text
    return w


# --- route match ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method,path", [
    ("GET", "/no/such/route"), ("POST", "/no/such/route"), ("GET", "/worker/get/1/extra"), ("GET", "/workers"),
])
def test_unknown_route_is_json_404(api, method, path):
    r = api.http.request(method, api.base + path, timeout=30)
    body = assert_error(r, 404)
    assert body == {"ok": False, "message": "Not found"}


@pytest.mark.parametrize("method,path,allowed", [
    ("GET", "/worker/create", "POST"),
    ("PUT", "/worker/create", "POST"),
    ("POST", "/worker/stats", "GET"),
    ("DELETE", "/manager/list", "GET"),
    ("POST", "/worker/get/1", "GET"),
])
def test_wrong_method_is_405_with_allow_header(api, method, path, allowed):
    r = api.http.request(method, api.base + path, timeout=30)
    assert_error(r, 405)
    allow = [m.strip() for m in r.headers["Allow"].split(",")]
    assert allowed in allow
    assert method not in allow


def test_unknown_route_wins_over_bad_credentials(api):
    r = api.get("/no/such/route", headers={"X-Worker-ID": "abc"})
    assert_error(r, 404)
    r = api.http.put(api.base + "/worker/update", headers={"X-Worker-ID": "abc"}, timeout=30)
    assert_error(r, 405)


@pytest.mark.parametrize("path", ["/", "/worker/create", "/task/get/abc", "/no/such/route", "/manager/list"])
def test_options_on_any_path(api, path):
    r = api.http.options(api.base + path, headers={"X-Worker-ID": "not-a-number"}, timeout=30)
    assert r.status_code == 200, r.text
    for name, value in CORS.items():
        assert r.headers.get(name) == value, (name, r.headers)


# --- bodies --------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [
    "application/x-www-form-urlencoded", "text/plain", "application/json", "multipart/form-data", None,
])
def test_body_is_json_whatever_the_content_type(api, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    r = raw_post(api, "/worker/create", b'{"alias": "ctype"}', headers)
    assert r.status_code == 200, r.text
    assert r.json()["content"]["worker"]["alias"] == "ctype"


def test_form_urlencoded_json_body_reaches_a_worker_route(api):
    w = api.new_worker()
    r = w.http.post(w.base + "/worker/update", data=b'{"alias": "curl-style"}',
                    headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
    assert r.status_code == 200, r.text
    assert api.get(f"/worker/get/{w.id}").json()["content"]["worker"]["alias"] == "curl-style"


@pytest.mark.parametrize("raw", [b"", b"   \n\t "])
def test_empty_body_is_an_empty_object(api, raw):
    r = raw_post(api, "/worker/create", raw)
    assert r.status_code == 200, r.text
    assert r.json()["content"]["worker"]["alias"] == "default_alias"


def test_empty_body_on_a_route_with_required_fields_names_the_field(api):
    w = api.new_worker()
    assert_error(w.post("/worker/update", raw=b""), 400, "alias")


@pytest.mark.parametrize("raw", [
    b'{"alias": ', b"{alias: 1}", b"not json", b'{"alias": "x"} trailing', b'{"alias": NaN}',
    b'{"alias": Infinity}', b"\xff\xfe\x00", b'{"alias": "\xff"}',
])
def test_invalid_json_is_400(api, raw):
    assert_error(raw_post(api, "/worker/create", raw), 400)


@pytest.mark.parametrize("depth", [100, 400, 500, 600, 700, 800, 900, 1000, 5000, 100_000])
def test_deeply_nested_json_is_never_a_500(api, depth):
    in_field = b'{"alias": ' + b"[" * depth + b"]" * depth + b"}"
    assert_error(raw_post(api, "/worker/create", in_field), 400)
    unknown = b'{"alias": "deep", "x": ' + b'{"a": ' * depth + b"null" + b"}" * depth + b"}"
    r = raw_post(api, "/worker/create", unknown)
    if r.status_code == 200:  # ignored as an unknown field
        assert r.json()["content"]["worker"]["alias"] == "deep"
    else:  # or refused as nested too deeply
        assert_error(r, 400)


def test_huge_json_integer_is_400(api, admin):
    raw = b'{"worker": 1' + b"0" * 5000 + b', "paused": true}'
    assert_error(admin.post("/worker/set_paused", raw=raw), 400)
    assert_error(admin.post("/worker/set_paused", raw=b'{"worker": 1e400, "paused": true}'), 400, "'worker'")


@pytest.mark.parametrize("raw", [b"[]", b'[{"alias": "x"}]', b'"text"', b"42", b"true", b"null"])
def test_non_object_json_is_400(api, raw):
    assert_error(raw_post(api, "/worker/create", raw), 400)


def test_unknown_fields_are_ignored(api):
    r = api.post("/worker/create", {"alias": "known", "secret": "mine", "paused": True, "extra": [1]})
    assert r.status_code == 200, r.text
    worker = r.json()["content"]["worker"]
    assert worker["alias"] == "known"
    assert worker["paused"] is False
    assert worker["secret"] != "mine"


def test_null_field_counts_as_absent(api, admin):
    r = api.post("/worker/create", {"alias": None})
    assert r.status_code == 200, r.text
    assert r.json()["content"]["worker"]["alias"] == "default_alias"
    w = api.new_worker()
    assert_error(admin.post("/worker/set_paused", {"worker": w.id, "paused": None}), 400, "paused")
    assert_error(w.post("/worker/update", {"alias": None}), 400, "alias")


def test_body_over_16_mib_is_413(api):
    assert_error(raw_post(api, "/worker/create", b" " * (LIMIT + 1)), 413)


def test_body_of_exactly_16_mib_is_accepted(api):
    body = b'{"alias": "big"}'
    r = raw_post(api, "/worker/create", body + b" " * (LIMIT - len(body)))
    assert r.status_code == 200, r.text
    assert r.json()["content"]["worker"]["alias"] == "big"


def test_body_size_is_checked_before_authentication(api):
    assert_error(raw_post(api, "/worker/update", b" " * (LIMIT + 1)), 413)
    headers = {"X-Worker-ID": "abc", "X-Secret": "!"}
    assert_error(raw_post(api, "/worker/update", b" " * (LIMIT + 1), headers), 413)


def test_route_match_is_checked_before_body_size(api):
    assert_error(raw_post(api, "/no/such/route", b" " * (LIMIT + 1)), 404)


def _chunks(total: int, piece: int = MIB):
    while total > 0:
        yield b" " * min(piece, total)
        total -= piece


def test_chunked_body_is_read(api):
    r = raw_post(api, "/worker/create", iter([b'{"alias": ', b'"chunky"}']))
    assert r.status_code == 200, r.text
    assert r.json()["content"]["worker"]["alias"] == "chunky"


def test_chunked_body_over_16_mib_is_413(api):
    assert_error(raw_post(api, "/worker/create", _chunks(LIMIT + 1)), 413)


def test_one_mib_recipe_is_accepted(api, make_project, grant):
    project = make_project()
    w = api.new_worker()
    grant(w, project)
    recipe = "r" * MIB
    r = w.post("/task/submit", {"project": project, "recipe": recipe})
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True
    r = w.get(f"/task/get/{project}")
    assert r.status_code == 200, r.text
    assert r.json()["content"]["task"]["recipe"] == recipe


# --- path parameters and field types -------------------------------------------------------------


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "1.5", "9223372036854775808", "1e3", "0x10", "99999999999999999999"])
def test_bad_path_id_is_400_naming_the_parameter(api, bad):
    assert_error(api.get(f"/worker/get/{bad}"), 400, "'id'")


def test_path_id_at_the_top_of_the_range_is_valid_syntax(api):
    assert_error(api.get(f"/worker/get/{INT63_MAX}"), 404)


def test_each_path_parameter_is_named(admin, api):
    w = api.new_worker()
    assert_error(admin.post(f"/project/accept_request/1/{'abc'}"), 400, "'wid'")
    assert_error(admin.post("/project/accept_request/abc/1"), 400, "'id'")
    assert_error(w.get("/task/get/-1"), 400, "'project'")


@pytest.mark.parametrize("value", [1.0, "1", True, [1], {"a": 1}, 0, -1, 1 << 63])
def test_int_field_rejects_wrong_types_and_ranges(admin, api, value):
    w = api.new_worker()
    body = assert_error(admin.post("/worker/set_paused", {"worker": value, "paused": True}), 400, "worker")
    assert "'worker'" in body["message"]
    assert api.get(f"/worker/get/{w.id}").json()["content"]["worker"]["paused"] is False


@pytest.mark.parametrize("value", [1, 0, 1.0, "true", "false", [True]])
def test_bool_field_rejects_non_bools(admin, api, value):
    w = api.new_worker()
    assert_error(admin.post("/worker/set_paused", {"worker": w.id, "paused": value}), 400, "'paused'")


@pytest.mark.parametrize("value", [1, True, ["a"], {"a": "b"}])
def test_string_field_rejects_non_strings(api, value):
    assert_error(api.post("/worker/create", {"alias": value}), 400, "'alias'")


@pytest.mark.parametrize("raw", [
    b'{"alias": "a\\u0000b"}', b'{"alias": "\\u0000"}', b'{"alias": "a\\ud800b"}', b'{"alias": "\\udc00"}',
    b'{"alias": "x\\ud800"}',
])
def test_unstorable_strings_are_400(api, raw):
    assert_error(raw_post(api, "/worker/create", raw), 400, "alias")


def test_valid_surrogate_pair_is_accepted(api):
    r = raw_post(api, "/worker/create", b'{"alias": "\\ud83d\\ude00 ok"}')
    assert r.status_code == 200, r.text
    assert r.json()["content"]["worker"]["alias"] == "\U0001F600 ok"


# --- worker credentials (§2) ---------------------------------------------------------------------


def _bad_worker_headers(w: Api) -> list[dict]:
    return [
        {},
        {"X-Worker-ID": str(w.id)},
        {"X-Secret": w.secret},
        {"X-Worker-ID": "abc", "X-Secret": w.secret},
        {"X-Worker-ID": f"{w.id}.0", "X-Secret": w.secret},
        {"X-Worker-ID": "0", "X-Secret": w.secret},
        {"X-Worker-ID": "-1", "X-Secret": w.secret},
        {"X-Worker-ID": "", "X-Secret": w.secret},
        {"X-Worker-ID": str(FAR_ID), "X-Secret": w.secret},
        {"X-Worker-ID": "9223372036854775808", "X-Secret": w.secret},
        {"X-Worker-ID": "1" * 5000, "X-Secret": w.secret},
        {"X-Worker-ID": "0" * 5000 + str(w.id), "X-Secret": random_secret()},
        {"X-Worker-ID": str(w.id), "X-Secret": "!!not base64!!"},
        {"X-Worker-ID": str(w.id), "X-Secret": w.secret[:-2]},
        {"X-Worker-ID": str(w.id), "X-Secret": ""},
        {"X-Worker-ID": str(w.id), "X-Secret": random_secret()},
    ]


def test_worker_route_rejects_every_bad_credential(api):
    w = api.new_worker("creds")
    for headers in _bad_worker_headers(w):
        r = requests.post(api.base + "/worker/update", json={"alias": "hijacked"}, headers=headers, timeout=30)
        assert_error(r, 401)
    assert api.get(f"/worker/get/{w.id}").json()["content"]["worker"]["alias"] == "creds"


def test_other_workers_secret_is_refused(api):
    a, b = api.new_worker(), api.new_worker()
    r = requests.post(api.base + "/worker/update", json={"alias": "x"},
                      headers={"X-Worker-ID": str(a.id), "X-Secret": b.secret}, timeout=30)
    assert_error(r, 401)


def test_worker_header_names_are_case_insensitive(api):
    w = api.new_worker()
    r = requests.post(api.base + "/worker/update", json={"alias": "lower"},
                      headers={"x-worker-id": str(w.id), "x-secret": w.secret}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True}


@pytest.mark.parametrize("path", ["/worker/stats", "/project/list", f"/worker/get/{FAR_ID}", "/"])
def test_bad_worker_headers_on_anonymous_get_routes_are_401(api, path):
    w = api.new_worker()
    assert api.get(path, headers={"X-Worker-ID": str(w.id), "X-Secret": w.secret}).status_code in (200, 404)
    for headers in _bad_worker_headers(w)[1:]:
        assert_error(api.get(path, headers=headers), 401)


def test_bad_worker_headers_on_anonymous_post_route_are_401(api):
    w = api.new_worker()
    before = len(api.get("/worker/stats").json()["content"]["stats"])
    assert_error(api.post("/worker/create", {}, headers={"X-Worker-ID": str(w.id), "X-Secret": random_secret()}),
                 401)
    assert_error(api.post("/worker/create", {}, headers={"X-Secret": w.secret}), 401)
    assert len(api.get("/worker/stats").json()["content"]["stats"]) == before


def test_valid_worker_headers_with_an_admin_session_pass(api, admin):
    w = api.new_worker()
    r = admin.post("/worker/set_paused", {"worker": w.id, "paused": False},
                   headers={"X-Worker-ID": str(w.id), "X-Secret": w.secret})
    assert r.status_code == 200, r.text


def test_bad_worker_headers_with_a_valid_session_are_401(admin, api):
    w = api.new_worker()
    assert_error(admin.get("/manager/list", headers={"X-Worker-ID": str(w.id), "X-Secret": random_secret()}), 401)
    assert_error(admin.get("/account", headers={"X-Worker-ID": str(w.id)}), 401)


# --- operational routes --------------------------------------------------------------------------


def test_index(api):
    r = api.get("/")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"ok", "content"} and body["ok"] is True
    assert set(body["content"]) == {"name", "version"}
    assert body["content"]["name"] == "task_tracker"
    assert isinstance(body["content"]["version"], str) and body["content"]["version"]


def test_healthz(api):
    r = api.get("/healthz")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"ok": True}


def test_readyz(api):
    r = api.get("/readyz")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"ok": True, "content": {"broker": True, "database": True}}


def test_get_routes_ignore_any_body(api):
    r = api.http.get(api.base + "/worker/stats", data=b"definitely not json", timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True


# --- check order (§1.4) --------------------------------------------------------------------------


def test_bad_credentials_win_over_bad_body(api):
    w = api.new_worker()
    for headers in ({"X-Worker-ID": str(w.id), "X-Secret": random_secret()}, {"X-Worker-ID": "abc"}, {}):
        assert_error(raw_post(api, "/worker/update", b"{broken", headers), 401)
        assert_error(requests.post(api.base + "/worker/update", json={"alias": 5}, headers=headers, timeout=30), 401)


def test_bad_credentials_win_over_bad_path_id(api):
    w = api.new_worker()
    headers = {"X-Worker-ID": str(w.id), "X-Secret": random_secret()}
    assert_error(api.get("/task/get/abc", headers=headers), 401)
    assert_error(api.get("/worker/get/abc", headers=headers), 401)
    assert_error(api.get("/task/get/abc"), 401)


@pytest.mark.parametrize("query", ["count=abc", "count=0", "count=101", "count=1.5", "count=" + "9" * 3000,
                                   "count=", "wait=", "wait=31"])
def test_bad_query_parameter_is_400_naming_it(api, make_project, query):
    w = api.new_worker()
    name = query.split("=")[0]
    assert_error(w.get(f"/task/get/{make_project(public=True)}?{query}"), 400, f"'{name}'")


def test_bad_credentials_win_over_bad_query(api):
    w = api.new_worker()
    headers = {"X-Worker-ID": str(w.id), "X-Secret": random_secret()}
    assert_error(api.get(f"/task/get/{FAR_ID}?count=0", headers=headers), 401)


def test_manager_route_without_session_is_401_before_body_checks(api, system):
    anon = raw_post(api, "/worker/set_paused", b"{broken")
    assert_error(anon, 401)
    forged = requests.post(api.base + "/worker/set_paused", data=b"{broken", cookies={"tt": "forged"}, timeout=30)
    assert_error(forged, 401)


def test_body_syntax_before_existence_and_permission(api, admin):
    manager = api.new_manager()
    # step 5 (400) before step 6 (404) and step 7 (403)
    assert_error(manager.post("/worker/set_paused", {"worker": FAR_ID, "paused": "yes"}), 400, "'paused'")
    assert_error(admin.post("/worker/set_paused", {"worker": FAR_ID, "paused": "yes"}), 400, "'paused'")
    # step 6 (404) before step 7 (403)
    assert_error(manager.post("/worker/set_paused", {"worker": FAR_ID, "paused": True}), 404)


def test_paused_worker_on_task_get_wins_over_bad_project_id(paused_worker, make_project):
    for path in ("/task/get/abc", "/task/get/0", f"/task/get/{FAR_ID}", f"/task/get/{make_project()}",
                 f"/task/get/{FAR_ID}?count=0"):
        body = assert_error(paused_worker.get(path), 400)
        assert body["message"] == PAUSED, path


def test_bad_credentials_win_over_paused(paused_worker, api):
    headers = {"X-Worker-ID": str(paused_worker.id), "X-Secret": random_secret()}
    assert_error(api.get("/task/get/abc", headers=headers), 401)
