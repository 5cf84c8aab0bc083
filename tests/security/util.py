"""Shared helpers of the abuse tests: the error envelope, a database fingerprint, raw HTTP.

Every abuse case asserts two things: the contract's refusal (status and JSON envelope) and that the
database is exactly as it was. ``db_state`` reads every table a request could write (monitoring
snapshots excepted: they are taken in the background) as a per-table fingerprint, plus readable rows
of the projects under attack, so a failing comparison says which rows moved.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Iterator

import psycopg
import requests

from tests.harness import Api, System

MIB = 1024 * 1024
LIMIT = 16 * MIB
INT63_MAX = (1 << 63) - 1
UNKNOWN = 1 << 62  # valid id syntax, never an existing row
READ, EDIT, MANAGE_ACCESS, SECRET, MAINTENANCE, ALL = 1, 2, 4, 8, 16, 31
NEW, FAILED, CLOSED = 1, 2, 3

# Every table a request may write, with a deterministic order for its rows.
TABLES = [
    "worker", "manager", "manager_session", "manager_role", "project", "worker_access", "task",
    "task_verification", "project_closures", "worker_closures", "log_entry", "rate_limit",
]


def assert_error(r: requests.Response, status: int, *fragments: str) -> dict:
    """An error answer: the status, a JSON envelope with ok false and a message containing each fragment."""
    assert r.status_code == status, (r.status_code, r.text[:2000])
    assert r.headers.get("Content-Type", "").startswith("application/json"), (r.headers, r.text[:2000])
    body = r.json()
    assert isinstance(body, dict) and body.get("ok") is False, body
    assert isinstance(body.get("message"), str) and body["message"], body
    for fragment in fragments:
        assert fragment in body["message"], (fragment, body)
    return body


def assert_ok(r: requests.Response) -> dict:
    assert r.status_code == 200, (r.status_code, r.text[:2000])
    body = r.json()
    assert body["ok"] is True, body
    return body


def random_secret() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def uname(prefix: str = "p-") -> str:
    return prefix + uuid.uuid4().hex[:12]


# --- database access ---------------------------------------------------------------------------


def _connect(system: System) -> psycopg.Connection:
    """A connection, waiting out "too many clients" (the server is shared with other test systems)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return psycopg.connect(system.db_url, autocommit=True)
        except psycopg.OperationalError as exc:
            if "too many clients" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def sql(system: System, query: str, *args):
    """``system.sql`` that survives a momentarily full PostgreSQL."""
    with _connect(system) as conn:
        cur = conn.execute(query, args or None)
        return cur.fetchall() if cur.description else None


# --- database state ------------------------------------------------------------------------------

# Per table: its row count and the sum of a 64-bit hash of each whole row, an order-free
# fingerprint of the multiset of rows (any changed, added or removed row changes it, but for a
# 2^-64 chance). It reads each table once without sorting: the shared test system's tables grow
# to 100,000s of rows over a run, and sorted md5s of them made this a quarter second a call.
_FINGERPRINT = " UNION ALL ".join(
    f"SELECT '{t}', count(*), coalesce(sum(hash_record_extended(r, 0)), 0) FROM {t} r" for t in TABLES
)

_PROJECT_ROWS = {
    "project": "SELECT * FROM project WHERE id = ANY(%(p)s) ORDER BY id",
    "task": "SELECT id, project, status, assignee, retries, lease_deadline, assign_time, priority, max_retries,"
            " max_assign_time, verification_count, hash64, length(recipe), md5(recipe)"
            " FROM task WHERE project = ANY(%(p)s) ORDER BY id",
    "task_verification": "SELECT v.* FROM task_verification v JOIN task t ON t.id = v.task_id"
                         " WHERE t.project = ANY(%(p)s) ORDER BY v.task_id, v.worker_id",
    "worker_access": "SELECT * FROM worker_access WHERE project_id = ANY(%(p)s) ORDER BY worker_id, project_id",
    "manager_role": "SELECT * FROM manager_role WHERE project_id = ANY(%(p)s) ORDER BY manager_id, project_id",
    "project_closures": "SELECT * FROM project_closures WHERE project_id = ANY(%(p)s) ORDER BY project_id",
    "rate_limit": "SELECT * FROM rate_limit WHERE project_id = ANY(%(p)s) ORDER BY project_id, kind",
}


def db_state(system: System, *projects: int) -> dict:
    """Fingerprints of every writable table, and the rows of ``projects`` (tasks, access, roles, counters…)."""
    with _connect(system) as conn:
        state: dict = {"tables": {name: (count, digest) for name, count, digest in conn.execute(_FINGERPRINT)}}
        if projects:
            for name, query in _PROJECT_ROWS.items():
                state[name] = conn.execute(query, {"p": list(projects)}).fetchall()
        state["managers"] = conn.execute(
            "SELECT id, username, tracker_admin, password_hash FROM manager ORDER BY id").fetchall()
        state["sessions"] = conn.execute(
            "SELECT manager_id, token_digest, expires FROM manager_session ORDER BY token_digest").fetchall()
        state["workers"] = conn.execute(
            "SELECT w.id, w.alias, w.paused, w.secret_digest, c.closed_task_count FROM worker w"
            " LEFT JOIN worker_closures c ON c.worker_id = w.id ORDER BY w.id DESC LIMIT 200").fetchall()
    return state


def assert_same_state(before: dict, after: dict) -> None:
    for key in before:  # one key at a time, so the failure shows the rows that changed
        assert after[key] == before[key], f"database changed: {key}"


@contextlib.contextmanager
def unchanged(system: System, *projects: int) -> Iterator[None]:
    """The block must leave the database exactly as it found it."""
    before = db_state(system, *projects)
    yield
    assert_same_state(before, db_state(system, *projects))


def gateway_alive(api: Api) -> None:
    r = api.get("/healthz")
    assert r.status_code == 200 and r.json() == {"ok": True}, r.text
    assert api.get("/worker/stats").status_code == 200


# --- raw HTTP: bytes no client library would send -------------------------------------------------


def raw_http(system: System, request: bytes, timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` verbatim (it must ask ``Connection: close``); return status, headers, body."""
    with socket.create_connection(("127.0.0.1", system.port), timeout=timeout) as s:
        s.sendall(request)
        chunks = []
        while True:
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.append(data)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines and lines[0].startswith(b"HTTP/1."), raw[:500]
    status = int(lines[0].split(b" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return status, headers, body


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return out


def raw_request(method: str, target: bytes, headers: list[bytes] = (), body: bytes = b"") -> bytes:
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close", *headers]
    if body or method == "POST":
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def assert_raw_error(answer: tuple[int, dict, bytes], statuses: tuple[int, ...]) -> dict:
    """A raw answer: one of ``statuses`` (never 500) with the JSON error envelope."""
    import json

    status, headers, body = answer
    assert status in statuses, (status, headers, body[:2000])
    assert headers.get("content-type", "").startswith("application/json"), (status, headers, body[:2000])
    envelope = json.loads(body)
    assert envelope.get("ok") is False and isinstance(envelope.get("message"), str) and envelope["message"], envelope
    return envelope
