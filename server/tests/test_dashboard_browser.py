"""The dashboard in a real headless browser: Debian's chromium driven by Playwright
(scripts/setup-browser.sh installs both; `make test-dashboard` runs this file).

One server with registrations and deliveries in every state (dashboard_scenario.py), one browser; each
test opens its own browser context (its own cookies) and signs in through the page's form.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests

from dashboard_scenario import ACCESS_KEY, ACCESS_TAG, HOSTILE_NAME, HOSTILE_URL_PATH, PRODUCT, DashboardScenario

try:
    from playwright import sync_api
except ImportError:  # CI installs it (make test-dashboard): there, its absence is a failure
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("playwright is not installed: run scripts/setup-browser.sh (make test-dashboard does)",
                allow_module_level=True)

CHROMIUM = os.environ.get("DASHBOARD_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
TIMEOUT_MS = 15000
SCREENSHOT = os.environ.get("DASHBOARD_SCREENSHOT")  # a path: also save the signed-in page there


@pytest.fixture(scope="module")
def scenario():
    with DashboardScenario(hostile=True) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.fail("no chromium binary: run scripts/setup-browser.sh (make test-dashboard does)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield launched
        launched.close()


class Page:
    """A browser context and its page, recording every response body the page receives."""

    def __init__(self, browser: Any, scenario: DashboardScenario):
        self.scenario = scenario
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=scenario.server.url)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.responses: list[tuple[str, int, bytes]] = []
        self.errors: list[str] = []
        self.page.on("response", self._record)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        # What the page's policy refused (an inline style or script, another origin): none may be.
        self.page.on("console", lambda message: self.errors.append(message.text)
                     if "Content Security Policy" in message.text or "Refused to" in message.text else None)

    def _record(self, response: Any) -> None:
        try:
            body = response.body()
        except Exception:  # pylint: disable=broad-except  # a redirect or an aborted load has none
            body = b""
        self.responses.append((response.url, response.status, body))

    def open(self) -> Any:
        self.page.goto(self.scenario.server.url + "/dashboard")
        return self.page

    def sign_in(self, key: str = ACCESS_KEY) -> Any:
        page = self.open()
        page.locator("#access-key").fill(key)
        page.locator("#signin-form button[type=submit]").click()
        page.locator("#board").wait_for(state="visible")
        page.locator("#deliveries tbody tr").first.wait_for()
        return page

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser, scenario):
    opened = Page(browser, scenario)
    yield opened
    assert not opened.errors, opened.errors
    opened.close()


def api(scenario: DashboardScenario, path: str, **params: Any) -> Any:
    return scenario.call("GET", path, params=params)


def registration_row(page: Any, uuid: str) -> Any:
    return page.locator(f'tr[data-uuid="{uuid}"]')


def current_registration(scenario: DashboardScenario, webhook_tag: str, env: str) -> dict[str, Any]:
    """The registration of (webhook, env) as the API lists it now (a rotation gives it a new uuid)."""
    listing = api(scenario, "/webhooks/v1/webhooks", product=PRODUCT, access_tag=ACCESS_TAG)["data"]
    [found] = [r for w in listing if w["tag"] == webhook_tag for r in w["config"] if r["productEnv"] == env]
    return found


def test_sign_in_shows_the_products_registrations_and_links(tab, scenario):
    page = tab.sign_in()
    assert page.locator("#product").input_value() == PRODUCT
    assert page.locator("#product option").all_inner_texts() == [PRODUCT]  # not the other key's product
    listing = api(scenario, "/webhooks/v1/webhooks", product=PRODUCT, access_tag=ACCESS_TAG)["data"]
    shown = 0
    for webhook in listing:
        for registration in webhook["config"]:
            row = registration_row(page, registration["uuid"])
            assert row.locator(".link").inner_text() == registration["link"]
            assert row.locator(".receiver").inner_text() == registration["url"]  # masked by the API
            assert row.get_attribute("data-env") == registration["productEnv"]
            assert row.locator(".badge.state").inner_text() == registration["state"]
            assert row.locator(".generation").inner_text() == f"generation {registration['generation']}"
            provider = registration["provider_registration"]
            if provider is None:
                assert row.locator("td.provider").inner_text() == "link only"
            else:
                assert row.locator(f".badge.{provider['status']}").inner_text() == provider["status"]
            shown += 1
    assert shown == len(scenario.uuids) == page.locator(f'[data-access-tag="{ACCESS_TAG}"] tr[data-uuid]').count()
    dev = registration_row(page, scenario.uuids["dev"])
    assert dev.locator(".receiver").inner_text().endswith("?token=********")
    assert page.locator('[data-access-tag="paystack-payments"]').inner_text().count("no registration") == 1
    # The full registration's provider status: the provider's endpoint holds its link (it answered 201).
    prd = registration_row(page, scenario.uuids["prd"])
    assert prd.locator(".badge.registered").inner_text() == "registered"
    assert "HTTP 201" in prd.inner_text()
    [call] = scenario.provider.calls
    assert call.body["url"] == scenario.links["prd"]


def test_the_copy_button_copies_the_link(tab, scenario):
    page = tab.sign_in()
    for env in ("prd", "dev"):
        row = registration_row(page, scenario.uuids[env])
        row.locator("button.copy").click()
        assert page.evaluate("navigator.clipboard.readText()") == scenario.links[env]
        assert row.locator("button.copy").inner_text() == "Copied"


def test_status_filters_show_the_apis_counts_and_rows(tab, scenario):
    page = tab.sign_in()
    expected: dict[str, list[str]] = {}
    for status in ("pending", "delivered", "failed"):
        expected[status] = [d["event_id"] for d in
                            api(scenario, "/webhooks/v1/deliveries", product=PRODUCT, status=status, limit=250)["data"]]
    expected["all"] = [d["event_id"] for d in api(scenario, "/webhooks/v1/deliveries", product=PRODUCT, limit=250)["data"]]
    assert len(expected["pending"]) == 2 and len(expected["failed"]) >= 1 and len(expected["delivered"]) >= 4
    for status in ("failed", "delivered", "pending", "all"):
        button = page.locator(f'#filters button[data-status="{status}"]')
        assert button.locator(".count").inner_text() == str(len(expected[status])), status
        button.click()
        page.locator(f'#filters button[data-status="{status}"][aria-selected="true"]').wait_for()
        rows = page.locator("#deliveries tbody tr")
        page.wait_for_function("n => document.querySelectorAll('#deliveries tbody tr').length === n",
                               arg=len(expected[status]))
        assert [rows.nth(i).get_attribute("data-event-id") for i in range(rows.count())] == expected[status], status
        if status != "all":
            assert set(page.locator("#deliveries tbody .badge").all_inner_texts()) == {status}


def test_a_deliverys_attempts_show_as_a_timeline(tab, scenario):
    page = tab.sign_in()
    event_id = scenario.events["pending"][0]
    delivery = scenario.delivery(event_id)
    page.locator(f'#deliveries tr[data-event-id="{event_id}"]').click()
    detail = page.locator("#detail")
    detail.locator(".timeline").wait_for()
    assert detail.locator("#detail-event-id").inner_text() == event_id
    attempts = detail.locator(".timeline li.attempt")
    assert attempts.count() == len(delivery["attempts"]) >= 1
    for i, attempt in enumerate(delivery["attempts"]):
        text = attempts.nth(i).inner_text()
        assert f"attempt {attempt['n']}: HTTP {attempt['status_code']}" in text and attempt["error"] in text
    assert detail.locator(".timeline li").last.inner_text().endswith("pending: next attempt")


def test_replay_queues_a_dead_letter_and_shows_it_delivered(tab, scenario):
    page = tab.sign_in()
    event_id = scenario.events["failed"][0]
    before = scenario.delivery(event_id)
    assert before["status"] == "failed" and before["attempt_count"] == 1
    page.locator('#filters button[data-status="failed"]').click()
    page.locator(f'#deliveries tr[data-event-id="{event_id}"]').click()
    page.locator("#replay").click()
    page.locator("#notice").filter(has_text=f"Delivery {event_id} queued for replay.").wait_for()
    # The page follows the delivery until it leaves pending (the receiver answers 200 after its one 400).
    page.locator("#detail .timeline li.ok").filter(has_text="delivered").wait_for()
    after = scenario.delivery(event_id)
    assert after["status"] == "delivered" and after["attempt_count"] == 2
    assert page.locator("#detail .timeline li.attempt").count() == 2
    assert page.locator("#detail .badge.delivered").first.inner_text() == "delivered"
    # The filter's count follows (the failed one was replayed).
    failed = len(api(scenario, "/webhooks/v1/deliveries", product=PRODUCT, status="failed")["data"])
    page.wait_for_function("n => document.querySelector('#filters button[data-status=failed] .count').textContent === n",
                           arg=str(failed))


def test_send_test_delivers_a_test_event_and_opens_its_timeline(tab, scenario):
    page = tab.sign_in()
    row = registration_row(page, scenario.uuids["prd"])
    before = {d["event_id"] for d in api(scenario, "/webhooks/v1/deliveries", product=PRODUCT, limit=250)["data"]}
    row.locator("button.test-button").click()
    notice = page.locator("#notice").filter(has_text="queued for prd")
    notice.wait_for()
    event_id = page.locator("#detail-event-id").inner_text()
    assert event_id in notice.inner_text() and event_id not in before
    page.locator("#detail .timeline li.ok").filter(has_text="delivered").wait_for()
    delivery = scenario.delivery(event_id)
    assert delivery["test"] is True and delivery["status"] == "delivered"
    assert delivery["registration_uuid"] == scenario.uuids["prd"]
    assert page.locator("#detail .badge.test").inner_text() == "test event"
    page.locator(f'#deliveries tr[data-event-id="{event_id}"] .badge.test').wait_for()


def test_disable_and_enable_change_the_registrations_state(tab, scenario):
    page = tab.sign_in()
    uuid, link = scenario.uuids["spare"], scenario.links["spare"]

    def state_of_api() -> str:
        listing = api(scenario, "/webhooks/v1/webhooks", product=PRODUCT, access_tag=ACCESS_TAG)["data"]
        return next(r["state"] for w in listing for r in w["config"] if r["uuid"] == uuid)

    assert registration_row(page, uuid).locator(".badge.state").inner_text() == state_of_api() == "enabled"
    registration_row(page, uuid).locator("button.disable-button").click()
    registration_row(page, uuid).locator(".badge.state").filter(has_text="disabled").wait_for()
    assert state_of_api() == "disabled"
    assert requests.post(link, json={"id": "evt_while_disabled"}, timeout=30).status_code == 410
    row = registration_row(page, uuid)
    assert row.locator("button.test-button").is_disabled()
    assert row.locator(".link").inner_text() == link  # a disabled registration keeps its link
    row.locator("button.enable-button").click()
    registration_row(page, uuid).locator(".badge.state").filter(has_text="enabled").wait_for()
    assert state_of_api() == "enabled"
    assert registration_row(page, uuid).locator(".link").inner_text() == link


def test_rotate_gives_a_new_link_and_the_old_one_forwards_for_the_grace_chosen(tab, scenario):
    page = tab.sign_in()
    before = current_registration(scenario, "invoice_paid", "dev")
    row = registration_row(page, before["uuid"])
    row.locator("button.rotate-button").click()
    row.locator("select.grace").select_option("3600")
    row.locator("button.confirm-rotate").click()
    generation = before["generation"] + 1
    page.locator("#notice").filter(has_text=f"dev: new link (generation {generation}); the old link forwards until").wait_for()
    after = current_registration(scenario, "invoice_paid", "dev")
    assert after["uuid"] != before["uuid"] and after["link"] != before["link"] and after["generation"] == generation
    assert after["previous_link"]["link"] == before["link"]
    rotated = registration_row(page, after["uuid"])
    rotated.wait_for()
    assert registration_row(page, before["uuid"]).count() == 0
    assert rotated.locator(".link").inner_text() == after["link"]
    assert rotated.locator(".generation").inner_text() == f"generation {generation}"
    assert rotated.locator(".previous-link .old-link").inner_text() == before["link"]
    rotated.locator("button.copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == after["link"]
    # Both links forward during the grace period (each event is delivered before the next test reads counts).
    delivered = []
    for link, event in ((before["link"], "evt_old_link_in_grace"), (after["link"], "evt_new_link")):
        answer = requests.post(link, json={"id": event}, timeout=30)
        assert answer.status_code == 202, answer.text
        delivered.append(answer.json()["data"]["event_id"])
    scenario.wait_until_settled({"delivered": delivered})


def test_a_rotate_from_a_stale_page_is_refused_naming_the_generations(tab, scenario):
    page = tab.sign_in()
    before = current_registration(scenario, "invoice_paid", "dev")
    # Another client rotates it (no grace: its link answers 410 at once) after the page read it.
    scenario.call("POST", f"/webhooks/v1/registrations/{before['uuid']}/rotate", json={})
    row = registration_row(page, before["uuid"])
    row.locator("button.rotate-button").click()
    row.locator("button.confirm-rotate").click()
    page.locator("#notice.bad").filter(
        has_text=f"is at generation {before['generation'] + 1}, not the expected {before['generation']}").wait_for()
    after = current_registration(scenario, "invoice_paid", "dev")
    assert after["generation"] == before["generation"] + 1, "rotated twice"
    registration_row(page, after["uuid"]).wait_for()  # the page read the listing again
    assert requests.post(before["link"], json={"id": "evt_after_rotation"}, timeout=30).status_code == 410


def test_cancel_leaves_the_registration_as_it_was(tab, scenario):
    page = tab.sign_in()
    before = current_registration(scenario, "invoice_paid", "dev")
    row = registration_row(page, before["uuid"])
    row.locator("button.rotate-button").click()
    row.locator("button.cancel-rotate").click()
    assert row.locator("button.rotate-button").is_visible() and row.locator("select.grace").count() == 0
    assert current_registration(scenario, "invoice_paid", "dev") == before


def test_markup_in_a_webhook_name_or_url_shows_as_text(tab, scenario):
    page = tab.sign_in()
    row = registration_row(page, scenario.uuids["refund"])
    assert row.locator(".webhook-name").inner_text() == HOSTILE_NAME
    assert row.locator(".receiver").inner_text().endswith(HOSTILE_URL_PATH)
    assert page.evaluate("window.__xss") is None
    assert page.locator("#apps script, #apps img, #deliveries script, #detail script").count() == 0


def test_no_secret_reaches_the_page_its_responses_or_its_script(tab, scenario):
    page = tab.sign_in()
    page.locator(f'#deliveries tr[data-event-id="{scenario.events["delivered"][0]}"]').click()
    page.locator("#detail .timeline").wait_for()
    texts = {
        "html": page.content(),
        "text": page.evaluate("document.body.innerText"),
        "attributes": page.evaluate(
            "[...document.querySelectorAll('*')].flatMap(e => [...e.attributes].map(a => a.value)).join(' ')"),
        "inputs": page.evaluate("[...document.querySelectorAll('input')].map(i => i.value).join(' ')"),
        "cookies": page.evaluate("document.cookie"),
        "storage": page.evaluate("JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"),
    }
    assert texts["cookies"] == ""  # the session cookie is HttpOnly
    bodies = [(url, body.decode("utf-8", "replace")) for url, _, body in tab.responses]
    assert any("/webhooks/v1/webhooks" in url for url, _ in bodies) and any("/deliveries/" in url for url, _ in bodies)
    for secret in scenario.secrets:
        for name, text in texts.items():
            assert secret not in text, (secret, name)
        for url, body in bodies:
            assert secret not in body and secret not in url, (secret, url)
    cookies = tab.context.cookies()
    assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies] == [("ductape_dashboard", True, "Strict")]


def test_without_signing_in_nothing_is_shown_and_the_api_refuses(tab, scenario):
    page = tab.open()
    page.locator("#signin").wait_for(state="visible")
    assert page.locator("#board").is_hidden()
    answer = page.evaluate("""async () => {
        const r = await fetch('/webhooks/v1/deliveries?product=shop', {headers: {'X-Ductape-Dashboard': '1'}});
        return [r.status, await r.text()];
    }""")
    assert answer[0] == 401 and json.loads(answer[1])["status"] is False
    page.locator("#access-key").fill("dtl_wrong_key_8h2")
    page.locator("#signin-form button[type=submit]").click()
    page.locator("#signin-error").filter(has_text="unknown access key").wait_for()
    assert "dtl_wrong_key_8h2" not in page.content() and page.locator("#access-key").input_value() == ""
    assert page.locator("#board").is_hidden() and tab.context.cookies() == []


def test_sign_out_returns_to_the_form_and_ends_the_session(tab, scenario):
    page = tab.sign_in()
    [cookie] = tab.context.cookies()
    page.locator("#sign-out").click()
    page.locator("#signin").wait_for(state="visible")
    stale = requests.get(scenario.server.url + "/webhooks/v1/products", cookies={cookie["name"]: cookie["value"]},
                         headers={"X-Ductape-Dashboard": "1"}, timeout=30)
    assert stale.status_code == 401
    page.reload()
    page.locator("#signin").wait_for(state="visible")
    assert page.locator("#board").is_hidden()


def test_screenshot(tab, scenario, tmp_path):
    """The picture the docs show is made the same way (scripts/dashboard_screenshot.py)."""
    page = tab.sign_in()
    page.locator(f'#deliveries tr[data-event-id="{scenario.events["pending"][0]}"]').click()
    page.locator("#detail .timeline").wait_for()
    path = Path(SCREENSHOT) if SCREENSHOT else tmp_path / "dashboard.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10000
