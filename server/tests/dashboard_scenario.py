"""A product with registrations and deliveries in every state, for the dashboard's browser test and for
scripts/dashboard_screenshot.py (the picture in the docs).

    with DashboardScenario(hostile=True) as scenario:
        scenario.server.url, scenario.uuids["prd"], scenario.events["failed"], scenario.secrets

- prd: a full registration whose auth carries a secret, registered at the provider's endpoint (which
  answers 201); its receiver answers 200 (deliveries delivered)
- stg: a link whose receiver answers 400 twice and then 200 (two dead letters; a replay delivers one)
- dev: a link whose url carries a token in its query; its receiver answers 503 (pending: the retry
  schedule waits 10 minutes, longer than any test)
- spare: invoice_paid in stg, no event (for a test that disables and enables it)
- rotate: invoice_paid in dev, no event (for the tests that rotate it)
hostile=True also names a webhook with markup and registers a url holding markup, which the page must
show as text.
"""
from __future__ import annotations

import time
from typing import Any

import requests

from delivery_receiver import Answer, Receiver
from ductape_local.testing import LocalServer
from provider_endpoint import ProviderEndpoint

ACCESS_KEY = "dtl_dashboard_key_7Qm2xT9v"
OTHER_KEY = "dtl_other_product_key_k3Lp"
PRODUCT = "shop"
ACCESS_TAG = "stripe-payments"
PROVIDER_SECRET = "sk_live_provider_secret_51HxQ"
URL_SECRET = "urltoken_9f8e7d6c"
# Each sets a flag that the test reads: none may ever run.
HOSTILE_NAME = '<script>window.__xss = "name"</script><img src=x onerror="window.__xss = \'img\'">'
HOSTILE_URL_PATH = '/<script>window.__xss="url"</script>'
RETRY_SCHEDULE = "600,600"
DEADLINE = 20.0


def seed(hostile: bool, provider_url: str) -> dict[str, Any]:
    endpoint = {"url": provider_url + "/v1/webhook_endpoints", "method": "POST", "link_in": "body", "link_key": "url"}
    stripe_webhooks = [
        {"tag": "payment_succeeded", "name": "Payment succeeded", "registration": {"live": endpoint}},
        {"tag": "charge_refunded", "name": HOSTILE_NAME if hostile else "Charge refunded"},
        {"tag": "invoice_paid", "name": "Invoice paid"},
    ]
    return {
        "access_keys": [{"key": ACCESS_KEY, "products": [PRODUCT]}, {"key": OTHER_KEY, "products": ["other"]}],
        "products": [
            {"tag": PRODUCT, "envs": ["prd", "stg", "dev"], "connections": [
                {"access_tag": ACCESS_TAG, "app": "stripe", "envs": {"prd": "live", "stg": "test", "dev": "test"}},
                {"access_tag": "paystack-payments", "app": "paystack", "envs": {"prd": "live", "stg": "test"}},
            ]},
            {"tag": "other", "envs": ["prd"], "connections": [
                {"access_tag": "other-stripe", "app": "stripe", "envs": {"prd": "live"}}]},
        ],
        "apps": [
            {"tag": "stripe", "webhooks": stripe_webhooks},
            {"tag": "paystack", "webhooks": [{"tag": "charge_success", "name": "Charge success"}]},
        ],
    }


