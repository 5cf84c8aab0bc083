"""The original's own Go client (simon987/task_tracker, `client/client.go`, `client/models.go`)
against this server, replayed byte for byte.

Every request that client can send is sent here with the exact bytes its structs serialise to
(Go's encoding/json: struct field order, the struct tags' names and casing — `"Message"` in the
log request —, zero values included, compact), the headers its `get`/`post` add (`X-Worker-Id`,
`X-Secret`, no Content-Type), in the order of its own test (`test/client_test.go`): make a worker,
fetch from an unknown project, fetch a task, release it; then the methods that test does not
call (submit, project secret, project list, request access, log at each level).

Each answer is then decoded as Go would decode it into the client's response structs: keys match
field names case-insensitively, unknown keys are ignored, `null` leaves the zero value, and a JSON
value of the wrong type for the field (a float for an int64, a number for a string, a non-base64
string for a []byte, an int16 out of range) fails the whole decode — which for that client is an
error on the call.
"""

from __future__ import annotations

import base64
import binascii
import json
import time

import pytest

from tests.harness import Api

GO_HEADERS = {"User-Agent": "Go-http-client/1.1", "Accept-Encoding": "gzip"}
LOG_SCOPE = "task_tracker go client"

# --- the client's response structs, as (JSON name → Go type) ------------------------------------
# Go types: "bool", "string", "int16", "int64", "float64", "[]byte", a dict (struct or *struct),
# ("[]", element type) for a slice.
STORAGE_WORKER = {"id": "int64", "created": "int64", "alias": "string", "secret": "[]byte"}
STORAGE_PROJECT = {
    "id": "int64", "priority": "int64", "name": "string", "clone_url": "string", "git_repo": "string",
    "version": "string", "motd": "string", "public": "bool", "hidden": "bool", "chain": "int64",
    # fields of later versions of storage.Project
    "paused": "bool", "assign_rate": "float64", "submit_rate": "float64",
}
ENVELOPE = {"ok": "bool", "message": "string"}
CREATE_WORKER_RESPONSE = {**ENVELOPE, "content": {"worker": STORAGE_WORKER}}
ASSIGN_TASK_RESPONSE = {
    **ENVELOPE, "rate_limit_delay": "float64",
    "content": {"task": {
        "id": "int64", "priority": "int16", "project": STORAGE_PROJECT, "assignee": "int64", "retries": "int16",
        "max_retries": "int64", "status": "int64", "recipe": "string", "max_assign_time": "int64",
        "assign_time": "int64", "verification_count": "int16",
    }},
}
RELEASE_TASK_RESPONSE = {**ENVELOPE, "content": {"updated": "bool"}}
PROJECT_SECRET_RESPONSE = {**ENVELOPE, "content": {"secret": "string"}}
PROJECT_LIST_RESPONSE = {**ENVELOPE, "content": {"projects": ("[]", STORAGE_PROJECT)}}
JSON_RESPONSE = {**ENVELOPE, "rate_limit_delay": "float64", "content": "interface{}"}

_RANGES = {"int16": (-(1 << 15), (1 << 15) - 1), "int64": (-(1 << 63), (1 << 63) - 1)}


def go_decode(go_type, value, where: str = "$"):
    """Decode ``value`` (parsed JSON) into ``go_type`` as encoding/json would; returns the Go value
    (dicts keyed by the struct's JSON names), raises AssertionError where Go returns an error."""
    if value is None:
        return None  # null: the zero value, no error
    if go_type == "interface{}":
        return value
    if isinstance(go_type, dict):
        assert isinstance(value, dict), f"{where}: cannot unmarshal {type(value).__name__} into a struct"
        out = {}
        for key, item in value.items():  # Go: case-insensitive match; the last matching key wins
            name = next((n for n in go_type if n.lower() == key.lower()), None)
            if name is not None:
                out[name] = go_decode(go_type[name], item, f"{where}.{key}")
        return out
    if isinstance(go_type, tuple):
        assert isinstance(value, list), f"{where}: cannot unmarshal {type(value).__name__} into a slice"
        return [go_decode(go_type[1], item, f"{where}[{i}]") for i, item in enumerate(value)]
    if go_type == "bool":
        assert isinstance(value, bool), f"{where}: {value!r} into bool"
    elif go_type == "string":
        assert isinstance(value, str), f"{where}: {value!r} into string"
    elif go_type in _RANGES:
        lo, hi = _RANGES[go_type]
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: {value!r} into {go_type}"
        assert lo <= value <= hi, f"{where}: {value} overflows {go_type}"
    elif go_type == "float64":
        assert isinstance(value, int | float) and not isinstance(value, bool), f"{where}: {value!r} into float64"
    elif go_type == "[]byte":
        assert isinstance(value, str), f"{where}: {value!r} into []byte"
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise AssertionError(f"{where}: {value!r} is not base64 ({exc})") from None
    else:
        raise AssertionError(f"unknown Go type {go_type}")
    return value


