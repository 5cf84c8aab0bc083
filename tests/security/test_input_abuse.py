"""Hostile input: oversized and chunked bodies, deep nesting, huge numbers, broken Unicode, bad
path ids. Each is refused with the contract's status and JSON envelope (never a 500), nothing is
stored, and the gateway keeps answering.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests

from tests.security.util import (
    INT63_MAX,
    LIMIT,
    MIB,
    assert_error,
    assert_ok,
    assert_raw_error,
    gateway_alive,
    raw_http,
    raw_request,
    sql,
    uname,
    unchanged,
)


@pytest.fixture
def sub(api, system, make_project, grant):
    """A private project and a worker with ASSIGN+SUBMIT on it, holding one task."""
    pid = make_project()
    w = api.new_worker("submitter")
    grant(w, pid)
    assert_ok(w.post("/task/submit", {"project": pid, "recipe": "held", "max_assign_time": 600}))
    w.task = assert_ok(w.get(f"/task/get/{pid}"))["content"]["task"]["id"]
    w.pid = pid
    return w


def post(client, path: str, data, headers: dict | None = None) -> requests.Response:
    """POST raw bytes (or an iterator, sent chunked) with the client's identity."""
    return client.http.post(client.base + path, data=data, headers=headers or {}, timeout=120)


# --- body size ------------------------------------------------------------------------------------


def _padded_submit(pid: int, size: int) -> bytes:
    """A valid submit body of exactly ``size`` bytes: the recipe fills it."""
    head, tail = b'{"project": %d, "recipe": "' % pid, b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def _chunked(body: bytes, piece: int = MIB) -> Iterator[bytes]:
    for i in range(0, len(body), piece):
        yield body[i:i + piece]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_valid_submit_one_byte_over_the_limit_413(system, sub, chunked):
    body = _padded_submit(sub.pid, LIMIT + 1)
    json.loads(body)  # a perfectly good submit, only too large
    with unchanged(system, sub.pid):
        assert_error(post(sub, "/task/submit", _chunked(body) if chunked else body), 413)
        bulk = b'{"requests": [' + body + b"]}"
        assert_error(post(sub, "/task/bulk_submit", _chunked(bulk) if chunked else bulk), 413)
    gateway_alive(sub)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_worker_create_over_the_limit_413(api, system, chunked):
    head, tail = b'{"alias": "', b'"}'
    body = head + b"a" * (LIMIT + 1 - len(head) - len(tail)) + tail
    with unchanged(system):
        assert_error(post(api, "/worker/create", _chunked(body) if chunked else body), 413)
        assert_error(post(api, "/register", _chunked(body) if chunked else body), 413)
    gateway_alive(api)


def test_chunked_body_far_over_the_limit_413(api, system, sub):
    """A chunked body that never ends on its own: the server stops reading past the limit."""

    def endless() -> Iterator[bytes]:
        yield b'{"project": %d, "recipe": "' % sub.pid
        for _ in range(64):  # 64 MiB, four times the limit
            yield b"x" * MIB

    with unchanged(system, sub.pid):
        try:
            r = post(sub, "/task/submit", endless())
        except requests.ConnectionError:  # the server may close before the client has sent it all
            r = None
        if r is not None:
            assert_error(r, 413)
    gateway_alive(api)


@pytest.mark.parametrize("length", [LIMIT + 1, 10**12, 2**63, 10**30])
def test_declared_content_length_over_the_limit_413_at_once(system, sub, length):
    """Content-Length alone decides: 413 without waiting for a body that never comes."""
    head = [b"X-Worker-ID: %d" % sub.id, b"X-Secret: " + sub.secret.encode(),
            b"Content-Length: %d" % length]
    request = b"\r\n".join([b"POST /task/submit HTTP/1.1", b"Host: x", b"Connection: close", *head]) + b"\r\n\r\n"
    with unchanged(system, sub.pid):
        started = time.monotonic()
        answer = raw_http(system, request + b'{"project": %d, "recipe": "x"}' % sub.pid, timeout=30)
        assert time.monotonic() - started < 20
        assert_raw_error(answer, (413,))


def test_body_of_exactly_the_limit_accepted_on_submit(system, sub):
    body = b'{"project": %d, "recipe": "exactly the limit"}' % sub.pid
    r = post(sub, "/task/submit", body + b" " * (LIMIT - len(body)))
    assert_ok(r)
    assert sql(system, "SELECT count(*) FROM task WHERE project = %s AND recipe = 'exactly the limit'",
                      sub.pid) == [(1,)]


