"""Seed checking on its own: every mistake is refused with the path of the offending entry."""
from __future__ import annotations

import pytest

from conftest import example_seed
from ductape_local.catalog import SeedError, key_fingerprint, parse_catalog


def broken(change) -> dict:
    seed = example_seed()
    change(seed)
    return seed


@pytest.mark.parametrize("change,message", [
    (lambda s: s["products"][0]["envs"].append("prd"), "products[0].envs[3]: duplicate env 'prd'"),
    (lambda s: s["products"][0]["envs"].append("qa"), "products[0].envs[3]: env slug must be lowercase"),
    (lambda s: s["products"][0]["connections"][0].update(app="nope"), "products[0].connections[0].app: unknown app"),
    (lambda s: s["products"][0]["connections"][1].update(access_tag="stripe-payments"),
     "products[0].connections[1].access_tag: duplicate access tag 'stripe-payments'"),
    (lambda s: s["products"][0]["connections"][0]["envs"].update(qa1="live"),
     "products[0].connections[0].envs: 'qa1' is not an env of product 'my-product'"),
    (lambda s: s["access_keys"][0].update(products=["nope"]), "access_keys[0].products[0]: unknown product 'nope'"),
    (lambda s: s["access_keys"][0].update(key=""), "access_keys[0].key: must be a non-empty string"),
    (lambda s: s["apps"][0]["webhooks"].append({"tag": "payment_succeeded"}),
     "apps[0].webhooks[2].tag: duplicate webhook 'payment_succeeded' in app 'stripe'"),
    (lambda s: s["apps"][0]["webhooks"][0].update(registration={"live": {"url": "ftp://x"}}),
     "apps[0].webhooks[0].registration.live.url: must be an http or https URL (got 'ftp://x')"),
    (lambda s: s["apps"][0]["webhooks"][0].update(registration={"live": {"url": "https://p.example", "method": "SEND"}}),
     "apps[0].webhooks[0].registration.live.method: must be one of GET, POST, PUT, PATCH, DELETE (got 'SEND')"),
    (lambda s: s["apps"][0]["webhooks"][0].update(registration={"live": {"url": "https://p.example",
                                                                         "link_in": "path"}}),
     "apps[0].webhooks[0].registration.live.link_in: must be one of body, query, headers (got 'path')"),
    (lambda s: s.update(apps={"stripe": {}}), "apps: must be a list"),
])
def test_seed_mistakes_are_named(change, message):
    with pytest.raises(SeedError) as raised:
        parse_catalog(broken(change))
    assert str(raised.value).startswith(message)


def test_a_bad_access_key_is_never_quoted():
    with pytest.raises(SeedError) as raised:
        parse_catalog(broken(lambda s: s["access_keys"][0].update(key=12345678)))
    assert "12345678" not in str(raised.value)


def test_stored_catalog_holds_key_digests_and_round_trips():
    catalog = parse_catalog(example_seed())
    document = catalog.to_document()
    assert "dtl_local_example_key" not in repr(document)
    assert document["access_keys"] == [{"key_sha256": key_fingerprint("dtl_local_example_key"),
                                        "products": ["acme_space:shop", "my-product"]}]
    again = parse_catalog(document)
    assert again == catalog
    assert again.products_for_key("dtl_local_example_key") == frozenset({"my-product", "acme_space:shop"})
    assert again.products_for_key("dtl_other") is None
