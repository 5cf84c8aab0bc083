"""End-to-end tests of the git webhook `POST /git/receivehook` (contract §6.7).

Pushes are signed exactly as GitHub, Gitea and Gogs sign them: HMAC-SHA256 of the raw body keyed
with the project's webhook secret. The version is read back through the API (`/project/get`, and a
worker's `/task/get`); the secret is read through `/project/webhook_secret` when that route exists,
else from the database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

import pytest

from tests.harness import Api

HOOK = "/git/receivehook"
IGNORED = "ignored: not the default branch"
PROVIDERS = {  # header, prefix the provider itself sends
    "github": ("X-Hub-Signature-256", "sha256="),
    "gitea": ("X-Gitea-Signature", ""),
    "gogs": ("X-Gogs-Signature", ""),
}


# --- helpers -----------------------------------------------------------------------------------
def envelope(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert isinstance(body, dict) and isinstance(body.get("ok"), bool), body
    if not body["ok"]:
        assert isinstance(body.get("message"), str) and body["message"], body
    return body


def refused(r, status: int, *words: str) -> dict:
    body = envelope(r, status)
    assert body["ok"] is False, body
    for word in words:
        assert word in body["message"], body["message"]
    return body


def new_repo() -> str:
    return f"owner/repo-{uuid.uuid4().hex[:12]}"


def webhook_secret(admin: Api, pid: int) -> str:
    """The project's webhook secret, as its SECRET role reads it (contract §6.4)."""
    r = admin.get(f"/project/webhook_secret/{pid}")
    assert r.status_code == 200, r.text
    return r.json()["content"]["webhook_secret"]


def sign(secret: str, raw: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), raw, hashlib.sha256).hexdigest()


def push_body(repo: str, ref: str | None = "refs/heads/master", after: object = "abc123", **repo_fields) -> bytes:
    body: dict = {"repository": {"full_name": repo, **repo_fields}, "before": "0" * 40}
    if ref is not None:
        body["ref"] = ref
    if after is not None:
        body["after"] = after
    return json.dumps(body).encode("utf-8")


def hook(api: Api, raw: bytes | str, headers: dict | None = None):
    return api.post(HOOK, raw=raw, headers={"Content-Type": "application/json", **(headers or {})})


def signed(api: Api, secret: str, raw: bytes, provider: str = "github", upper: bool = False, prefix: str | None = None):
    name, default_prefix = PROVIDERS[provider]
    digest = sign(secret, raw)
    value = (default_prefix if prefix is None else prefix) + (digest.upper() if upper else digest)
    return hook(api, raw, {name: value})


def version(api: Api, pid: int) -> str:
    r = api.get(f"/project/get/{pid}")
    return envelope(r, 200)["content"]["project"]["version"]


@pytest.fixture
def repo_project(make_project, admin):
    """A fresh project bound to a fresh repository: (id, repo, webhook secret)."""

    def make(repo: str | None = None, **fields) -> tuple[int, str, str]:
        repo = repo or new_repo()
        pid = make_project(git_repo=repo, version="v0", public=True, **fields)
        return pid, repo, webhook_secret(admin, pid)

    return make


# --- a correctly signed push -----------------------------------------------------------------
@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_signed_push_sets_version(api, repo_project, provider):
    pid, repo, secret = repo_project()
    commit = "9fceb02d0ae598e95dc970b74767f19372d61af8"
    r = signed(api, secret, push_body(repo, after=commit), provider)
    assert envelope(r, 200) == {"ok": True}
    assert version(api, pid) == commit


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_uppercase_hex_is_accepted(api, repo_project, provider):
    pid, repo, secret = repo_project()
    assert envelope(signed(api, secret, push_body(repo, after="up"), provider, upper=True), 200)["ok"] is True
    assert version(api, pid) == "up"


@pytest.mark.parametrize("provider, prefix", [("gitea", "sha256="), ("gogs", "sha256="), ("github", ""),
                                              ("github", "SHA256=")])
def test_sha256_prefix_is_optional_on_every_header(api, repo_project, provider, prefix):
    pid, repo, secret = repo_project()
    assert envelope(signed(api, secret, push_body(repo, after="pre"), provider, prefix=prefix), 200)["ok"] is True
    assert version(api, pid) == "pre"


