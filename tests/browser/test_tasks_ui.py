"""The task and log screens of the manager UI: the task browser (#/project/<id>/tasks), one task
(#/task/<id>), the console (#/console) and the logs (#/logs). Each flow is checked on screen and
through the API."""

from __future__ import annotations

import time
import uuid

from selenium.webdriver.support.ui import Select

from tests.browser.conftest import PASSWORD, PHONE
from tests.harness import Api, assert_ok

XSS = '<img src=x onerror="window.__pwned=1">'


# --- set-up through the API ----------------------------------------------------------------------
def project_with_worker(ui) -> tuple[Api, int, Api]:
    """A new manager, a project of theirs and a worker granted ASSIGN and SUBMIT on it."""
    manager = ui.new_manager()
    name = f"tasks-ui {uuid.uuid4().hex[:8]} {XSS}"
    pid = assert_ok(manager.post("/project/create", {"name": name}))["content"]["id"]
    worker = Api(ui.system.url).new_worker("tasks-ui")
    assert_ok(worker.post("/project/request_access", {"project": pid, "assign": True, "submit": True}))
    assert_ok(manager.post(f"/project/accept_request/{pid}/{worker.id}"))
    return manager, pid, worker


def submit(worker: Api, pid: int, recipes: list[str]) -> None:
    body = assert_ok(worker.post("/task/bulk_submit", {"requests": [{"project": pid, "recipe": r} for r in recipes]}))
    assert body["content"]["submitted"] == len(recipes)


def all_tasks(manager: Api, pid: int, **query) -> list[dict]:
    return assert_ok(manager.get(f"/project/tasks/{pid}", params={"limit": 500, **query}))["content"]["tasks"]


def fail_one(worker: Api, pid: int) -> int:
    """The worker takes the next task and releases it as failed (max_retries 0: it ends FAILED)."""
    task = assert_ok(worker.get(f"/task/get/{pid}"))["content"]["task"]
    assert assert_ok(worker.post("/task/release", {"task_id": task["id"], "result": 1}))["content"]["updated"] is True
    return task["id"]


def login(ui, username: str) -> None:
    """ui.login, waiting for the login form itself: opening #/login from /ui/ is a hash change, and
    the screen that was there still matches ui.open's readiness check for a moment."""
    ui.open("#/login")
    ui.wait(lambda d: d.execute_script("return !!document.querySelector('#main input[name=username]')"))
    ui.type("Username", username)
    ui.type("Password", PASSWORD)
    ui.click("form button[type=submit]")
    ui.wait_hash("#/projects")


# --- reading the screen --------------------------------------------------------------------------
def listed(ui) -> list[int]:
    """The task ids of the listing's rows, in order (read in one script: no stale elements)."""
    return ui.driver.execute_script(
        "return [...document.querySelectorAll('#main tr[data-task-id]')].map(r => Number(r.dataset.taskId))")


def wait_listed(ui, expected: list[int]) -> None:
    try:
        ui.wait(lambda d: listed(ui) == expected)
    except Exception:
        raise AssertionError(f"the listing shows {listed(ui)}, not {expected}") from None


def confirm(ui, *words: str) -> None:
    ui.find("#confirm[open]")
    text = ui.text("#confirm-text")
    for word in words:
        assert word in text, text
    ui.click("#confirm-ok")


def log_rows(ui) -> list[str]:
    return ui.driver.execute_script(
        "return [...document.querySelectorAll('#main .log-rows tbody tr')].map(r => r.innerText)")


