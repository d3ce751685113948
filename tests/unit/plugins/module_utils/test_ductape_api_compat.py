"""The client and engine against a server that answers as the hosted Ductape does (ductape-local's
``--compat ductape``): the link as a string, rows without digest or link, the auth header option, the
session-token hook, and extension routes that the server does not offer."""
from __future__ import annotations

import pytest

from ansible_collections.ductape.webhooks.plugins.module_utils import _engine as engine
from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_api import (
    DuctapeApiError,
    DuctapeClient,
    client_for as module_client_for,
    connection_argument_spec,
)
from ansible_collections.ductape.webhooks.tests.unit.scripted_http import RoutedHTTP, ScriptedHTTP, answer

API_URL = "http://api.ductape.test:4311"
INGRESS = "https://webhooks.ductape.test"
KEY = "dtl_compat_unit_key_7e1d"
TOKEN = "dts_compat_unit_session_4c2a"
SECRET = "sk_live_compat_secret_0b"
AUTH = {"headers": {"Authorization": "Bearer " + SECRET}}
PRODUCT = "acme_space:shop"
ACCESS_TAG = "ductape:paystack"
UUID = "3b75523b-36f9-43df-bf72-cf1e50dfe08f"
LINK = INGRESS + "/webhooks/v1/process/" + UUID


def client(http, **options):
    options.setdefault("retries", 0)
    return DuctapeClient(API_URL, KEY, warn=http.warnings.append, sleep=http.sleeps.append, session=http.session,
                         **options)


def row(slug, url, method="POST", uuid=UUID):
    """A listing row as Ductape's UI sees it: no auth, digest, link, timestamps or provider status."""
    return {"productEnv": slug, "appEnv": "test", "url": url, "method": method, "uuid": uuid, "active": False}


def no_secret(http, *texts):
    for text in (*texts, *http.warnings):
        for secret in (KEY, TOKEN, SECRET):
            assert secret not in str(text), text


# generate-link: a string or a registration; the link is the server's.


@pytest.mark.parametrize("data", [LINK, {"link": LINK}, {"data": {"link": LINK}}],
                         ids=["string", "link-key", "data-link"])
def test_generate_link_takes_the_link_as_a_string_or_inside_an_object(data):
    http = ScriptedHTTP([answer(200, data)])
    result = client(http).generate_link(PRODUCT, ACCESS_TAG, "charge_success", "snd", "https://r.example/h", "POST")
    assert result["link"] == LINK
    assert result["uuid"] == UUID  # read from the server's link, never made from api_url
    assert API_URL not in result["link"]


def test_generate_link_answering_a_registration_is_taken_as_it_is():
    registration = dict(row("snd", "https://r.example/h"), link=LINK, auth_digest="sha256:" + "0" * 64)
    http = ScriptedHTTP([answer(200, registration)])
    assert client(http).generate_link(PRODUCT, ACCESS_TAG, "w", "snd", "https://r.example/h", "POST") == registration


@pytest.mark.parametrize("data", [None, 42, {"uuid": UUID}, "not a url", ["x"]])
def test_generate_link_without_a_link_fails_saying_so(data):
    http = ScriptedHTTP([answer(200, data)])
    with pytest.raises(DuctapeApiError) as raised:
        client(http).generate_link(PRODUCT, ACCESS_TAG, "w", "snd", "https://r.example/h", "POST")
    assert "generate the link of ductape:paystack/w in snd" in str(raised.value)
    assert "holds no link" in str(raised.value)


# Extension routes: "not offered" told apart from "not found".


@pytest.mark.parametrize("not_offered", [
    answer(404, errors="no such route: DELETE /webhooks/v1/registrations/" + UUID),
    answer(404, raw="<!DOCTYPE html><pre>Cannot DELETE /webhooks/v1/registrations/x</pre>"),
    answer(405, errors="method DELETE is not allowed"),
    answer(501, raw=""),
], ids=["ductape-local-compat", "framework-page", "405", "501"])
def test_an_extension_the_server_lacks_fails_naming_the_operation_and_saying_it_is_not_offered(not_offered):
    http = ScriptedHTTP([not_offered])
    with pytest.raises(DuctapeApiError) as raised:
        client(http).delete_registration(UUID, env="snd")
    message = str(raised.value)
    assert raised.value.not_offered is True
    assert message.startswith("delete the registration %s in snd: this Ductape API (%s) does not offer it"
                              % (UUID, API_URL))
    assert "extension" in message


def test_an_unknown_uuid_on_an_offered_extension_is_not_found_not_not_offered():
    http = ScriptedHTTP([answer(404, errors='uuid: no registration "%s"' % UUID)])
    with pytest.raises(DuctapeApiError) as raised:
        client(http).delete_registration(UUID)
    assert raised.value.not_offered is False and raised.value.status == 404
    assert "does not offer" not in str(raised.value)