@pytest.mark.parametrize("route", ["/task/submit", "/task/bulk_submit"])
def test_one_mib_recipe_stored_whole(system, sub, route):
    recipe = "é" * (MIB // 2)  # 1 MiB of UTF-8, half a million characters
    item = {"project": sub.pid, "recipe": recipe}
    r = sub.post(route, item if route == "/task/submit" else [item])
    assert_ok(r)
    assert sql(system, "SELECT octet_length(recipe), md5(recipe) = md5(%s) FROM task WHERE project = %s"
                      " AND length(recipe) = %s", recipe, sub.pid, len(recipe)) == [(MIB, True)]


# --- deep nesting ---------------------------------------------------------------------------------

DEPTH = 100_000


def _deep(kind: str, depth: int = DEPTH) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    if kind == "object":
        return b'{"a": ' * depth + b"1" + b"}" * depth
    if kind == "unclosed-array":
        return b"[" * depth
    return b'{"a": ' * depth  # unclosed object


@pytest.mark.parametrize("kind", ["array", "object", "unclosed-array", "unclosed-object"])
def test_deeply_nested_json_400_everywhere(api, admin, system, sub, kind):
    deep = _deep(kind)
    bodies = [
        (sub, "/task/submit", deep),
        (sub, "/task/submit", b'{"project": %d, "recipe": ' % sub.pid + deep + b"}"),
        (sub, "/task/bulk_submit", deep),  # a bare array is a valid shape here
        (sub, "/task/bulk_submit", b'{"requests": ' + deep + b"}"),
        (sub, "/task/release", b'{"task_id": %d, "result": ' % sub.task + deep + b"}"),
        (api, "/worker/create", deep),
        (api, "/register", b'{"username": ' + deep + b', "password": "tt-test-password"}'),
        (admin, "/project/create", b'{"name": ' + deep + b"}"),
        (admin, "/worker/set_paused", deep),
    ]
    with unchanged(system, sub.pid):
        for client, path, body in bodies:
            r = post(client, path, body)
            assert r.status_code == 400, (path, body[:60], r.status_code, r.text[:500])
            assert_error(r, 400)
    gateway_alive(api)


def test_many_deep_bodies_in_a_row_leave_the_gateway_healthy(api, system):
    with unchanged(system):
        for _ in range(20):
            assert_error(post(api, "/worker/create", _deep("array")), 400)
    gateway_alive(api)


# --- huge numbers ---------------------------------------------------------------------------------

HUGE = {
    "1e400": b"1e400",
    "-1e400": b"-1e400",
    "2^64": str(1 << 64).encode(),
    "10^100": str(10**100).encode(),
    "-2^63-1": str(-(1 << 63) - 1).encode(),
    "2^63": str(1 << 63).encode(),
    "1e3": b"1e3",  # a JSON float, not an integer
    "1.0": b"1.0",
    "-0.0": b"-0.0",
}
SUBMIT_INT_FIELDS = ["project", "priority", "max_retries", "max_assign_time", "verification_count"]


@pytest.mark.parametrize("value", list(HUGE))
@pytest.mark.parametrize("field", SUBMIT_INT_FIELDS)
def test_huge_numbers_in_int_fields_400_naming_the_field(system, sub, field, value):
    fields = {"project": str(sub.pid).encode(), "recipe": b'"huge"', field: HUGE[value]}
    body = b"{" + b", ".join(b'"%s": %s' % (k.encode(), v) for k, v in fields.items()) + b"}"
    with unchanged(system, sub.pid):
        assert_error(post(sub, "/task/submit", body), 400, f"'{field}'")
        assert_error(post(sub, "/task/bulk_submit", b"[" + body + b"]"), 400, f"'requests[0].{field}'")


@pytest.mark.parametrize("field", ["hash64", "hash_u64"])
@pytest.mark.parametrize("value", ["2^64", "10^100", "-2^63-1", "1e400", "1e3", "1.0"])
def test_huge_hash_400_naming_the_field(system, sub, field, value):
    body = b'{"project": %d, "recipe": "h", "%s": %s}' % (sub.pid, field.encode(), HUGE[value])
    with unchanged(system, sub.pid):
        assert_error(post(sub, "/task/submit", body), 400, f"'{field}'")


def test_hash64_at_the_unsigned_top_is_accepted_and_equals_minus_one(system, sub):
    body = b'{"project": %d, "recipe": "top", "hash64": %d}' % (sub.pid, (1 << 64) - 1)
    assert_ok(post(sub, "/task/submit", body))
    assert sql(system, "SELECT hash64 FROM task WHERE project = %s AND recipe = 'top'", sub.pid) == [(-1,)]
    with unchanged(system, sub.pid):  # the signed spelling of the same bits is a duplicate
        r = sub.post("/task/submit", {"project": sub.pid, "recipe": "same bits", "hash64": -1})
        assert r.status_code == 409, r.text
        assert r.json()["ok"] is False


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"nan", b"inf", b"1e999999"])
@pytest.mark.parametrize("field", ["priority", "hash64", "verification_count"])
def test_non_finite_literals_400(system, sub, literal, field):
    body = b'{"project": %d, "recipe": "nan", "%s": %s}' % (sub.pid, field.encode(), literal)
    with unchanged(system, sub.pid):
        assert_error(post(sub, "/task/submit", body), 400)


