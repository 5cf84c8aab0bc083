"""Shapes of the git webhook (contract §6.7): the signature headers and the push payload fields used.

Parsed by hand rather than by a pydantic ``Message`` because the route has its own check order:
the signature header's 401 comes before any body 400, so the gateway hands the raw body through
(``Route(extras=(RawBody(…),))``) and the service parses it only after step 1. The HMAC is computed over
those raw bytes, never over a re-serialisation.

Push payload fields used (GitHub, Gitea and Gogs all send them):

| field                        | type   | use |
|------------------------------|--------|-----|
| `repository.full_name`       | string | required, non-empty: matched case-insensitively with `project.git_repo` |
| `repository.default_branch`  | string | optional; absent, null, empty or not a string → `master` and `main` |
| `ref`                        | string | `refs/heads/<default>` updates; anything else (or absent) is ignored |
| `after`                      | string | 1 … 256 characters, required only when the push is applied: new `version` |

A JSON ``null`` counts as absent (contract §1.1), as everywhere else.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from tracker.errors import Invalid
from tracker.fields import Message, NonEmptyText

# (header name as the gateway passes it — lower-cased —, provider); the first one present is used.
SIGNATURE_HEADERS = (
    ("x-hub-signature-256", "GitHub"),
    ("x-gitea-signature", "Gitea"),
    ("x-gogs-signature", "Gogs"),
)
# Delivery ids (contract §6.7 step 7), the first one present is used: each provider names every delivery
# (Gitea also sends the GitHub and Gogs names, with the same value). A UUID is 36 characters; longer ids
# are refused rather than remembered, so one replay-protection row stays small.
DELIVERY_HEADERS = ("x-github-delivery", "x-gitea-delivery", "x-gogs-delivery")
MAX_DELIVERY = 128
_DELIVERY = re.compile(rf"[!-~]{{1,{MAX_DELIVERY}}}")  # printable ASCII, no spaces
_PREFIX = "sha256="
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
FALLBACK_DEFAULT_BRANCHES = ("master", "main")
# The two 200 {"ok": false} answers (steps 5 and 7).
IGNORED = "ignored: not the default branch"
ALREADY_APPLIED = "ignored: delivery already applied"
MAX_AFTER = 256  # characters: the new version, within project.version's limit (contract §1.1, §6.7)


# --- what git_svc's operations receive over RPC (validated again there: tracker/service.py) ------
class Webhook(Message):
    """A webhook request as the gateway hands it through (RawBody): the exact body, base64-encoded,
    and the request headers, lower-cased. Only their types are checked here; what they say is
    checked in the route's own order (steps 1 … 7 of the service's ``receive_hook``)."""

    raw_body: str = ""
    headers: dict[str, str] = Field(default_factory=dict)


# --- signature header (step 1) -----------------------------------------------------------------
def signature_header(headers: Mapping[str, str]) -> str | None:
    """Value of the first signature header present (None: none is, a 401).

    A header sent with an empty value carries no signature and counts as absent. The SHA-1
    ``X-Hub-Signature`` is deliberately not in the list.
    """
    for name, _provider in SIGNATURE_HEADERS:
        value = headers.get(name)
        if value and value.strip():
            return value.strip()
    return None


def signature_digest(value: str) -> bytes | None:
    """The 32 bytes a header value names; None when it is not ``[sha256=]<64 hex digits>``.

    A malformed value is simply a signature that matches nothing (403 at step 4), never an error.
    Hex digits are case-insensitive; the ``sha256=`` prefix is tolerated on every provider's header.
    """
    if value[: len(_PREFIX)].lower() == _PREFIX:
        value = value[len(_PREFIX):]
    if not _HEX_SHA256.fullmatch(value):
        return None
    return bytes.fromhex(value)


# --- delivery id (step 7) ----------------------------------------------------------------------
def delivery_id(headers: Mapping[str, str]) -> str | None:
    """The push's delivery id, or None when it carries none (it is then applied as before).

    An empty header counts as absent, like an empty signature header. A value that is not 1 … 128
    printable ASCII characters is a 400 naming the header (nothing is stored or changed).
    """
    for name in DELIVERY_HEADERS:
        value = headers.get(name)
        if value and value.strip():
            value = value.strip()
            if not _DELIVERY.fullmatch(value):
                raise Invalid(f"invalid header '{_title(name)}': must be 1 … {MAX_DELIVERY} printable ASCII "
                                  "characters without spaces")
            return value
    return None


def _title(header: str) -> str:
    return "-".join("GitHub" if part == "github" else part.title() for part in header.split("-"))


# --- body (step 2) -----------------------------------------------------------------------------
def raw_body(encoded: str) -> bytes:
    """The exact request bytes, which the gateway sends base64-encoded."""
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise Invalid("malformed request body") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _without_nulls(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if v is not None}


def _storable(value: Any) -> bool:
    """A non-empty string PostgreSQL text can hold (no U+0000, no lone surrogate)."""
    if not isinstance(value, str) or value == "" or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class Push:
    full_name: str
    default_branches: tuple[str, ...]
    ref: Any  # compared only; anything but a matching string means "not the default branch"
    after: Any  # validated only when the push is applied (step 6)

    @property
    def on_default_branch(self) -> bool:
        return isinstance(self.ref, str) and any(self.ref == f"refs/heads/{b}" for b in self.default_branches)

    def version(self) -> str:
        if not _storable(self.after) or len(self.after) > MAX_AFTER:
            raise Invalid(f"invalid field 'after': must be a non-empty string of at most {MAX_AFTER} characters")
        return self.after


def parse_push(raw: bytes) -> Push:
    """Step 2: a JSON object (UTF-8) with a non-empty string ``repository.full_name``, else 400."""
    if not raw.strip():
        data: Any = {}  # an empty body counts as {} (contract §1.1), so it lacks the field
    else:
        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant, object_hook=_without_nulls)
        except UnicodeDecodeError:
            raise Invalid("malformed JSON body: not valid UTF-8") from None
        except RecursionError:
            raise Invalid("malformed JSON body: nested too deeply") from None
        except ValueError as exc:
            raise Invalid(f"malformed JSON body: {exc}") from None
    if not isinstance(data, dict):
        raise Invalid("request body must be a JSON object")
    repository = data.get("repository")
    if not isinstance(repository, dict):
        raise Invalid("invalid field 'repository': must be an object with 'full_name'")
    full_name = repository.get("full_name")
    if full_name is None:
        raise Invalid("invalid field 'repository.full_name': required")
    if not _storable(full_name):
        raise Invalid("invalid field 'repository.full_name': must be a non-empty string without U+0000 "
                          "or lone surrogates")
    default = repository.get("default_branch")
    branches = (default,) if isinstance(default, str) and default else FALLBACK_DEFAULT_BRANCHES
    return Push(full_name=full_name, default_branches=branches, ref=data.get("ref"), after=data.get("after"))


# --- reply shapes (OpenAPI) ---------------------------------------------------------------------
# The webhook answers no ``content``; documented here is the push payload it reads from the raw
# body (gateway/openapi.py; nothing validates with it: parse_push above does, after the signature).
from pydantic import BaseModel  # noqa: E402


class PushRepository(BaseModel):
    full_name: NonEmptyText = Field(description="matched case-insensitively with the projects' git_repo")
    default_branch: str | None = Field(None, description="absent or empty: master and main both count")


class PushPayload(BaseModel):
    """A push event (GitHub, Gitea, Gogs); other keys are ignored."""

    repository: PushRepository
    ref: Any = Field(None, description="refs/heads/<default branch> updates; anything else is ignored (200 ok false)")
    after: Any = Field(None, description="the pushed commit: the projects' new version (a non-empty string of at "
                                         f"most {MAX_AFTER} characters, required when the push is applied)",
                       json_schema_extra={"minLength": 1, "maxLength": MAX_AFTER})


SIGNATURE_HEADER_NAMES = tuple(name.title() for name, _provider in SIGNATURE_HEADERS)
DELIVERY_HEADER_DOCS = tuple(
    (_title(name), f"(optional) the delivery id, 1 … {MAX_DELIVERY} printable ASCII characters; the first present "
                   "of X-GitHub-Delivery, X-Gitea-Delivery, X-Gogs-Delivery is used. A delivery already applied to "
                   "a project within 7 days is not applied to it again (200 ok false 'ignored: delivery already "
                   "applied'); a push without one is applied as before")
    for name in DELIVERY_HEADERS)
