"""How a service declares its HTTP routes; the gateway wires them generically (gateway/routes.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel

from tracker.fields import Message


class Caller(StrEnum):
    """Which credentials the gateway insists on before anything else (401 when absent)."""

    ANYONE = "anyone"  # anonymous allowed; the service decides what an identity changes
    WORKER = "worker"  # worker headers required
    MANAGER = "manager"  # session cookie required


class Session(StrEnum):
    NONE = "none"
    OPEN = "open"  # on success the gateway sets a new session cookie (register, login)
    CLOSE = "close"  # the gateway expires the cookie (logout)


@dataclass(frozen=True)
class QueryParam:
    lo: int
    hi: int
    required: bool = False


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # OpenAPI-style template, e.g. "/task/get/{project}"
    rpc: str  # method of the plugin's nameko service
    caller: Caller = Caller.ANYONE
    body: type[Message] | None = None
    query: dict[str, QueryParam] = field(default_factory=dict)
    session: Session = Session.NONE
    bare_list_key: str | None = None  # a bare JSON array body is accepted as {key: array}
    raw_body: bool = False  # the service gets the raw body and signature headers (webhook)
    paused_first: bool = False  # a paused worker's 400 comes before syntax errors (task get)
    # ``?wait=S`` long-poll: the path parameter naming the project whose notifications wake the
    # parked request (gateway/longpoll.py); the service marks a reply worth waiting on with ``park``.
    long_poll: str | None = None
    # Accepts the ``Idempotency-Key`` header (extension): a retry with the same key by the same
    # worker within 24 h answers the first reply and changes nothing (tracker/idempotency.py).
    idempotency_key: bool = False
    # Concurrent requests of batch routes in one gateway process travel together as one RPC
    # (gateway/batching.py) and run in one transaction (tracker/service.py).
    batch: bool = False
    # Cross-origin refusal (contract §2). None: guarded iff a POST route a manager calls (so a new
    # manager route is guarded unless it says otherwise); True/False: as declared (the GET routes
    # that change state with a manager's cookie — /logout, promote, demote — and /logs, a read).
    same_origin: bool | None = None
    # The service gets the client address (``params["client"]``) that abuse limits count by.
    client_address: bool = False
    summary: str = ""
    # --- OpenAPI only (gateway/openapi.py documents the route from these; no behaviour reads them) ---
    description: str = ""  # what a client must know beyond the summary (limits, refusals)
    reply: type[BaseModel] | None = None  # shape of ``content`` of the success answer; None: no content
    status: int = 200  # the success status; 204 answers have no body
    # The route may also answer 200 {"ok": false, "message": …}, a negative answer that is not an error
    # ("No task available", a webhook for another branch): True, or the shape of its optional ``content``.
    declined: type[BaseModel] | bool = False
    errors: tuple[int, ...] = ()  # error statuses besides 400, 401, 404, 413 and 503, which any route may give
    unauthorized: type[BaseModel] | None = None  # shape of ``content`` of this route's 401, if it carries one
    raw_schema: type[BaseModel] | None = None  # raw_body routes: the JSON the service reads from the raw body
    headers: tuple[str, ...] = ()  # request headers the service itself reads (raw_body routes: signatures)
    # Optional request headers the service also reads, as (name, description) (the webhook's delivery ids).
    optional_headers: tuple[tuple[str, str], ...] = ()
    declined_messages: tuple[str, ...] = ()  # the messages of the ``declined`` answers, when the route lists them

    @property
    def guarded(self) -> bool:
        """Refused with 403 when a browser says the request comes from another origin (§2)."""
        if self.same_origin is not None:
            return self.same_origin
        return self.method == "POST" and self.caller is Caller.MANAGER