def go_json(*pairs: tuple[str, object]) -> bytes:
    """What encoding/json.Marshal writes for a struct: its fields in order, compact."""
    return ("{" + ",".join(f"{json.dumps(k)}:{json.dumps(v, ensure_ascii=False)}" for k, v in pairs) + "}").encode()


class GoClient:
    """The requests of client.go's TaskTrackerClient, as bytes on the wire."""

    def __init__(self, base: str) -> None:
        self.http = Api(base).http
        self.base = base
        self.worker: dict | None = None

    def set_worker(self, worker: dict) -> None:
        self.worker = worker

    def _headers(self) -> dict:
        headers = dict(GO_HEADERS)
        if self.worker is not None:
            headers["X-Worker-Id"] = str(self.worker["id"])
            headers["X-Secret"] = base64.b64encode(self.worker["secret"]).decode()
        return headers

    def get(self, path: str, response_struct: dict) -> tuple[int, dict]:
        r = self.http.get(self.base + path, headers=self._headers(), timeout=30)
        return r.status_code, go_decode(response_struct, json.loads(r.content))

    def post(self, path: str, body: bytes, response_struct: dict) -> tuple[int, dict]:
        r = self.http.post(self.base + path, data=body, headers=self._headers(), timeout=30)
        assert "Content-Type" not in r.request.headers  # as Go's http.NewRequest sends it
        return r.status_code, go_decode(response_struct, json.loads(r.content))

    # --- client.go's methods ------------------------------------------------------------------
    def make_worker(self, alias: str) -> tuple[int, dict]:
        return self.post("/worker/create", go_json(("alias", alias)), CREATE_WORKER_RESPONSE)

    def fetch_task(self, project: int) -> tuple[int, dict]:
        return self.get(f"/task/get/{project}", ASSIGN_TASK_RESPONSE)

    def release_task(self, task_id: int, result: int = 0, verification: int = 0) -> tuple[int, dict]:
        body = go_json(("task_id", task_id), ("result", result), ("verification", verification))
        return self.post("/task/release", body, RELEASE_TASK_RESPONSE)

    def submit_task(self, project: int, recipe: str, **fields) -> tuple[int, dict]:
        body = go_json(("project", project), ("max_retries", fields.get("max_retries", 0)), ("recipe", recipe),
                       ("priority", fields.get("priority", 0)), ("max_assign_time", fields.get("max_assign_time", 0)),
                       ("hash_u64", fields.get("hash_u64", 0)), ("unique_string", fields.get("unique_string", "")),
                       ("verification_count", fields.get("verification_count", 0)))
        return self.post("/task/submit", body, ASSIGN_TASK_RESPONSE)  # SubmitTask decodes into this struct

    def get_project_secret(self, project: int) -> tuple[int, dict]:
        return self.get(f"/project/secret/{project}", PROJECT_SECRET_RESPONSE)

    def get_project_list(self) -> tuple[int, dict]:
        return self.get("/project/list", PROJECT_LIST_RESPONSE)

    def request_access(self, project: int, assign: bool, submit: bool) -> tuple[int, dict]:
        body = go_json(("assign", assign), ("submit", submit), ("project", project))
        return self.post("/project/request_access", body, JSON_RESPONSE)

    def log(self, level: str, message: str) -> tuple[int, dict]:
        body = go_json(("scope", LOG_SCOPE), ("Message", message), ("timestamp", int(time.time())))
        return self.post(f"/log/{level}", body, JSON_RESPONSE)


def worker_of(answer: dict) -> dict:
    """client.go's MakeWorker: a Worker from the decoded answer."""
    w = answer["content"]["worker"]
    return {"id": w["id"], "alias": w["alias"], "secret": w["secret"]}


@pytest.fixture
def go(system) -> GoClient:
    return GoClient(system.url)