class DashboardScenario:
    def __init__(self, hostile: bool = True):
        self.hostile = hostile
        self.ok = Receiver()
        self.flaky = Receiver(script=[Answer(400), Answer(400)])
        self.down = Receiver(default=Answer(503))
        self.provider = ProviderEndpoint(status=201)
        self.server = LocalServer(seed(hostile, self.provider.url), retry_schedule=RETRY_SCHEDULE)
        self.uuids: dict[str, str] = {}
        self.links: dict[str, str] = {}
        self.events: dict[str, list[str]] = {"delivered": [], "failed": [], "pending": []}

    @property
    def secrets(self) -> list[str]:
        """What must never reach the page: the access keys, the auth value, the token in the dev url."""
        return [ACCESS_KEY, OTHER_KEY, PROVIDER_SECRET, URL_SECRET]

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(method, self.server.url + path, timeout=30,
                                    headers={"Authorization": f"Bearer {ACCESS_KEY}"}, **kwargs)
        assert response.ok, (response.status_code, response.text)
        return response.json()

    def __enter__(self) -> "DashboardScenario":
        for receiver in (self.ok, self.flaky, self.down):
            receiver.__enter__()
        self.provider.__enter__()
        self.server.__enter__()
        try:
            self._populate()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.__exit__(None, None, None)
        self.provider.__exit__(None, None, None)
        for receiver in (self.ok, self.flaky, self.down):
            receiver.close()

    def _populate(self) -> None:
        base = {"product": PRODUCT, "access_tag": ACCESS_TAG}
        full = self.call("POST", "/webhooks/v1/register", json={**base, "webhook_tag": "payment_succeeded", "envs": [
            {"slug": "prd", "url": self.ok.url + "/hooks/payments", "method": "POST",
             "auth": {"headers": {"Authorization": f"Bearer {PROVIDER_SECRET}"}}}]})["data"]["envs"][0]
        stg = self.call("POST", "/webhooks/v1/generate-link", json={
            **base, "webhook_tag": "payment_succeeded", "env": "stg", "url": self.flaky.url + "/hooks/payments",
            "method": "POST"})["data"]
        dev = self.call("POST", "/webhooks/v1/generate-link", json={
            **base, "webhook_tag": "payment_succeeded", "env": "dev",
            "url": f"{self.down.url}/hooks/payments?token={URL_SECRET}", "method": "PUT"})["data"]
        refund_url = self.ok.url + (HOSTILE_URL_PATH if self.hostile else "/hooks/refunds")
        refund = self.call("POST", "/webhooks/v1/generate-link", json={
            **base, "webhook_tag": "charge_refunded", "env": "prd", "url": refund_url, "method": "POST"})["data"]
        spare = self.call("POST", "/webhooks/v1/generate-link", json={
            **base, "webhook_tag": "invoice_paid", "env": "stg", "url": self.ok.url + "/hooks/invoices",
            "method": "POST"})["data"]
        rotate = self.call("POST", "/webhooks/v1/generate-link", json={
            **base, "webhook_tag": "invoice_paid", "env": "dev", "url": self.ok.url + "/hooks/invoices-dev",
            "method": "POST"})["data"]
        for env, registration in (("prd", full), ("stg", stg), ("dev", dev), ("refund", refund), ("spare", spare),
                                  ("rotate", rotate)):
            self.uuids[env] = registration["uuid"]
            self.links[env] = registration["link"]
        for env, count, outcome in (("prd", 3, "delivered"), ("stg", 2, "failed"), ("dev", 2, "pending"),
                                    ("refund", 1, "delivered")):
            for n in range(count):
                answer = requests.post(self.links[env], json={"id": f"evt_{env}_{n}", "amount": 1200 + n}, timeout=30)
                assert answer.status_code == 202, answer.text
                self.events[outcome].append(answer.json()["data"]["event_id"])
        self.wait_until_settled()

    def delivery(self, event_id: str) -> dict[str, Any]:
        return self.call("GET", f"/webhooks/v1/deliveries/{event_id}")["data"]

    def wait_until_settled(self, events: dict[str, list[str]] | None = None) -> None:
        """Every event (of `events`, by outcome; default: the scenario's own) has reached its outcome
        (pending ones: their first attempt was answered)."""
        deadline = time.monotonic() + DEADLINE
        while True:
            unsettled = [e for outcome, ids in (events or self.events).items() for e in ids
                         if not self._settled(self.delivery(e), outcome)]
            if not unsettled:
                return
            assert time.monotonic() < deadline, f"deliveries not settled in {DEADLINE} s: {unsettled}"
            time.sleep(0.1)

    @staticmethod
    def _settled(delivery: dict[str, Any], outcome: str) -> bool:
        if outcome == "pending":
            return delivery["status"] == "pending" and delivery["attempt_count"] >= 1
        return delivery["status"] == outcome
