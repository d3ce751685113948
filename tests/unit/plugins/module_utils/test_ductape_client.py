"""DuctapeClient over scripted HTTP exchanges: routes, retries, backoff, pagination, errors, secrecy."""
from __future__ import annotations

import calendar
import random
import time
from types import SimpleNamespace

import pytest

from ansible_collections.ductape.webhooks.plugins.module_utils import _http
from ansible_collections.ductape.webhooks.plugins.module_utils import ductape_api
from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_api import DuctapeApiError, DuctapeClient
from ansible_collections.ductape.webhooks.tests.unit.scripted_http import ScriptedHTTP, answer

API_URL = "http://ductape.test:4311"
ACCESS_KEY = "dtl_unit_secret_key_9f3a7c"
RETRY_AFTER_CAP = 60

REGISTRATION = {
    "uuid": "0f8c6a56-2c2a-4b8e-9d55-6f7f3a0e9b11", "productEnv": "stg", "appEnv": "test",
    "url": "https://stg.example.com/hooks", "method": "POST",
    "link": "http://ductape.test:4311/webhooks/v1/process/0f8c6a56-2c2a-4b8e-9d55-6f7f3a0e9b11",
    "active": False, "auth": {}, "auth_digest": "sha256:" + "0" * 64, "provider_registration": None,
    "created_at": "2026-11-29T00:00:00Z", "updated_at": "2026-11-29T00:00:00Z",
}


def _refused() -> _http.ConnectFailed:
    """A refused connection as the transport raises it: its cause is the socket's error."""
    error = _http.ConnectFailed("the connection failed: [Errno 111] Connection refused")
    error.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return error


def client_for(http: ScriptedHTTP, **options) -> DuctapeClient:
    options.setdefault("retries", 3)
    return DuctapeClient(API_URL, ACCESS_KEY, warn=http.warnings.append, sleep=http.sleeps.append,
                         session=http.session, **options)


def webhook(tag: str, config=()) -> dict:
    return {"tag": tag, "name": tag.replace("_", " ").capitalize(), "config": list(config)}


def list_webhooks(client: DuctapeClient):
    return client.webhooks("my-product", "stripe-payments")


def assert_no_secret(http: ScriptedHTTP, *texts: str) -> None:
    for text in (*texts, *http.warnings):
        assert ACCESS_KEY not in text, f"the access key leaked into: {text!r}"


# Routes and what is sent.


def test_register_posts_the_contract_body_with_the_key_as_bearer():
    http = ScriptedHTTP([answer(200, {"product": "my-product", "access_tag": "stripe-payments",
                                      "webhook_tag": "order_created", "envs": [REGISTRATION]})])
    envs = [{"slug": "stg", "url": "https://stg.example.com/hooks", "method": "POST",
             "auth": {"headers": {"X-Key": "v"}}}]
    result = client_for(http, timeout=12.5).register("my-product", "stripe-payments", "order_created", envs)

    [sent] = http.sent
    assert (sent.method, sent.path) == ("POST", "/webhooks/v1/register")
    assert sent.headers["Authorization"] == f"Bearer {ACCESS_KEY}"
    assert sent.json == {"product": "my-product", "access_tag": "stripe-payments", "webhook_tag": "order_created",
                         "envs": envs}
    assert sent.timeout == 12.5
    assert result["envs"][0]["uuid"] == REGISTRATION["uuid"]
    assert http.sleeps == [] and http.warnings == []


def test_generate_link_posts_one_env():
    http = ScriptedHTTP([answer(200, REGISTRATION)])
    result = client_for(http).generate_link("my-product", "stripe-payments", "order_created", "stg",
                                            "https://stg.example.com/hooks", "PUT")
    [sent] = http.sent
    assert (sent.method, sent.path) == ("POST", "/webhooks/v1/generate-link")
    assert sent.json == {"product": "my-product", "access_tag": "stripe-payments", "webhook_tag": "order_created",
                         "env": "stg", "url": "https://stg.example.com/hooks", "method": "PUT"}
    assert result["link"] == REGISTRATION["link"]


def test_delete_registration_names_the_uuid_in_the_path():
    http = ScriptedHTTP([answer(200, REGISTRATION)])
    client_for(http).delete_registration(REGISTRATION["uuid"])
    [sent] = http.sent
    assert (sent.method, sent.path) == ("DELETE", f"/webhooks/v1/registrations/{REGISTRATION['uuid']}")


