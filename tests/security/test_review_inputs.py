"""Findings 7–10 of the adversarial review (issue "Security: close what an adversarial review found"),
each attack performed as the review described it, end to end through the real gateway.

7. Unbounded text: free-text fields are limited in characters (contract §1.1), `after` to 256 (§6.7).
8. Log forging: control characters of a worker's log are escaped in the service log line (§6.6).
9. Webhook replay: a delivery id already applied to a project within 7 days changes nothing (§6.7).
10. Rates: 0 or 0.001 … 1,000,000 (§6.4); no reply ever carries Infinity or NaN.

Every refusal is checked twice: the contract's answer (status, JSON envelope, the field named), and
that the database did not change (``unchanged``, plus the webhook_delivery table, which it does not
fingerprint).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import falcon
import pytest
import requests

from tests.harness import Api
from tests.security.util import MIB, assert_error, assert_ok, sql, uname, unchanged

EMOJI = "\U0001F600"  # one character (code point), four UTF-8 bytes, two UTF-16 units


def strict_json(text: str):
    """The body as a strict JSON parser sees it: Infinity, -Infinity and NaN are not JSON."""
    def refuse(name):
        raise AssertionError(f"non-JSON constant {name} in a reply: {text[:300]}")
    return json.loads(text, parse_constant=refuse)


# --- 7. unbounded text ------------------------------------------------------------------------------

# (who, route, body builder, field, max characters)
LIMITED = [
    ("admin", "/project/create", lambda ctx, s: {"name": s}, "name", 256),
    ("admin", "/project/create", lambda ctx, s: {"name": uname(), "clone_url": s}, "clone_url", 2048),
    ("admin", "/project/create", lambda ctx, s: {"name": uname(), "git_repo": s}, "git_repo", 512),
    ("admin", "/project/create", lambda ctx, s: {"name": uname(), "version": s}, "version", 256),
    ("admin", "/project/create", lambda ctx, s: {"name": uname(), "motd": s}, "motd", 4096),
    ("admin", "/project/update/{pid}", lambda ctx, s: {"name": s}, "name", 256),
    ("admin", "/project/update/{pid}", lambda ctx, s: {"clone_url": s}, "clone_url", 2048),
    ("admin", "/project/update/{pid}", lambda ctx, s: {"git_repo": s}, "git_repo", 512),
    ("admin", "/project/update/{pid}", lambda ctx, s: {"version": s}, "version", 256),
    ("admin", "/project/update/{pid}", lambda ctx, s: {"motd": s}, "motd", 4096),
    ("admin", "/project/secret/{pid}", lambda ctx, s: {"secret": s}, "secret", 65536),
    ("admin", "/project/webhook_secret/{pid}", lambda ctx, s: {"webhook_secret": s}, "webhook_secret", 1024),
    ("anonymous", "/worker/create", lambda ctx, s: {"alias": s}, "alias", 256),
    ("worker", "/worker/update", lambda ctx, s: {"alias": s}, "alias", 256),
    *[("worker", f"/log/{level}", lambda ctx, s: {"scope": s, "message": "m", "timestamp": 1}, "scope", 256)
      for level in ("trace", "info", "warn", "error")],
    *[("worker", f"/log/{level}", lambda ctx, s: {"scope": "s", "message": s, "timestamp": 1}, "message", 65536)
      for level in ("trace", "info", "warn", "error")],
]


class Ctx:
    def __init__(self, api: Api, admin: Api, worker: Api, pid: int) -> None:
        self.clients = {"anonymous": api, "admin": admin, "worker": worker}
        self.pid = pid


@pytest.fixture
def ctx(api, admin, make_project) -> Ctx:
    return Ctx(api, admin, api.new_worker("limits"), make_project(version="v0", motd="m0"))


def _stored_text(system, route: str, field: str, pid: int, worker: int, value: str) -> bool:
    """Whether ``value`` now sits where the route stores ``field``."""
    if route.startswith("/log/"):
        column = "message" if field == "message" else "data"
        rows = sql(system, f"SELECT {column} FROM log_entry WHERE data LIKE %s", f'%"worker": {worker}}}%')
        return any((row[0] == value) if field == "message" else json.loads(row[0])["scope"] == value for row in rows)
    if field == "alias":
        return sql(system, "SELECT count(*) FROM worker WHERE alias = %s", value)[0][0] > 0
    if route == "/project/create":
        return sql(system, f"SELECT count(*) FROM project WHERE {field} = %s", value)[0][0] > 0
    return sql(system, f"SELECT {field} FROM project WHERE id = %s", pid)[0][0] == value


@pytest.mark.parametrize("case", LIMITED, ids=[f"{c[1]}:{c[3]}" for c in LIMITED])
def test_text_over_its_limit_400_naming_the_field_nothing_stored(system, ctx, case):
    who, route, make, field, limit = case
    client, path = ctx.clients[who], route.format(pid=ctx.pid)
    worker = ctx.clients["worker"].id
    over = uuid.uuid4().hex + "x" * (limit + 1 - 32)
    with unchanged(system, ctx.pid):
        body = assert_error(client.post(path, make(ctx, over)), 400, f"'{field}'", f"at most {limit} characters")
    assert body["message"] == f"invalid field '{field}': must be at most {limit} characters", body
    # Limits count characters, not bytes: the limit in four-byte characters is accepted and stored whole.
    at_limit = uuid.uuid4().hex + EMOJI * (limit - 32)
    assert len(at_limit) == limit
    assert_ok(client.post(path, make(ctx, at_limit)))
    assert _stored_text(system, route, field, ctx.pid, worker, at_limit)


def test_webhook_secret_shorter_than_8_characters_400(system, ctx):
    with unchanged(system, ctx.pid):
        for short in ("", "1234567", EMOJI * 7):
            assert_error(ctx.clients["admin"].post(f"/project/webhook_secret/{ctx.pid}", {"webhook_secret": short}),
                         400, "'webhook_secret'", "at least 8 characters")
    assert_ok(ctx.clients["admin"].post(f"/project/webhook_secret/{ctx.pid}", {"webhook_secret": EMOJI * 8}))


def test_reported_attack_two_12_mb_log_entries_refused(system, api, ctx):
    """The review: a worker stored two 12 MB log entries; an anonymous POST /logs then returned 25 MB."""
    worker = ctx.clients["worker"]
    since = int(time.time()) - 5
    huge = "A" * (12 * MIB)
    with unchanged(system, ctx.pid):
        for _ in range(2):
            r = worker.post("/log/error", {"scope": "s", "message": huge, "timestamp": int(time.time())})
            assert_error(r, 400, "'message'", "at most 65536 characters")
            assert len(r.content) < 1000  # the refusal does not echo the text
        r = worker.post("/log/info", {"scope": "S" * (12 * MIB), "message": "m", "timestamp": int(time.time())})
        assert_error(r, 400, "'scope'")
    r = api.post("/logs", {"level": 3, "since": since})
    assert_ok(r)
    assert len(r.content) < MIB, len(r.content)  # nothing of the 12 MB got in
    assert sql(system, "SELECT count(*) FROM log_entry WHERE length(message) > 65536 OR length(data) > 10000") == [
        (0,)]


def test_reported_attack_15_mib_after_refused_and_project_list_stays_small(system, api, admin, make_project):
    """The review: a signed push with a 15 MiB ``after`` made every anonymous /project/list 15.7 MB."""
    repo = "owner/" + uuid.uuid4().hex
    pid = make_project(git_repo=repo, version="v0", public=True)
    secret = webhook_secret(admin, pid)
    raw = push(repo, "f" * (15 * MIB))
    with unchanged(system, pid):
        assert_error(hook(api, raw, secret), 400, "'after'", "at most 256 characters")
    assert version(api, pid) == "v0"
    assert len(api.get("/project/list").content) < 5 * MIB
    # 256 characters (four-byte ones) is the limit, and is applied.
    assert_ok(hook(api, push(repo, EMOJI * 256), secret))
    assert version(api, pid) == EMOJI * 256
    with unchanged(system, pid):
        assert_error(hook(api, push(repo, EMOJI * 257), secret), 400, "'after'")
    assert version(api, pid) == EMOJI * 256


# --- 8. log forging ---------------------------------------------------------------------------------

FORGERIES = {
    "newline": "line one\nERROR gateway: forged-{tag} admin logged in",
    "crlf": "line one\r\nINFO tracker.serve: forged-{tag} service stopped",
    "carriage-return": "innocent\rWARNING worker: forged-{tag} overwrite",
    "ansi": "\x1b[2J\x1b[1;1Hforged-{tag} \x1b[31mred\x1b[0m",
    "separators": "a\u2028forged-{tag}\u2029b\x85c\x0bd\x0ce",
    "bidi": "forged-{tag} \u202egnp.exe\u202c",
}


def _log_since(system, offset: int) -> bytes:
    with open(system.log_path, "rb") as log:
        log.seek(offset)
        return log.read()


def _log_lines_with(system, offset: int, tag: str, deadline: float) -> list[bytes]:
    """Service-log lines (raw bytes) written since ``offset`` that mention ``tag``, once all have arrived."""
    while True:
        lines = [line for line in _log_since(system, offset).split(b"\n") if tag.encode() in line]
        if len(lines) >= len(FORGERIES) * 2 or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


def test_worker_cannot_forge_service_log_lines(system, api):
    worker = api.new_worker("forger")
    offset = system.log_path.stat().st_size
    tag = uuid.uuid4().hex
    stamp = int(time.time())
    sent = []
    for level in ("error", "info"):
        for name, template in FORGERIES.items():
            message = f"{tag} " + template.format(tag=tag)
            scope = f"scope\n{tag}-ERROR forged-{tag} scope\x1b[0m"
            assert_ok(worker.post(f"/log/{level}", {"scope": scope, "message": message, "timestamp": stamp}))
            sent.append((level, name, scope, message))
    lines = _log_lines_with(system, offset, tag, time.monotonic() + 20)
    # One line per entry, each the worker's own, carrying the whole forgery escaped.
    assert len(lines) == len(sent), lines
    mark = f"worker={worker.id} scope=".encode()
    for line in lines:
        assert mark in line, line
        assert line.index(mark) < line.index(b"forged-"), line  # nothing before the worker's own prefix
        assert b"\x1b" not in line and b"\r" not in line, line
    assert b"\x1b" not in _log_since(system, offset)  # no raw ESC written to the service log at all
    joined = b"".join(lines)
    for escaped in (b"line one\\nERROR gateway: forged-", b"\\r\\nINFO", b"\\x1b[2J", b"\\u2028", b"\\u202e",
                    b"\\x85", b"\\x0b", b"scope\\n" + tag.encode()):
        assert escaped in joined, escaped
    # The stored entries keep the text exactly as sent.
    for level, number in (("error", 3), ("info", 5)):
        logs = assert_ok(api.post("/logs", {"level": number, "since": stamp - 1}))["content"]["logs"]
        mine = {e["message"] for e in logs if e["message"].startswith(tag)}
        assert mine == {m for lv, _, _, m in sent if lv == level}
        scopes = {json.loads(e["data"])["scope"] for e in logs if e["message"].startswith(tag)}
        assert scopes == {sent[0][2]}


# --- 9. webhook replay ------------------------------------------------------------------------------

HOOK = "/git/receivehook"
REPLAYED = {"ok": False, "message": "ignored: delivery already applied"}
DELIVERY_HEADERS = {"github": "X-GitHub-Delivery", "gitea": "X-Gitea-Delivery", "gogs": "X-Gogs-Delivery"}


def webhook_secret(admin: Api, pid: int) -> str:
    return assert_ok(admin.get(f"/project/webhook_secret/{pid}"))["content"]["webhook_secret"]


def push(repo: str, after: str) -> bytes:
    return json.dumps({"ref": "refs/heads/master", "after": after, "repository": {"full_name": repo}}).encode()


def hook(api: Api, raw: bytes, secret: str, delivery: str | None = None, header: str = "X-GitHub-Delivery"):
    headers = {"Content-Type": "application/json",
               "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()}
    if delivery is not None:
        headers[header] = delivery
    return api.post(HOOK, raw=raw, headers=headers)


def version(api: Api, pid: int) -> str:
    return assert_ok(api.get(f"/project/get/{pid}"))["content"]["project"]["version"]


def deliveries(system) -> list[tuple]:
    return sql(system, "SELECT project_id, delivery, received FROM webhook_delivery ORDER BY project_id, delivery")


@pytest.fixture
def repo_project(admin, make_project):
    def make(repo: str | None = None) -> tuple[int, str, str]:
        repo = repo or "owner/" + uuid.uuid4().hex[:12]
        pid = make_project(git_repo=repo, version="v0", public=True)
        return pid, repo, webhook_secret(admin, pid)

    return make


@pytest.mark.parametrize("provider", sorted(DELIVERY_HEADERS))
def test_captured_push_replayed_after_a_newer_one_changes_nothing(system, api, repo_project, provider):
    """The review: a captured signed push replayed later set ``version`` back."""
    pid, repo, secret = repo_project()
    header = DELIVERY_HEADERS[provider]
    old_id, new_id = str(uuid.uuid4()), str(uuid.uuid4())
    captured = push(repo, "1111111111111111111111111111111111111111")
    assert hook(api, captured, secret, old_id, header).json() == {"ok": True}
    assert hook(api, push(repo, "2222222222222222222222222222222222222222"), secret, new_id, header).json() == {
        "ok": True}
    assert version(api, pid) == "2" * 40
    before = deliveries(system)
    assert {(p, d) for p, d, _ in before} >= {(pid, old_id), (pid, new_id)}
    with unchanged(system, pid):
        for _ in range(3):
            r = hook(api, captured, secret, old_id, header)
            assert r.status_code == 200 and r.json() == REPLAYED, r.text
    assert version(api, pid) == "2" * 40
    assert deliveries(system) == before


def test_delivery_id_is_the_first_present_header(system, api, repo_project):
    """Gitea sends all three names with one value; a replay under another provider's name is the same id."""
    pid, repo, secret = repo_project()
    delivery = str(uuid.uuid4())
    raw = push(repo, "gitea-1")
    r = api.post(HOOK, raw=raw, headers={
        "X-Gitea-Signature": hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest(),
        "X-GitHub-Delivery": delivery, "X-Gitea-Delivery": delivery, "X-Gogs-Delivery": delivery})
    assert r.json() == {"ok": True}
    assert_ok(hook(api, push(repo, "later"), secret, str(uuid.uuid4())))
    with unchanged(system, pid):
        assert hook(api, raw, secret, delivery, "X-Gogs-Delivery").json() == REPLAYED
    assert version(api, pid) == "later"


