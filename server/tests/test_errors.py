"""Every error code of the contract, each in the envelope with the offending field named."""
from __future__ import annotations


import pytest
import requests

from conftest import Api, error_of, example_seed
from ductape_local.testing import LocalServer

OTHER_KEY = "dtl_other_product_key"


@pytest.fixture(scope="module")
def api():
    seed = example_seed()
    seed["products"].append({"tag": "other-product", "envs": ["prd"], "connections": []})
    seed["access_keys"].append({"key": OTHER_KEY, "products": ["other-product"]})
    with LocalServer(seed) as server:
        yield Api(server)


def test_malformed_json_is_400(api):
    response = api.call("POST", "/webhooks/v1/register", data='{"product": ',
                        headers={"Content-Type": "application/json"})
    assert error_of(response, 400).startswith("malformed JSON in the request body")


def test_malformed_json_without_a_content_type_is_still_400(api):
    # curl -d sends form encoding unless told otherwise; the author's mistake is still the JSON.
    response = api.call("POST", "/webhooks/v1/register", data='{bad',
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert error_of(response, 400).startswith("malformed JSON in the request body")


def test_valid_json_without_a_content_type_names_the_header(api):
    response = api.call("POST", "/webhooks/v1/register", data='{"product": "my-product"}',
                        headers={"Content-Type": "text/plain"})
    assert error_of(response, 422) == "request body: send it with Content-Type: application/json"


def test_a_body_that_is_not_an_object_is_422(api):
    response = api.call("POST", "/webhooks/v1/register", json=["product"])
    assert error_of(response, 422) == "request body: must be a JSON object"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}])
def test_missing_key_is_401(api, headers):
    response = api.call("GET", "/webhooks/v1/webhooks", key=None, headers=headers,
                        params={"product": "my-product", "access_tag": "stripe-payments"})
    assert error_of(response, 401).startswith("missing access key")


@pytest.mark.parametrize("method,path", [
    ("POST", "/webhooks/v1/register"), ("POST", "/webhooks/v1/generate-link"),
    ("GET", "/webhooks/v1/webhooks"), ("DELETE", "/webhooks/v1/registrations/x"),
])
def test_unknown_key_is_401_on_every_route(api, method, path):
    assert error_of(api.call(method, path, key="dtl_wrong"), 401) == "unknown access key"


def test_key_not_allowed_on_the_product_is_403(api):
    errors = error_of(api.call("POST", "/webhooks/v1/register", key=OTHER_KEY, json={
        "product": "my-product", "access_tag": "stripe-payments", "webhook_tag": "payment_succeeded",
        "envs": [{"slug": "prd", "url": "https://a.example.com/h"}]}), 403)
    assert errors == 'product: this access key is not allowed on product "my-product"'
    assert error_of(api.call(
        "GET", "/webhooks/v1/webhooks", key=OTHER_KEY,
        params={"product": "my-product", "access_tag": "stripe-payments"}), 403).startswith("product:")


def test_uuid_of_a_product_the_key_may_not_use_answers_as_an_unknown_uuid(api):
    """A DELETE must not tell a key holder that a uuid exists, nor which product it belongs to."""
    uuid = api.register().json()["data"]["envs"][0]["uuid"]
    unknown = "00000000-0000-4000-8000-000000000000"
    answer, unknown_answer = api.delete(uuid, key=OTHER_KEY), api.delete(unknown, key=OTHER_KEY)
    assert error_of(answer, 404) == f'uuid: no registration "{uuid}"'
    assert error_of(unknown_answer, 404) == f'uuid: no registration "{unknown}"'
    assert "my-product" not in answer.text
    assert api.delete(uuid).status_code == 200  # still there: the refused DELETE removed nothing


@pytest.mark.parametrize("override,message", [
    ({"product": "nope"}, 'product: unknown product "nope"'),
    ({"access_tag": "nope"}, 'access_tag: unknown access tag "nope" for product "my-product"'),
    ({"webhook_tag": "nope"}, 'webhook_tag: unknown webhook "nope" for access tag "stripe-payments"'),
])
def test_unknown_things_are_404_and_named(api, override, message):
    assert error_of(api.register(**override), 404) == message


def test_unknown_uuid_and_unknown_path_are_404(api):
    assert error_of(api.delete("0b8e6b5e-0000-4000-8000-000000000000"), 404) == (
        'uuid: no registration "0b8e6b5e-0000-4000-8000-000000000000"')
    assert error_of(api.call("GET", "/webhooks/v1/nothing-here"), 404) == "no such route: GET /webhooks/v1/nothing-here"


def test_wrong_method_is_405_in_the_envelope(api):
    assert error_of(api.call("PUT", "/webhooks/v1/register"), 405).startswith("method PUT is not allowed")


@pytest.mark.parametrize("env,message", [
    ({"slug": "prd", "url": "ftp://a.example.com/h"},
     'envs[1].url: must be an absolute http or https URL (got "ftp://a.example.com/h")'),
    ({"slug": "prd", "url": "https:///nohost"}, 'envs[1].url: must be an absolute http or https URL'),
    ({"slug": "prd", "url": "https://a.example.com/h", "method": "post"},
     'envs[1].method: must be one of GET, POST, PUT, PATCH, DELETE (got "post")'),
    ({"slug": "xyz", "url": "https://a.example.com/h"}, 'envs[1].slug: "xyz" is not an env of product "my-product"'),
    ({"url": "https://a.example.com/h"}, "envs[1].slug: is required"),
    ({"slug": "prd", "url": "https://a.example.com/h", "colour": "red"}, "envs[1].colour: is not a known field"),
])
def test_invalid_env_fields_are_422_and_named(api, env, message):
    envs = [{"slug": "stg", "url": "https://s.example.com/h"}, env]
    assert error_of(api.register(envs=envs), 422).startswith(message)


def test_env_not_mapped_for_the_access_tag_is_422():
    seed = example_seed()
    seed["products"][0]["connections"][0]["envs"] = {"prd": "live"}
    with LocalServer(seed) as server:
        errors = error_of(Api(server).register(envs=[{"slug": "stg", "url": "https://a.example.com/h"}]), 422)
    assert errors == 'envs[0].slug: env "stg" is not mapped to an app env for access tag "stripe-payments"'


def test_empty_envs_and_missing_fields_are_422(api):
    assert error_of(api.register(envs=[]), 422).startswith("envs: List should have at least 1 item")
    body = {"product": "my-product", "envs": [{"slug": "prd", "url": "https://a.example.com/h"}]}
    errors = error_of(api.call("POST", "/webhooks/v1/register", json=body), 422)
    assert errors == "access_tag: is required; webhook_tag: is required"


def test_auth_errors_name_the_field_but_never_echo_a_value(api):
    secret = "sk_live_never_echo_me"
    envs = [{"slug": "prd", "url": "https://a.example.com/h",
             "auth": {"headers": {"X-Key": {"nested": secret}}, "cookies": secret}}]
    errors = error_of(api.register(envs=envs), 422)
    assert "envs[0].auth.headers.X-Key" in errors and "envs[0].auth.cookies: is not a known field" in errors
    assert secret not in errors
    typo = [{"slug": "prd", "url": "https://a.example.com/h", "Auth": secret}]
    errors = error_of(api.register(envs=typo), 422)
    assert errors == "envs[0].Auth: is not a known field"


def test_non_json_content_type_is_still_read_as_the_body(api):
    response = requests.post(api.server.url + "/webhooks/v1/register", timeout=10, data="[]",
                             headers={**api.server.auth_headers, "Content-Type": "text/plain"})
    assert response.status_code == 422 and response.json()["status"] is False