def test_validate_certs_false_is_passed_to_the_transport():
    http = ScriptedHTTP([answer(200, [], meta={"next_cursor": None})])
    list_webhooks(client_for(http, validate_certs=False))
    assert http.sent[0].verify is False


def test_a_trailing_slash_in_api_url_does_not_double_the_slash():
    http = ScriptedHTTP([answer(200, [], meta={"next_cursor": None})])
    DuctapeClient(API_URL + "/", ACCESS_KEY, session=http.session, sleep=http.sleeps.append,
                  warn=http.warnings.append).webhooks("my-product", "stripe-payments")
    assert http.sent[0].path == "/webhooks/v1/webhooks"


def test_delivery_of_an_unknown_event_is_none():
    http = ScriptedHTTP([answer(404, errors="event_id: no delivery 'evt_x'")])
    assert client_for(http).delivery("evt_x") is None
    assert len(http.sent) == 1 and http.sleeps == []


# Pagination.


def test_webhooks_follows_every_page_by_meta_next_cursor():
    pages = [
        answer(200, [webhook("a_first"), webhook("b_second")], meta={"next_cursor": "c-1"}),
        answer(200, [webhook("c_third")], meta={"next_cursor": "c-2"}),
        answer(200, [webhook("d_fourth", [REGISTRATION])], meta={"next_cursor": None}),
    ]
    http = ScriptedHTTP(pages)
    webhooks = list_webhooks(client_for(http))

    assert [w["tag"] for w in webhooks] == ["a_first", "b_second", "c_third", "d_fourth"]
    assert webhooks[3]["config"] == [REGISTRATION]
    assert [s.path for s in http.sent] == ["/webhooks/v1/webhooks"] * 3
    assert [s.query.get("cursor") for s in http.sent] == [None, "c-1", "c-2"]
    for sent in http.sent:
        assert (sent.method, sent.query["product"], sent.query["access_tag"]) == ("GET", "my-product",
                                                                                  "stripe-payments")
    assert http.exhausted


def test_a_page_without_meta_is_the_last_one():
    http = ScriptedHTTP([answer(200, [webhook("only")], meta={})])
    assert [w["tag"] for w in list_webhooks(client_for(http))] == ["only"]
    assert len(http.sent) == 1


def test_a_failing_second_page_is_retried_and_keeps_its_cursor():
    http = ScriptedHTTP([
        answer(200, [webhook("a")], meta={"next_cursor": "c-1"}),
        answer(503, errors="busy"),
        answer(200, [webhook("b")], meta={"next_cursor": None}),
    ])
    assert [w["tag"] for w in list_webhooks(client_for(http))] == ["a", "b"]
    assert [s.query.get("cursor") for s in http.sent] == [None, "c-1", "c-1"]
    assert len(http.warnings) == 1


# Retries.


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_are_retried_with_a_warning_each(status):
    # A gateway in front of the API answers without Ductape's envelope.
    failing = answer(status, raw=f"<html><body>{status} from the gateway</body></html>")
    http = ScriptedHTTP([failing, failing, answer(200, [], meta={"next_cursor": None})])
    assert list_webhooks(client_for(http, retries=3)) == []
    assert len(http.sent) == 3
    assert len(http.sleeps) == 2
    assert len(http.warnings) == 2
    for warning in http.warnings:
        assert str(status) in warning, warning
    assert_no_secret(http)


def test_connection_errors_are_retried_with_a_warning_each():
    http = ScriptedHTTP([
        _http.ConnectFailed("the connection failed: connection refused"),
        _http.ReadTimeout("no answer within the timeout"),
        answer(200, [], meta={"next_cursor": None}),
    ])
    assert list_webhooks(client_for(http, retries=3)) == []
    assert len(http.sent) == 3
    assert len(http.sleeps) == 2 and len(http.warnings) == 2
    assert_no_secret(http)


def test_429_waits_as_long_as_retry_after_says():
    http = ScriptedHTTP([answer(429, errors="slow down", headers={"Retry-After": "7"}),
                         answer(200, [], meta={"next_cursor": None})])
    list_webhooks(client_for(http))
    assert len(http.sent) == 2
    assert http.sleeps == [7.0]
    assert http.warnings == ["list the webhooks of stripe-payments in product my-product: the Ductape API answered "
                             "HTTP 429 (slow down); retry 1 of 3 in 7.0 s"]


