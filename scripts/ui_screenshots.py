"""Screenshots of every screen of the manager UI at a phone's and a desktop's width, into docs/ui/.

    .venv/bin/python scripts/ui_screenshots.py [--out docs/ui]

Starts a throwaway tracker of its own (its own database and AMQP virtual host, monitoring snapshots
every second), fills it with the demo data of tests/browser/seed.py, lets a few snapshots
accumulate, and photographs each screen as the tracker admin in Debian's headless Chromium (the
same driver as the browser tests). Rewrites docs/ui/README.md, the index the main README links to.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import DESKTOP, PHONE, Ui, new_driver  # noqa: E402
from tests.browser.seed import screens, seed  # noqa: E402
from tests.harness import Api, System  # noqa: E402

WIDTHS = {"1440": DESKTOP, "390": PHONE}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ui")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    system = System.create(Path(tempfile.mkdtemp(prefix="tt-shots-")), TT_MONITORING_INTERVAL="1")
    try:
        system.start("--replicas", "1", "--gateway-workers", "1")
        system.admin = Api(system.url).new_manager("uiadmin")
        seeded = seed(system)
        time.sleep(8)  # a few snapshots for the dashboard's timeline
        rows = []
        for label, size in WIDTHS.items():
            driver = new_driver(*size)
            try:
                ui = Ui(driver, system)
                ui.login_admin()
                for name, route in screens(seeded).items():
                    ui.go(route)
                    time.sleep(0.8)  # let charts finish their first animation frame
                    height = driver.execute_script("return Math.min(document.documentElement.scrollHeight, 3000)")
                    driver.set_window_size(size[0], max(size[1], height))
                    path = args.out / f"{name}-{label}.png"
                    driver.save_screenshot(str(path))
                    driver.set_window_size(*size)
                    rows.append((name, route, label, path.name))
                    print("wrote", path.relative_to(ROOT))
            finally:
                driver.quit()
        index = ["# Screens of the manager UI", "",
                 "Written by `scripts/ui_screenshots.py` (demo data of `tests/browser/seed.py`,",
                 "as the tracker admin).", "",
                 "| screen | route | 1440 px | 390 px |", "|---|---|---|---|"]
        for name, route in dict.fromkeys((n, r) for n, r, _, _ in rows):
            index.append(f"| {name} | `{route.split('?')[0]}` | [{name}-1440.png]({name}-1440.png) | "
                         f"[{name}-390.png]({name}-390.png) |")
        (args.out / "README.md").write_text("\n".join(index) + "\n")
    finally:
        system.destroy()


if __name__ == "__main__":
    main()
