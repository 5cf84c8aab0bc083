"""nameko entrypoints of git_svc: the git webhook (filled in by the contract-completion issue)."""

from __future__ import annotations

from tracker.errors import ok
from tracker.service import endpoint


class GitService:
    name = "git_svc"

    @endpoint
    def ping(self, conn, ident, params):
        return ok()
