"""How a service declares its HTTP routes; the gateway wires them generically (gateway/routes.py).

A ``Route`` says what every route has (method, path, RPC, credentials, body and query rules), the
behaviour some routes add as ``extras`` — small objects the Dispatcher calls through one interface
(``Extra``), so it has no branch per route kind — and what the OpenAPI document says about it as
one ``Doc`` (gateway/openapi.py reads it; no behaviour does).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel

from tracker.errors import Invalid, Refused
from tracker.fields import NO_NUL, Message, parse_int
from tracker.hashing import digest, new_session_token
from tracker.wording import PAUSED, SESSION_COOKIE


class Caller(StrEnum):
    """Which credentials the gateway insists on before anything else (401 when absent)."""

    ANYONE = "anyone"  # anonymous allowed; the service decides what an identity changes
    WORKER = "worker"  # worker headers required
    MANAGER = "manager"  # session cookie required


@dataclass(frozen=True)
class QueryParam:
    """An integer query parameter in ``lo … hi``. Every query kind answers the same four things:
    ``parse`` (the value, or None when the text breaks the rule), ``rule`` (the 400's words),
    ``schema`` (OpenAPI) and ``sample`` (a valid value, for tests of the wiring)."""

    lo: int
    hi: int
    required: bool = False

    def parse(self, raw: str) -> int | None:
        return parse_int(raw.strip(), self.lo, self.hi)

    @property
    def rule(self) -> str:
        return f"must be an integer in {self.lo} … {self.hi}"

    @property
    def schema(self) -> dict:
        return {"type": "integer", "minimum": self.lo, "maximum": self.hi}

    @property
    def sample(self) -> int:
        return self.lo


@dataclass(frozen=True)
class QueryWord:
    """A query parameter that is one of a few words, spelled exactly (``order=asc|desc``)."""

    words: tuple[str, ...]
    required: bool = False

    def parse(self, raw: str) -> str | None:
        return raw if raw in self.words else None

    @property
    def rule(self) -> str:
        return "must be one of " + ", ".join(self.words)

    @property
    def schema(self) -> dict:
        return {"type": "string", "enum": list(self.words)}

    @property
    def sample(self) -> str:
        return self.words[0]


@dataclass(frozen=True)
class QueryText:
    """A free-text query parameter of ``min_chars … max_chars`` characters, taken as sent (not
    stripped: a search for " x" differs from one for "x"), storable like any text (§1.2)."""

    min_chars: int
    max_chars: int
    required: bool = False

    def parse(self, raw: str) -> str | None:
        if not self.min_chars <= len(raw) <= self.max_chars or "\x00" in raw:
            return None
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError:
            return None
        return raw

    @property
    def rule(self) -> str:
        return f"must be {self.min_chars} … {self.max_chars} characters, without U+0000"

    @property
    def schema(self) -> dict:
        return {"type": "string", "minLength": self.min_chars, "maxLength": self.max_chars, "pattern": NO_NUL}

    @property
    def sample(self) -> str:
        return "x" * max(1, self.min_chars)


QueryRule = QueryParam | QueryWord | QueryText


class Request(Protocol):
    """What the gateway hands an extra about the request being answered (gateway/routes.py)."""

    req: Any  # the falcon request
    caller: dict  # credentials as digests (gateway/inputs.credentials)
    settings: Any  # tracker.settings.Settings
    state: dict  # per-request scratch space an extra's hooks share

    def client_address(self) -> str: ...


class Extra:
    """Behaviour one or two routes add to the common steps. Every hook does nothing by default; the
    Dispatcher calls each hook of each of a route's extras at its fixed place in the check order."""

    # Cross-origin refusal (contract §2), if this extra decides it (see Route.guarded).
    cross_origin_refused: bool | None = None

    def json(self, data: Any) -> Any:
        """Step 5, before the body must be an object: reshape the decoded JSON."""
        return data

    def body(self, request: Request, raw: bytes) -> dict | None:
        """Step 5: the params of the body instead of validating it with the route's model."""
        return None

    def refusal_before_syntax(self, who: dict) -> Refused | None:
        """On a syntax error, once the credentials are known valid (``who``: worker_svc.identify's
        content): an answer that outranks the 400, or None."""
        return None

    def params(self, request: Request) -> dict:
        """After syntax: more params for the service."""
        return {}

    def wakes_on(self, params: dict) -> int | None:
        """A long-poll's project: the call is asked again as its notifications arrive."""
        return None

    def answered(self, request: Request, status: int, resp: Any) -> None:
        """After the answer is written: response headers (cookies)."""


@dataclass(frozen=True)
class RawBody(Extra):
    """The service gets the exact bytes (a signature covers them) and the request headers, so it
    answers a missing signature header (401) before any body error (400): the git webhook."""

    schema: type[BaseModel] | None = None  # OpenAPI: the JSON the service reads from the raw body
    signature_headers: tuple[str, ...] = ()  # OpenAPI: the headers of which one must sign the body
    optional_headers: tuple[tuple[str, str], ...] = ()  # OpenAPI: (name, description) also read

    def body(self, request: Request, raw: bytes) -> dict:
        return {"raw_body": base64.b64encode(raw).decode("ascii"),
                "headers": {k.lower(): v for k, v in request.req.headers.items()}}


@dataclass(frozen=True)
class BareList(Extra):
    """A bare JSON array body is accepted as ``{key: array}`` (bulk submit)."""

    key: str

    def json(self, data: Any) -> Any:
        return {self.key: data} if isinstance(data, list) else data


@dataclass(frozen=True)
class PausedFirst(Extra):
    """A paused worker's 400 comes before syntax errors (task get)."""

    def refusal_before_syntax(self, who: dict) -> Refused | None:
        return Invalid(PAUSED) if who.get("worker_paused") else None


@dataclass(frozen=True)
class LongPoll(Extra):
    """``?wait=S``: the request parks until the named path parameter's project is notified
    (gateway/longpoll.py); the service marks a reply worth waiting on with ``park``."""

    project_param: str

    def wakes_on(self, params: dict) -> int | None:
        return params[self.project_param] if params.get("wait") else None


@dataclass(frozen=True)
class ClientAddress(Extra):
    """The service gets the client address (``params["client"]``) that abuse limits count by."""

    def params(self, request: Request) -> dict:
        return {"client": request.client_address()}


@dataclass(frozen=True)
class OpenSession(Extra):
    """On success the gateway sets a new session cookie (register, login)."""

    def params(self, request: Request) -> dict:
        request.state["session_token"] = token = new_session_token()
        return {"new_session_digest": digest(token), "session_lifetime": request.settings.session_lifetime}

    def answered(self, request: Request, status: int, resp: Any) -> None:
        token = request.state.get("session_token")
        if token and status == 200:
            settings = request.settings
            resp.set_cookie(SESSION_COOKIE, token, max_age=settings.session_lifetime, path="/", http_only=True,
                            secure=settings.secure_cookies, same_site="Strict")


@dataclass(frozen=True)
class CloseSession(Extra):
    """The service gets the session's digest, and the gateway expires the cookie (logout)."""

    def params(self, request: Request) -> dict:
        return {"session_digest": request.caller.get("session_digest")}

    def answered(self, request: Request, status: int, resp: Any) -> None:
        if status < 400:
            resp.unset_cookie(SESSION_COOKIE, path="/")


@dataclass(frozen=True)
class CrossOrigin(Extra):
    """Overrides the default of Route.guarded: the GET routes that change state with a manager's
    cookie (/logout, promote, demote) are refused cross-origin; /logs, a read, is not."""

    refused: bool

    @property
    def cross_origin_refused(self) -> bool:  # type: ignore[override]
        return self.refused


@dataclass(frozen=True)
class Doc:
    """What the OpenAPI document says of a route beyond its behaviour (gateway/openapi.py)."""

    summary: str = ""
    description: str = ""  # what a client must know beyond the summary (limits, refusals)
    reply: type[BaseModel] | None = None  # shape of ``content`` of the success answer; None: no content
    status: int = 200  # the success status, which the gateway answers too; 204 answers have no body
    # The route may also answer 200 {"ok": false, "message": …}, a negative answer that is not an error
    # ("No task available", a webhook for another branch): True, or the shape of its optional ``content``.
    declined: type[BaseModel] | bool = False
    declined_messages: tuple[str, ...] = ()  # the messages of the ``declined`` answers, when the route lists them
    errors: tuple[int, ...] = ()  # error statuses besides 400, 401, 404, 413 and 503, which any route may give
    unauthorized: type[BaseModel] | None = None  # shape of ``content`` of this route's 401, if it carries one


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # OpenAPI-style template, e.g. "/task/get/{project}"
    rpc: str  # method of the plugin's nameko service
    caller: Caller = Caller.ANYONE
    body: type[Message] | None = None
    query: dict[str, QueryRule] = field(default_factory=dict)
    # Accepts the ``Idempotency-Key`` header (extension): a retry with the same key by the same
    # worker within 24 h answers the first reply and changes nothing (tracker/idempotency.py).
    idempotency_key: bool = False
    # Concurrent requests of batch routes in one gateway process travel together as one RPC
    # (gateway/batching.py) and run in one transaction (tracker/service.py).
    batch: bool = False
    extras: tuple[Extra, ...] = ()
    doc: Doc = Doc()
    # A manager action that may run for minutes (one transaction over a million tasks): the gateway
    # waits ``admin_rpc_timeout`` for it instead of ``rpc_timeout`` (its deadline and the request's
    # broker expiry follow), so it is neither answered 503 nor skipped by the service as too late.
    slow: bool = False

    @property
    def guarded(self) -> bool:
        """Refused with 403 when a browser says the request comes from another origin (§2): as an
        extra declares, else iff a POST route a manager calls (so a new manager route is guarded
        unless it says otherwise)."""
        for extra in self.extras:
            if extra.cross_origin_refused is not None:
                return extra.cross_origin_refused
        return self.method == "POST" and self.caller is Caller.MANAGER

    def extra(self, kind: type[Extra]) -> Any:
        """The route's extra of this kind, or None (for the OpenAPI document)."""
        return next((e for e in self.extras if isinstance(e, kind)), None)