def test_delivery_is_none_for_an_unknown_event_and_an_error_when_deliveries_are_not_offered():
    found = ScriptedHTTP([answer(404, errors='event_id: no delivery "evt_1"')])
    assert client(found).delivery("evt_1") is None
    lacking = ScriptedHTTP([answer(404, errors="no such route: GET /webhooks/v1/deliveries/evt_1")])
    with pytest.raises(DuctapeApiError) as raised:
        client(lacking).delivery("evt_1")
    assert "read the delivery evt_1: this Ductape API" in str(raised.value)
    lacking = ScriptedHTTP([answer(404, errors="no such route: GET /webhooks/v1/deliveries")])
    with pytest.raises(DuctapeApiError) as raised:
        client(lacking).deliveries(10)
    assert str(raised.value).startswith("list the deliveries: this Ductape API")


def test_a_404_on_a_contract_route_is_never_called_not_offered():
    http = ScriptedHTTP([answer(404, errors="no such route: GET /webhooks/v1/webhooks")])
    with pytest.raises(DuctapeApiError) as raised:
        client(http).webhooks(PRODUCT, ACCESS_TAG)
    assert raised.value.not_offered is False


# The auth header, and the session-token hook.


@pytest.mark.parametrize("header,expected", [("authorization", ("Authorization", "Bearer " + KEY)),
                                             ("x-access-token", ("x-access-token", KEY))])
def test_the_auth_header_option_chooses_how_the_key_travels(header, expected):
    http = ScriptedHTTP([answer(200, [])])
    client(http, auth_header=header).webhooks(PRODUCT, ACCESS_TAG)
    [sent] = http.sent
    name, value = expected
    assert sent.headers[name] == value
    other = "x-access-token" if name == "Authorization" else "Authorization"
    assert other not in sent.headers


def test_the_connection_options_have_their_environment_fallbacks():
    spec = connection_argument_spec()
    assert spec["auth_header"]["fallback"][1] == ["DUCTAPE_AUTH_HEADER"]
    assert spec["auth_header"]["choices"] == ["authorization", "x-access-token"]
    assert spec["token_exchange"]["fallback"][1] == ["DUCTAPE_TOKEN_EXCHANGE"]
    assert spec["token_exchange"]["choices"] == ["ductape-local", "none"]
    assert spec["auth_unknown"]["fallback"][1] == ["DUCTAPE_AUTH_UNKNOWN"]
    assert spec["auth_unknown"]["default"] == "changed"


def session_answer(token=TOKEN):
    return answer(200, {"token": token, "token_type": "Bearer", "expires_in": 900})


@pytest.mark.parametrize("header", ["authorization", "x-access-token"])
def test_the_token_exchange_sends_the_key_once_then_the_token_on_every_call(header):
    http = ScriptedHTTP([session_answer(), answer(200, []), answer(200, [])])
    api = client(http, token_exchange="ductape-local", auth_header=header)
    api.webhooks(PRODUCT, ACCESS_TAG)
    api.webhooks(PRODUCT, ACCESS_TAG)
    exchange, first, second = http.sent
    assert (exchange.method, exchange.path) == ("POST", "/webhooks/v1/session")
    credential = (lambda sent: sent.headers["Authorization"][len("Bearer "):]) if header == "authorization" else (
        lambda sent: sent.headers["x-access-token"])
    assert credential(exchange) == KEY
    assert credential(first) == TOKEN and credential(second) == TOKEN
    assert first.query == {"product": PRODUCT, "access_tag": ACCESS_TAG, "limit": "250"}


def test_a_401_to_the_token_fetches_a_new_one_once_and_a_second_401_fails_without_the_token():
    renewed = "dts_compat_unit_session_renewed"
    http = ScriptedHTTP([session_answer(), answer(401, errors="unknown or expired session token"),
                         session_answer(renewed), answer(200, [])])
    api = client(http, token_exchange="ductape-local")
    assert api.webhooks(PRODUCT, ACCESS_TAG) == []
    assert [sent.path for sent in http.sent] == ["/webhooks/v1/session", "/webhooks/v1/webhooks",
                                                 "/webhooks/v1/session", "/webhooks/v1/webhooks"]
    assert http.sent[-1].headers["Authorization"] == "Bearer " + renewed

    http = ScriptedHTTP([session_answer(), answer(401, errors="bad token " + TOKEN), session_answer(),
                         answer(401, errors="still bad: " + TOKEN)])
    with pytest.raises(DuctapeApiError) as raised:
        client(http, token_exchange="ductape-local").webhooks(PRODUCT, ACCESS_TAG)
    assert raised.value.status == 401 and len(http.sent) == 4
    assert TOKEN not in str(raised.value) and "********" in str(raised.value)


