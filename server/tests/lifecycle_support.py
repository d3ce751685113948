"""What the lifecycle tests (test_lifecycle*.py) share: a seed with a second product, the routes'
calls, and polling for an outcome with a bounded deadline."""
from __future__ import annotations

import time
from typing import Any, Callable

import requests

from conftest import PRODUCT, STRIPE, Api, data_of, shared_seed

OTHER_PRODUCT = "other-product"
OTHER_ACCESS_TAG = "stripe-other"
OTHER_KEY = "dtl_lifecycle_other_key"
# a schedule short enough that a test event's bounded retries end quickly
RETRY_SCHEDULE = "0.05,0.05,0.05,0.05"


def lifecycle_seed() -> dict[str, Any]:
    """The shared seed (spare webhook tags) plus a product that the example key may not use."""
    seed = shared_seed()
    seed["products"].append({"tag": OTHER_PRODUCT, "envs": ["prd"],
                             "connections": [{"access_tag": OTHER_ACCESS_TAG, "app": "stripe", "envs": {"prd": "live"}}]})
    seed["access_keys"].append({"key": OTHER_KEY, "products": [OTHER_PRODUCT]})
    return seed


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """The first truthy value of `predicate`, polled until a deadline; fails naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def link_for(api: Api, tag: str, url: str, env: str = "prd") -> dict[str, Any]:
    return data_of(api.generate_link(webhook_tag=tag, env=env, url=url))


def lifecycle(api: Api, uuid: str, action: str, **kwargs: Any) -> requests.Response:
    return api.call("POST", f"/webhooks/v1/registrations/{uuid}/{action}", **kwargs)


def replay(api: Api, **body: Any) -> requests.Response:
    return api.call("POST", "/webhooks/v1/deliveries/replay", json={"product": PRODUCT, **body})


def delivery(api: Api, event_id: str) -> dict[str, Any]:
    return data_of(api.call("GET", f"/webhooks/v1/deliveries/{event_id}"))


def settled(api: Api, event_id: str) -> dict[str, Any]:
    """The delivery once it is delivered or failed."""
    return wait_for(lambda: (lambda d: d if d["status"] != "pending" else None)(delivery(api, event_id)),
                    f"delivery {event_id} to settle")


def deliveries_of(api: Api, webhook_tag: str) -> list[dict[str, Any]]:
    return data_of(api.call("GET", "/webhooks/v1/deliveries",
                            params={"product": PRODUCT, "webhook_tag": webhook_tag, "limit": 250}))


def listed(api: Api, webhook_tag: str, env: str = "prd") -> dict[str, Any]:
    """The registration of (webhook_tag, env) as the webhooks listing shows it."""
    page = data_of(api.webhooks(access_tag=STRIPE, webhook_tag=webhook_tag))
    [registration] = [r for w in page for r in w["config"] if r["productEnv"] == env]
    return registration
