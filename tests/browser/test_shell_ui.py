"""The UI's shell: served under /ui/ with its security headers, log in / register / log out."""

from __future__ import annotations

import uuid

import requests

from tests.browser.conftest import PASSWORD


def test_register_then_log_out_then_log_in(ui):
    username = "u" + uuid.uuid4().hex[:10]
    ui.open("#/login")
    ui.press("Register", within=".tabs")
    ui.type("Username", username)
    ui.type("Password", PASSWORD)
    ui.click("form button[type=submit]")
    ui.wait_hash("#/projects")
    ui.wait_text(username, "#nav")
    ui.go("#/account")
    ui.wait_text(username, "#account-username")
    ui.press("Log out")
    ui.wait_hash("#/login")
    ui.wait_text("Log in", "#nav")
    # the session is gone on the server too: /account answers 401 with the browser's cookies
    cookies = {c["name"]: c["value"] for c in ui.driver.get_cookies()}
    assert requests.get(ui.system.url + "/account", cookies=cookies, timeout=10).status_code == 401
    ui.login(username)
    ui.wait_text(username, "#nav")
    assert ui.console_errors() == []


def test_a_wrong_password_is_shown_and_nothing_else_happens(ui):
    manager = ui.new_manager()
    ui.open("#/login")
    ui.type("Username", manager.username)
    ui.type("Password", "not-the-password")
    ui.click("form button[type=submit]")
    ui.wait_text("Invalid username/password")
    assert ui.driver.execute_script("return location.hash").startswith("#/login")


def test_a_manager_screen_sends_a_visitor_to_log_in_and_back(ui):
    manager = ui.new_manager()
    ui.open("#/account")
    ui.wait_hash("#/login")
    ui.type("Username", manager.username)
    ui.type("Password", PASSWORD)
    ui.click("form button[type=submit]")
    ui.wait_hash("#/account")
    ui.wait_text(manager.username, "#account-username")


def test_the_keyboard_alone_logs_in_and_reaches_every_screen_of_the_bar(ui):
    """No mouse: Tab to the fields, Enter submits; the navigation bar's links take the focus in order."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    manager = ui.new_manager()
    ui.open("#/login")
    focused = lambda: ui.driver.switch_to.active_element  # noqa: E731
    assert focused().get_attribute("name") == "username"  # the form takes the focus when it opens
    focused().send_keys(manager.username, Keys.TAB)
    assert focused().get_attribute("name") == "password"
    focused().send_keys(PASSWORD, Keys.ENTER)
    ui.wait_hash("#/projects")
    ui.wait_text(manager.username, "#nav")
    ui.driver.execute_script("document.querySelector('.skip').focus()")  # the page's first stop
    assert focused().text == "" or "Skip" in focused().get_attribute("textContent")
    seen = []
    for _ in range(12):
        ActionChains(ui.driver).send_keys(Keys.TAB).perform()
        element = focused()
        if element.get_attribute("href") and "#/" in element.get_attribute("href"):
            seen.append(element.get_attribute("href").split("#", 1)[1])
    for route in ("/projects", "/workers", "/logs", "/console", "/managers", "/account"):
        assert route in seen, seen
    visible = ui.driver.execute_script(
        "return getComputedStyle(document.activeElement).outlineStyle !== 'none'")
    assert visible  # focus is shown