def test_a_refused_exchange_fails_naming_it_and_never_shows_the_key():
    http = ScriptedHTTP([answer(401, errors="unknown access key " + KEY)])
    with pytest.raises(DuctapeApiError) as raised:
        client(http, token_exchange="ductape-local").webhooks(PRODUCT, ACCESS_TAG)
    message = str(raised.value)
    assert message.startswith("exchange the access key for a session token: HTTP 401")
    assert KEY not in message and len(http.sent) == 1


def test_an_exchange_answer_without_a_token_is_refused():
    http = ScriptedHTTP([answer(200, {"token": ""})])
    with pytest.raises(DuctapeApiError) as raised:
        client(http, token_exchange="ductape-local").webhooks(PRODUCT, ACCESS_TAG)
    assert "no usable token" in str(raised.value)


@pytest.mark.parametrize("option,value", [("auth_header", "cookie"), ("token_exchange", "oauth"),
                                          ("auth_unknown", "ignore")])
def test_bad_connection_choices_are_refused_naming_option_and_value(option, value):
    params = {"api_url": API_URL, "access_key": KEY, option: value}
    with pytest.raises(DuctapeApiError) as raised:
        module_client_for(params)
    assert str(raised.value).startswith(option + ": must be one of") and '"%s"' % value in str(raised.value)


# The engine with no digest and no link in the rows.


class HostedLike:
    """A server that answers like the hosted Ductape: rows without digest or link, no cursor, no product envs,
    the link as a string, register's rows without link; ignores the webhook_tag filter."""

    def __init__(self, rows):
        self.rows = rows

    def __call__(self, sent):
        if sent.method == "GET":
            return answer(200, [{"tag": "charge_success", "name": "Charge success", "config": list(self.rows)},
                                {"tag": "transfer_success", "name": "Transfer success", "config": []}])
        if sent.path.endswith("/register"):
            return answer(200, {"product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": "charge_success",
                                "envs": [row(env["slug"], env["url"], env["method"]) for env in sent.json["envs"]]})
        if sent.path.endswith("/generate-link"):
            return answer(200, LINK)
        raise AssertionError(sent)


def converge(http, envs, auth_unknown, check_mode=False, link_only=False):
    api = DuctapeClient(API_URL, KEY, warn=http.warnings.append, session=http.session, retries=0,
                        auth_unknown=auth_unknown)
    states = [engine.WebhookState(ACCESS_TAG, "charge_success",
                                  [engine.EnvState(slug, url, "POST", None if link_only else AUTH, link_only=link_only)
                                   for slug, url in envs])]
    [outcome] = engine.converge(api, PRODUCT, states, "present", check_mode)
    return outcome


def writes(http):
    return [sent for sent in http.sent if sent.method == "POST"]


def test_auth_unknown_changed_updates_and_reports_changed_never_a_silent_unchanged():
    http = RoutedHTTP(HostedLike([row("snd", "https://r.example/h")]))
    outcome = converge(http, [("snd", "https://r.example/h")], "changed")
    [env] = outcome.envs
    assert env.action == "updated" and outcome.changed
    assert len(writes(http)) == 1 and writes(http)[0].json["envs"][0]["auth"] == AUTH
    result = engine.single_report(outcome, want_diff=True)
    assert result["envs"][0]["auth_compared"] is False
    assert result["diff"]["after"]["snd"]["auth"] == {"headers": {"Authorization": "******** (not comparable: sent again)"}}
    assert "auth" not in result["diff"]["before"]["snd"]  # the server does not show the stored auth
    [warning] = http.warnings
    assert "gives no auth digest for ductape:paystack/charge_success in snd" in warning
    assert "auth_unknown: changed" in warning
    no_secret(http, repr(result))


def test_auth_unknown_send_sends_on_every_run_and_reports_unchanged_when_url_and_method_match():
    http = RoutedHTTP(HostedLike([row("snd", "https://r.example/h")]))
    outcome = converge(http, [("snd", "https://r.example/h")], "send")
    [env] = outcome.envs
    assert env.action == "unchanged" and not outcome.changed
    [write] = writes(http)
    assert write.path == "/webhooks/v1/register" and write.json["envs"][0]["auth"] == AUTH
    result = engine.single_report(outcome, want_diff=True)
    assert result["changed"] is False and result["envs"][0]["auth_compared"] is False
    assert result["diff"] == {"before": {}, "after": {}}
    [warning] = http.warnings
    assert "it is sent again, and counted as changed only where url or method differ (auth_unknown: send)" in warning
    no_secret(http, repr(result))


