"""nameko entrypoints of git_svc: the git push webhook (contract §6.7).

Authenticated by an HMAC-SHA256 signature of the raw body, keyed with each project's
``webhook_secret``, not by a session or worker headers (worker headers, if sent, must still be
valid: the endpoint decorator resolves them first, §2). A signed push to the default branch sets
``version`` of the projects whose secret signed it; workers then see it in ``task.project.version``.

Replays (step 7): a push naming a delivery id (``X-GitHub-Delivery``, ``X-Gitea-Delivery``,
``X-Gogs-Delivery``) is applied to each project at most once within 7 days. The id is not covered by
the signature, so this stops the re-sending of a captured request as it was, not a replay whose
sender strips the header (a push without an id is applied as before, as the contract requires).
"""

from __future__ import annotations

import hashlib
import hmac

from services.git_svc import messages, store
from tracker.errors import Forbidden, NotFound, Unauthorized, declined, ok
from tracker.service import Service, operation


def signed_by(secret: str, body: bytes, claimed: bytes | None) -> bool:
    """Constant-time comparison of the claimed HMAC-SHA256 with the one ``secret`` gives ``body``."""
    if claimed is None:
        return False
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return hmac.compare_digest(expected, claimed)


class GitService(Service):
    name = "git_svc"

    @operation()
    def ping(self, conn, ident, params):
        return ok()

    @operation()
    def receive_hook(self, conn, ident, params):
        # 1. a signature header (its value is checked at step 4: a malformed one is a mismatch)
        header = messages.signature_header(params.get("headers"))
        if header is None:
            raise Unauthorized("Missing webhook signature header (X-Hub-Signature-256, X-Gitea-Signature "
                               "or X-Gogs-Signature)")
        claimed = messages.signature_digest(header)
        # 2. the body names a repository
        body = messages.raw_body(params)
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
        delivery = messages.delivery_id(params.get("headers"))
        if delivery is not None:
            affected = store.claim_delivery(conn, affected, delivery)
            if not affected:
                return declined(messages.ALREADY_APPLIED)
        store.set_version(conn, affected, version)
        return ok()
