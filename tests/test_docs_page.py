"""``GET /docs`` (extension): the interactive API reference, served whole by the gateway (gateway/docs.py).

The page may load only what the gateway itself serves (same origin, no inline script), each script with
a JavaScript content type, nosniff and the Content-Security-Policy; the vendored Redoc bundle must be
byte for byte what gateway/static/vendor/MANIFEST.json says was taken from the npm package
(tests/unit/test_vendor.py).
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "gateway" / "static"
VENDOR = STATIC / "vendor"
JAVASCRIPT_TYPES = {"text/javascript", "application/javascript"}


class References(HTMLParser):
    """Every URL the page refers to (src, href), its scripts, and any inline code or style."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []  # (tag, url)
        self.scripts: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            if attrs.get(name) is not None:
                self.urls.append((tag, attrs[name]))
        if tag == "script":
            self._in_script = True
            if attrs.get("src") is None:
                self.inline.append("<script> without src")
            else:
                self.scripts.append(attrs["src"])
        if tag == "style" or "style" in attrs or any(name.startswith("on") for name in attrs):
            self.inline.append(f"<{tag}> with inline style or handler")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline.append("inline script code")


def page_references(html: str) -> References:
    parser = References()
    parser.feed(html)
    return parser


def csp_directives(header: str) -> dict[str, list[str]]:
    out = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0].lower()] = words[1:]
    return out


# --- the vendored files (no system needed; every manifest's hashes: tests/unit/test_vendor.py) ---------
def manifest() -> dict:
    return json.loads((VENDOR / "MANIFEST.json").read_text())


def test_redoc_is_the_pinned_version_with_its_licence():
    (redoc,) = [p for p in manifest()["packages"] if p["name"] == "redoc"]
    names = {Path(f["path"]).name for f in redoc["files"]}
    assert {"redoc.standalone.js", "LICENSE", "redoc.standalone.js.LICENSE.txt"} <= names
    notices = (VENDOR / "redoc" / "redoc.standalone.js.LICENSE.txt").read_text()
    assert f'Version: "{redoc["version"]}"' in notices  # the bundle's own banner names the same version
    assert "MIT License" in (VENDOR / "redoc" / "LICENSE").read_text()


def test_page_refers_only_to_same_origin_files_and_runs_no_inline_code():
    refs = page_references((STATIC / "docs.html").read_text())
    assert not refs.inline, refs.inline
    base = "http://gateway.example:3010/docs"
    for tag, url in refs.urls:
        if url.startswith("data:"):
            continue  # inline data (the empty favicon): nothing is fetched
        assert urlsplit(urljoin(base, url)).netloc == "gateway.example:3010", (tag, url)
    assert "redoc.standalone.js" in " ".join(refs.scripts)


# --- the live gateway -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def page(system):
    import requests

    r = requests.get(system.url + "/docs", timeout=30)
    assert r.status_code == 200, r.text
    return r


def test_docs_answers_html_with_a_strict_policy(page):
    assert page.headers["Content-Type"].split(";")[0].strip() == "text/html"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    csp = csp_directives(page.headers["Content-Security-Policy"])
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]  # no inline script, no eval, no other origin
    assert csp["connect-src"] == ["'self'"]  # the document is fetched from this gateway only
    assert csp["frame-ancestors"] == ["'none'"]
    for values in csp.values():
        assert not any(v.startswith(("http:", "https:", "*")) or "." in v for v in values), csp  # no host
    refs = page_references(page.text)
    assert not refs.inline and refs.scripts


def test_every_script_of_the_page_is_served_same_origin_as_javascript(system, page):
    import requests

    bundle = VENDOR / "redoc" / "redoc.standalone.js"
    served = {}
    for src in page_references(page.text).scripts:
        url = urljoin(system.url + "/docs", src)
        assert urlsplit(url).netloc == urlsplit(system.url).netloc, src
        r = requests.get(url, timeout=30)
        assert r.status_code == 200, (src, r.status_code)
        assert r.headers["Content-Type"].split(";")[0].strip() in JAVASCRIPT_TYPES, (src, r.headers["Content-Type"])
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        served[Path(urlsplit(url).path).name] = r.content
    assert served["redoc.standalone.js"] == bundle.read_bytes()
    assert "Redoc.init" in served["docs.js"].decode()

    # Revalidation: the ETag gives a 304 without the megabyte.
    r = requests.get(system.url + "/docs/redoc.standalone.js", timeout=30)
    again = requests.get(system.url + "/docs/redoc.standalone.js", headers={"If-None-Match": r.headers["ETag"]},
                         timeout=30)
    assert again.status_code == 304 and not again.content


def test_only_the_pages_files_are_served_under_docs(api):
    for path in ("/docs/MANIFEST.json", "/docs/vendor/MANIFEST.json", "/docs/docs.html",
                 "/docs/LICENSE", "/docs/", "/docs/%2e%2e%2fapp.py"):
        r = api.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert r.json() == {"ok": False, "message": "Not found"}
    r = api.post("/docs/docs.js", {})
    assert r.status_code == 405 and "GET" in r.headers["Allow"]
    assert r.json()["ok"] is False


def test_docs_is_in_the_openapi_document_as_html(api):
    doc = api.get("/openapi.json").json()
    content = doc["paths"]["/docs"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/html"]