def test_same_delivery_to_two_projects_sharing_the_repository_applies_to_each_once(system, api, admin,
                                                                                     repo_project):
    a, repo, secret_a = repo_project()
    b, _, secret_b = repo_project(repo=repo)
    delivery = str(uuid.uuid4())
    # Separate secrets: the id applied to A is still new to B.
    assert hook(api, push(repo, "for-a"), secret_a, delivery).json() == {"ok": True}
    assert (version(api, a), version(api, b)) == ("for-a", "v0")
    assert hook(api, push(repo, "for-b"), secret_b, delivery).json() == {"ok": True}
    assert (version(api, a), version(api, b)) == ("for-a", "for-b")
    with unchanged(system, a, b):
        assert hook(api, push(repo, "for-a"), secret_a, delivery).json() == REPLAYED
        assert hook(api, push(repo, "for-b"), secret_b, delivery).json() == REPLAYED
    # One shared secret: one push names both projects, and is applied to each once.
    assert_ok(admin.post(f"/project/webhook_secret/{b}", {"webhook_secret": secret_a}))
    both = str(uuid.uuid4())
    assert hook(api, push(repo, "both"), secret_a, both).json() == {"ok": True}
    assert (version(api, a), version(api, b)) == ("both", "both")
    with unchanged(system, a, b):
        assert hook(api, push(repo, "both"), secret_a, both).json() == REPLAYED
    assert sql(system, "SELECT project_id FROM webhook_delivery WHERE delivery = %s ORDER BY 1", both) == [(a,), (b,)]