# The moment the tests below take as now, and an HTTP date 45 s after it.
NOW = calendar.timegm((2026, 12, 2, 0, 0, 0))
IN_45_SECONDS = "Wed, 02 Dec 2026 00:00:45 GMT"


@pytest.fixture
def frozen_now(monkeypatch):
    """ductape_api's wall clock stopped at NOW (its sleeps and its monotonic clock are the tests' own)."""
    monkeypatch.setattr(ductape_api, "time", SimpleNamespace(time=lambda: NOW, sleep=time.sleep, monotonic=time.monotonic))


@pytest.mark.parametrize("status", [429, 503])
def test_a_retry_after_http_date_waits_until_that_date(frozen_now, status):
    http = ScriptedHTTP([answer(status, errors="slow down", headers={"Retry-After": IN_45_SECONDS}),
                         answer(200, [], meta={"next_cursor": None})])
    list_webhooks(client_for(http))
    assert len(http.sent) == 2
    assert http.sleeps == [45.0]
    assert http.warnings == [f"list the webhooks of stripe-payments in product my-product: the Ductape API answered "
                             f"HTTP {status} (slow down); retry 1 of 3 in 45.0 s"]


def test_a_retry_after_http_date_in_the_past_retries_at_once(frozen_now):
    http = ScriptedHTTP([answer(429, errors="slow down", headers={"Retry-After": "Tue, 01 Dec 2026 23:59:00 GMT"}),
                         answer(200, [], meta={"next_cursor": None})])
    list_webhooks(client_for(http))
    assert len(http.sent) == 2 and http.sleeps == []
    assert http.warnings[0].endswith("retry 1 of 3 in 0.0 s"), http.warnings


def test_a_huge_retry_after_is_capped():
    http = ScriptedHTTP([answer(503, headers={"Retry-After": "86400"}),
                         answer(429, headers={"Retry-After": "3600"}),
                         answer(200, [], meta={"next_cursor": None})])
    list_webhooks(client_for(http))
    assert len(http.sleeps) == 2
    assert all(0 < slept <= RETRY_AFTER_CAP for slept in http.sleeps), http.sleeps


def test_an_unreadable_retry_after_falls_back_to_the_backoff():
    http = ScriptedHTTP([answer(429, headers={"Retry-After": "soon-ish"}),
                         answer(200, [], meta={"next_cursor": None})])
    list_webhooks(client_for(http))
    [slept] = http.sleeps
    assert 0 < slept <= RETRY_AFTER_CAP


@pytest.mark.parametrize("status, errors", [
    (400, "malformed JSON body"),
    (401, "unknown access key"),
    (403, "this access key is not allowed on product 'other'"),
    (404, "product: unknown product 'nope'"),
    (422, "envs[0].slug: env 'qas' is not mapped to an app env for access tag 'stripe-payments'"),
])
def test_client_errors_are_not_retried_and_name_operation_status_and_errors(status, errors):
    http = ScriptedHTTP([answer(status, errors=errors)])
    with pytest.raises(DuctapeApiError) as raised:
        client_for(http).register("my-product", "stripe-payments", "order_created",
                                  [{"slug": "qas", "url": "https://x.example/h", "method": "POST", "auth": {}}])
    error = raised.value
    assert len(http.sent) == 1 and http.sleeps == [] and http.warnings == []
    assert error.status == status
    assert error.operation and error.operation in str(error)
    assert str(status) in str(error)
    assert errors in str(error)
    assert_no_secret(http, str(error))


def test_exhausted_retries_fail_with_operation_status_and_errors_text():
    http = ScriptedHTTP([answer(503, errors="maintenance window")] * 4)
    with pytest.raises(DuctapeApiError) as raised:
        list_webhooks(client_for(http, retries=3))
    error = raised.value
    assert len(http.sent) == 4, "retries=3 means one attempt and three retries"
    assert len(http.sleeps) == 3 and len(http.warnings) == 3
    assert error.status == 503
    assert "503" in str(error) and "maintenance window" in str(error)
    assert error.operation and error.operation in str(error)
    assert_no_secret(http, str(error))


