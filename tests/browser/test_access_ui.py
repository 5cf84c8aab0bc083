"""The access and people screens of the manager UI: permissions (worker requests, manager roles),
secrets and the webhook, workers (chart, pause), one worker, managers (promote / demote).
Each test drives the screen like a user and checks the outcome through the API too."""

from __future__ import annotations

import uuid

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from tests.browser.conftest import PASSWORD, PHONE, Ui, new_driver
from tests.harness import Api


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_project(admin: Api, **fields) -> tuple[int, str]:
    name = unique("access")
    r = admin.post("/project/create", {"name": name, "public": False, **fields})
    assert r.status_code == 200, r.text
    return r.json()["content"]["id"], name


def submit_task(system, admin: Api, pid: int, recipe: str) -> None:
    """A task in the project, submitted by a worker the admin granted SUBMIT through the API."""
    submitter = Api(system.url).new_worker(unique("submitter"))
    r = submitter.post("/project/request_access", {"project": pid, "assign": False, "submit": True})
    assert r.status_code == 200, r.text
    assert admin.post(f"/project/accept_request/{pid}/{submitter.id}").status_code == 200
    r = submitter.post("/task/submit", {"project": pid, "recipe": recipe})
    assert r.status_code == 200, r.text


def access_of(admin: Api, pid: int, worker_id: int) -> dict | None:
    r = admin.get(f"/project/access_list/{pid}")
    assert r.status_code == 200, r.text
    return next((a for a in r.json()["content"]["accesses"] if a["worker"]["id"] == worker_id), None)


def confirm(ui: Ui, names: str) -> None:
    ui.wait_text(names, "#confirm-text")
    ui.click("#confirm-ok")


def wait_button(ui: Ui, text: str, within: str):
    """The enabled button ``text`` inside ``within``, found afresh on every poll: the screens redraw
    a row when its data changes, which makes an element found before the change stale."""
    def find(driver):
        try:
            return next((b for b in driver.find_elements(By.CSS_SELECTOR, f"{within} button")
                         if b.text.strip() == text and b.is_displayed() and b.is_enabled()), None)
        except StaleElementReferenceException:
            return None
    return ui.wait(find)


def press(ui: Ui, text: str, within: str) -> None:
    """Press a row's button from the keyboard (Enter), as a keyboard user would; a mouse click could
    land on a toast of the previous action, which sits over the bottom right of the window."""
    wait_button(ui, text, within).send_keys(Keys.ENTER)


def _text(driver, css: str) -> str:
    try:
        return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, css))
    except StaleElementReferenceException:  # redrawn between the find and the read: poll again
        return ""


def wait_shown(ui: Ui, text: str, css: str) -> None:
    """``ui.wait_text`` for regions the screen redraws while we wait."""
    ui.wait(lambda d: text in _text(d, css))


def wait_not_shown(ui: Ui, text: str, css: str) -> None:
    ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, css) and text not in _text(d, css))


def no_overflow(ui: Ui) -> bool:
    return ui.driver.execute_script(
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_a_manager_accepts_a_workers_request_and_its_get_succeeds(ui, ui_system):
    admin = ui_system.admin
    pid, name = new_project(admin)
    submit_task(ui_system, admin, pid, "accept-me")
    worker = Api(ui_system.url).new_worker(unique("applicant"))
    r = worker.post("/project/request_access", {"project": pid, "assign": True, "submit": False})
    assert r.status_code == 200, r.text
    assert worker.get(f"/task/get/{pid}").status_code == 403  # pending grants nothing

    ui.login_admin()
    ui.go(f"#/project/{pid}/permissions")
    row = f"#acc-access tr[data-worker-id='{worker.id}']"
    wait_shown(ui, "pending", row)
    assert ui.axe() == []
    press(ui, "Accept", row)
    wait_shown(ui, "granted", row)
    assert access_of(admin, pid, worker.id)["request"] is False
    r = worker.get(f"/task/get/{pid}")
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    assert r.json()["content"]["task"]["recipe"] == "accept-me"

    # revoking asks first, naming the worker and the project
    press(ui, "Revoke", row)
    confirm(ui, name)
    ui.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, row))
    assert access_of(admin, pid, worker.id) is None
    assert worker.get(f"/task/get/{pid}").status_code == 403
    assert ui.console_errors() == []


