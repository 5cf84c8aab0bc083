"""The project screens of the manager UI: the projects list, the dashboard, the create/edit form.

Each test drives the screen like a user and checks the outcome through the JSON API as well."""

from __future__ import annotations

import time
import uuid

from selenium.webdriver.support.ui import Select

from tests.browser.conftest import PHONE
from tests.harness import Api

XSS = '<img src=x onerror="window.__pwned=1">'


def _name(prefix: str = "p") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _create(owner: Api, **fields) -> int:
    r = owner.post("/project/create", {"name": _name(), **fields})
    assert r.status_code == 200, r.text
    return r.json()["content"]["id"]


def _submitter(owner: Api, url: str, pid: int) -> Api:
    """A worker with SUBMIT on the project, accepted by ``owner``."""
    worker = Api(url).new_worker("pj")
    assert worker.post("/project/request_access", {"project": pid, "assign": True, "submit": True}).status_code == 200
    assert owner.post(f"/project/accept_request/{pid}/{worker.id}").status_code == 200
    return worker


def _submit(worker: Api, pid: int, n: int) -> None:
    for i in range(n):
        r = worker.post("/task/submit", {"project": pid, "recipe": f"task {i} {uuid.uuid4().hex}"})
        assert r.status_code == 200, r.text


def _open_tasks(owner: Api, pid: int) -> int:
    rows = owner.get(f"/project/assignees/{pid}").json()["content"]["assignees"]
    return sum(r["task_count"] for r in rows)