def test_signature_covers_the_raw_bytes(api, repo_project):
    """Whitespace, key order and non-ASCII text are signed as sent, not as re-serialised."""
    pid, repo, secret = repo_project()
    raw = ('{ "after" : "ünï",\n  "ref":"refs/heads/master",\t"repository": {"full_name": "' + repo + '"} }').encode()
    assert envelope(signed(api, secret, raw), 200)["ok"] is True
    assert version(api, pid) == "ünï"
    reserialised = json.dumps(json.loads(raw)).encode()
    r = hook(api, raw, {"X-Hub-Signature-256": "sha256=" + sign(secret, reserialised)})
    refused(r, 403, "Signature does not match")


def test_content_type_does_not_matter(api, repo_project):
    pid, repo, secret = repo_project()
    raw = push_body(repo, after="form")
    r = api.post(HOOK, raw=raw, headers={"Content-Type": "application/x-www-form-urlencoded",
                                         "X-Gitea-Signature": sign(secret, raw)})
    assert envelope(r, 200)["ok"] is True
    assert version(api, pid) == "form"


# --- step 1: signature header (401) ----------------------------------------------------------
def test_no_signature_header_is_401(api, repo_project):
    pid, repo, _ = repo_project()
    refused(hook(api, push_body(repo)), 401)
    assert version(api, pid) == "v0"


def test_sha1_signature_alone_is_401(api, repo_project):
    pid, repo, secret = repo_project()
    raw = push_body(repo)
    sha1 = hmac.new(secret.encode(), raw, hashlib.sha1).hexdigest()
    refused(hook(api, raw, {"X-Hub-Signature": "sha1=" + sha1}), 401)
    assert version(api, pid) == "v0"


def test_empty_signature_header_counts_as_absent(api, repo_project):
    pid, repo, secret = repo_project()
    raw = push_body(repo, after="fallthrough")
    refused(hook(api, raw, {"X-Hub-Signature-256": ""}), 401)
    # an empty header is skipped, so the next provider's header is used
    r = hook(api, raw, {"X-Hub-Signature-256": "", "X-Gogs-Signature": sign(secret, raw)})
    assert envelope(r, 200)["ok"] is True
    assert version(api, pid) == "fallthrough"


def test_missing_header_comes_before_body_errors(api):
    refused(hook(api, b"{not json"), 401)
    refused(hook(api, b"[]"), 401)
    refused(hook(api, b""), 401)


def test_header_precedence_github_then_gitea_then_gogs(api, repo_project):
    pid, repo, secret = repo_project()
    raw = push_body(repo, after="prec")
    good, bad = sign(secret, raw), "0" * 64
    refused(hook(api, raw, {"X-Hub-Signature-256": "sha256=" + bad, "X-Gitea-Signature": good}), 403)
    refused(hook(api, raw, {"X-Gitea-Signature": bad, "X-Gogs-Signature": good}), 403)
    assert version(api, pid) == "v0"
    r = hook(api, raw, {"X-Hub-Signature-256": "sha256=" + good, "X-Gitea-Signature": bad, "X-Gogs-Signature": bad})
    assert envelope(r, 200)["ok"] is True
    assert version(api, pid) == "prec"


def test_invalid_worker_headers_are_401_even_when_signed(api, repo_project):
    pid, repo, secret = repo_project()
    raw = push_body(repo, after="w")
    sig = {"X-Hub-Signature-256": "sha256=" + sign(secret, raw)}
    refused(hook(api, raw, {**sig, "X-Worker-ID": "1", "X-Secret": "not base64!"}), 401)
    worker = api.new_worker("hooker")
    refused(hook(api, raw, {**sig, "X-Worker-ID": str(worker.id), "X-Secret": "AAAA"}), 401)
    assert version(api, pid) == "v0"
    # valid worker headers change nothing: the signature authenticates
    assert envelope(hook(worker, raw, sig), 200)["ok"] is True
    assert version(api, pid) == "w"


# --- step 2: body (400) ----------------------------------------------------------------------
@pytest.mark.parametrize("raw", [
    b"{not json",
    b"[]",
    b'"a string"',
    b"42",
    b"",
    b"{}",
    b'{"repository": "owner/repo"}',
    b'{"repository": {}}',
    b'{"repository": {"full_name": null}}',
    b'{"repository": {"full_name": 5}}',
    b'{"repository": {"full_name": ""}}',
    b'{"repository": {"full_name": "a\\u0000b"}}',
    b'{"repository": {"full_name": "\\ud800"}}',
    b'{"repository": {"full_name": "x"}, "after": NaN}',
    b'{"repository": {"full_name": "caf\xe9"}}',  # Latin-1, not UTF-8
    b"\xff\xfe{\x00}\x00",  # UTF-16
    b"[" * 100_000 + b"]" * 100_000,
], ids=["invalid-json", "array", "string", "number", "empty", "no-repository", "repository-string",
        "no-full-name", "null-full-name", "int-full-name", "empty-full-name", "nul-full-name",
        "surrogate-full-name", "nan", "not-utf8", "utf16", "deep"])
