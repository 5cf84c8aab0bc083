"""Logs of contract §6.6, end to end through the gateway.

``POST /log/trace|info|warn|error`` (worker) store entries of level 7/5/4/3 with ``data`` =
``{"scope", "worker"}`` as JSON text; ``POST /logs`` reads entries of exactly one level newer than
``since``, oldest first, at most 10 000, always a list. Public by default; a second tracker started
with ``TT_PUBLIC_LOGS=0`` checks that reading then needs a manager session.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.harness import Api, System, assert_error

# One pytest process runs the whole module: its fixture builds a system of its own (public logs off) once.
pytestmark = pytest.mark.xdist_group("test_logs")

LEVELS = {"trace": 7, "info": 5, "warn": 4, "error": 3}
ENTRY_KEYS = {"level", "message", "timestamp", "data"}


def log(w: Api, route: str, scope: str, message: str, timestamp: int):
    return w.post(f"/log/{route}", {"scope": scope, "message": message, "timestamp": timestamp})


def logged(w: Api, route: str, scope: str, message: str, timestamp: int) -> None:
    r = log(w, route, scope, message, timestamp)
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True}


def read_logs(client: Api, level: int, since: int) -> list[dict]:
    r = client.post("/logs", {"level": level, "since": since})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True and set(body["content"]) == {"logs"}, body
    entries = body["content"]["logs"]
    assert isinstance(entries, list)
    for e in entries:
        assert set(e) == ENTRY_KEYS, e
        assert e["level"] == level and e["timestamp"] > since, (level, since, e)
        assert isinstance(e["message"], str) and isinstance(e["data"], str)
    stamps = [e["timestamp"] for e in entries]
    assert stamps == sorted(stamps), "oldest first"
    return entries


def mine(entries: list[dict], tag: str) -> list[dict]:
    return [e for e in entries if tag in e["message"]]


def stored_count(system, tag: str) -> int:
    return system.sql("SELECT count(*) FROM log_entry WHERE message LIKE %s", f"%{tag}%")[0][0]


def tag() -> str:
    return "log-" + uuid.uuid4().hex


def now() -> int:
    return int(time.time())


# --- writing ------------------------------------------------------------------------------------
@pytest.mark.parametrize("route", list(LEVELS))
def test_each_route_stores_its_level(api, route):
    w = api.new_worker()
    t, ts = tag(), now()
    logged(w, route, "crawler", t, ts)
    entries = mine(read_logs(api, LEVELS[route], ts - 1), t)
    assert len(entries) == 1
    e = entries[0]
    assert {k: e[k] for k in ("level", "message", "timestamp")} == {"level": LEVELS[route], "message": t,
                                                                    "timestamp": ts}
    assert json.loads(e["data"]) == {"scope": "crawler", "worker": w.id}


def test_levels_are_kept_apart(api):
    w = api.new_worker()
    t, ts = tag(), now()
    for route in LEVELS:
        logged(w, route, "s", f"{t}-{route}", ts)
    for route, level in LEVELS.items():
        assert [e["message"] for e in mine(read_logs(api, level, ts - 1), t)] == [f"{t}-{route}"]
    for level in (1, 2, 6):  # FATAL, PANIC, DEBUG: no worker route writes them
        assert mine(read_logs(api, level, ts - 1), t) == []


def test_data_names_the_caller_and_scope_verbatim(api):
    w = api.new_worker()
    t, ts = tag(), now()
    scope = 'scope "quoted" \\ back ✓ {not: json}'
    r = w.post("/log/warn", {"scope": scope, "message": t + " héllo ✓\nline", "timestamp": ts,
                             "worker": 1, "level": 1, "data": "forged"})  # unknown fields are ignored
    assert r.status_code == 200 and r.json() == {"ok": True}, r.text
    [e] = mine(read_logs(api, 4, ts - 1), t)
    assert e["message"] == t + " héllo ✓\nline" and e["level"] == 4
    assert json.loads(e["data"]) == {"scope": scope, "worker": w.id}


def test_timestamp_is_taken_as_given(api):
    w = api.new_worker()
    t = tag()
    logged(w, "info", "old", t, 1000)
    [e] = mine(read_logs(api, 5, 999), t)
    assert e["timestamp"] == 1000
    assert mine(read_logs(api, 5, 1000), t) == []


def test_two_workers_entries_carry_their_own_id(api):
    a, b = api.new_worker(), api.new_worker()
    t, ts = tag(), now()
    logged(a, "error", "x", t + "-a", ts)
    logged(b, "error", "x", t + "-b", ts)
    workers = {e["message"]: json.loads(e["data"])["worker"] for e in mine(read_logs(api, 3, ts - 1), t)}
    assert workers == {t + "-a": a.id, t + "-b": b.id}


# --- reading ------------------------------------------------------------------------------------
def test_since_is_exclusive(api):
    w = api.new_worker()
    t, ts = tag(), now() - 50
    logged(w, "info", "s", t + "-0", ts)
    logged(w, "info", "s", t + "-1", ts + 1)
    assert [e["message"] for e in mine(read_logs(api, 5, ts - 1), t)] == [t + "-0", t + "-1"]
    assert [e["message"] for e in mine(read_logs(api, 5, ts), t)] == [t + "-1"]
    assert mine(read_logs(api, 5, ts + 1), t) == []


def test_oldest_first(api):
    w = api.new_worker()
    t, ts = tag(), now() - 100
    for offset in (2, 0, 3, 1):
        logged(w, "trace", "s", f"{t}-{offset}", ts + offset)
    assert [e["message"] for e in mine(read_logs(api, 7, ts - 1), t)] == [f"{t}-{i}" for i in range(4)]


def test_empty_answer_is_a_list(api):
    r = api.post("/logs", {"level": 1, "since": 2_000_000_000})
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True, "content": {"logs": []}}


def test_at_most_10000_entries_oldest_kept(api, system):
    """Straight into the table: 10 005 PANIC entries (no route writes level 2) at far-future times."""
    base = 1_900_000_000
    system.sql("INSERT INTO log_entry (level, message, timestamp, data) "
               "SELECT 2, 'bulk-' || i, %s + i, '{}' FROM generate_series(0, 10004) AS i", base)
    entries = read_logs(api, 2, base - 1)
    assert len(entries) == 10_000
    assert entries[0]["timestamp"] == base and entries[-1]["timestamp"] == base + 9_999
    assert len(read_logs(api, 2, base + 9_999)) == 5


@pytest.mark.parametrize("client", ["anonymous", "worker", "manager"])
def test_logs_are_public_by_default(api, admin, client):
    w = api.new_worker()
    t, ts = tag(), now()
    logged(w, "info", "pub", t, ts)
    reader = {"anonymous": api, "worker": w, "manager": api.new_manager()}[client]
    assert [e["message"] for e in mine(read_logs(reader, 5, ts - 1), t)] == [t]


# --- refusals -------------------------------------------------------------------------------------
GOOD = {"scope": "s", "message": "m", "timestamp": 1_700_000_000}


@pytest.mark.parametrize(("field", "value"), [
    ("scope", ""), ("scope", 5), ("scope", ["s"]), ("scope", None), ("scope", "a\x00b"),
    ("message", ""), ("message", 1.5), ("message", {"m": 1}), ("message", None),
    ("timestamp", 0), ("timestamp", -1), ("timestamp", "1700000000"), ("timestamp", 1.5), ("timestamp", True),
    ("timestamp", None),
])
@pytest.mark.parametrize("route", ["info", "error"])
def test_log_bad_field_400_names_it(api, system, route, field, value):
    w = api.new_worker()
    t = tag()
    body = {**GOOD, "message": t, field: value} if field != "message" else {**GOOD, "scope": t, field: value}
    assert_error(w.post(f"/log/{route}", body), 400, field)
    assert stored_count(system, t) == 0
    assert system.sql("SELECT count(*) FROM log_entry WHERE data LIKE %s", f'%"{t}"%')[0][0] == 0


@pytest.mark.parametrize("field", ["scope", "message", "timestamp"])
@pytest.mark.parametrize("route", list(LEVELS))
def test_log_missing_field_400_names_it(api, route, field):
    w = api.new_worker()
    body = dict(GOOD)
    del body[field]
    assert_error(w.post(f"/log/{route}", body), 400, field)


@pytest.mark.parametrize("raw", [b"{not json", b"[1]", b'"text"', b""])
def test_log_malformed_body_400(api, raw):
    assert_error(api.new_worker().post("/log/warn", raw=raw), 400)


@pytest.mark.parametrize("route", list(LEVELS))
def test_log_needs_a_worker(api, admin, system, route):
    t = tag()
    body = {"scope": "s", "message": t, "timestamp": now()}
    w = api.new_worker()
    forged = Api(api.base, {"X-Worker-ID": str(w.id), "X-Secret": "AAAA"})
    for client in (api, admin, api.new_manager(), forged):
        assert_error(client.post(f"/log/{route}", body), 401)
    assert_error(api.post(f"/log/{route}", {}), 401)  # authentication before validation
    assert stored_count(system, t) == 0


@pytest.mark.parametrize(("body", "field"), [
    ({"since": 1}, "level"), ({"level": 0, "since": 1}, "level"), ({"level": 8, "since": 1}, "level"),
    ({"level": "5", "since": 1}, "level"), ({"level": 5.0, "since": 1}, "level"),
    ({"level": None, "since": 1}, "level"), ({"level": True, "since": 1}, "level"),
    ({"level": 5}, "since"), ({"level": 5, "since": 0}, "since"), ({"level": 5, "since": -1}, "since"),
    ({"level": 5, "since": "1"}, "since"), ({"level": 5, "since": 1.5}, "since"),
    ({"level": 5, "since": None}, "since"),
])
def test_logs_bad_query_400_names_it(api, body, field):
    assert_error(api.post("/logs", body), 400, field)


@pytest.mark.parametrize("raw", [b"{not json", b"[5, 1]", b"", b"42"])
def test_logs_malformed_body_400(api, raw):
    assert_error(api.post("/logs", raw=raw), 400)


@pytest.mark.parametrize("path", ["/logs", "/log/info", "/log/trace"])
def test_get_is_405(api, path):
    r = api.get(path)
    assert_error(r, 405)
    assert "POST" in [m.strip() for m in r.headers["Allow"].split(",")]


# --- public_logs off -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def private_logs(tmp_path_factory):
    sysm = System.create(tmp_path_factory.mktemp("logs"), TT_PUBLIC_LOGS="0")
    try:
        sysm.start("--gateway-workers", "1")
        sysm.admin = Api(sysm.url).new_manager("admin")
        yield sysm
    finally:
        sysm.destroy_later()


def test_private_logs_need_a_manager_session(private_logs):
    anon = Api(private_logs.url)
    w = anon.new_worker()
    t, ts = tag(), now()
    logged(w, "info", "priv", t, ts)  # writing is unchanged
    query = {"level": 5, "since": ts - 1}
    for client in (anon, w):
        body = assert_error(client.post("/logs", query), 401)
        assert "content" not in body or "logs" not in body["content"]
    manager = anon.new_manager()
    for reader in (manager, private_logs.admin):
        assert [e["message"] for e in mine(read_logs(reader, 5, ts - 1), t)] == [t]
    assert manager.get("/logout").status_code == 204
    assert_error(manager.post("/logs", query), 401)


def test_private_logs_authentication_before_validation(private_logs):
    anon = Api(private_logs.url)
    assert_error(anon.post("/logs", {}), 401)
    assert_error(anon.post("/logs", {"level": 99, "since": 0}), 401)
    forged = Api(private_logs.url)
    forged.http.cookies.set("tt", "not-a-session")
    assert_error(forged.post("/logs", {"level": 5, "since": 1}), 401)
    assert_error(private_logs.admin.post("/logs", {"level": 99, "since": 1}), 400, "level")
