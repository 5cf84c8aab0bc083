"""Browser tests of the manager UI (``/ui/``): Debian's Chromium driven by Selenium through
Debian's chromedriver, against a tracker of their own (snapshots every second, so the dashboard
has a timeline to draw). scripts/bootstrap.sh installs ``chromium`` and ``chromium-driver`` when
they are missing; nothing is downloaded at test time (Selenium Manager is never asked).

Fixtures:
- ``ui_system``: the tracker (its first manager, ``ui_system.admin``, is the tracker admin).
- ``browser``: one headless Chromium for the module, its cookies and storage cleared per test.
- ``ui``: a ``Ui`` helper bound to both (open a screen, log in, wait for text, run axe).
"""

from __future__ import annotations

import json
import re
import tempfile
import uuid
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from tests.harness import Api, System

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
AXE = Path(__file__).with_name("vendor") / "axe-core" / "axe.min.js"
PASSWORD = "tt-test-password"
WAIT = 15.0
# What a headless Chromium needs on these machines (closed network, root, no GPU): without the
# background-networking flags it keeps trying to reach Google's hosts.
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
)
DESKTOP = (1440, 1000)
PHONE = (390, 844)
RETRIED = (NoSuchElementException, StaleElementReferenceException)


@pytest.fixture(scope="package")
def ui_system(tmp_path_factory):
    sysm = System.create(tmp_path_factory.mktemp("ui"), TT_MONITORING_INTERVAL="1")
    try:
        sysm.start("--replicas", "1", "--gateway-workers", "2")
        sysm.admin = Api(sysm.url).new_manager("uiadmin")
        yield sysm
    finally:
        sysm.destroy()


def new_driver(width: int, height: int, dark: bool = False) -> webdriver.Chrome:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("Chromium is missing: scripts/bootstrap.sh installs Debian's chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='tt-chromium-')}")
    if dark:
        options.add_argument("--force-dark-mode")
        options.add_argument("--blink-settings=preferredColorScheme=0")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


@pytest.fixture(scope="module")
def _driver():
    driver = new_driver(*DESKTOP)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(_driver, ui_system):
    _driver.set_window_size(*DESKTOP)
    _driver.get(ui_system.url + "/ui/")
    _driver.delete_all_cookies()
    _driver.execute_script("localStorage.clear(); sessionStorage.clear();")
    _driver.get_log("browser")  # drop what earlier tests left
    yield _driver