def test_bad_body_is_400(api, raw):
    # a well-formed signature (of this very body, under some key): the header check passes
    r = hook(api, raw, {"X-Hub-Signature-256": "sha256=" + sign("any-secret", raw)})
    refused(r, 400)


def test_bad_body_message_names_the_field(api):
    raw = b'{"repository": {"name": "x"}}'
    refused(hook(api, raw, {"X-Gitea-Signature": sign("k", raw)}), 400, "repository.full_name")


# --- step 3: repository (404) ----------------------------------------------------------------
def test_unknown_repository_is_404(api, repo_project):
    repo_project()  # some other repository exists
    raw = push_body(new_repo())
    refused(hook(api, raw, {"X-Gitea-Signature": sign("whatever", raw)}), 404)


def test_unknown_repository_comes_before_signature_mismatch(api):
    raw = push_body(new_repo())
    refused(hook(api, raw, {"X-Gitea-Signature": "zz-not-hex"}), 404)


def test_project_without_git_repo_is_never_matched(api, make_project, admin):
    pid = make_project(version="v0")  # git_repo ""
    raw = push_body("", after="x")
    secret = webhook_secret(admin, pid)
    refused(hook(api, raw, {"X-Gitea-Signature": sign(secret, raw)}), 400, "full_name")
    assert version(admin, pid) == "v0"


def test_repository_name_is_case_insensitive(api, repo_project):
    pid, repo, secret = repo_project(repo=f"Owner/Repo-{uuid.uuid4().hex[:12]}")
    raw = push_body(repo.upper(), after="case1")
    assert envelope(signed(api, secret, raw, "gitea"), 200)["ok"] is True
    assert version(api, pid) == "case1"
    raw = push_body(repo.lower(), after="case2")
    assert envelope(signed(api, secret, raw, "gogs"), 200)["ok"] is True
    assert version(api, pid) == "case2"


# --- step 4: signature (403) -----------------------------------------------------------------
@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_wrong_signature_is_403_and_changes_nothing(api, repo_project, provider):
    pid, repo, secret = repo_project()
    raw = push_body(repo, after="evil")
    name, prefix = PROVIDERS[provider]
    refused(hook(api, raw, {name: prefix + sign("not-the-secret", raw)}), 403, "Signature does not match")
    refused(hook(api, raw, {name: prefix + sign(secret, raw + b" ")}), 403, "Signature does not match")
    assert version(api, pid) == "v0"


@pytest.mark.parametrize("value", ["zz" * 32, "abc", "sha256=", "sha1=" + "0" * 64, "0" * 63, "0" * 65,
                                   "sha256=sha256=" + "0" * 64, "é" * 64, "00 " * 31 + "00"])
def test_malformed_signature_is_a_mismatch(api, repo_project, value):
    pid, repo, _ = repo_project()
    r = hook(api, push_body(repo, after="evil"), {"X-Gitea-Signature": value.encode("utf-8").decode("latin-1")})
    refused(r, 403, "Signature does not match")
    assert version(api, pid) == "v0"


def test_only_projects_whose_secret_matches_are_updated(api, repo_project):
    a, repo, secret_a = repo_project()
    b, _, secret_b = repo_project(repo=repo.upper())
    assert secret_a != secret_b
    raw = push_body(repo, after="for-a")
    assert envelope(signed(api, secret_a, raw), 200)["ok"] is True
    assert (version(api, a), version(api, b)) == ("for-a", "v0")
    raw = push_body(repo, after="for-b")
    assert envelope(signed(api, secret_b, raw, "gogs"), 200)["ok"] is True
    assert (version(api, a), version(api, b)) == ("for-a", "for-b")


def test_projects_sharing_a_secret_are_all_updated(api, repo_project, admin):
    a, repo, secret = repo_project()
    b, _, _ = repo_project(repo=repo)
    r = admin.post(f"/project/webhook_secret/{b}", {"webhook_secret": secret})
    assert envelope(r, 200) == {"ok": True}
    assert webhook_secret(admin, b) == secret
    assert envelope(signed(api, secret, push_body(repo, after="both")), 200)["ok"] is True
    assert (version(api, a), version(api, b)) == ("both", "both")


def test_signature_is_checked_before_the_branch(api, repo_project):
    pid, repo, _ = repo_project()
    refused(signed(api, "wrong", push_body(repo, ref="refs/heads/feature")), 403)


