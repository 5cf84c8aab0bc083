"""docs/API.md describes exactly the routes the gateway serves.

A route is documented by a Markdown heading made of code spans of the form `` `METHOD /path` ``
(path parameters as in the OpenAPI document, ``{id}``), e.g. ``#### `POST /task/submit` `` — one
heading may name several routes (``/log/*``). Headings inside fenced code blocks do not count.
The served routes are the operations of the OpenAPI document, which tests/test_openapi.py proves to
be exactly the routes the gateway wires; it is built in-process here (the same ``build()`` the gateway
serves at /openapi.json), so this check needs no running system.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "API.md"
METHODS = ("get", "post", "put", "patch", "delete", "head", "options", "trace")
HEADING = re.compile(r"^#{1,6}\s")
CODE_SPAN = re.compile(r"`([^`]+)`")
ROUTE = re.compile(r"(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|TRACE) (/\S*)")
FENCE = re.compile(r"^\s*(```|~~~)")


def documented_routes(markdown: str) -> list[tuple[str, str]]:
    """Every (method, path) named by a route heading, in order, repeats included."""
    found, fenced = [], False
    for line in markdown.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced or not HEADING.match(line):
            continue
        for span in CODE_SPAN.findall(line):
            m = ROUTE.fullmatch(span.strip())
            if m:
                found.append((m.group(1), m.group(2)))
    return found


@pytest.fixture(scope="module")
def served() -> set[tuple[str, str]]:
    from gateway.openapi import build

    doc = build()
    return {(m.upper(), path) for path, item in doc["paths"].items() for m in item if m in METHODS}


def test_every_served_route_is_documented_and_nothing_else(served):
    documented = documented_routes(DOC.read_text(encoding="utf-8"))
    missing = sorted(served - set(documented))
    unknown = sorted(set(documented) - served)
    assert not missing, f"routes the gateway serves but docs/API.md has no heading for: {missing}"
    assert not unknown, f"docs/API.md documents routes the gateway does not serve: {unknown}"
    repeated = sorted(r for r, n in Counter(documented).items() if n > 1)
    assert not repeated, f"routes with more than one heading in docs/API.md: {repeated}"


def test_the_heading_parser_reads_the_documented_format():
    """The parser the check above relies on: headings only, several routes per heading, no code blocks."""
    text = "\n".join([
        "### `POST /task/submit`",
        "#### `POST /log/trace` · `POST /log/info`",
        "Prose naming `GET /not/a/heading` does not count.",
        "### The `Idempotency-Key` header",
        "```bash",
        "# `GET /inside/a/fence`",
        "```",
        "## `GET /project/get/{id}`",
    ])
    assert documented_routes(text) == [("POST", "/task/submit"), ("POST", "/log/trace"), ("POST", "/log/info"),
                                       ("GET", "/project/get/{id}")]


def test_readme_points_to_the_repository_docs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "../shared" not in readme  # a clone has no ../shared
    assert "(docs/API.md" in readme
    for anchor in re.findall(r"\(docs/API\.md#([\w-]+)\)", readme):
        assert anchor in github_anchors(DOC.read_text(encoding="utf-8")), f"README links to a missing #{anchor}"


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for line in markdown.splitlines():
        if HEADING.match(line):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


def test_internal_links_of_the_doc_resolve():
    text = DOC.read_text(encoding="utf-8")
    anchors = github_anchors(text)
    broken = sorted({a for a in re.findall(r"\]\(#([\w-]+)\)", text) if a not in anchors})
    assert not broken, f"docs/API.md links to headings that do not exist: {broken}"