class Ui:
    """Drives the UI like a user: by hash route, labels, button texts and visible text."""

    def __init__(self, driver: webdriver.Chrome, system: System) -> None:
        self.driver = driver
        self.system = system

    # --- navigation -----------------------------------------------------------------------------
    def open(self, hash_path: str = "#/projects") -> None:
        """Load the page at a screen (a full load, as a bookmark would)."""
        self.driver.get("about:blank")  # else a URL that differs only by its hash is no new load
        self.driver.get(f"{self.system.url}/ui/{hash_path}")
        self.wait_ready()

    def go(self, hash_path: str) -> None:
        """Move to a screen inside the running page (no reload)."""
        self.driver.execute_script("location.hash = arguments[0]", hash_path)
        self.wait_ready()

    def wait_ready(self) -> None:
        """Until the screen of the current hash has been drawn with its data (the shell marks each
        screen's root with its route, and ``data-ready`` once its first render finished; a query
        after ``?`` is the screen's own state)."""
        self.wait(lambda d: d.execute_script(
            "const s = document.querySelector('#main .screen');"
            "const want = (location.hash.replace(/^#/, '') || '/projects').split('?')[0];"
            "return !!s && s.dataset.route === want && s.dataset.ready === '1';"))

    # --- identities -----------------------------------------------------------------------------
    def new_manager(self, username: str | None = None) -> Api:
        return Api(self.system.url).new_manager(username or "m" + uuid.uuid4().hex[:10], PASSWORD)

    def login(self, username: str, password: str = PASSWORD) -> None:
        self.open("#/login")
        self.type("Username", username)
        self.type("Password", password)
        self.click("form button[type=submit]")
        self.wait_hash("#/projects")

    def login_admin(self) -> None:
        self.login("uiadmin")

    # --- finding and acting ----------------------------------------------------------------------
    def find(self, css: str) -> WebElement:
        return self.wait(EC.visibility_of_element_located((By.CSS_SELECTOR, css)))

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def click(self, css: str) -> None:
        self.wait(EC.element_to_be_clickable((By.CSS_SELECTOR, css))).click()

    def button(self, text: str, within: str = "#main") -> WebElement:
        """The visible button (or link styled as one) whose text is ``text``."""
        xpath = (f"//*[self::button or self::a][normalize-space(.)={json.dumps(text)}]")
        root = self.find(within)
        return self.wait(lambda d: next((b for b in root.find_elements(By.XPATH, "." + xpath)
                                         if b.is_displayed() and b.is_enabled()), None))

    def press(self, text: str, within: str = "#main") -> None:
        self.button(text, within).click()

    def input(self, label: str, within: str = "#main") -> WebElement:
        """The form control whose <label> reads ``label``."""
        root = self.find(within)
        labels = [e for e in root.find_elements(By.TAG_NAME, "label") if e.text.strip() == label]
        if not labels:
            raise AssertionError(f"no label {label!r} on the screen")
        target = labels[0].get_attribute("for")
        if target:
            return self.driver.find_element(By.ID, target)
        return labels[0].find_element(By.CSS_SELECTOR, "input, select, textarea")

    def type(self, label: str, text: str, within: str = "#main") -> None:
        box = self.input(label, within)
        box.clear()
        box.send_keys(text)

    def wait(self, condition, timeout: float = WAIT):
        """Poll ``condition``; an element a live refresh redrew meanwhile is looked up again."""
        return WebDriverWait(self.driver, timeout, ignored_exceptions=RETRIED).until(condition)

    def wait_text(self, text: str, css: str = "#main", timeout: float = WAIT) -> None:
        try:
            self.wait(lambda d: text in d.find_element(By.CSS_SELECTOR, css).text, timeout)
        except TimeoutException:
            shown = self.driver.find_element(By.CSS_SELECTOR, css).text
            raise AssertionError(f"{text!r} never appeared in {css}; it shows:\n{shown[:2000]}") from None

    def wait_gone(self, text: str, css: str = "#main", timeout: float = WAIT) -> None:
        self.wait(lambda d: text not in d.find_element(By.CSS_SELECTOR, css).text, timeout)

    def wait_hash(self, prefix: str) -> None:
        self.wait(lambda d: d.execute_script("return location.hash").startswith(prefix))
        self.wait_ready()

    def text(self, css: str = "#main") -> str:
        return self.find(css).text

    # --- checks ----------------------------------------------------------------------------------
    def console_errors(self) -> list[dict]:
        """Browser console entries at SEVERE: script errors, CSP violations, the page's own files
        failing to load. An API answer with an error status (a 401 from /account when nobody is
        logged in, a 400 the screen shows) is the UI working, not an error of the page."""
        api_answer = re.compile(r"^https?://[^/]+/(?!ui/)\S* - Failed to load resource")
        return [e for e in self.driver.get_log("browser")
                if e.get("level") == "SEVERE" and not (e.get("source") == "network" and api_answer.match(e["message"]))]

    def axe(self) -> list[dict]:
        """axe-core's serious and critical violations on the page as it is now."""
        self.driver.set_script_timeout(30)
        result = self.driver.execute_async_script(
            AXE.read_text() + """
            ;const done = arguments[arguments.length - 1];
            axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations), e => done(String(e)));""")
        assert not isinstance(result, str), result
        return [v for v in result if v.get("impact") in ("serious", "critical")]

    def stores_no_script_effect(self) -> bool:
        """True unless an injected payload ran (they all set window.__pwned)."""
        return not self.driver.execute_script("return !!window.__pwned")


@pytest.fixture
def ui(browser, ui_system) -> Ui:
    return Ui(browser, ui_system)