def test_replay_applies_only_to_the_projects_that_have_not_seen_it(system, api, admin, repo_project):
    a, repo, secret = repo_project()
    first = str(uuid.uuid4())
    captured = push(repo, "first")
    assert_ok(hook(api, captured, secret, first))
    assert_ok(hook(api, push(repo, "second"), secret, str(uuid.uuid4())))
    b, _, _ = repo_project(repo=repo)  # a project added later, signed by the same secret
    assert_ok(admin.post(f"/project/webhook_secret/{b}", {"webhook_secret": secret}))
    assert hook(api, captured, secret, first).json() == {"ok": True}
    assert (version(api, a), version(api, b)) == ("second", "first")


def test_push_without_delivery_id_is_applied_as_before(system, api, repo_project):
    pid, repo, secret = repo_project()
    raw = push(repo, "no-id")
    assert hook(api, raw, secret).json() == {"ok": True}
    assert_ok(hook(api, push(repo, "other"), secret))
    assert hook(api, raw, secret).json() == {"ok": True}
    assert hook(api, raw, secret, "").json() == {"ok": True}  # an empty header counts as absent
    assert version(api, pid) == "no-id"
    assert sql(system, "SELECT count(*) FROM webhook_delivery WHERE project_id = %s", pid) == [(0,)]