def test_retries_zero_means_one_attempt():
    http = ScriptedHTTP([answer(502, errors="bad gateway")])
    with pytest.raises(DuctapeApiError) as raised:
        list_webhooks(client_for(http, retries=0))
    assert len(http.sent) == 1 and http.sleeps == [] and http.warnings == []
    assert raised.value.status == 502


def test_an_unreachable_api_fails_naming_the_url():
    http = ScriptedHTTP([_http.ConnectFailed("the connection failed: [Errno 111] Connection refused")] * 3)
    with pytest.raises(DuctapeApiError) as raised:
        list_webhooks(client_for(http, retries=2))
    assert raised.value.status is None
    assert str(raised.value) == (f"list the webhooks of stripe-payments in product my-product: could not reach the "
                                 f"Ductape API at {API_URL} (connection refused); check the api_url option; "
                                 "gave up after 2 attempts")
    assert_no_secret(http, str(raised.value))


def test_a_refused_connection_is_retried_once_after_a_second_with_one_short_warning():
    refused = _refused()
    http = ScriptedHTTP([refused] * 5)
    with pytest.raises(DuctapeApiError) as raised:
        list_webhooks(client_for(http, retries=3, rng=lambda: 1.0))
    assert len(http.sent) == 2, "nothing listens there: one retry, not the retries option's 3"
    assert http.sleeps == [1.0]
    [warning] = http.warnings
    assert "connection refused" in warning and len(warning) < 250, warning
    assert "connection refused" in str(raised.value) and len(str(raised.value)) < 300, str(raised.value)


def test_the_option_named_in_an_unreachable_api_error_is_the_callers():
    http = ScriptedHTTP([_http.ConnectFailed("the connection failed: [Errno 111] Connection refused")] * 2)
    client = DuctapeClient("http://user:pa55@ductape.test:4311", ACCESS_KEY, warn=http.warnings.append,
                           sleep=http.sleeps.append, session=http.session, api_url_option="ductape_api_url")
    with pytest.raises(DuctapeApiError) as raised:
        list_webhooks(client)
    assert "check the ductape_api_url option" in str(raised.value)
    assert raised.value.option == "ductape_api_url"
    for text in (str(raised.value), *http.warnings):
        assert "pa55" not in text and "http://********@ductape.test:4311" in text, text


def test_a_429_pauses_every_request_of_the_client_not_only_the_one_that_got_it():
    http = ScriptedHTTP([answer(429, errors="slow down", headers={"Retry-After": "5"}),
                         answer(200, [], meta={"next_cursor": None}),
                         answer(200, [], meta={"next_cursor": None})])
    client = client_for(http)
    list_webhooks(client)
    assert http.sleeps == [5]
    # Another caller of the same client (another worker) after the pause has passed waits no more.
    list_webhooks(client)
    assert http.sleeps == [5]


def test_an_api_that_does_not_answer_in_time_names_the_timeout_not_api_url():
    http = ScriptedHTTP([_http.ReadTimeout("no answer within the timeout")])
    with pytest.raises(DuctapeApiError) as raised:
        list_webhooks(client_for(http, retries=0, timeout=7))
    assert "did not answer within the timeout of 7 s" in str(raised.value), str(raised.value)
    assert "api_url" not in str(raised.value)


def test_the_env_is_named_when_one_applies():
    http = ScriptedHTTP([answer(422, errors="url: must be an absolute http or https URL")])
    with pytest.raises(DuctapeApiError) as raised:
        client_for(http).generate_link("my-product", "stripe-payments", "order_created", "stg", "ftp://x", "POST")
    # The operation names the one env the request was about; the server's message is kept as it is.
    assert str(raised.value) == ("generate the link of stripe-payments/order_created in stg: HTTP 422: "
                                 "url: must be an absolute http or https URL")


def test_a_non_json_answer_is_a_clear_error():
    http = ScriptedHTTP([answer(200, raw="<html><body>Welcome to nginx!</body></html>")])
    with pytest.raises(DuctapeApiError) as raised:
        list_webhooks(client_for(http))
    message = str(raised.value)
    # It says what came back instead of JSON, and from where.
    assert message == (f"list the webhooks of stripe-payments in product my-product: the API at {API_URL} answered "
                       'HTTP 200 with text/html; charset=utf-8 "<html><body>Welcome to nginx!</body></html>", '
                       "not a Ductape answer (is api_url the Ductape API?)")
    assert http.sleeps == []
    assert_no_secret(http, message)


