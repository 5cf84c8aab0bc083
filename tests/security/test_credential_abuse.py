"""Forged worker credentials against every route that changes something (and some that read).

Each bad header set is tried on task, access, alias and log routes aimed at the holder of a task,
and on anonymous routes; each answer is 401 and the database is unchanged afterwards.
"""

from __future__ import annotations

import base64
import time

import pytest
import requests

from tests.security.util import (
    INT63_MAX,
    assert_error,
    assert_ok,
    assert_raw_error,
    random_secret,
    raw_http,
    raw_request,
    sql,
    uname,
    unchanged,
)

BAD_HEADERS = [
    "wrong secret", "another workers secret", "swapped", "own secret victim id", "not base64", "empty secret",
    "secret plus bytes", "stored digest", "stored digest as bytes", "id 0", "id -1", "id 1e3", "id huge",
    "id 2^63", "id hex", "id float", "id empty", "id with junk", "id only", "secret only", "unknown id",
]


def bad_headers(scene, system, kind: str) -> dict:
    victim, other = scene.holder, scene.intruder
    vid = str(victim.id)
    digest = sql(system, "SELECT secret_digest FROM worker WHERE id = %s", victim.id)[0][0]
    return {
        "wrong secret": {"X-Worker-ID": vid, "X-Secret": random_secret()},
        "another workers secret": {"X-Worker-ID": vid, "X-Secret": other.secret},
        "swapped": {"X-Worker-ID": str(other.id), "X-Secret": victim.secret},
        "own secret victim id": {"X-Worker-ID": vid, "X-Secret": scene.outsider.secret},
        "not base64": {"X-Worker-ID": vid, "X-Secret": "!!not*base64!!"},
        "empty secret": {"X-Worker-ID": vid, "X-Secret": ""},
        "secret plus bytes": {"X-Worker-ID": vid, "X-Secret": victim.secret + "AAAA"},
        "stored digest": {"X-Worker-ID": vid, "X-Secret": digest},
        "stored digest as bytes": {"X-Worker-ID": vid, "X-Secret": base64.b64encode(bytes.fromhex(digest)).decode()},
        "id 0": {"X-Worker-ID": "0", "X-Secret": victim.secret},
        "id -1": {"X-Worker-ID": "-1", "X-Secret": victim.secret},
        "id 1e3": {"X-Worker-ID": "1e3", "X-Secret": victim.secret},
        "id huge": {"X-Worker-ID": "9" * 400, "X-Secret": victim.secret},
        "id 2^63": {"X-Worker-ID": str(INT63_MAX + 1), "X-Secret": victim.secret},
        "id hex": {"X-Worker-ID": hex(victim.id), "X-Secret": victim.secret},
        "id float": {"X-Worker-ID": vid + ".0", "X-Secret": victim.secret},
        "id empty": {"X-Worker-ID": "", "X-Secret": victim.secret},
        "id with junk": {"X-Worker-ID": vid + "; DROP TABLE task", "X-Secret": victim.secret},
        "id only": {"X-Worker-ID": vid},
        "secret only": {"X-Secret": victim.secret},
        "unknown id": {"X-Worker-ID": str(INT63_MAX), "X-Secret": victim.secret},
    }[kind]


def attempts(scene) -> list[tuple[str, str, object]]:
    """Requests that would change something (or leak) if the forged identity were accepted."""
    log = {"scope": "forged", "message": "forged", "timestamp": int(time.time())}
    return [
        ("POST", "/task/release", {"task_id": scene.held, "result": 1}),
        ("POST", "/task/release", {"task_id": scene.held_forever, "result": 0}),
        ("POST", "/task/extend", {"task_id": scene.held, "seconds": 604_800}),
        ("GET", f"/task/get/{scene.pid}", None),
        ("GET", f"/task/get/{scene.pid}?count=100", None),
        ("POST", "/task/submit", {"project": scene.pid, "recipe": "forged"}),
        ("POST", "/task/bulk_submit", {"requests": [{"project": scene.pid, "recipe": "forged"}]}),
        ("POST", "/project/request_access", {"project": scene.hidden, "assign": True, "submit": True}),
        ("POST", "/worker/update", {"alias": "hijacked"}),
        ("POST", "/log/error", log),
        ("POST", "/log/trace", log),
        ("GET", f"/project/secret/{scene.pid}", None),
        # anonymous-allowed routes: any worker header present must be valid
        ("POST", "/worker/create", {"alias": "forged"}),
        ("POST", "/register", {"username": uname("u"), "password": "tt-test-password"}),
        ("GET", "/worker/stats", None),
        ("GET", f"/worker/get/{scene.holder.id}", None),
        ("GET", f"/project/get/{scene.pid}", None),
        ("GET", "/project/list", None),
        ("GET", f"/project/assignees/{scene.pid}", None),
        ("POST", "/logs", {"level": 3, "since": 1}),
        ("GET", "/", None),
    ]