def test_promote_and_demote_a_manager(ui, ui_system):
    admin = ui_system.admin
    other = ui.new_manager()
    ui.login_admin()
    ui.go("#/managers")
    row = f"tr[data-manager-id='{other.id}']"
    wait_shown(ui, other.username, row)
    assert ui.axe() == []
    # the admin's own row offers neither button
    own = f"tr[data-manager-id='{admin.id}']"
    wait_shown(ui, "You cannot change your own admin flag", own)
    assert ui.all(f"{own} button") == []

    def is_admin() -> bool:
        managers = admin.get("/manager/list").json()["content"]["managers"]
        return next(m for m in managers if m["id"] == other.id)["tracker_admin"]

    press(ui, "Promote", row)
    confirm(ui, other.username)
    wait_button(ui, "Demote", row)
    wait_shown(ui, "yes", row)
    assert is_admin() is True
    press(ui, "Demote", row)
    wait_button(ui, "Promote", row)
    assert is_admin() is False
    assert ui.console_errors() == []


def test_manager_roles_on_a_project(ui, ui_system):
    admin = ui_system.admin
    pid, _ = new_project(admin)
    other, third = ui.new_manager(), ui.new_manager()
    ui.login_admin()
    Select(ui.find("#refresh")).select_by_value("2")
    ui.go(f"#/project/{pid}/permissions")
    form = "#acc-add-form"
    ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, f"#acc-add-manager option[value='{other.id}']"))
    Select(ui.input("Manager", within=form)).select_by_value(str(other.id))
    ui.input("READ", within=form).click()
    ui.input("EDIT", within=form).click()
    ui.press("Add manager", within=form)
    row = f"#acc-roles tr[data-manager-id='{other.id}']"
    wait_shown(ui, other.username, row)

    def role_of(manager_id: int) -> int | None:
        managers = admin.get(f"/manager/list_for_project/{pid}").json()["content"]["managers"]
        return next((m["role"] for m in managers if m["manager"]["id"] == manager_id), None)

    assert role_of(other.id) == 3
    assert ui.axe() == []

    # an unsaved tick survives the live refresh (which shows a role given meanwhile through the API)
    ui.input("MAINTENANCE", within=row).click()
    wait_shown(ui, "unsaved", row)
    r = admin.post(f"/manager/set_role_for_project/{pid}", {"manager": third.id, "role": 1})
    assert r.status_code == 200, r.text
    wait_shown(ui, third.username, "#acc-roles")
    assert ui.input("MAINTENANCE", within=row).is_selected()
    assert role_of(other.id) == 3
    press(ui, "Save", row)
    wait_not_shown(ui, "unsaved", row)
    assert role_of(other.id) == 3 | 16
    assert ui.console_errors() == []


def test_a_refused_role_change_is_shown_as_a_toast(ui, ui_system):
    manager = ui.new_manager()
    r = manager.post("/project/create", {"name": unique("own")})
    pid = r.json()["content"]["id"]
    ui.login(manager.username, PASSWORD)
    ui.go(f"#/project/{pid}/permissions")
    row = f"#acc-roles tr[data-manager-id='{manager.id}']"
    ui.input("SECRET", within=row).click()
    press(ui, "Save", row)
    ui.wait_text("You cannot change your own role", "#toasts")
    roles = manager.get(f"/manager/list_for_project/{pid}").json()["content"]["managers"]
    assert [m["role"] for m in roles if m["manager"]["id"] == manager.id] == [31]


def test_show_and_edit_secrets(ui, ui_system):
    admin = ui_system.admin
    pid, _ = new_project(admin, git_repo="owner/repo")
    hook = admin.get(f"/project/webhook_secret/{pid}").json()["content"]["webhook_secret"]
    ui.login_admin()
    ui.go(f"#/project/{pid}/secrets")
    assert ui.text("#acc-hook-url") == ui_system.url + "/git/receivehook"
    assert hook not in ui.text()  # hidden until asked for
    assert ui.axe() == []

    webhook = "[data-secret='webhook-secret']"
    press(ui, "Show", webhook)
    ui.wait(lambda d: d.find_element(By.ID, "acc-webhook-secret-value").get_attribute("value") == hook)
    # a value the server refuses is shown at its field, and nothing changes
    press(ui, "Edit", webhook)
    ui.find("#acc-webhook-secret-input")
    ui.type("New webhook secret", "short")
    press(ui, "Save", webhook)
    ui.wait_text("webhook_secret", "#acc-webhook-secret-input-error")
    assert admin.get(f"/project/webhook_secret/{pid}").json()["content"]["webhook_secret"] == hook

    project = "[data-secret='project-secret']"
    new_secret = '{"token": "' + uuid.uuid4().hex + '"}'
    press(ui, "Edit", project)
    ui.find("#acc-project-secret-input")
    ui.type("New project secret", new_secret)
    press(ui, "Save", project)
    ui.wait(lambda d: d.find_element(By.ID, "acc-project-secret-value").get_attribute("value") == new_secret)
    assert admin.get(f"/project/secret/{pid}").json()["content"]["secret"] == new_secret
    assert ui.axe() == []
    assert ui.console_errors() == []


