"""``GET /docs`` (extension): the interactive API reference, rendered in the browser by Redoc from
``GET /openapi.json``.

Everything the page loads comes from this gateway: the page (gateway/static/docs.html), its start
script (gateway/static/docs.js) and Redoc's built bundle, vendored at a pinned version under
gateway/static/vendor/ (MANIFEST.json there names the version, the npm package it came from and each
file's sha256; scripts/vendor.py refreshes it). Nothing is fetched from elsewhere at run time,
and the Content-Security-Policy tells the browser to refuse anything else. What Redoc 2.5 needs beyond
``'self'`` (checked by loading the page under this policy in headless Chromium and reading its console):
- ``style-src 'unsafe-inline'``: Redoc styles itself with styled-components, which writes its CSS into
  ``<style>`` elements at run time;
- ``worker-src blob:``: the search box indexes the document in a Web Worker built from a Blob URL;
- ``img-src data:``: the page's empty favicon (no ``/favicon.ico`` request) and Redoc's inline icons.
Scripts are ``'self'`` only: no inline script, no ``eval``; fonts fall back to the system's. The one
outside address Redoc names, its footer logo on cdn.redoc.ly, is blocked by ``img-src`` (never requested).

The scripts are served under ``/docs/<name>`` by a Falcon sink from a fixed list, not from a static
directory: only the files the page loads can be fetched (never the manifest or anything else under
static/), and they stay out of the router, so out of the OpenAPI document (they are assets, not API).
Each file is read once per process and revalidated by ETag (gateway/assets.py).
"""

from __future__ import annotations

import falcon

from gateway.assets import HTML, JAVASCRIPT, load, send

PATH = "/docs"
PAGE = "docs.html"
# URL name under /docs/ → file under gateway/static/. The page refers to these (relative URLs).
ASSETS = {
    "docs.js": "docs.js",
    "redoc.standalone.js": "vendor/redoc/redoc.standalone.js",
}
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "worker-src blob:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
))
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidate (ETag): a new gateway version may ship another bundle
}


class DocsPage:
    """``GET /docs``: the HTML page (anonymous; like /metrics and /openapi.json it reads no credentials)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(req, resp, load(PAGE, HTML), HEADERS)


class DocsAssets:
    """Sink for ``/docs/<name>``: the page's scripts, GET only; any other name is the JSON 404."""

    def __call__(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        if name not in ASSETS:
            raise falcon.HTTPNotFound()
        if req.method != "GET":
            raise falcon.HTTPMethodNotAllowed(["GET", "OPTIONS"])
        send(req, resp, load(ASSETS[name], JAVASCRIPT), HEADERS)


def mount(app: falcon.App) -> None:
    """Wire ``/docs`` and its assets into the gateway's app."""
    app.add_route(PATH, DocsPage())
    app.add_sink(DocsAssets(), PATH + r"/(?P<name>[^/]+)$")