def _accepted(go: GoClient, admin, pid: int) -> None:
    status, answer = go.request_access(pid, assign=True, submit=False)
    assert (status, answer["ok"]) == (200, True), answer
    r = admin.post(f"/project/accept_request/{pid}/{go.worker['id']}")
    assert r.status_code == 200, r.text


def test_make_worker(go):
    status, answer = go.make_worker("test")
    assert status == 200 and answer["ok"] is True
    w = worker_of(answer)
    assert w["alias"] == "test" and len(w["secret"]) == 32 and w["id"] >= 1


def test_fetch_task_no_task_available(go):
    go.set_worker(worker_of(go.make_worker("test")[1]))
    status, answer = go.fetch_task(89988)  # decodes (the Go test asks only for err == nil)
    assert status == 404 and answer["ok"] is False and answer["message"]


def test_fetch_task(go, admin, feeder):
    pid, worker = feeder
    go.set_worker(worker_of(go.make_worker("test")[1]))
    assert worker.post("/task/submit", raw=go_json(("project", pid), ("max_retries", 0), ("recipe", "   "),
                                                   ("priority", 0), ("max_assign_time", 0), ("hash_u64", 0),
                                                   ("unique_string", ""), ("verification_count", 0))).ok
    _accepted(go, admin, pid)
    status, answer = go.fetch_task(pid)
    assert status == 200 and answer["ok"] is True
    task = answer["content"]["task"]
    assert task is not None and task["recipe"] == "   " and task["project"]["id"] == pid
    assert task["assignee"] == go.worker["id"]


def test_release_task(go, admin, feeder):
    pid, worker = feeder
    go.set_worker(worker_of(go.make_worker("test")[1]))
    assert worker.post("/task/submit", {"project": pid, "recipe": "   "}).ok
    _accepted(go, admin, pid)
    task = go.fetch_task(pid)[1]["content"]["task"]
    status, answer = go.release_task(task["id"], result=0)
    assert status == 200 and answer["ok"] is True and answer["content"]["updated"] is True


def test_submit_task_and_its_duplicate(go, feeder, system):
    pid, worker = feeder
    go.set_worker({"id": worker.id, "alias": "feeder", "secret": base64.b64decode(worker.secret)})
    status, answer = go.submit_task(pid, "from go", unique_string="go-1", max_retries=2)
    assert status == 200 and answer["ok"] is True
    assert system.sql("SELECT recipe, max_retries, verification_count FROM task WHERE project = %s",
                      pid) == [("from go", 2, 1)]
    status, answer = go.submit_task(pid, "again", unique_string="go-1")
    assert status == 409 and answer["ok"] is False


def test_project_secret_and_list(go, admin, feeder):
    pid, _ = feeder
    go.set_worker(worker_of(go.make_worker("test")[1]))
    _accepted(go, admin, pid)
    assert admin.post(f"/project/secret/{pid}", {"secret": "s3cr3t"}).status_code == 200
    status, answer = go.get_project_secret(pid)
    assert (status, answer["content"]["secret"]) == (200, "s3cr3t")
    status, answer = go.get_project_list()
    assert status == 200 and pid in [p["id"] for p in answer["content"]["projects"]]


@pytest.mark.parametrize("level, stored_level", [("error", 3), ("warn", 4), ("trace", 7)])
def test_log_with_its_capitalised_message_field(go, system, level, stored_level):
    go.set_worker(worker_of(go.make_worker("logger")[1]))
    message = f"go client says {level} {time.time_ns()}"
    status, answer = go.log(level, message)
    assert (status, answer["ok"]) == (200, True), answer
    rows = system.sql("SELECT level, data FROM log_entry WHERE message = %s", message)
    assert len(rows) == 1 and rows[0][0] == stored_level
    assert json.loads(rows[0][1]) == {"scope": LOG_SCOPE, "worker": go.worker["id"]}


def test_log_at_info_posts_to_a_route_neither_server_has(go):
    """client.go maps INFO to "/log/panic", which the original server never routed either (its
    404 was plain text, a decode error for the client). Here the 404 is JSON, so the client's
    Log returns the server's message as its error. Listed in docs/API.md's differences."""
    go.set_worker(worker_of(go.make_worker("logger")[1]))
    status, answer = go.log("panic", "info from go")
    assert status == 404 and answer["ok"] is False and answer["message"] == "Not found"
