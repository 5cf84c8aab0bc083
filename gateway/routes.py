"""Generic wiring of every plugin's routes: one handler applies the contract's check order (§1.4).

1 route match (Falcon) → 2 body size → 3 credentials present and well-formed → 4/5 path, query and
body syntax → one RPC to the owning service, which does 6 existence → 7 permission → 8 rate limit
→ 9 the operation, all in one transaction. When syntax fails and credentials were sent, the
gateway first asks whether they are valid, so that 401 still wins over 400.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import secrets
import time
import weakref
from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial

import falcon

from gateway.batching import Coalescer
from gateway.inputs import (
    credentials,
    parse_json,
    path_id,
    query_params,
    read_body,
    validate_body,
)
from gateway.longpoll import Waiters
from gateway.metrics import CALLS, count_tasks
from gateway.replies import http_body, http_status
from gateway.rpc import RpcClient
from gateway.security import ClientAddresses, OriginGuard
from tracker.contract import Caller as RpcCaller
from tracker.contract import Reply
from tracker.errors import Invalid, Refused, Unauthorized
from tracker.hashing import digest
from tracker.plugins import Plugin
from tracker.routing import Caller, Route
from tracker.settings import Settings
from tracker.wording import IDEMPOTENCY_HEADER, UNAUTHORIZED, WORKER_CREDENTIALS_REQUIRED

log = logging.getLogger("gateway")
IDENTIFY = ("worker_svc", "identify")  # resolves credentials alone (used only on the error path)
MAX_IDEMPOTENCY_KEY = 255


def send(resp: falcon.Response, status: int, body: dict | None) -> None:
    """Every JSON answer leaves through here: strict JSON only (no ``Infinity``/``NaN``, which a
    client's parser rejects); a reply that would carry one is a bug, answered as such (500)."""
    resp.status = status
    if status == 204 or body is None:
        resp.text = None
        return
    resp.content_type = falcon.MEDIA_JSON
    try:
        resp.text = json.dumps(body, ensure_ascii=False, allow_nan=False)
    except ValueError:
        log.error("a %d reply carried a non-finite number; answered 500 instead", status)
        resp.status = 500
        resp.text = json.dumps({"ok": False, "message": "Internal error"})


@dataclass
class RequestContext:
    """The request being answered, as a route's extras see it (tracker.routing.Request)."""

    req: falcon.Request
    caller: dict  # filled at step 3, after the body size (step 2)
    settings: Settings
    clients: ClientAddresses
    state: dict = field(default_factory=dict)

    def client_address(self) -> str:
        return self.clients.of(self.req)


class Dispatcher:
    def __init__(self, settings: Settings, rpc: RpcClient) -> None:
        self.settings = settings
        self.rpc = rpc
        self.waiters = Waiters(settings)
        self.coalescers: dict[str, Coalescer] = {}
        self.origins = OriginGuard(settings.public_origins)
        self.clients = ClientAddresses(settings.trusted_proxies)
        self.names = RequestNames()

    def check_credentials(self, req: falcon.Request) -> dict:
        """For routes without an RPC of their own: worker headers, if sent, must be valid."""
        caller = credentials(req)
        if "worker_id" in caller:
            self._identify(caller)
        return caller

    def _identify(self, caller: dict) -> dict:
        """Who the credentials name (worker_svc's ``identify``); a refusal is raised."""
        service, op = IDENTIFY
        answer = self.rpc.dispatch(service, [[RpcCaller(**caller).wire(), op, {}]])[0]
        if not answer.ok:
            raise Replied(answer)
        return answer.content or {}

    def handle(self, service: str, route: Route, req: falcon.Request, resp: falcon.Response, **path) -> None:
        request = None
        try:
            if route.guarded:  # right after the route match, before any other check (contract §2)
                self.origins.check(req)
            request = RequestContext(req, {}, self.settings, self.clients)
            answer = self._dispatch(service, route, request, path)
        except Refused as exc:
            answer = exc.reply()
        except Replied as replied:
            answer = replied.reply
        status = http_status(answer, route.doc.status)
        send(resp, status, None if status == 204 else http_body(answer))
        if request is not None:
            for extra in route.extras:
                extra.answered(request, status, resp)

    def _dispatch(self, service: str, route: Route, request: RequestContext, path: dict) -> Reply:
        req = request.req
        raw = read_body(req, self.settings.max_body_bytes)
        request.caller = caller = credentials(req)
        if route.caller is Caller.WORKER and "worker_id" not in caller:
            raise Unauthorized(WORKER_CREDENTIALS_REQUIRED)
        if route.caller is Caller.MANAGER and "session_digest" not in caller:
            raise Unauthorized(UNAUTHORIZED)
        try:
            params = self._params(route, request, path, raw)
            self._idempotency_key(route, req, caller)
        except Refused as syntax_error:
            self._credentials_before_syntax(route, caller)
            raise syntax_error from None
        project = None  # a long-poll's project (an extra's wakes_on)
        for extra in route.extras:
            params.update(extra.params(request))
            project = extra.wakes_on(params) if project is None else project
        if project is not None:
            answer = self._long_poll(service, route, caller, params, project)
        else:
            answer = self._call(service, route, caller, params)
        count_tasks(answer.counts)
        return answer

    def _call(self, service: str, route: Route, caller: dict, params: dict) -> Reply:
        """One call of the service's operation ``route.rpc``: a batch of one, or a place in the
        next batch of concurrent calls (``route.batch``). Each call is named afresh (a redelivery
        of it keeps the name), unless the client named the request with an Idempotency-Key."""
        timeout = self.settings.admin_rpc_timeout if route.slow else self.settings.rpc_timeout
        caller = {**caller, "deadline": time.time() + timeout}
        if not caller.get("keyed"):
            caller["request"] = self.names.next()
        call = [RpcCaller(**caller).wire(), route.rpc, params]
        CALLS.labels(service, route.rpc).inc()
        if route.batch and self.settings.gateway_batching:
            coalescer = self.coalescers.get(service) or self.coalescers.setdefault(
                service, Coalescer(self.rpc, service))
            return coalescer.call(call)
        return self.rpc.dispatch(service, [call], timeout)[0]

    @staticmethod
    def _idempotency_key(route: Route, req: falcon.Request, caller: dict) -> None:
        key = req.get_header(IDEMPOTENCY_HEADER) if route.idempotency_key else None
        if key is None:
            return
        if not (0 < len(key) <= MAX_IDEMPOTENCY_KEY and key.isascii() and key.isprintable()):
            raise Invalid(f"invalid header '{IDEMPOTENCY_HEADER}': must be 1 … {MAX_IDEMPOTENCY_KEY} "
                                "printable ASCII characters")
        caller["request"] = digest(f"idempotency-key\0{caller['worker_id']}\0{route.path}\0{key}")
        caller["keyed"] = True

    def _long_poll(self, service: str, route: Route, caller: dict, params: dict, project: int) -> Reply:
        """Ask; while the answer is "nothing yet", park until woken or the wait is over.

        The request is parked before each ask, so a task committed between the ask and the park
        still wakes it. Each wake-up costs one RPC; between them the request holds nothing. A
        request woken by a notification that leaves with an answer (a task, or an error) wakes the
        next parked one (gateway/longpoll.py: a notification wakes only a few).
        """
        deadline = time.monotonic() + params["wait"]
        woken = False
        while True:
            event = self.waiters.park(project)
            try:
                answer = self._call(service, route, caller, params)
                left = deadline - time.monotonic()
                if not answer.park or left <= 0:
                    if not answer.park and (woken or event.is_set()):
                        self.waiters.pass_on(project)
                    return answer
                retry_in = answer.retry_in
                # A floor between re-asks: an expiry is met a little late rather than polled for.
                self.waiters.wait(event, left if retry_in is None else min(left, max(retry_in, 0.0) + 0.02))
                woken = event.is_set()  # by a notification (or a pass_on), not by the clock
            finally:
                self.waiters.unpark(project, event)

    @staticmethod
    def _params(route: Route, request: RequestContext, path: dict, raw: bytes) -> dict:
        params: dict = {name: path_id(name, value) for name, value in path.items()}
        params.update(query_params(request.req, route.query))
        for extra in route.extras:
            body = extra.body(request, raw)
            if body is not None:
                params.update(body)
                return params
        if route.body is not None:
            params.update(validate_body(route.body, parse_json(raw, route)))
        return params

    def _credentials_before_syntax(self, route: Route, caller: dict) -> None:
        """401 (and an extra's answer, e.g. a paused worker's 400 on task get) come before a syntax 400."""
        if not caller:
            return
        who = self._identify(caller)
        for extra in route.extras:
            refusal = extra.refusal_before_syntax(who)
            if refusal is not None:
                raise refusal
        if route.caller is Caller.MANAGER and who.get("manager_id") is None:
            raise Unauthorized(UNAUTHORIZED)


class RequestNames:
    """A fresh name for every request without a system call each (uuid4 reads the OS's random
    source per call: 1.5 % of the gateway's CPU at 16 workers; ``os.getpid()`` is a system call
    too: 1.4 %): a random prefix per process, taken again in a forked child, and a counter."""

    def __init__(self) -> None:
        self._fresh()
        fresh = weakref.WeakMethod(self._fresh)
        os.register_at_fork(after_in_child=lambda: (method := fresh()) is not None and method())

    def _fresh(self) -> None:
        self._prefix, self._count = secrets.token_hex(12), itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._count):x}"


class Replied(Exception):
    """A service's refusal met on the way (credentials checked before syntax), answered as is."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.message)
        self.reply = reply


class RouteResource:
    """All methods of one URI template; responders are attached per declared route."""


def wire(app: falcon.App, dispatcher: Dispatcher, plugins: dict[str, Plugin]) -> list[tuple[str, Route]]:
    by_path: dict[str, RouteResource] = defaultdict(RouteResource)
    wired: list[tuple[str, Route]] = []
    for plugin in plugins.values():
        for route in plugin.route_list():
            resource = by_path[route.path]
            responder = f"on_{route.method.lower()}"
            if hasattr(resource, responder):
                raise RuntimeError(f"two plugins declare {route.method} {route.path}")
            setattr(resource, responder, partial(dispatcher.handle, plugin.name, route))
            wired.append((plugin.name, route))
    for path, resource in by_path.items():
        app.add_route(path, resource)
    return wired