def test_pause_a_worker_from_the_workers_screen(ui, ui_system):
    admin = ui_system.admin
    pid, _ = new_project(admin, public=True)
    submit_task(ui_system, admin, pid, "pause-me")
    alias = unique("pausable")
    worker = Api(ui_system.url).new_worker(alias)
    ui.login_admin()
    Select(ui.find("#refresh")).select_by_value("2")
    ui.go("#/workers")
    row = f"tr[data-worker-id='{worker.id}']"
    wait_shown(ui, alias, row)
    assert ui.driver.execute_script("return !!Chart.getChart(document.querySelector('#main canvas'))")
    assert ui.axe() == []

    press(ui, "Pause", row)
    wait_shown(ui, "paused", row)
    r = worker.get(f"/task/get/{pid}")
    assert r.status_code == 400 and r.json()["message"] == "A manager has paused you", r.text
    assert worker.get(f"/worker/get/{worker.id}").json()["content"]["worker"]["paused"] is True
    press(ui, "Unpause", row)
    wait_shown(ui, "active", row)
    r = worker.get(f"/task/get/{pid}")
    assert r.status_code == 200 and r.json()["ok"] is True, r.text

    # closing the task puts the worker in the chart on the next live refresh, with no reload
    task = r.json()["content"]["task"]
    assert worker.post("/task/release", {"task_id": task["id"], "result": 0}).json()["content"]["updated"] is True
    ui.driver.execute_script("window.__same_page = true")
    ui.wait(lambda d: alias in d.find_element(By.ID, "acc-workers-chart-text").get_attribute("textContent"))
    assert ui.driver.execute_script("return window.__same_page === true")
    drawn = ui.driver.execute_script("""
        const canvas = document.querySelector('#main canvas');
        return {width: canvas.clientWidth, labels: Chart.getChart(canvas).data.labels};""")
    assert drawn["width"] > 0 and any(alias in label for label in drawn["labels"]), drawn

    ui.click(f"{row} a")
    ui.wait_hash(f"#/worker/{worker.id}")
    ui.wait_text(f"Worker {alias}", "h1")
    ui.wait_text("Closed tasks", "#acc-worker-facts")
    assert ui.axe() == []
    assert ui.console_errors() == []


def test_permissions_at_phone_width_show_typed_text_as_text(ui, ui_system):
    admin = ui_system.admin
    pid, _ = new_project(admin)
    payload = '<img src=x onerror="window.__pwned=1">'
    worker = Api(ui_system.url).new_worker(payload)
    assert worker.post("/project/request_access", {"project": pid, "assign": True, "submit": True}).status_code == 200
    ui.driver.set_window_size(*PHONE)
    ui.login_admin()
    ui.go(f"#/project/{pid}/permissions")
    wait_shown(ui, payload, f"#acc-access tr[data-worker-id='{worker.id}']")
    ui.wait_text("uiadmin", "#acc-roles")
    assert no_overflow(ui)
    assert ui.stores_no_script_effect()
    assert ui.axe() == []
    ui.go("#/workers")
    wait_shown(ui, payload, f"tr[data-worker-id='{worker.id}']")
    assert no_overflow(ui)
    assert ui.stores_no_script_effect()
    assert ui.console_errors() == []


def test_every_access_screen_in_dark_mode(ui_system):
    """axe (colour contrast included) on each screen of this part with the dark theme."""
    admin = ui_system.admin
    pid, _ = new_project(admin)
    worker = Api(ui_system.url).new_worker(unique("dark"))
    worker.post("/project/request_access", {"project": pid, "assign": True, "submit": False})
    driver = new_driver(1440, 1000, dark=True)
    try:
        dark = Ui(driver, ui_system)
        dark.login_admin()
        assert driver.execute_script("return matchMedia('(prefers-color-scheme: dark)').matches")
        screens = [(f"#/project/{pid}/permissions", "pending"), (f"#/project/{pid}/secrets", "Git webhook"),
                   ("#/workers", "All workers"), (f"#/worker/{worker.id}", "Closed tasks"), ("#/managers", "uiadmin")]
        for hash_path, text in screens:
            dark.go(hash_path)
            dark.wait_text(text)
            if "secrets" in hash_path:
                dark.press("Show", within="[data-secret='project-secret']")
                dark.find("#acc-project-secret-value")
            assert dark.axe() == [], hash_path
        assert dark.console_errors() == []
    finally:
        driver.quit()

