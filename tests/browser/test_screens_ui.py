"""Every screen, as the tracker admin sees it with data on it: zero serious or critical axe-core
violations, at a desktop's and a phone's width, in the light and the dark theme; no horizontal
scrolling of the page at 390 px; no script error or blocked resource."""

from __future__ import annotations

import pytest

from tests.browser.conftest import DESKTOP, PHONE, Ui, new_driver
from tests.browser.seed import screens, seed


@pytest.fixture(scope="module")
def seeded(ui_system):
    return seed(ui_system)


def sweep(ui: Ui, routes: dict[str, str], width: int) -> dict[str, list]:
    """Visit each screen in one page session; what axe and the layout found, per screen."""
    found = {}
    for name, route in routes.items():
        ui.go(route)
        ui.wait(lambda d: not d.execute_script("return document.querySelector('#main .loading')"))
        problems = [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
                    for v in ui.axe()]
        overflow = ui.driver.execute_script("return document.documentElement.scrollWidth")
        if overflow > width + 2:
            problems.append(f"page is {overflow} px wide at a {width} px window")
        if problems:
            found[name] = problems
    return found


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1440px", "390px"])
def test_every_screen_passes_axe_and_fits(ui, seeded, size):
    ui.login_admin()
    ui.driver.set_window_size(*size)
    width = ui.driver.execute_script("return window.innerWidth")
    assert sweep(ui, screens(seeded), width) == {}
    assert ui.console_errors() == []


def test_every_screen_passes_axe_in_the_dark_theme(ui_system, seeded):
    driver = new_driver(*DESKTOP, dark=True)
    try:
        ui = Ui(driver, ui_system)
        ui.login_admin()
        assert driver.execute_script("return matchMedia('(prefers-color-scheme: dark)').matches")
        background = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
        assert background != "rgb(247, 247, 249)", "the dark theme was not applied"
        width = driver.execute_script("return window.innerWidth")
        assert sweep(ui, screens(seeded), width) == {}
        assert ui.console_errors() == []
    finally:
        driver.quit()