# --- the flows -----------------------------------------------------------------------------------
def test_find_a_task_by_recipe_then_retry_a_failed_one(ui):
    manager, pid, worker = project_with_worker(ui)
    token = "needle-" + uuid.uuid4().hex[:8]
    submit(worker, pid, [f"haystack {i}" for i in range(14)] + [f"{{\"job\": \"{token}\"}} {XSS}"]
           + [f"haystack {i}" for i in range(14, 29)])
    tasks = all_tasks(manager, pid)
    wanted = next(t["id"] for t in tasks if token in t["recipe"])
    failed = fail_one(worker, pid)  # the first task (lowest id)

    login(ui, manager.username)
    ui.go(f"#/project/{pid}/tasks")
    wait_listed(ui, [t["id"] for t in tasks])
    ui.type("Recipe contains", token.upper())  # the search ignores case
    ui.press("Apply")
    wait_listed(ui, [wanted])
    ui.wait_text(XSS, "#main td.recipe")  # the recipe is shown as text
    assert "q=" in ui.driver.execute_script("return location.hash")
    assert ui.axe() == []

    # the failed task: filter, select, retry
    ui.type("Recipe contains", "")
    Select(ui.input("Status")).select_by_value("failed")
    ui.press("Apply")
    wait_listed(ui, [failed])
    assert "status=failed" in ui.driver.execute_script("return location.hash")
    ui.click(f"#tasks-{pid}-sel-{failed}")
    ui.wait_text("1 task selected")
    ui.press("Retry")
    confirm(ui, "Retry", "1 selected task", "tasks-ui")
    ui.wait_text("1 task affected", "#toasts")
    wait_listed(ui, [])
    got = assert_ok(worker.get(f"/task/get/{pid}"))["content"]["task"]
    assert got["id"] == failed and got["retries"] == 0
    assert ui.stores_no_script_effect()
    assert ui.console_errors() == []


def test_paging_both_ways_and_newest_first(ui):
    manager, pid, worker = project_with_worker(ui)
    submit(worker, pid, [f"page task {i}" for i in range(120)])
    ids = [t["id"] for t in all_tasks(manager, pid)]
    assert len(ids) == 120

    login(ui, manager.username)
    ui.go(f"#/project/{pid}/tasks")
    wait_listed(ui, ids[:50])
    shown = []
    for expected in (ids[50:100], ids[100:]):
        ui.press("Next")
        wait_listed(ui, expected)
        shown += expected
    assert not ui.button("Previous").get_attribute("disabled")
    ui.wait(lambda d: ui.driver.execute_script(
        "return [...document.querySelectorAll('#main .tk-pager button')].find(b => b.textContent === 'Next').disabled"))
    ui.press("Previous")
    wait_listed(ui, ids[50:100])
    assert len(set(ids[:50] + shown)) == 120  # three pages, every task once

    Select(ui.input("Order")).select_by_value("desc")
    ui.press("Apply")
    newest = ids[::-1]
    wait_listed(ui, newest[:50])
    ui.press("Next")
    wait_listed(ui, newest[50:100])
    ui.press("Previous")
    wait_listed(ui, newest[:50])
    assert "order=desc" in ui.driver.execute_script("return location.hash")
    assert ui.console_errors() == []


def test_set_priority_on_every_task_matching_the_filter(ui):
    manager, pid, worker = project_with_worker(ui)
    submit(worker, pid, [f"alpha {i}" for i in range(30)] + [f"beta {i}" for i in range(10)])
    alpha = [t["id"] for t in all_tasks(manager, pid, q="alpha")]
    assert len(alpha) == 30

    login(ui, manager.username)
    ui.open(f"#/project/{pid}/tasks?q=alpha&limit=20")  # a bookmarked view
    wait_listed(ui, alpha[:20])
    ui.press("Select all matching the filter")
    ui.wait_text("Every task matching the filter is selected")
    ui.type("New priority", "7")
    ui.press("Set priority")
    confirm(ui, "every task matching the filter", 'recipe contains "alpha"', "tasks-ui")
    ui.wait_text("30 tasks affected", "#toasts")

    rows = all_tasks(manager, pid)
    assert {t["id"] for t in rows if t["priority"] == 7} == set(alpha)
    assert all(t["priority"] == 0 for t in rows if "beta" in t["recipe"])
    assert ui.console_errors() == []


def test_edit_a_failed_task_and_retry_it(ui):
    manager, pid, worker = project_with_worker(ui)
    submit(worker, pid, ["old recipe"])
    tid = fail_one(worker, pid)

    login(ui, manager.username)
    ui.go(f"#/task/{tid}")
    ui.wait_text("failed")
    ui.wait_text("old recipe", "pre.task-recipe")
    assert ui.axe() == []
    new_recipe = f'{{"fixed": true}}\n  {XSS}'
    ui.type("Recipe", new_recipe)
    ui.input("Retry after saving (status NEW, retries 0, unassigned)").click()
    ui.press("Save")
    ui.wait_text("Task saved and retried", "#toasts")
    ui.wait_text(XSS, "pre.task-recipe")

    task = assert_ok(manager.get(f"/task/view/{tid}"))["content"]["task"]
    assert task["recipe"] == new_recipe.replace("\r\n", "\n")
    assert task["status"] == 1 and task["retries"] == 0
    assert ui.stores_no_script_effect()
    assert ui.console_errors() == []


