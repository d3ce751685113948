"""The delivery log's filters (list, summary, bulk replay) name only what the key's products have: a
misspelt access tag, webhook or env is refused naming the field and the value, never answered as
"nothing matched" (which reads as "nothing was delivered")."""
from __future__ import annotations

from typing import Any

import pytest
import requests

from conftest import PRODUCT, STRIPE, Api, data_of, error_of

PAYSTACK = "paystack-payments"


def list_deliveries(api: Api, **params: Any) -> requests.Response:
    return api.call("GET", "/webhooks/v1/deliveries", params=params)


def summary(api: Api, **params: Any) -> requests.Response:
    return api.call("GET", "/webhooks/v1/deliveries/summary", params={"product": PRODUCT, **params})


def replay(api: Api, **body: Any) -> requests.Response:
    return api.call("POST", "/webhooks/v1/deliveries/replay", json={"product": PRODUCT, "dry_run": True, **body})


def list_of_product(api: Api, **params: Any) -> requests.Response:
    return list_deliveries(api, product=PRODUCT, **params)


ROUTES = [list_of_product, summary, replay]

# (filters, status, what the message must say), each wrong in one field, with and without an access tag
REFUSED = [
    ({"env": "prod"}, 422, ["env", '"prod"', "prd, stg, dev"]),
    ({"env": "PRD"}, 422, ["env", '"PRD"']),
    ({"access_tag": STRIPE, "env": "qa"}, 422, ["env", '"qa"']),
    ({"access_tag": "stripe"}, 404, ["access_tag", '"stripe"']),
    ({"access_tag": "ductape:paystack"}, 404, ["access_tag", '"ductape:paystack"']),  # another product's
    ({"webhook_tag": "payment_suceeded"}, 404, ["webhook_tag", '"payment_suceeded"']),
    ({"access_tag": STRIPE, "webhook_tag": "charge_success"}, 404, ["webhook_tag", '"charge_success"']),
    ({"access_tag": PAYSTACK, "webhook_tag": "payment_succeeded"}, 404, ["webhook_tag", '"payment_succeeded"']),
]

ACCEPTED = [
    {"env": "prd"},
    {"webhook_tag": "payment_succeeded"},
    {"webhook_tag": "charge_success"},  # paystack's: a webhook of one of the product's apps
    {"access_tag": PAYSTACK, "webhook_tag": "charge_success", "env": "stg"},
    {"access_tag": STRIPE, "webhook_tag": "payment_succeeded", "env": "dev"},
]


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.__name__)
@pytest.mark.parametrize("filters,status,named", REFUSED, ids=lambda value: str(value))
def test_a_filter_naming_what_the_product_does_not_have_is_refused(api, route, filters, status, named):
    message = error_of(route(api, **filters), status)
    for part in named:
        assert part in message, message


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.__name__)
@pytest.mark.parametrize("filters", ACCEPTED, ids=str)
def test_a_filter_naming_what_the_product_has_is_answered(api, route, filters):
    data_of(route(api, **filters))


def test_without_a_product_the_filter_may_name_anything_of_the_keys_products(api):
    for filters in ({"env": "snd"}, {"access_tag": "ductape:paystack"}, {"webhook_tag": "charge_success"},
                    {"env": "prd", "access_tag": STRIPE}):
        assert data_of(list_deliveries(api, **filters)) == []
    message = error_of(list_deliveries(api, env="nowhere"), 422)
    assert "env" in message and '"nowhere"' in message
    message = error_of(list_deliveries(api, access_tag="nobody"), 404)
    assert "access_tag" in message and '"nobody"' in message
    message = error_of(list_deliveries(api, webhook_tag="never"), 404)
    assert "webhook_tag" in message and '"never"' in message