def test_delivery_remembered_7_days_then_forgotten_and_pruned(system, api, repo_project):
    pid, repo, secret = repo_project()
    delivery = str(uuid.uuid4())
    captured = push(repo, "old")
    assert_ok(hook(api, captured, secret, delivery))
    assert_ok(hook(api, push(repo, "new"), secret, str(uuid.uuid4())))
    # Six days later it is still a replay.
    sql(system, "UPDATE webhook_delivery SET received = now() - interval '6 days' WHERE delivery = %s", delivery)
    assert hook(api, captured, secret, delivery).json() == REPLAYED
    assert version(api, pid) == "new"
    # Eight days later it is forgotten: applied again, remembered afresh.
    sql(system, "UPDATE webhook_delivery SET received = now() - interval '8 days' WHERE delivery = %s", delivery)
    assert hook(api, captured, secret, delivery).json() == {"ok": True}
    assert version(api, pid) == "old"
    assert sql(system, "SELECT received > now() - interval '1 minute' FROM webhook_delivery WHERE delivery = %s",
               delivery) == [(True,)]
    # Stale rows of other deliveries are pruned by the next delivery-carrying push.
    stale = [f"stale-{uuid.uuid4()}" for _ in range(3)]
    for name in stale:
        sql(system, "INSERT INTO webhook_delivery (project_id, delivery, received)"
                    " VALUES (%s, %s, now() - interval '8 days')", pid, name)
    assert_ok(hook(api, push(repo, "prune"), secret, str(uuid.uuid4())))
    assert sql(system, "SELECT count(*) FROM webhook_delivery WHERE delivery = ANY(%s)", stale) == [(0,)]
    assert sql(system, "SELECT count(*) FROM webhook_delivery WHERE received < now() - interval '7 days'") == [(0,)]


