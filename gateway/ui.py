"""``/ui/`` (extension): the manager web UI, a single page served whole by the gateway.

The page is static: HTML, ES modules and CSS under gateway/static/ui/, plus vendored built
libraries (gateway/static/vendor/, MANIFEST.json names each one's version, npm package and sha256).
It talks to the same JSON API as every other client, with the session cookie (same origin), and
keeps nothing on the server: the gateway only hands out files, so any replica serves it.

Why a sink and a fixed file list for the files: only files that ship with the UI can be fetched (never the
manifest, never a path outside static/), and the assets stay out of the router and so out of the
OpenAPI document, which describes the API, not the page's files.

The Content-Security-Policy allows scripts, styles, images and connections from this origin only
(no inline script or style, no ``eval``): everything a worker or a manager typed is put on the page
as text by the scripts, and even a mistake there could not run code the gateway did not ship.
"""

from __future__ import annotations

from pathlib import Path

import falcon

from gateway.assets import CONTENT_TYPES, HTML, STATIC, load, send

PATH = "/ui"
UI = STATIC / "ui"
PAGE = "ui/index.html"
# URL path under /ui/ → file under gateway/static/, for the vendored libraries the page loads.
VENDORED = {
    "vendor/chart.umd.js": "vendor/chartjs/chart.umd.min.js",
}
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",  # revalidate (ETag): a new gateway version may ship other files
}


def _files() -> dict[str, str]:
    """URL path under /ui/ → file under gateway/static/ (the page's own files, then the vendored)."""
    files = {}
    for path in sorted(UI.rglob("*")):
        if path.is_file() and path.suffix in CONTENT_TYPES:
            files[path.relative_to(UI).as_posix()] = Path("ui", path.relative_to(UI)).as_posix()
    files.update(VENDORED)
    return files


FILES = _files()


def wants_html(req: falcon.Request) -> bool:
    """A browser navigating to a page asks for HTML first; API clients ask for JSON or anything."""
    accept = req.get_header("Accept") or ""
    return "text/html" in accept and req.client_prefers(("application/json", "text/html")) == "text/html"


class UiPage:
    """``GET /ui/``: the page (anonymous: it reads no credentials; its scripts ask /account)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(req, resp, load(PAGE, HTML), HEADERS)


class UiFiles:
    """Sink for ``/ui`` (redirected to ``/ui/``) and the page's files under it. GET (and HEAD) only."""

    def __call__(self, req: falcon.Request, resp: falcon.Response, path: str | None = None) -> None:
        if req.method not in ("GET", "HEAD"):
            raise falcon.HTTPMethodNotAllowed(["GET", "OPTIONS"])
        if path is None:  # /ui → /ui/, so the page's relative URLs resolve under /ui/
            raise falcon.HTTPFound(PATH + "/")
        relative = FILES.get(path[1:])
        if relative is None:
            raise falcon.HTTPNotFound()
        send(req, resp, load(relative, CONTENT_TYPES[Path(relative).suffix]), HEADERS)


def mount(app: falcon.App) -> None:
    """Wire ``/ui/`` (a route, so it is in the OpenAPI document) and its files (a sink) into the app."""
    app.add_route(PATH + "/", UiPage())
    app.add_sink(UiFiles(), PATH + r"(?P<path>/.+)?$")