def test_a_non_json_gateway_error_is_retried_then_reported():
    http = ScriptedHTTP([answer(502, raw="<html>Bad Gateway</html>")] * 2)
    with pytest.raises(DuctapeApiError) as raised:
        list_webhooks(client_for(http, retries=1))
    assert len(http.sent) == 2
    assert raised.value.status == 502 and "502" in str(raised.value)


def test_the_access_key_is_scrubbed_even_when_the_server_echoes_it():
    http = ScriptedHTTP([answer(401, errors=f"unknown access key {ACCESS_KEY}")])
    with pytest.raises(DuctapeApiError) as raised:
        list_webhooks(client_for(http))
    assert raised.value.status == 401
    assert str(raised.value) == "list the webhooks of stripe-payments in product my-product: HTTP 401: unknown access key ********"
    assert_no_secret(http, str(raised.value), repr(raised.value), *map(str, raised.value.args))


# Backoff.


def _backoff_sleeps(rng_seed: int, retries: int = 4) -> list[float]:
    random.seed(rng_seed)
    http = ScriptedHTTP([answer(503)] * retries + [answer(200, [], meta={"next_cursor": None})])
    list_webhooks(client_for(http, retries=retries))
    assert len(http.sleeps) == retries
    return http.sleeps


def test_backoff_is_jittered_exponential_and_bounded():
    runs = [_backoff_sleeps(seed) for seed in range(40)]
    for sleeps in runs:
        assert all(0 < slept <= RETRY_AFTER_CAP for slept in sleeps), sleeps
    # Jitter: the same attempt does not always wait the same time.
    assert len({round(sleeps[0], 6) for sleeps in runs}) > 1, "no jitter: every first retry waited the same"
    # Exponential: later retries wait longer, on average and at most.
    means = [sum(sleeps[n] for sleeps in runs) / len(runs) for n in range(4)]
    assert means[0] < means[1] < means[2] < means[3], means
    assert max(s[3] for s in runs) > max(s[0] for s in runs)


# Connection options.


def test_client_for_refuses_a_missing_key_and_names_where_to_set_it():
    from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_api import client_for

    params = {"api_url": API_URL, "access_key": None, "validate_certs": True, "timeout": 30.0, "retries": 3}
    with pytest.raises(DuctapeApiError) as raised:
        client_for(params, warn=None)
    assert "access_key" in str(raised.value) and "DUCTAPE_ACCESS_KEY" in str(raised.value)


def test_connection_options_read_the_documented_environment_variables():
    from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_api import connection_argument_spec

    spec = connection_argument_spec()
    assert set(spec) == {"api_url", "access_key", "validate_certs", "timeout", "retries", "auth_header",
                         "token_exchange", "auth_unknown"}
    assert spec["api_url"]["default"] == "https://api.ductape.app"
    assert spec["api_url"]["fallback"][1] == ["DUCTAPE_API_URL"]
    assert spec["access_key"]["fallback"][1] == ["DUCTAPE_ACCESS_KEY"]
    assert spec["access_key"]["no_log"] is True
    assert spec["validate_certs"]["default"] is True


def test_the_apis_own_502_a_refused_provider_registration_is_not_retried():
    http = ScriptedHTTP([answer(502, errors="provider registration failed for env stg: provider answered HTTP 400")])
    with pytest.raises(DuctapeApiError) as raised:
        client_for(http, retries=3).register("my-product", "stripe-payments", "payment_succeeded",
                                             [{"slug": "stg", "url": "https://stg.example.com/hook"}])
    assert len(http.sent) == 1 and http.sleeps == [] and http.warnings == []
    assert raised.value.status == 502
    assert str(raised.value) == ("register stripe-payments/payment_succeeded in stg: HTTP 502: "
                                 "provider registration failed for env stg: provider answered HTTP 400")


@pytest.mark.parametrize("status", [503, 504])
def test_the_apis_own_503_and_504_are_still_retried(status):
    http = ScriptedHTTP([answer(status, errors="busy"), answer(200, [], meta={"next_cursor": None})])
    assert list_webhooks(client_for(http, retries=3)) == []
    assert len(http.sent) == 2 and len(http.warnings) == 1