# --- step 5: branch (200 ok false) -----------------------------------------------------------
@pytest.mark.parametrize("ref", ["refs/heads/feature", "refs/tags/v1.0", "refs/tags/master", "refs/heads/master2",
                                 "master", "refs/heads/main/x", "refs/remotes/origin/master", None, "", 5])
def test_other_refs_are_ignored(api, repo_project, ref):
    pid, repo, secret = repo_project()
    raw = push_body(repo, after="nope", ref=None)
    if ref is not None:
        raw = json.dumps({**json.loads(raw), "ref": ref}).encode()
    assert envelope(signed(api, secret, raw), 200) == {"ok": False, "message": IGNORED}
    assert version(api, pid) == "v0"


def test_ping_event_is_ignored(api, repo_project):
    pid, repo, secret = repo_project()
    raw = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1,
                      "repository": {"full_name": repo, "default_branch": "main"}}).encode()
    r = hook(api, raw, {"X-GitHub-Event": "ping", "X-Hub-Signature-256": "sha256=" + sign(secret, raw)})
    assert envelope(r, 200) == {"ok": False, "message": IGNORED}
    assert version(api, pid) == "v0"


def test_declared_default_branch_is_honoured(api, repo_project):
    pid, repo, secret = repo_project()
    raw = push_body(repo, ref="refs/heads/master", after="m", default_branch="develop")
    assert envelope(signed(api, secret, raw), 200) == {"ok": False, "message": IGNORED}
    raw = push_body(repo, ref="refs/heads/main", after="m", default_branch="develop")
    assert envelope(signed(api, secret, raw), 200) == {"ok": False, "message": IGNORED}
    assert version(api, pid) == "v0"
    raw = push_body(repo, ref="refs/heads/develop", after="d", default_branch="develop")
    assert envelope(signed(api, secret, raw, "gitea"), 200) == {"ok": True}
    assert version(api, pid) == "d"


@pytest.mark.parametrize("default", [{}, {"default_branch": ""}, {"default_branch": None}])
def test_master_and_main_without_default_branch(api, repo_project, default):
    pid, repo, secret = repo_project()
    assert envelope(signed(api, secret, push_body(repo, ref="refs/heads/master", after="m1", **default)), 200)["ok"]
    assert version(api, pid) == "m1"
    assert envelope(signed(api, secret, push_body(repo, ref="refs/heads/main", after="m2", **default)), 200)["ok"]
    assert version(api, pid) == "m2"
    r = signed(api, secret, push_body(repo, ref="refs/heads/develop", after="m3", **default))
    assert envelope(r, 200) == {"ok": False, "message": IGNORED}
    assert version(api, pid) == "m2"


# --- step 6: after (400) ---------------------------------------------------------------------
@pytest.mark.parametrize("after", ["", None, 5, ["abc"], "a\u0000b", "a" * 257],
                         ids=["empty", "absent", "int", "list", "nul", "over-256"])
def test_bad_after_is_400(api, repo_project, after):
    pid, repo, secret = repo_project()
    raw = push_body(repo, after=after)
    refused(signed(api, secret, raw), 400, "after")
    assert version(api, pid) == "v0"


def test_after_of_256_characters_is_applied(api, repo_project):
    """§6.7: at most 256 characters (code points: four-byte ones count once)."""
    pid, repo, secret = repo_project()
    after = "\U0001F600" * 256
    assert envelope(signed(api, secret, push_body(repo, after=after)), 200) == {"ok": True}
    assert version(api, pid) == after


def test_after_is_not_needed_on_an_ignored_branch(api, repo_project):
    pid, repo, secret = repo_project()
    raw = push_body(repo, ref="refs/heads/feature", after="")
    assert envelope(signed(api, secret, raw), 200) == {"ok": False, "message": IGNORED}


# --- effect seen by workers ------------------------------------------------------------------
def test_worker_sees_the_new_version_in_its_task(api, repo_project, grant):
    pid, repo, secret = repo_project()
    worker = api.new_worker("builder")
    grant(worker, pid)
    commit = "1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e"
    assert envelope(signed(api, secret, push_body(repo, after=commit), "gogs"), 200) == {"ok": True}
    assert envelope(worker.post("/task/submit", {"project": pid, "recipe": "build"}), 200)["ok"] is True
    body = envelope(worker.get(f"/task/get/{pid}"), 200)
    assert body["ok"] is True, body
    assert body["content"]["task"]["project"]["version"] == commit


def test_wrong_method_and_options(api):
    r = api.get(HOOK)
    refused(r, 405)
    assert "POST" in r.headers.get("Allow", "")
