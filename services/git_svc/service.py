"""nameko entrypoints of git_svc: the git push webhook (contract §6.7).

Authenticated by an HMAC-SHA256 signature of the raw body, keyed with each project's
``webhook_secret``, not by a session or worker headers (worker headers, if sent, must still be
valid: the endpoint decorator resolves them first, §2). A signed push to the default branch sets
``version`` of the projects whose secret signed it; workers then see it in ``task.project.version``.
"""

from __future__ import annotations

import hashlib
import hmac

from services.git_svc import messages, store
from tracker.errors import envelope, forbidden, not_found, ok, reply, unauthorized
from tracker.service import endpoint

IGNORED = "ignored: not the default branch"


def signed_by(secret: str, body: bytes, claimed: bytes | None) -> bool:
    """Constant-time comparison of the claimed HMAC-SHA256 with the one ``secret`` gives ``body``."""
    if claimed is None:
        return False
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return hmac.compare_digest(expected, claimed)


class GitService:
    name = "git_svc"

    @endpoint
    def ping(self, conn, ident, params):
        return ok()

    @endpoint
    def receive_hook(self, conn, ident, params):
        # 1. a signature header (its value is checked at step 4: a malformed one is a mismatch)
        header = messages.signature_header(params.get("headers"))
        if header is None:
            raise unauthorized("Missing webhook signature header (X-Hub-Signature-256, X-Gitea-Signature "
                               "or X-Gogs-Signature)")
        claimed = messages.signature_digest(header)
        # 2. the body names a repository
        body = messages.raw_body(params)
        push = messages.parse_push(body)
        # 3. projects of that repository
        candidates = store.projects_for_repo(conn, push.full_name)
        if not candidates:
            raise not_found("No project for this repository")
        # 4. only the projects whose secret signed this very body
        affected = [row.id for row in candidates if signed_by(row.webhook_secret, body, claimed)]
        if not affected:
            raise forbidden("Signature does not match")
        # 5. only the default branch counts
        if not push.on_default_branch:
            return reply(200, envelope(False, message=IGNORED))
        # 6. the new version
        store.set_version(conn, affected, push.version())
        return ok()