@pytest.mark.parametrize("route,field,other", [
    ("/task/release", "task_id", {}),
    ("/task/release", "result", {"task_id": None}),
    ("/task/release", "verification", {"task_id": None}),
    ("/task/extend", "task_id", {"seconds": 60}),
    ("/task/extend", "seconds", {"task_id": None}),
])
@pytest.mark.parametrize("value", ["2^64", "10^100", "-2^63-1", "1e400"])
def test_huge_numbers_on_release_and_extend(system, sub, route, field, other, value):
    fields = {k: str(sub.task).encode() if v is None else json.dumps(v).encode() for k, v in other.items()}
    fields[field] = HUGE[value]
    body = b"{" + b", ".join(b'"%s": %s' % (k.encode(), v) for k, v in fields.items()) + b"}"
    with unchanged(system, sub.pid):
        assert_error(post(sub, route, body), 400, f"'{field}'")


@pytest.mark.parametrize("field,value", [
    *[(rate, v) for rate in ("assign_rate", "submit_rate") for v in ("1e400", "-1e400")],
    *[("priority", v) for v in ("1e400", "-1e400", "10^100", "2^64", "-2^63-1")],
])
def test_huge_numbers_on_project_create_and_update(admin, system, sub, field, value):
    """Rates are finite numbers ≥ 0; priority an int in 0 … 2^31-1."""
    name = uname()
    with unchanged(system, sub.pid):
        body = b'{"name": "%s", "%s": %s}' % (name.encode(), field.encode(), HUGE[value])
        assert_error(post(admin, "/project/create", body), 400, f"'{field}'")
        body = b'{"%s": %s}' % (field.encode(), HUGE[value])
        assert_error(post(admin, f"/project/update/{sub.pid}", body), 400, f"'{field}'")


def test_rate_given_as_a_400_digit_integer_is_400(admin, system):
    """An integer too large for a float, and far above the 1,000,000 limit (§6.4): 400 naming the field."""
    name = uname()
    with unchanged(system):
        r = post(admin, "/project/create", b'{"name": "%s", "assign_rate": 1%s}' % (name.encode(), b"0" * 400))
        assert_error(r, 400, "'assign_rate'")


@pytest.mark.parametrize("body,field", [
    (b'{"scope": "s", "message": "m", "timestamp": %s}' % HUGE["10^100"], "timestamp"),
    (b'{"scope": "s", "message": "m", "timestamp": %s}' % HUGE["1e400"], "timestamp"),
    (b'{"scope": "s", "message": "m", "timestamp": %s}' % HUGE["2^64"], "timestamp"),
])
def test_huge_numbers_on_worker_log(system, sub, body, field):
    with unchanged(system):
        assert_error(post(sub, "/log/error", body), 400, f"'{field}'")


# --- broken Unicode -------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf8\x88\x80\x80\x80", b"a\x80b",
], ids=["ff", "overlong-slash", "utf8-surrogate", "truncated", "5-byte", "continuation"])
def test_invalid_utf8_in_body_400(api, system, sub, raw):
    bodies = [
        (sub, "/task/submit", b'{"project": %d, "recipe": "' % sub.pid + raw + b'"}'),
        (sub, "/task/bulk_submit", b'[{"project": %d, "recipe": "' % sub.pid + raw + b'"}]'),
        (sub, "/task/submit", b'{"project": %d, "recipe": "ok", "' % sub.pid + raw + b'": 1}'),  # in a key
        (sub, "/worker/update", b'{"alias": "' + raw + b'"}'),
        (api, "/register", b'{"username": "' + raw + b'abc", "password": "tt-test-password"}'),
    ]
    with unchanged(system, sub.pid):
        for client, path, body in bodies:
            r = post(client, path, body)
            assert r.status_code == 400, (path, body, r.status_code, r.text)
            assert_error(r, 400)


