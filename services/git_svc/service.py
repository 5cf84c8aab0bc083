"""nameko entrypoints of git_svc: the git push webhook (contract §6.7).

Authenticated by an HMAC-SHA256 signature of the raw body, keyed with each project's
``webhook_secret``, not by a session or worker headers (worker headers, if sent, must still be
valid: the endpoint decorator resolves them first, §2). A signed push to the default branch sets
``version`` of the projects whose secret signed it; workers then see it in ``task.project.version``.

Replays (step 7): a push naming a delivery id (``X-GitHub-Delivery``, ``X-Gitea-Delivery``,
``X-Gogs-Delivery``) is applied to each project at most once within 7 days. The id is not covered by
the signature, so this stops the re-sending of a captured request as it was, not a replay whose
sender strips the header (a push without an id is applied as before, as the contract requires).

The version is project_svc's to write: git_svc asks ``project_svc.set_version`` over RPC, inside
its own transaction, after claiming the delivery there. Exactly once per delivery and project:
the claim commits only after project_svc has committed the version, so a failure before that
leaves the delivery unclaimed and a retry (or redelivery) applies it; and the RPC is named after
the delivery (stored reply, tracker/idempotency.py, kept 24 h), so a retry of a delivery whose
version committed but whose claim did not replays project_svc's reply instead of setting the
version again (which could undo a newer push). The name also carries the delivery's previous claim
time, so a delivery renewed after the 7-day memory acts again. A push without an id is applied
each time it is sent, but a broker redelivery of one request is the same request: its call is
named after the webhook request's own name, so a redelivery replays project_svc's reply too.
"""

from __future__ import annotations

import hashlib
import hmac

import eventlet

from services.git_svc import messages, store
from tracker.contract import Caller, Reply
from tracker.errors import Forbidden, NotFound, Unauthorized, Unavailable, declined, ok
from tracker.fields import NoParams
from tracker.hashing import digest
from tracker.patches import rpc_proxy
from tracker.service import REQUEST, Service, operation
from tracker.settings import get_settings


def signed_by(secret: str, body: bytes, claimed: bytes | None) -> bool:
    """Constant-time comparison of the claimed HMAC-SHA256 with the one ``secret`` gives ``body``."""
    if claimed is None:
        return False
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return hmac.compare_digest(expected, claimed)


def version_call(projects: list[int], version: str, delivery: str | None, last_claim: float | None,
                 request: str | None = None) -> list:
    """The call of project_svc's ``set_version``: named after the delivery and its previous claim
    when there is one (exactly once, see above); a push without an id after the webhook request
    (``request``), so that only a redelivery of that request replays it."""
    caller = Caller()
    if delivery is not None:
        name = f"git-version\0{delivery}\0{','.join(map(str, projects))}\0{last_claim}"
        caller = Caller(request=digest(name), keyed=True)
    elif request is not None:
        caller = Caller(request=digest(f"git-version-request\0{request}\0{','.join(map(str, projects))}"))
    return [caller.wire(), "set_version", {"projects": projects, "version": version}]


class GitService(Service):
    name = "git_svc"
    project_svc = rpc_proxy("project_svc")  # its reply queue moves with the broker node (patches)

    def _set_version(self, projects: list[int], version: str, delivery: str | None,
                     last_claim: float | None = None) -> None:
        answers = None
        with eventlet.Timeout(get_settings().rpc_timeout, False):
            answers = self.project_svc.dispatch([version_call(projects, version, delivery, last_claim,
                                                              REQUEST.get())])
        if not answers or not Reply.model_validate(answers[0]).ok:
            # Rolls back the claim: the push is not recorded as applied, a retry applies it.
            raise Unavailable()

    @operation(NoParams)
    def ping(self, conn, ident, params):
        return ok()

    @operation(messages.Webhook, once=True)
    def receive_hook(self, conn, ident, params: messages.Webhook):
        # 1. a signature header (its value is checked at step 4: a malformed one is a mismatch)
        header = messages.signature_header(params.headers)
        if header is None:
            raise Unauthorized("Missing webhook signature header (X-Hub-Signature-256, X-Gitea-Signature "
                               "or X-Gogs-Signature)")
        claimed = messages.signature_digest(header)
        # 2. the body names a repository
        body = messages.raw_body(params.raw_body)
        push = messages.parse_push(body)
        # 3. projects of that repository
        candidates = store.projects_for_repo(conn, push.full_name)
        if not candidates:
            raise NotFound("No project for this repository")
        # 4. only the projects whose secret signed this very body
        affected = [row.id for row in candidates if signed_by(row.webhook_secret, body, claimed)]
        if not affected:
            raise Forbidden("Signature does not match")
        # 5. only the default branch counts
        if not push.on_default_branch:
            return declined(messages.IGNORED)
        # 6. the new version
        version = push.version()
        # 7. a delivery already applied to a project within 7 days changes nothing there
        delivery = messages.delivery_id(params.headers)
        last_claim = None
        if delivery is not None:
            last_claim = store.last_claim(conn, affected, delivery)
            affected = store.claim_delivery(conn, affected, delivery)
            if not affected:
                return declined(messages.ALREADY_APPLIED)
        self._set_version(sorted(affected), version, delivery, last_claim)
        return ok()
