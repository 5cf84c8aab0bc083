"""The UI against an attacker: a page on another origin cannot act with the manager's session,
and nothing a worker or manager typed runs as code on any screen."""

from __future__ import annotations

import http.server
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.harness import Api, free_port

PAYLOADS = (
    '<img src=x onerror="window.__pwned=1">',
    '<script>window.__pwned=1</script>',
    '"><svg onload="window.__pwned=1">',
)


@pytest.fixture
def attacker_site(tmp_path: Path):
    """A page on another origin of the same host (another port: same site, so the manager's
    SameSite=Strict cookie still goes along — exactly what the Origin/Sec-Fetch-Site check is for)."""
    port = free_port()
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield tmp_path, f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()


def test_another_origin_cannot_change_state_with_the_managers_session(ui, ui_system, attacker_site):
    folder, origin = attacker_site
    victim = ui.new_manager()
    ui.login(victim.username)
    name = "csrf-" + uuid.uuid4().hex[:8]
    # A form post (no CORS preflight) whose text/plain body is the JSON the route parses.
    (folder / "post.html").write_text(f"""<!doctype html><html><body>
<form method="post" action="{ui_system.url}/project/create" enctype="text/plain">
<input type="hidden" name='{{"name": "{name}", "x": "' value='"}}'>
<button id="go" type="submit">win a prize</button></form></body></html>""")
    (folder / "promote.html").write_text(f"""<!doctype html><html><body>
<a id="go" href="{ui_system.url}/manager/promote/{victim.id}">a link</a></body></html>""")

    for page in ("post.html", "promote.html"):
        ui.driver.get(f"{origin}/{page}")
        ui.click("#go")
        ui.wait(lambda d: "Cross-origin request refused" in d.page_source)

    names = [p["name"] for p in ui_system.admin.get("/project/list").json()["content"]["projects"]]
    assert name not in names
    managers = ui_system.admin.get("/manager/list").json()["content"]["managers"]
    manager = next(m for m in managers if m["id"] == victim.id)
    assert manager["tracker_admin"] is False
    # the same session still works from the UI's own origin (the refusal was the origin, not the cookie)
    ui.open("#/account")
    ui.wait_text(victim.username, "#account-username")


def stored_payloads(system) -> dict:
    """A payload in every field a person types: project name, motd, version, repo and clone URL,
    secret, worker alias, recipe, log scope and message."""
    admin = system.admin
    tag = uuid.uuid4().hex[:6]
    mark = f"xss{tag}"
    r = admin.post("/project/create", {
        "name": f"{mark} {PAYLOADS[0]}", "motd": f"{mark} {PAYLOADS[1]}", "version": PAYLOADS[2],
        "git_repo": f'javascript:window.__pwned=1//{PAYLOADS[0]}', "clone_url": "javascript:window.__pwned=1",
        "public": True})
    assert r.status_code == 200, r.text
    pid = r.json()["content"]["id"]
    assert admin.post(f"/project/secret/{pid}", {"secret": PAYLOADS[0]}).status_code == 200
    worker = Api(system.url).new_worker(f"{mark} {PAYLOADS[0]}")
    assert worker.post("/project/request_access", {"project": pid, "assign": True, "submit": True}).status_code == 200
    assert admin.post(f"/project/accept_request/{pid}/{worker.id}").status_code == 200
    for payload in PAYLOADS:
        assert worker.post("/task/submit", {"project": pid, "recipe": f"{mark} {payload}"}).status_code == 200
    held = worker.get(f"/task/get/{pid}").json()["content"]["task"]
    for level in ("error", "warn", "info"):
        r = worker.post(f"/log/{level}", {"scope": f"{mark} {PAYLOADS[2]}", "message": f"{mark} {PAYLOADS[0]}",
                                          "timestamp": int(time.time())})
        assert r.status_code == 200, r.text
    return {"project": pid, "worker": worker.id, "task": held["id"], "mark": mark}


def test_nothing_typed_by_a_worker_or_manager_runs_on_any_screen(ui, ui_system):
    seeded = stored_payloads(ui_system)
    pid, mark = seeded["project"], seeded["mark"]
    ui.login_admin()
    screens = {
        "#/projects": True, f"#/project/{pid}": True, f"#/project/{pid}/edit": False,
        f"#/project/{pid}/permissions": True, f"#/project/{pid}/secrets": False, f"#/project/{pid}/tasks": True,
        f"#/task/{seeded['task']}": True, "#/workers": True, f"#/worker/{seeded['worker']}": True,
        "#/logs": True, "#/console": False, "#/account": False, "#/managers": False,
    }
    for screen, shows_mark in screens.items():
        ui.go(screen)
        if shows_mark:
            ui.wait_text(mark)
        if screen.endswith("/secrets"):
            ui.press("Show", within="#main")
        assert ui.stores_no_script_effect(), f"a stored payload ran on {screen}"
        assert not ui.driver.execute_script(
            "return [...document.querySelectorAll('#main img, #main svg:not([data-ui]), #main script')]"
            ".filter(e => !e.closest('canvas')).length"), f"a payload became an element on {screen}"
        assert not ui.driver.execute_script(
            "return [...document.querySelectorAll('#main a[href]')]"
            ".filter(a => /^javascript:/i.test(a.getAttribute('href'))).length"), f"a javascript: link on {screen}"
    assert ui.console_errors() == []