# Deliveries.

def delivery(event_id: str) -> dict:
    return {"event_id": event_id, "status": "delivered"}


def test_deliveries_follow_next_cursor_until_the_limit():
    http = ScriptedHTTP([answer(200, [delivery("e1"), delivery("e2")], meta={"next_cursor": "page-2"}),
                         answer(200, [delivery("e3")], meta={"next_cursor": "page-3"}),
                         answer(200, [delivery("e4"), delivery("e5")], meta={"next_cursor": "page-4"})])
    found = client_for(http).deliveries(4, product="my-product", access_tag="stripe-payments")
    assert [d["event_id"] for d in found] == ["e1", "e2", "e3", "e4"]
    assert [sent.query.get("cursor") for sent in http.sent] == [None, "page-2", "page-3"]
    assert [sent.query["limit"] for sent in http.sent] == ["4", "2", "1"]
    assert all(sent.query["product"] == "my-product" and sent.query["access_tag"] == "stripe-payments"
               for sent in http.sent)


def test_deliveries_stop_at_the_last_page():
    http = ScriptedHTTP([answer(200, [delivery("e1")], meta={"next_cursor": "page-2"}),
                         answer(200, [delivery("e2")], meta={"next_cursor": None})])
    found = client_for(http).deliveries(100, product="my-product")
    assert [d["event_id"] for d in found] == ["e1", "e2"]
    assert len(http.sent) == 2


# The env behind an envs[N] in the server's message.

def test_an_error_about_envs_n_names_the_env_of_that_position():
    http = ScriptedHTTP([answer(422, errors="envs[1].url: must be an absolute http or https URL")])
    with pytest.raises(DuctapeApiError) as raised:
        client_for(http, retries=0).register("my-product", "stripe-payments", "order_created",
                                             [{"slug": "dev", "url": "https://dev.example.com/h"},
                                              {"slug": "stg", "url": "ftp://stg.example.com/h"}])
    assert str(raised.value) == ("register stripe-payments/order_created in dev, stg: HTTP 422: "
                                 "envs[1].url: must be an absolute http or https URL (envs[1] is env stg)")


def test_an_error_that_already_names_the_env_gets_no_hint():
    http = ScriptedHTTP([answer(422, errors='envs[0].slug: env "dev" is not mapped')])
    with pytest.raises(DuctapeApiError) as raised:
        client_for(http, retries=0).register("my-product", "stripe-payments", "order_created",
                                             [{"slug": "dev", "url": "https://dev.example.com/h"},
                                              {"slug": "stg", "url": "https://stg.example.com/h"}])
    assert str(raised.value) == ('register stripe-payments/order_created in dev, stg: HTTP 422: '
                                 'envs[0].slug: env "dev" is not mapped')


# The API's base URL.


@pytest.mark.parametrize("api_url", [
    "http://ops:s3cr3t-pw@ductape.test:4311",
    "https://ops:s3cr3t-pw@ductape.test/api",
    "http://:s3cr3t-pw@ductape.test",
    "http://s3cr3t-pw@ductape.test",
    "https://o%40ps:s3cr3t-pw@ductape.test?x=1",
    "http://ops:s3cr3t-pw@other@ductape.test#top",
])
def test_credentials_inside_api_url_are_refused_naming_the_option_never_the_password(api_url):
    """requests would send a URL's user:password as basic auth in place of the access key."""
    params = {"api_url": api_url, "access_key": ACCESS_KEY}
    for option in ("api_url", "ductape_api_url"):
        with pytest.raises(DuctapeApiError) as raised:
            ductape_api.client_for(params, api_url_option=option)
        message = str(raised.value)
        assert message.startswith(option + ": must not carry credentials (got ")
        assert "********@" in message and "ductape.test" in message
        assert "s3cr3t-pw" not in message and ACCESS_KEY not in message
        assert raised.value.option == option


@pytest.mark.parametrize("api_url", ["http://ductape.test:4311/a@b", "https://ductape.test/?owner=a@b",
                                     "http://ductape.test#a@b"])
def test_an_at_sign_after_the_host_is_not_credentials(api_url):
    client = ductape_api.client_for({"api_url": api_url, "access_key": ACCESS_KEY})
    assert client.api_url == api_url.rstrip("/")
