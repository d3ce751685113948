"""ductape_webhook_test's run(): check mode sends nothing, the wait is bounded and polls the delivery, a receiver
that refused fails the task naming every attempt (scripted HTTP, a virtual clock)."""
from __future__ import annotations

import pytest

from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_api import DuctapeClient
from ansible_collections.ductape.webhooks.plugins.modules import ductape_webhook_test as module
from ansible_collections.ductape.webhooks.tests.unit.scripted_http import ScriptedHTTP, answer

API_URL = "http://ductape.test:4311"
PARAMS = {"api_url": API_URL, "access_key": "dtl_unit_key_test_module", "validate_certs": True, "timeout": 30.0,
          "retries": 0, "product": "p", "access_tag": "stripe", "webhook_tag": "paid", "env": "prd", "payload": None,
          "max_attempts": 2, "wait_timeout": 5.0}


def listing(state="enabled"):
    registration = {"uuid": "u1", "productEnv": "prd", "url": "https://h.example/x", "method": "POST",
                    "link": API_URL + "/webhooks/v1/process/u1", "state": state}
    return answer(200, [{"tag": "paid", "config": [registration]}], meta={"next_cursor": None,
                                                                          "product_envs": ["prd"]})


def delivery(status, *codes):
    attempts = [{"n": n + 1, "at": "2026-12-02T03:00:00Z", "status_code": code, "latency_ms": 1.0,
                 "error": None if code and code < 300 else "receiver answered HTTP %s" % code}
                for n, code in enumerate(codes)]
    return answer(200, {"event_id": "evt_1", "status": status, "attempts": attempts, "test": True})


@pytest.fixture
def scripted(monkeypatch):
    clock = {"now": 0.0}
    monkeypatch.setattr(module, "_clock", lambda: clock["now"])
    monkeypatch.setattr(module, "_sleep", lambda seconds: clock.__setitem__("now", clock["now"] + seconds))

    def make(script):
        http = ScriptedHTTP(script)
        monkeypatch.setattr(module, "client_for", lambda params, warn: DuctapeClient(
            API_URL, params["access_key"], session=http.session, retries=0))
        return http
    return make


def test_check_mode_reads_the_registration_and_sends_nothing(scripted):
    http = scripted([listing()])
    result = module.run(dict(PARAMS), True, False, None)
    assert result["changed"] is True, "check mode reports the change a real run makes (it sends an event)"
    assert result["status"] == "not_sent" and result["registration_uuid"] == "u1" and result["event_id"] is None
    assert [sent.method for sent in http.sent] == ["GET"]


def test_the_delivery_is_polled_until_it_has_an_outcome_and_a_refusal_fails_naming_every_attempt(scripted):
    http = scripted([listing(), answer(202, {"event_id": "evt_1", "registration_uuid": "u1"}),
                     delivery("pending"), delivery("pending", 500), delivery("failed", 500, 503)])
    result = module.run(dict(PARAMS), False, False, None)
    assert http.sent[1].path == "/webhooks/v1/registrations/u1/test" and http.sent[1].json == {"max_attempts": 2}
    assert [sent.path for sent in http.sent[2:]] == ["/webhooks/v1/deliveries/evt_1"] * 3
    assert result["failed"] is True and result["changed"] is True and result["status"] == "failed"
    assert [attempt["status_code"] for attempt in result["attempts"]] == [500, 503]
    assert result["msg"] == ("the receiver did not accept the test event evt_1 through stripe/paid in env prd: "
                             "attempt 1: HTTP 500 (receiver answered HTTP 500); "
                             "attempt 2: HTTP 503 (receiver answered HTTP 503)")


def test_a_delivered_event_passes(scripted):
    scripted([listing(), answer(202, {"event_id": "evt_1", "registration_uuid": "u1"}), delivery("delivered", 204)])
    result = module.run(dict(PARAMS), False, False, None)
    assert result.get("failed") is None and result["status"] == "delivered" and result["delivery"]["test"] is True


def test_the_wait_is_bounded_and_the_timeout_says_what_to_do(scripted):
    pending = [delivery("pending", 500)] * 200
    http = scripted([listing(), answer(202, {"event_id": "evt_1", "registration_uuid": "u1"})] + pending)
    result = module.run(dict(PARAMS, wait_timeout=2.0), False, False, None)
    polls = len(http.sent) - 2
    assert 3 <= polls < 30, "polled with a growing pause, and stopped at wait_timeout"
    assert result["failed"] is True and result["status"] == "pending" and result["waited"] >= 2.0
    assert "had no outcome within wait_timeout (2.0 s); still pending after: attempt 1: HTTP 500" in result["msg"]
    assert "event_id=evt_1" in result["msg"]


def test_a_timeout_before_any_attempt_ended_says_so(scripted):
    pending = [delivery("pending")] * 200
    scripted([listing(), answer(202, {"event_id": "evt_1", "registration_uuid": "u1"})] + pending)
    result = module.run(dict(PARAMS, wait_timeout=1.0), False, False, None)
    assert result["failed"] is True and result["status"] == "pending" and result["attempts"] == []
    assert "had no outcome within wait_timeout (1.0 s); still pending with no attempt ended yet." in result["msg"]
    assert "no attempt was made" not in result["msg"]


def test_a_disabled_registration_is_refused_before_sending(scripted):
    http = scripted([listing("disabled")])
    result = module.run(dict(PARAMS), False, False, None)
    assert result["failed"] is True and "is disabled" in result["msg"] and len(http.sent) == 1


@pytest.mark.parametrize("option, value, message", [
    ("max_attempts", 0, "max_attempts: must be from 1 to 10 (got 0)"),
    ("max_attempts", 11, "max_attempts: must be from 1 to 10 (got 11)"),
    ("wait_timeout", 0, "wait_timeout: must be more than 0 seconds (got 0)"),
])
def test_options_are_refused_naming_field_and_value(scripted, option, value, message):
    http = scripted([])
    assert module.run(dict(PARAMS, **{option: value}), False, False, None)["msg"] == message
    assert http.sent == []


def test_check_mode_on_a_server_without_the_lifecycle_extension_fails_as_a_real_run_would(scripted):
    """A row as the hosted Ductape lists it (no lifecycle state): check mode cannot ask the server whether it
    offers test events, so it reads the row and says so rather than report a test it could not send."""
    row = {"uuid": "u1", "productEnv": "prd", "appEnv": "live", "url": "https://h.example/x", "method": "POST",
           "active": False}
    http = scripted([answer(200, [{"tag": "paid", "name": "Paid", "config": [row]}])])
    result = module.run(dict(PARAMS), True, False, None)
    assert result["failed"] is True and result["changed"] is False and result["registration_uuid"] == "u1"
    assert result["msg"].startswith("send a test event through stripe/paid in env prd: this Ductape API does not "
                                    "offer it: its registrations carry no lifecycle state")
    assert [sent.method for sent in http.sent] == ["GET"]
