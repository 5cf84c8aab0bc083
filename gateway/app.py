"""The gateway's app factory: ``gunicorn 'gateway.app:create_app()'``."""

from __future__ import annotations

import logging
import os
from typing import Protocol

import falcon

from gateway.docs import mount as mount_docs
from gateway.metrics import MetricsResource, RequestMetrics
from gateway.openapi import OpenApiResource
from gateway.ops import Health, Index, Ready
from gateway.routes import Dispatcher, send, wire
from gateway.rpc import RpcClient
from gateway.security import SecurityHeaders
from gateway.ui import mount as mount_ui
from tracker.errors import envelope
from tracker.logtext import one_line
from tracker.plugins import Plugin, discover
from tracker.settings import Settings, get_settings
from tracker.wording import SECRET_HEADER, WORKER_ID_HEADER

log = logging.getLogger("gateway")


class Rpc(Protocol):
    """What the gateway needs of its RPC client (gateway/rpc.py's RpcClient, or a test's fake):
    ``call(service, method, caller, params)`` for a request, ``call(service, batch, [[caller,
    params, method], …])`` for a coalesced batch (gateway/batching.py); each answers a reply dict."""

    def call(self, service: str, method: str, *args) -> dict | list: ...

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": f"Content-Type, {WORKER_ID_HEADER}, {SECRET_HEADER}",
}


class Cors:
    """OPTIONS on any path answers 200 (contract §1.1); every answer allows any origin."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.method == "OPTIONS":
            resp.set_headers(CORS_HEADERS)
            send(resp, 200, envelope(True))
            resp.complete = True

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        resp.set_header("Access-Control-Allow-Origin", "*")


_MESSAGES = {404: "Not found", 405: "Method not allowed", 413: "Request body too large"}


def _http_error(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError, params) -> None:
    status = exc.status_code
    for name, value in (exc.headers or {}).items():
        resp.set_header(name, value)
    send(resp, status, envelope(False, message=_MESSAGES.get(status) or exc.title or "Error"))


def _unexpected(req: falcon.Request, resp: falcon.Response, exc: Exception, params) -> None:
    log.exception("unhandled error on %s %s", req.method, one_line(req.path))  # the path is the client's text
    send(resp, 500, envelope(False, message="Internal error"))


def create_app(settings: Settings | None = None, rpc: Rpc | None = None,
               plugins: dict[str, Plugin] | None = None) -> falcon.App:
    """The WSGI app. Each dependency defaults to the real one (``gunicorn 'gateway.app:create_app()'``);
    tests pass their own settings, a fake RPC client and chosen plugins (tests/unit/test_gateway.py),
    so the gateway's checks run without a broker, services or a database."""
    logging.basicConfig(level=os.environ.get("TT_LOG_LEVEL", "INFO"), format="%(levelname)s %(name)s: %(message)s")
    settings = settings or get_settings()
    dispatcher = Dispatcher(settings, rpc if rpc is not None else RpcClient(settings))
    app = falcon.App(middleware=[SecurityHeaders(), RequestMetrics(), Cors()])
    app.req_options.auto_parse_qs_csv = False
    app.add_route("/", Index(dispatcher))
    app.add_route("/healthz", Health())
    app.add_route("/readyz", Ready(settings))
    app.add_route("/metrics", MetricsResource())
    app.add_route("/openapi.json", OpenApiResource(plugins))
    mount_docs(app)
    mount_ui(app)
    wire(app, dispatcher, plugins if plugins is not None else discover())
    app.add_error_handler(Exception, _unexpected)
    app.add_error_handler(falcon.HTTPError, _http_error)
    return app
