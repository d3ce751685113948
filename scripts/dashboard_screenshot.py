#!/usr/bin/env python3
"""Makes docs/images/dashboard.png: the dashboard of a product with registrations and deliveries in every
state (server/tests/dashboard_scenario.py, without its hostile names, one registration disabled), signed
in, one delivery's timeline open. Needs what scripts/setup-browser.sh installs.

    .venv/bin/python scripts/dashboard_screenshot.py [OUTPUT.png]
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "server" / "tests"))

from dashboard_scenario import ACCESS_KEY, DashboardScenario  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402


def main() -> int:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "images" / "dashboard.png"
    chromium = os.environ.get("DASHBOARD_CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        print("dashboard_screenshot: no chromium: run scripts/setup-browser.sh", file=sys.stderr)
        return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    with DashboardScenario(hostile=False) as scenario, sync_playwright() as playwright:
        # One registration disabled, so that the picture shows both states.
        scenario.call("POST", f"/webhooks/v1/registrations/{scenario.uuids['spare']}/disable")
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1360, "height": 900}, device_scale_factor=1)
        page.goto(scenario.server.url + "/dashboard")
        page.locator("#access-key").fill(ACCESS_KEY)
        page.locator("#signin-form button[type=submit]").click()
        page.locator("#deliveries tbody tr").first.wait_for()
        page.locator(f'#deliveries tr[data-event-id="{scenario.events["pending"][0]}"]').click()
        page.locator("#detail .timeline").wait_for()
        page.screenshot(path=str(output), full_page=True)
        browser.close()
    print(f"dashboard_screenshot: wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
