"""``/ui/`` as the gateway serves it (gateway/ui.py), in-process: which files, with which headers,
and what a browser asking ``/`` for HTML gets. The screens themselves are tested in a real browser
(tests/browser)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

from gateway import ui
from tests.unit.test_gateway import FakeRpc, make_client

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
def client():
    return make_client(FakeRpc())


def csp(header: str) -> dict[str, list[str]]:
    return {words[0]: words[1:] for words in (part.split() for part in header.split(";")) if words}


def test_the_page_is_served_with_a_strict_policy(client):
    r = client.simulate_get("/ui/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    policy = csp(r.headers["content-security-policy"])
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]  # no inline, no eval
    assert policy["default-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["connect-src"] == ["'self'"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"


def test_ui_redirects_to_the_page_and_unknown_files_are_the_json_404(client):
    r = client.simulate_get("/ui")
    assert r.status_code == 302 and r.headers["location"].endswith("/ui/")
    for path in ("/ui/nope.js", "/ui/../tracker/settings.py", "/ui/vendor/MANIFEST.json", "/ui/js/"):
        r = client.simulate_get(path)
        assert r.status_code == 404 and r.json == {"ok": False, "message": "Not found"}, path
    assert client.simulate_post("/ui/js/app.js").status_code == 405


def test_every_file_the_page_refers_to_is_served_with_its_type_and_an_etag(client):
    class Refs(HTMLParser):
        def __init__(self):
            super().__init__()
            self.urls, self.inline = [], []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            self.urls += [attrs[k] for k in ("src", "href") if attrs.get(k)]
            if (tag == "script" and not attrs.get("src")) or "style" in attrs or any(a.startswith("on") for a in attrs):
                self.inline.append(tag)

    page = client.simulate_get("/ui/")
    refs = Refs()
    refs.feed(page.text)
    assert not refs.inline, refs.inline
    served = 0
    for url in refs.urls:
        if url.startswith(("data:", "#")):
            continue
        absolute = urlsplit(urljoin("http://gw.example/ui/", url))
        assert absolute.netloc == "gw.example", url  # same origin only
        if not absolute.path.startswith("/ui/"):
            continue  # /docs, the API reference
        r = client.simulate_get(absolute.path)
        assert r.status_code == 200, url
        kind = r.headers["content-type"]
        assert kind.startswith("text/javascript" if url.endswith(".js") else "text/css"), (url, kind)
        assert r.headers["etag"] and r.headers["content-security-policy"]
        again = client.simulate_get(absolute.path, headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and not again.content
        served += 1
    assert served >= 4  # styles, Chart.js, the app module


def test_every_module_import_resolves_to_a_served_file(client):
    """The ES modules import each other by relative URL: each import must be a served file."""
    pattern = re.compile(r"""(?:import\s[^'"]*from\s*|import\s*\(\s*)["'](\.{1,2}/[^"']+)["']""")
    for name in [n for n in ui.FILES if n.endswith(".js") and n.startswith("js/")]:
        text = client.simulate_get("/ui/" + name).text
        for target in pattern.findall(text):
            path = urlsplit(urljoin("http://gw.example/ui/" + name, target)).path
            assert client.simulate_get(path).status_code == 200, f"{name} imports {target}"


def test_no_script_writes_html_from_data():
    """Text a user typed is shown as text: no module uses innerHTML & co. or eval."""
    banned = re.compile(r"\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(")
    for name, relative in ui.FILES.items():
        if name.startswith("js/"):
            text = (ui.STATIC / relative).read_text()
            assert not banned.search(text), f"{name}: {banned.search(text).group(0)}"


def test_a_browser_asking_for_html_at_the_root_is_sent_to_the_ui(client):
    r = client.simulate_get("/", headers={"Accept": BROWSER_ACCEPT})
    assert r.status_code == 303 and r.headers["location"].endswith("/ui/")
    for accept in (None, "*/*", "application/json", "application/json, text/html;q=0.5"):
        r = client.simulate_get("/", headers={"Accept": accept} if accept else {})
        assert r.status_code == 200 and r.json["ok"] is True, accept