def test_concurrent_copies_of_one_delivery_apply_once(system, api, repo_project):
    pid, repo, secret = repo_project()
    delivery = str(uuid.uuid4())
    raw = push(repo, "race")

    def send(_):
        return Api(api.base).post(HOOK, raw=raw, headers={
            "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest(),
            "X-GitHub-Delivery": delivery}).json()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(8)))
    assert answers.count({"ok": True}) == 1, answers
    assert answers.count(REPLAYED) == 7, answers
    assert version(api, pid) == "race"


@pytest.mark.parametrize("value", ["d" * 129, "has space", "tab\tinside", "é-non-ascii"])
def test_malformed_delivery_id_400_naming_the_header(system, api, repo_project, value):
    pid, repo, secret = repo_project()
    with unchanged(system, pid):
        r = hook(api, push(repo, "x"), secret, value.encode("utf-8").decode("latin-1"))
        assert_error(r, 400, "'X-GitHub-Delivery'", "128")
    assert version(api, pid) == "v0"
    assert sql(system, "SELECT count(*) FROM webhook_delivery WHERE project_id = %s", pid) == [(0,)]
    assert_ok(hook(api, push(repo, "x"), secret, "d" * 128))  # the longest accepted


def test_refused_pushes_record_no_delivery(system, api, repo_project):
    """A delivery is remembered only with its effect: a 403, an ignored branch or a bad ``after`` leave none."""
    pid, repo, secret = repo_project()
    delivery = str(uuid.uuid4())
    with unchanged(system, pid):
        assert_error(hook(api, push(repo, "x"), "wrong-secret", delivery), 403)
        raw = json.dumps({"ref": "refs/heads/feature", "after": "x", "repository": {"full_name": repo}}).encode()
        assert hook(api, raw, secret, delivery).json() == {"ok": False, "message": "ignored: not the default branch"}
        assert_error(hook(api, push(repo, ""), secret, delivery), 400, "'after'")
    assert sql(system, "SELECT count(*) FROM webhook_delivery WHERE delivery = %s", delivery) == [(0,)]
    assert hook(api, push(repo, "x"), secret, delivery).json() == {"ok": True}