@pytest.mark.parametrize("kind", BAD_HEADERS)
def test_forged_worker_credentials_401_nothing_changes(api, system, scene, kind):
    headers = bad_headers(scene, system, kind)
    secret = sql(system, "SELECT secret FROM project WHERE id = %s", scene.pid)[0][0]
    with unchanged(system, scene.pid, scene.hidden):
        for method, path, body in attempts(scene):
            r = requests.request(method, api.base + path, json=body, headers=headers, timeout=30)
            assert r.status_code == 401, (method, path, r.status_code, r.text)
            assert_error(r, 401)
            assert "hijacked" not in r.text and (secret == "{}" or secret not in r.text)


def test_forged_worker_credentials_beside_a_valid_session(api, admin, system, scene):
    """A valid admin session does not rescue invalid worker headers: login, logout, admin routes 401."""
    m = api.new_manager()
    password_login = {"username": m.username, "password": "tt-test-password"}
    bad = {"X-Worker-ID": str(scene.holder.id), "X-Secret": random_secret()}
    token = m.http.cookies.get("tt")
    with unchanged(system, scene.pid):
        r = api.post("/login", password_login, headers=bad)
        assert_error(r, 401)  # no session is opened
        assert "tt=" not in r.headers.get("Set-Cookie", ""), r.headers
        r = m.get("/logout", headers=bad)
        assert_error(r, 401)  # the session is not deleted
        assert "tt=" not in r.headers.get("Set-Cookie", ""), r.headers  # a refused logout ends nothing
        assert_error(admin.post(f"/project/hard_reset/{scene.pid}", headers=bad), 401)
        assert_error(admin.post("/worker/set_paused", {"worker": scene.holder.id, "paused": True}, headers=bad),
                     401)
        assert_error(admin.get(f"/project/webhook_secret/{scene.pid}", headers=bad), 401)
    assert_ok(requests.get(api.base + "/account", cookies={"tt": token}, timeout=30))


def test_valid_headers_still_work(system, scene):
    """The control case: the victim's own headers are accepted by the same routes."""
    assert_ok(scene.holder.post("/task/extend", {"task_id": scene.held, "seconds": 60}))
    assert_ok(scene.holder.get("/worker/stats"))


# --- bytes no client library sends --------------------------------------------------------------


@pytest.mark.parametrize("name", ["id", "secret"])
@pytest.mark.parametrize("value", [b"\xff\xfe", b"\xd9\xa1", b"\xc3\xa9", b"\xef\xbc\x91", b"\x80"])
def test_non_ascii_worker_headers_401(system, scene, name, value):
    """Invalid UTF-8, an Arabic-Indic or a fullwidth digit one: 401 with the envelope, never 500."""
    wid, secret = str(scene.holder.id).encode(), scene.holder.secret.encode()
    if name == "id":
        wid = value
    else:
        secret = secret[:8] + value + secret[8:]
    headers = [b"X-Worker-ID: " + wid, b"X-Secret: " + secret]
    with unchanged(system, scene.pid):
        body = b'{"task_id": %d, "result": 1}' % scene.held
        answer = raw_http(system, raw_request("POST", b"/task/release", headers, body))
        assert_raw_error(answer, (400, 401))
        assert_raw_error(raw_http(system, raw_request("GET", b"/worker/stats", headers)), (400, 401))


@pytest.mark.parametrize("order", ["victim first", "victim last"])
def test_duplicate_worker_id_header_never_acts_as_the_victim(system, scene, order):
    """Two X-Worker-ID headers (the victim's and the caller's own) with the caller's secret."""
    ids = [str(scene.holder.id).encode(), str(scene.outsider.id).encode()]
    if order == "victim last":
        ids.reverse()
    headers = [b"X-Worker-ID: " + i for i in ids] + [b"X-Secret: " + scene.outsider.secret.encode()]
    with unchanged(system, scene.pid):
        status, _, body = raw_http(system, raw_request(
            "POST", b"/task/release", headers, b'{"task_id": %d, "result": 1}' % scene.held))
        assert status in (200, 401), (status, body)
        if status == 200:  # acted as the caller: not the holder
            assert b'"updated": false' in body, body


@pytest.mark.parametrize("name", [b"X-Worker-ID", b"X-Secret", b"Cookie"])
def test_nul_byte_in_a_credential_header_is_refused(system, scene, name):
    """HTTP forbids NUL in field values: refused with the JSON envelope (contract §1.3), never a 500."""
    values = {b"X-Worker-ID": str(scene.holder.id).encode(), b"X-Secret": scene.holder.secret.encode(),
              b"Cookie": b"tt=x"}
    values[name] = values[name][:2] + b"\x00" + values[name][2:]
    headers = [k + b": " + v for k, v in values.items()]
    with unchanged(system, scene.pid):
        answer = raw_http(system, raw_request(
            "POST", b"/task/release", headers, b'{"task_id": %d, "result": 1}' % scene.held))
        assert_raw_error(answer, (400, 401))
