"""Files the gateway serves itself to browsers (the API reference at /docs, the manager UI at /ui/).

Each file is read once per process and sent with a strong ETag (its sha256), so a browser
revalidates with a 304 instead of downloading it again, and a new gateway version that ships
another file is picked up at once (``Cache-Control: no-cache`` in the pages' headers).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import falcon

STATIC = Path(__file__).with_name("static")
HTML = "text/html; charset=utf-8"
JAVASCRIPT = "text/javascript; charset=utf-8"
CSS = "text/css; charset=utf-8"
SVG = "image/svg+xml"
PNG = "image/png"
CONTENT_TYPES = {".html": HTML, ".js": JAVASCRIPT, ".mjs": JAVASCRIPT, ".css": CSS, ".svg": SVG, ".png": PNG}


@dataclass(frozen=True)
class Asset:
    data: bytes
    content_type: str
    etag: str


@cache
def load(relative: str, content_type: str) -> Asset:
    data = (STATIC / relative).read_bytes()
    return Asset(data, content_type, hashlib.sha256(data).hexdigest())


def send(req: falcon.Request, resp: falcon.Response, asset: Asset, headers: dict[str, str]) -> None:
    """The asset with ``headers``, or a bodiless 304 when the browser's copy is current."""
    resp.set_headers(headers)
    resp.etag = asset.etag
    if req.if_none_match and any(tag == "*" or tag == asset.etag for tag in req.if_none_match):
        resp.status = falcon.HTTP_304
        return
    resp.content_type = asset.content_type
    resp.data = asset.data