# --- 10. rates ----------------------------------------------------------------------------------------

BAD_RATES = [5e-324, 1e-9, 0.0009999, -0.001, -1, 1_000_000.5, 1e7, 1e308]


@pytest.mark.parametrize("field", ["assign_rate", "submit_rate"])
def test_rate_outside_0_or_0001_to_1e6_refused_on_create_and_update(system, admin, api, make_project, grant, field):
    """The review: ``assign_rate`` 5e-324 gave a 429 with ``"rate_limit_delay": Infinity`` and a locked project."""
    pid = make_project(public=True, **{field: 1})
    worker = api.new_worker("rates")
    grant(worker, pid)
    with unchanged(system, pid):
        for rate in BAD_RATES:
            body = assert_error(admin.post("/project/create", {"name": uname(), field: rate}), 400, f"'{field}'")
            assert "0.001" in body["message"] and "1000000" in body["message"], body
            assert_error(admin.post(f"/project/update/{pid}", {field: rate}), 400, f"'{field}'")
    # The project keeps working under its old rate of 1/s: a submit and a get pass, the next one of the
    # limited kind within the second is a 429 with a finite delay of at most a second.
    assert_ok(worker.post("/task/submit", {"project": pid, "recipe": "a"}))
    got = assert_ok(worker.get(f"/task/get/{pid}"))
    assert got["content"]["task"]["project"][field] == 1
    if field == "submit_rate":
        r = worker.post("/task/submit", {"project": pid, "recipe": "b"})
    else:
        r = worker.get(f"/task/get/{pid}")
    assert r.status_code in (200, 429), r.text
    if r.status_code == 429:
        assert 0 < strict_json(r.text)["rate_limit_delay"] <= 1.05, r.text
    # The bounds themselves are accepted, and 0 means unlimited.
    for rate in (0.001, 1_000_000, 0):
        assert_ok(admin.post(f"/project/update/{pid}", {field: rate}))
        assert assert_ok(api.get(f"/project/get/{pid}"))["content"]["project"][field] == rate
    created = assert_ok(admin.post("/project/create", {"name": uname(), field: 0.001}))["content"]["id"]
    assert assert_ok(api.get(f"/project/get/{created}"))["content"]["project"][field] == 0.001


def test_project_stored_with_a_tiny_rate_before_the_fix_answers_finite_delays(system, api, make_project, grant):
    """A rate stored before the rule (straight into the database) is charged as 0.001/s: never Infinity."""
    pid = make_project(public=True)
    worker = api.new_worker("legacy")
    grant(worker, pid)
    sql(system, "UPDATE project SET assign_rate = 5e-324, submit_rate = 5e-324 WHERE id = %s", pid)
    assert_ok(worker.post("/task/submit", {"project": pid, "recipe": "a"}))
    r = worker.post("/task/submit", {"project": pid, "recipe": "b"})
    assert r.status_code == 429, r.text
    delay = strict_json(r.text)["rate_limit_delay"]
    assert math.isfinite(delay) and 990 < delay <= 1000, r.text
    assert_ok(worker.get(f"/task/get/{pid}"))
    r = worker.get(f"/task/get/{pid}")
    assert r.status_code == 429 and 990 < strict_json(r.text)["rate_limit_delay"] <= 1000, r.text
    for text in (api.get(f"/project/get/{pid}").text, api.get("/project/list").text):
        strict_json(text)
    assert sql(system, "SELECT count(*) FROM rate_limit WHERE project_id = %s"
                       " AND next_free = 'Infinity'::float8", pid) == [(0,)]


