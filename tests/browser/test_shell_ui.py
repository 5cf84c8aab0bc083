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
