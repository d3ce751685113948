"""The test-mode routes: request counts per route, reads and writes, and injected faults."""
from __future__ import annotations

import pytest
import requests

from conftest import data_of, error_of
from ductape_local.testing import LocalServerError


@pytest.fixture(autouse=True)
def fresh_counts(server):
    server.clear_faults()
    server.reset_stats()


def test_stats_count_each_route_by_template_and_split_reads_from_writes(api, tag):
    uuid = data_of(api.register(webhook_tag=tag))["envs"][0]["uuid"]
    api.webhooks()
    api.webhooks()
    api.generate_link(webhook_tag=tag)
    api.delete(uuid)
    api.delete(uuid)  # a 404 still counts: the request reached the route
    api.call("GET", "/not/a/route")
    stats = api.server.stats()
    assert stats["requests"] == {
        "POST /webhooks/v1/register": 1,
        "GET /webhooks/v1/webhooks": 2,
        "POST /webhooks/v1/generate-link": 1,
        "DELETE /webhooks/v1/registrations/{uuid}": 2,
    }
    assert (stats["reads"], stats["writes"]) == (2, 4)


def test_reset_zeroes_the_counts(api, tag):
    api.webhooks()
    api.server.reset_stats()
    assert api.server.stats() == {"requests": {}, "reads": 0, "writes": 0}


def test_fault_answers_the_next_n_requests_with_retry_after_then_lets_them_through(api, tag):
    api.server.fault("POST /webhooks/v1/register", 429, count=2, retry_after=3)
    for _ in range(2):
        response = api.register(webhook_tag=tag)
        assert error_of(response, 429) == "fault injected by test mode: HTTP 429"
        assert response.headers["Retry-After"] == "3"
    assert api.call("GET", "/webhooks/v1/webhooks", params={"product": "my-product",
                                                            "access_tag": "stripe-payments"}).status_code == 200
    assert data_of(api.register(webhook_tag=tag))["envs"][0]["created"] is True
    assert api.server.stats()["requests"]["POST /webhooks/v1/register"] == 3


def test_faulted_requests_do_not_touch_the_store(api, tag):
    api.server.fault("POST /webhooks/v1/register", 503)
    response = api.register(webhook_tag=tag)
    assert error_of(response, 503) and "Retry-After" not in response.headers
    assert all(w["config"] == [] for w in data_of(api.webhooks(limit=250)) if w["tag"] == tag)


def test_fault_on_a_templated_route_and_clearing_faults(api, tag):
    api.server.fault("DELETE /webhooks/v1/registrations/{uuid}", 500, count=5)
    assert error_of(api.delete("anything"), 500) == "fault injected by test mode: HTTP 500"
    api.server.clear_faults()
    assert error_of(api.delete("anything"), 404).startswith("uuid:")


def test_fault_for_an_unknown_route_is_refused(api, tag):
    with pytest.raises(LocalServerError, match="route: no route"):
        api.server.fault("POST /webhooks/v1/registr", 503)
    response = requests.post(api.server.url + "/_local/faults", json={"route": "GET /webhooks/v1/webhooks",
                                                                      "status": 200},
                             headers=api.server.auth_headers, timeout=10)
    assert error_of(response, 422).startswith("status: ")


def test_a_502_fault_answers_as_a_gateway_without_the_envelope(api, tag):
    # The API's own 502 (in the envelope) means a provider refused a registration, which clients do
    # not retry at once; a gateway's 502 is what the retry tests need.
    api.server.fault("GET /webhooks/v1/webhooks", 502)
    response = api.webhooks()
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    assert "Bad Gateway" in response.text
    assert api.webhooks().status_code == 200


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer dtl_not_a_key"}, {"x-access-token": ""}])
def test_faults_take_an_access_key(api, tag, headers):
    """Whoever reaches the port must not be able to fail every tenant's requests."""
    for method, kwargs in (("POST", {"json": {"route": "POST /webhooks/v1/register", "status": 503, "count": 5}}),
                           ("DELETE", {})):
        response = requests.request(method, api.server.url + "/_local/faults", headers=headers, timeout=10, **kwargs)
        assert error_of(response, 401).startswith(("missing access key", "unknown access key"))
    assert api.register(webhook_tag=tag).status_code == 200