def test_limiter_left_infinite_by_the_old_attack_does_not_lock_the_project(system, api, make_project, grant):
    """A limiter row at +Infinity (what 5e-324 left behind) is not obeyed: the project hands out tasks again."""
    pid = make_project(public=True, assign_rate=1)
    worker = api.new_worker("locked")
    grant(worker, pid)
    assert_ok(worker.post("/task/submit", {"project": pid, "recipe": "a"}))
    sql(system, "INSERT INTO rate_limit (project_id, kind, next_free) VALUES (%s, 0, 'Infinity')"
                " ON CONFLICT (project_id, kind) DO UPDATE SET next_free = 'Infinity'", pid)
    r = worker.get(f"/task/get/{pid}")
    strict_json(r.text)
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    r = worker.get(f"/task/get/{pid}")  # the limiter works again: 1 task per second
    assert r.status_code in (200, 429), r.text
    if r.status_code == 429:
        assert 0 < strict_json(r.text)["rate_limit_delay"] <= 1.05


def test_a_reply_carrying_a_non_finite_number_never_leaves_as_invalid_json():
    """The gateway's one exit for JSON answers (gateway.routes.send) refuses Infinity and NaN: 500, strict JSON."""
    from gateway.routes import send

    for bad in (float("inf"), float("-inf"), float("nan")):
        resp = falcon.Response()
        send(resp, 429, {"ok": False, "message": "Too many requests", "rate_limit_delay": bad})
        assert resp.status in (500, "500", falcon.HTTP_500), resp.status
        assert strict_json(resp.text) == {"ok": False, "message": "Internal error"}
    resp = falcon.Response()
    send(resp, 429, {"ok": False, "message": "Too many requests", "rate_limit_delay": 0.5})
    assert resp.status == 429 and strict_json(resp.text)["rate_limit_delay"] == 0.5


def test_openapi_document_carries_the_new_rules(api):
    doc = requests.get(api.base + "/openapi.json", timeout=30).json()
    schemas = doc["components"]["schemas"]
    expected = {"name": 256, "clone_url": 2048, "git_repo": 512, "version": 256, "motd": 4096}
    for model in ("CreateProject", "UpdateProject"):
        props = schemas[model]["properties"]
        assert {f: props[f].get("maxLength") for f in expected} == expected, model
        for rate in ("assign_rate", "submit_rate"):
            assert (props[rate]["minimum"], props[rate]["maximum"]) == (0, 1_000_000), props[rate]
            assert props[rate]["not"]["maximum"] == 0.001 and props[rate]["not"]["exclusiveMaximum"] is True
    assert schemas["SetSecret"]["properties"]["secret"]["maxLength"] == 65536
    hook_secret = schemas["SetWebhookSecret"]["properties"]["webhook_secret"]
    assert (hook_secret["minLength"], hook_secret["maxLength"]) == (8, 1024)
    assert schemas["CreateWorker"]["properties"]["alias"]["maxLength"] == 256
    assert schemas["UpdateWorker"]["properties"]["alias"]["maxLength"] == 256
    log = schemas["WorkerLog"]["properties"]
    assert (log["scope"]["maxLength"], log["message"]["maxLength"]) == (256, 65536)
    assert schemas["PushPayload"]["properties"]["after"]["maxLength"] == 256
    op = doc["paths"][HOOK]["post"]
    headers = {p["name"] for p in op["parameters"] if p["in"] == "header"}
    assert set(DELIVERY_HEADERS.values()) <= headers
    declined = op["responses"]["200"]["content"]["application/json"]["schema"]["oneOf"][1]
    assert "ignored: delivery already applied" in declined["properties"]["message"]["enum"]