def test_auth_unknown_send_still_reports_a_url_change_as_changed():
    http = RoutedHTTP(HostedLike([row("snd", "https://r.example/old")]))
    outcome = converge(http, [("snd", "https://r.example/new")], "send")
    assert outcome.envs[0].action == "updated" and outcome.changed
    diff = engine.diff_of(outcome)
    assert diff == {"before": {"snd": {"url": "https://r.example/old"}}, "after": {"snd": {"url": "https://r.example/new"}}}


@pytest.mark.parametrize("choice", ["changed", "send"])
def test_check_mode_with_unknown_auth_sends_nothing_and_says_what_it_would_do(choice):
    http = RoutedHTTP(HostedLike([row("snd", "https://r.example/h")]))
    outcome = converge(http, [("snd", "https://r.example/h")], choice, check_mode=True)
    assert writes(http) == []
    assert outcome.changed is (choice == "changed")
    [warning] = http.warnings
    assert "would be" in warning


def test_a_known_digest_is_compared_as_before_whatever_auth_unknown_says():
    from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_api import auth_digest

    http = RoutedHTTP(HostedLike([dict(row("snd", "https://r.example/h"), auth_digest=auth_digest(AUTH))]))
    outcome = converge(http, [("snd", "https://r.example/h")], "send")
    assert outcome.envs[0].action == "unchanged" and writes(http) == [] and http.warnings == []
    assert "auth_compared" not in engine.env_result(outcome.envs[0])


def test_a_link_env_whose_row_has_no_link_asks_the_server_for_it_and_stays_unchanged():
    http = RoutedHTTP(HostedLike([row("snd", "https://r.example/h")]))
    outcome = converge(http, [("snd", "https://r.example/h")], "changed", link_only=True)
    assert outcome.envs[0].action == "unchanged" and not outcome.changed
    assert [sent.path for sent in writes(http)] == ["/webhooks/v1/generate-link"]
    report = engine.link_report(outcome, want_diff=False)
    assert report["link"] == LINK and report["uuid"] == UUID and report["changed"] is False


def test_a_new_link_env_gets_the_servers_link_never_one_made_from_api_url():
    http = RoutedHTTP(HostedLike([]))
    outcome = converge(http, [("prd", "https://r.example/h")], "changed", link_only=True)
    report = engine.link_report(outcome, want_diff=False)
    assert report["action"] == "created" and report["link"] == LINK
    assert not report["link"].startswith(API_URL)


def test_workspace_prefixed_tags_are_sent_encoded_and_named_in_messages():
    http = ScriptedHTTP([answer(200, []), answer(404, errors='product: unknown product "acme_space:shop"')])
    api = client(http)
    api.webhooks(PRODUCT, ACCESS_TAG, "charge_success")
    assert "product=acme_space%3Ashop" in http.sent[0].url and "access_tag=ductape%3Apaystack" in http.sent[0].url
    with pytest.raises(DuctapeApiError) as raised:
        api.webhooks(PRODUCT, ACCESS_TAG)
    assert str(raised.value).startswith("list the webhooks of ductape:paystack in product acme_space:shop")


def test_a_registration_without_provider_status_is_reported_as_unknown_not_as_no_endpoint():
    http = RoutedHTTP(HostedLike([row("snd", "https://r.example/h")]))
    outcome = converge(http, [("snd", "https://r.example/h"), ("prd", "https://r.example/p")], "send")
    shown = dict((env["slug"], env) for env in engine.single_report(outcome, want_diff=False)["envs"])
    for slug in ("snd", "prd"):  # the listing's row, and register's answer for a new env
        assert shown[slug]["provider_registration"] is None and shown[slug]["provider_reported"] is False
    # a server that says "no registration endpoint" (null) is believed
    from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_api import auth_digest

    http = RoutedHTTP(HostedLike([dict(row("snd", "https://r.example/h"), provider_registration=None,
                                       auth_digest=auth_digest(AUTH))]))
    outcome = converge(http, [("snd", "https://r.example/h")], "send")
    assert writes(http) == [] and "provider_reported" not in engine.env_result(outcome.envs[0])


def test_check_mode_does_not_report_a_disable_that_the_server_cannot_do():
    """state=disabled on a row without lifecycle state: the real run fails on the missing route, so check
    mode fails too, before any write, instead of reporting the env as disabled."""
    http = RoutedHTTP(HostedLike([row("snd", "https://r.example/h")]))
    api = DuctapeClient(API_URL, KEY, warn=http.warnings.append, session=http.session, retries=0)
    states = [engine.WebhookState(ACCESS_TAG, "charge_success", [engine.EnvState("snd")])]
    [outcome] = engine.converge(api, PRODUCT, states, "disabled", True)
    assert outcome.failed and not outcome.changed and writes(http) == []
    assert outcome.msg.startswith('disable the registration in env "snd": this Ductape API does not offer it: its '
                                  "registrations carry no lifecycle state")