STRING_FIELDS = [
    ("worker", "/task/submit", lambda w, s: {"project": w.pid, "recipe": s}, "recipe"),
    ("worker", "/task/submit", lambda w, s: {"project": w.pid, "recipe": "r", "unique_string": s}, "unique_string"),
    ("worker", "/task/bulk_submit", lambda w, s: {"requests": [{"project": w.pid, "recipe": "ok"},
                                                               {"project": w.pid, "recipe": s}]},
     "requests[1].recipe"),
    ("worker", "/worker/update", lambda w, s: {"alias": s}, "alias"),
    ("worker", "/log/error", lambda w, s: {"scope": s, "message": "m", "timestamp": 1}, "scope"),
    ("worker", "/log/info", lambda w, s: {"scope": "s", "message": s, "timestamp": 1}, "message"),
    ("anonymous", "/worker/create", lambda w, s: {"alias": s}, "alias"),
    ("anonymous", "/register", lambda w, s: {"username": "u" + s + "abc", "password": "tt-test-password"}, "username"),
    ("anonymous", "/register", lambda w, s: {"username": uname("u"), "password": "password" + s}, "password"),
    ("admin", "/project/create", lambda w, s: {"name": "n" + s}, "name"),
    ("admin", "/project/create", lambda w, s: {"name": uname(), "motd": s}, "motd"),
    ("admin", "/project/update/{pid}", lambda w, s: {"version": s}, "version"),
    ("admin", "/project/secret/{pid}", lambda w, s: {"secret": s}, "secret"),
    ("admin", "/project/webhook_secret/{pid}", lambda w, s: {"webhook_secret": s}, "webhook_secret"),
]


@pytest.mark.parametrize("escape", ["\\u0000", "x\\u0000y", "\\ud800", "a\\udfffb", "\\ud800\\ud800", "\\udc00\\ud800"])
@pytest.mark.parametrize("case", STRING_FIELDS, ids=[f"{c[1]}:{c[3]}" for c in STRING_FIELDS])
def test_unstorable_strings_400_naming_the_field(api, admin, system, sub, case, escape):
    who, path, make, field = case
    client = {"worker": sub, "anonymous": api, "admin": admin}[who]
    marker = "\x01MARK\x01"
    body = json.dumps(make(sub, marker)).replace(json.dumps(marker)[1:-1], escape).encode()
    with unchanged(system, sub.pid):
        assert_error(post(client, path.format(pid=sub.pid), body), 400, f"'{field}'")


def test_raw_control_character_in_a_string_400(system, sub):
    with unchanged(system, sub.pid):
        assert_error(post(sub, "/task/submit", b'{"project": %d, "recipe": "a\x00b"}' % sub.pid), 400)
        assert_error(post(sub, "/task/submit", b'{"project": %d, "recipe": "a\nb"}' % sub.pid), 400)


def _assert_any_json_answer(answer, statuses) -> None:
    status, headers, body = answer
    assert status in statuses, (status, body[:500])
    assert headers.get("content-type", "").startswith("application/json"), (status, headers, body[:500])
    envelope = json.loads(body)
    assert envelope["ok"] is (status == 200), envelope
    if status != 200:
        assert envelope["message"], envelope


@pytest.mark.parametrize("target,statuses", [
    (b"/worker/get/%ff", (400,)),
    (b"/worker/get/%c0%af", (400,)),
    (b"/worker/get/%ed%a0%80", (400,)),
    (b"/worker/get/1%00", (400,)),
    (b"/no/such/%ff", (404,)),
    (b"/worker/stats?x=%ff%fe", (200,)),
    (b"/project/monitoring/1?count=%ff", (400, 404)),
    (b"/project/monitoring-between/1?from=%ff&to=%fe", (400, 404)),
])
def test_percent_encoded_invalid_utf8_in_path_and_query(system, target, statuses):
    with unchanged(system):
        _assert_any_json_answer(raw_http(system, raw_request("GET", target)), statuses)