def test_console_submits_a_task_with_a_worker_made_there(ui):
    manager, pid, _ = project_with_worker(ui)
    ui.open("#/console")  # no manager session: the console is the worker's
    ui.wait_text("Alias for a new worker")
    ui.type("Alias for a new worker", "console worker")
    ui.press("Create a worker")
    ui.wait_text("shown only this once")
    wid, secret = ui.input("Worker id").get_attribute("value"), ui.input("Worker secret").get_attribute("value")
    assert ui.input("Worker secret").get_attribute("type") == "password"
    stored = ui.driver.execute_script("return JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")
    assert secret not in stored
    console_worker = Api(ui.system.url, {"X-Worker-ID": wid, "X-Secret": secret})
    assert_ok(console_worker.post("/project/request_access", {"project": pid, "submit": True}))
    assert_ok(manager.post(f"/project/accept_request/{pid}/{wid}"))

    Select(ui.input("Project")).select_by_value(str(pid))
    ui.type("Recipe", "by hand")
    ui.type("Priority", "40000")  # out of range: the server's message lands at the field
    ui.press("Submit task")
    ui.wait_text("priority", "[data-field=priority] .field-error")
    ui.type("Priority", "5")
    ui.type("Hash64", str(2**64 - 1))  # the unsigned spelling of -1, sent exactly
    ui.press("Submit task")
    ui.wait_text("submitted", ".submit-result")
    assert ui.axe() == []

    rows = all_tasks(manager, pid)
    assert [(t["recipe"], t["priority"], t["hash64"]) for t in rows] == [("by hand", 5, -1)]
    assert ui.console_errors() == []


def test_logs_filtered_by_level_and_text(ui):
    worker = Api(ui.system.url).new_worker("logger")
    token = "tok" + uuid.uuid4().hex[:8]
    now = int(time.time())
    entries = [("info", f"info {token}"), ("warn", f"warn {token}\n  indented {XSS}"),
               ("error", f"error {token}"), ("error", "error without the token"), ("info", f"second info {token}")]
    for level, message in entries:
        assert_ok(worker.post(f"/log/{level}", {"scope": "ui-test", "message": message, "timestamp": now}))
    stored = assert_ok(Api(ui.system.url).post("/logs", {"level": 3, "since": now - 10}))["content"]["logs"]
    assert any(e["message"] == f"error {token}" for e in stored)

    ui.open("#/logs")
    ui.wait_text("Message contains")
    Select(ui.input("Level")).select_by_visible_text("WARN")
    Select(ui.input("Mode")).select_by_visible_text("at least")
    ui.type("Message contains", token.upper())
    ui.press("Apply")
    ui.wait(lambda d: len(log_rows(ui)) == 2)
    rows = log_rows(ui)
    assert any("ERROR" in r and f"error {token}" in r for r in rows), rows
    assert any("WARN" in r and XSS in r for r in rows), rows
    assert not any("INFO" in r for r in rows)
    assert "ui-test" in rows[0] and str(worker.id) in rows[0]
    assert ui.axe() == []

    Select(ui.input("Level")).select_by_visible_text("INFO")
    Select(ui.input("Mode")).select_by_visible_text("exactly")
    ui.press("Apply")
    ui.wait(lambda d: len(log_rows(ui)) == 2 and all("INFO" in r for r in log_rows(ui)))
    assert "mode=exactly" in ui.driver.execute_script("return location.hash")
    assert ui.stores_no_script_effect()
    assert ui.console_errors() == []


def test_task_browser_fits_a_phone(ui):
    manager, pid, worker = project_with_worker(ui)
    submit(worker, pid, ["x" * 400, "short"])
    login(ui, manager.username)
    ui.driver.set_window_size(*PHONE)
    ui.go(f"#/project/{pid}/tasks")
    ui.wait(lambda d: len(listed(ui)) == 2)
    overflow = ui.driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than the phone"
    assert ui.axe() == []
    assert ui.console_errors() == []