def _until(check, timeout: float = 20.0):
    """Poll the API (not the page) until ``check()`` is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def _chart(ui, canvas_id: str):
    """(point count, newest y of the first dataset) of a Chart.js chart on the page."""
    return ui.driver.execute_script(
        "const c = window.Chart && Chart.getChart(document.getElementById(arguments[0]));"
        "if (!c) return null; const d = c.data.datasets[0].data;"
        "return [d.length, d.length ? d[d.length - 1].y : null];", canvas_id)


def _login(ui, username: str) -> None:
    """ui.login, after the login form is really there: ui.open to a hash of the page already
    loaded is an in-page navigation, and the previous screen counts as "ready" meanwhile."""
    ui.open("#/login")
    ui.find("form input[name=username]")
    ui.login(username)


def _error_of(ui, field: str) -> str:
    """The visible error text inside the form row of ``field`` (not elsewhere on the page)."""
    css = f'.field[data-field="{field}"] .field-error'
    ui.wait(lambda d: ui.find(css).is_displayed())
    return ui.find(css).text


def test_create_then_edit_a_project_with_server_errors_at_their_fields(ui, ui_system):
    manager = ui.new_manager()
    chain_target = _create(manager)
    taken = _name("taken")
    _create(manager, name=taken)
    _login(ui, manager.username)

    ui.press("New project")
    ui.wait_hash("#/project/new")
    ui.find("form.pj-form")
    assert ui.axe() == []
    name = _name("new")
    ui.type("Name", name)
    ui.type("Clone URL", "https://github.com/owner/repo.git")
    ui.type("Git repository", "owner/repo")
    ui.type("Version", "v1.2")
    ui.type("Message of the day", "hello workers")
    ui.type("Priority", "3")
    ui.type("Chain to project id", str(chain_target))
    ui.type("Assign rate (tasks/s)", "0.5")
    ui.type("Submit rate (tasks/s)", "2")
    ui.click("input[name=hidden]")
    assert not ui.all("input[name=paused]")  # paused is only on edit
    ui.press("Create project")
    ui.wait(lambda d: d.execute_script("return /^#\\/project\\/\\d+$/.test(location.hash)"))
    pid = int(ui.driver.execute_script("return location.hash").rsplit("/", 1)[1])
    ui.wait_text(name, "h1")
    ui.wait_text("owner/repo", "#pj-git")
    assert ui.find("#pj-git a").get_attribute("href") == "https://github.com/owner/repo"
    stored = manager.get(f"/project/get/{pid}").json()["content"]["project"]
    assert {k: stored[k] for k in ("name", "clone_url", "git_repo", "version", "motd", "priority", "chain",
                                   "assign_rate", "submit_rate", "public", "hidden", "paused")} == {
        "name": name, "clone_url": "https://github.com/owner/repo.git", "git_repo": "owner/repo", "version": "v1.2",
        "motd": "hello workers", "priority": 3, "chain": chain_target, "assign_rate": 0.5, "submit_rate": 2,
        "public": False, "hidden": True, "paused": False}

    # edit: motd and priority change, nothing else
    ui.press("Edit", within=".subnav")
    ui.wait_hash(f"#/project/{pid}/edit")
    ui.find("form.pj-form")
    ui.type("Message of the day", "new motd")
    ui.type("Priority", "7")
    ui.press("Save")
    ui.wait_hash(f"#/project/{pid}")
    ui.wait_text("new motd", "#pj-motd")
    stored = manager.get(f"/project/get/{pid}").json()["content"]["project"]
    assert (stored["motd"], stored["priority"], stored["name"], stored["hidden"]) == ("new motd", 7, name, True)

    # the server's validation errors, each in its own field's row
    ui.go(f"#/project/{pid}/edit")
    ui.find("form.pj-form input[name=name]")
    ui.type("Name", taken)
    ui.press("Save")
    assert "already taken" in _error_of(ui, "name")
    ui.type("Name", name)
    ui.type("Priority", "-1")
    ui.press("Save")
    assert "'priority'" in _error_of(ui, "priority")
    assert not ui.all('.field[data-field="name"] .field-error')[0].is_displayed()
    assert ui.find("input[name=priority]").get_attribute("aria-invalid") == "true"
    assert ui.driver.execute_script("return location.hash") == f"#/project/{pid}/edit"
    stored = manager.get(f"/project/get/{pid}").json()["content"]["project"]
    assert (stored["name"], stored["priority"]) == (name, 7)
    assert ui.axe() == []
    assert ui.console_errors() == []


def test_the_dashboard_draws_the_snapshots_taken_every_second(ui, ui_system):
    admin = ui_system.admin
    pid = _create(admin, public=True)
    worker = _submitter(admin, ui_system.url, pid)
    _submit(worker, pid, 3)

    def snapshots():
        now = int(time.time())
        r = admin.get(f"/project/monitoring-between/{pid}", params={"from": now - 3600, "to": now + 5})
        shots = r.json()["content"]["snapshots"]
        return len(shots) >= 2 and shots[0]["new_task_count"] == 3

    assert _until(snapshots), "the tracker took no snapshot with the 3 tasks"
    _login(ui, "uiadmin")
    ui.go(f"#/project/{pid}")
    ui.wait(lambda d: (_chart(ui, "pj-timeline") or [0, None])[0] >= 2, 20)
    ui.wait(lambda d: _chart(ui, "pj-timeline")[1] == 3, 20)
    count, newest = _chart(ui, "pj-timeline")
    assert count >= 2 and newest == 3
    # consecutive points are the 1 s snapshots (x is unix milliseconds)
    xs = ui.driver.execute_script(
        "return Chart.getChart(document.getElementById('pj-timeline')).data.datasets[0].data.map(p => p.x)")
    gaps = [b - a for a, b in zip(xs, xs[1:], strict=False)]
    assert gaps and all(gap > 0 for gap in gaps) and min(gaps) <= 3000, gaps
    ui.wait_text("new 3", "#pj-timeline-summary")
    assert ui.find('#pj-status-table [data-status="new"]').text == "3"
    # the status doughnut and the assignee bars are drawn too
    assert _chart(ui, "pj-status") is not None and _chart(ui, "pj-assignees") is not None
    # the range picker: last day reads monitoring-between again and keeps the points
    Select(ui.input("Time range")).select_by_value("day")
    ui.wait(lambda d: (_chart(ui, "pj-timeline") or [0])[0] >= count)
    assert ui.axe() == []
    assert ui.console_errors() == []


def test_hard_reset_asks_first_and_cancel_keeps_the_tasks(ui, ui_system):
    manager = ui.new_manager()
    name = _name("reset")
    pid = _create(manager, name=name)
    _submit(_submitter(manager, ui_system.url, pid), pid, 2)
    _login(ui, manager.username)
    ui.go(f"#/project/{pid}")
    ui.find("#pj-status-table")

    # pause and resume (not destructive: no confirmation)
    ui.press("Pause")
    ui.button("Resume")
    assert manager.get(f"/project/get/{pid}").json()["content"]["project"]["paused"] is True
    ui.press("Resume")
    ui.button("Pause")
    assert manager.get(f"/project/get/{pid}").json()["content"]["project"]["paused"] is False

    ui.press("Hard reset")
    ui.wait_text(name, "#confirm-text")
    ui.press("Cancel", within="#confirm")
    ui.wait(lambda d: not d.execute_script("return document.getElementById('confirm').open"))
    assert _open_tasks(manager, pid) == 2

    ui.press("Hard reset")
    ui.wait_text(name, "#confirm-text")
    ui.press("Hard reset", within="#confirm")
    ui.wait_text("2 tasks affected", "#toasts")
    assert _open_tasks(manager, pid) == 0
    assert ui.console_errors() == []


def test_the_live_refresh_shows_a_new_count_without_a_reload(ui, ui_system):
    admin = ui_system.admin
    pid = _create(admin, public=True, motd=XSS)
    worker = _submitter(admin, ui_system.url, pid)
    ui.open("#/projects")  # anonymous: a public project is listed with its counts
    cell = f'[data-project="{pid}"][data-count="new"]'
    ui.wait(lambda d: ui.find(cell).text == "0")
    Select(ui.input("Refresh", within=".bar")).select_by_value("2")
    ui.driver.execute_script("window.__marker = 1")
    _submit(worker, pid, 4)
    ui.wait(lambda d: ui.find(cell).text == "4", 25)
    assert ui.driver.execute_script("return window.__marker") == 1
    assert XSS in ui.text(f'[data-project="{pid}"][data-key="motd"]')
    assert ui.stores_no_script_effect()
    assert ui.find(f'[data-project="{pid}"][data-key="visibility"]').text == "public"
    assert ui.axe() == []
    assert ui.console_errors() == []


def test_projects_and_dashboard_fit_a_phone(ui, ui_system):
    admin = ui_system.admin
    pid = _create(admin, motd="a-long-message-of-the-day-without-any-space-" * 4,
                  clone_url="https://example.org/" + "x" * 120 + ".git")
    ui.driver.set_window_size(*PHONE)
    _login(ui, "uiadmin")

    def page_width() -> int:
        return ui.driver.execute_script("return document.documentElement.scrollWidth")

    width = ui.driver.execute_script("return window.innerWidth")
    ui.wait(lambda d: ui.all(f'[data-project="{pid}"][data-count="new"]'))
    assert page_width() <= width + 2
    ui.go(f"#/project/{pid}")
    ui.wait(lambda d: _chart(ui, "pj-timeline") is not None)
    assert page_width() <= width + 2
    assert ui.console_errors() == []