@pytest.mark.parametrize("target", [
    b"/worker/get/\xff", b"/worker/get/1\xff", b"/no/such/\xff\xfe", b"/worker/stats?x=\xff",
    b"/project/monitoring/1?count=\xff", b"/project/monitoring-between/1?from=1&to=\xfe",
])
def test_raw_non_ascii_bytes_in_the_request_line(system, target):
    """Bytes HTTP/1.1 does not allow in a request-target: a 4xx, never a 500, with the envelope (§1.3)."""
    with unchanged(system):
        _assert_any_json_answer(raw_http(system, raw_request("GET", target)), (400, 404))


@pytest.mark.parametrize("query", [b"count=%ff%fe", b"count=%ff", b"count=%d9%a1", b"wait=%ef%bc%91", b"count=1%00"])
def test_invalid_bytes_in_task_get_query_400_naming_it(system, sub, query):
    name = query.split(b"=")[0].decode()
    head = [b"X-Worker-ID: %d" % sub.id, b"X-Secret: " + sub.secret.encode()]
    with unchanged(system, sub.pid):
        answer = raw_http(system, raw_request("GET", b"/task/get/%d?" % sub.pid + query, head))
        assert f"'{name}'" in assert_raw_error(answer, (400,))["message"]


@pytest.mark.parametrize("header", [b"Content-Type: \xff\xfe", b"Accept: \xc0\xaf", b"User-Agent: \xed\xa0\x80",
                                    b"X-Forwarded-For: \xff", b"Idempotency-Key: \xff\xfe"])
def test_invalid_utf8_in_other_headers_never_a_500(system, sub, header):
    head = [b"X-Worker-ID: %d" % sub.id, b"X-Secret: " + sub.secret.encode(), header]
    body = b'{"task_id": %d, "seconds": 60}' % sub.task
    status, _, answer = raw_http(system, raw_request("POST", b"/task/extend", head, body))
    assert status in (200, 400), (status, answer[:500])
    envelope = json.loads(answer)
    assert envelope["ok"] is (status == 200), envelope


# --- path ids ------------------------------------------------------------------------------------

BAD_IDS = ["0", "-1", "abc", "1.5", "99999999999999999999", str(INT63_MAX + 1), "1e3", "-0", "0x1", "+1", "1_0",
           "%D9%A1", "%EF%BC%91", "%201", "1%20", "1%00", "%00"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_path_ids_400_naming_the_parameter_nothing_changes(api, admin, system, sub, bad):
    """Even for the admin, who passes every role check: only the syntax stops these."""
    pid, wid = sub.pid, sub.id
    attempts = [
        (admin, "POST", f"/project/hard_reset/{bad}", "id"),
        (admin, "POST", f"/project/reclaim_assigned_tasks/{bad}", "id"),
        (admin, "POST", f"/project/reset_failed_tasks/{bad}", "id"),
        (admin, "POST", f"/project/update/{bad}", "id"),
        (admin, "POST", f"/project/secret/{bad}", "id"),
        (admin, "POST", f"/project/webhook_secret/{bad}", "id"),
        (admin, "POST", f"/project/accept_request/{bad}/{wid}", "id"),
        (admin, "POST", f"/project/reject_request/{pid}/{bad}", "wid"),
        (admin, "POST", f"/manager/set_role_for_project/{bad}", "id"),
        (admin, "GET", f"/manager/promote/{bad}", "id"),
        (admin, "GET", f"/manager/demote/{bad}", "id"),
        (admin, "GET", f"/manager/list_for_project/{bad}", "id"),
        (admin, "GET", f"/project/access_list/{bad}", "id"),
        (sub, "GET", f"/task/get/{bad}", "project"),
        (sub, "GET", f"/project/secret/{bad}", "id"),
        (api, "GET", f"/worker/get/{bad}", "id"),
        (api, "GET", f"/project/get/{bad}", "id"),
        (api, "GET", f"/project/assignees/{bad}", "id"),
        (api, "GET", f"/project/monitoring/{bad}?count=1", "id"),
    ]
    bodies = {"update": {"paused": True}, "secret": {"secret": "pwned"}, "webhook_secret": {"webhook_secret": "pwned"},
              "set_role": {"manager": admin.id, "role": 0}}
    with unchanged(system, pid):
        for client, method, path, name in attempts:
            body = next((b for k, b in bodies.items() if f"/{k}" in path), None)
            r = client.get(path) if method == "GET" else client.post(path, body)
            assert r.status_code == 400, (path, r.status_code, r.text)
            assert_error(r, 400, f"'{name}'")
