"""ductape_webhook_replay's run(): check mode is the API's dry run, the options are checked before any
request, and what it reports (scripted HTTP)."""
from __future__ import annotations

import pytest

from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_api import DuctapeClient
from ansible_collections.ductape.webhooks.plugins.modules import ductape_webhook_replay as module
from ansible_collections.ductape.webhooks.tests.unit.scripted_http import ScriptedHTTP, answer

API_URL = "http://ductape.test:4311"
PARAMS = dict({name: None for name in module.FILTERS}, api_url=API_URL, access_key="dtl_unit_key_replay",
              validate_certs=True, timeout=30.0, retries=0, product="p", event_ids=None, limit=100)


@pytest.fixture
def scripted(monkeypatch):
    def make(script):
        http = ScriptedHTTP(script)
        monkeypatch.setattr(module, "client_for", lambda params, warn: DuctapeClient(
            API_URL, params["access_key"], session=http.session, retries=0))
        return http
    return make


def replayed(matched, queued, skipped=0, truncated=False, deleted=0):
    return answer(200, {"matched": matched, "queued": queued, "skipped_in_flight": skipped,
                        "skipped_deleted": deleted, "event_ids": ["evt_%d" % n for n in range(matched)],
                        "truncated": truncated})


def listing(product_envs=("prd", "stg")):
    return answer(200, [{"tag": "paid", "config": []}, {"tag": "refunded", "config": []}],
                  meta={"next_cursor": None, "product_envs": list(product_envs)})


def test_check_mode_is_the_dry_run_and_says_how_many_would_be_queued(scripted):
    http = scripted([replayed(3, 0, skipped=1)])
    result = module.run(dict(PARAMS, status="failed"), True, False, None)
    assert http.sent[0].path == "/webhooks/v1/deliveries/replay"
    assert http.sent[0].json == {"product": "p", "status": "failed", "dry_run": True, "limit": 100}
    assert result["changed"] is True, "check mode reports the change a real run would make"
    assert result["queued"] == 0 and result["would_queue"] == 2
    assert result["msg"] == ("check mode: 3 deliveries matched, 2 would be queued for delivery again, "
                             "1 being attempted now left alone")


def test_a_real_run_is_changed_when_something_was_queued_and_says_when_more_matched(scripted):
    http = scripted([replayed(2, 2, truncated=True), replayed(0, 0)])
    result = module.run(dict(PARAMS, env="prd", limit=2), False, False, None)
    assert http.sent[0].json == {"product": "p", "env": "prd", "dry_run": False, "limit": 2}
    assert result["changed"] is True and result["truncated"] is True
    assert "(more matched than limit 2: run again for the next ones)" in result["msg"]
    assert module.run(dict(PARAMS, env="prd"), False, False, None)["changed"] is False


def test_event_ids_are_sent_as_they_are(scripted):
    http = scripted([replayed(1, 1)])
    module.run(dict(PARAMS, event_ids=["evt_a"]), False, False, None)
    assert http.sent[0].json["event_ids"] == ["evt_a"]


@pytest.mark.parametrize("options, message", [
    ({}, "give event_ids or at least one filter"),
    ({"event_ids": []}, "event_ids: give at least one event id (got an empty list)"),
    ({"event_ids": ["e"] * 1001}, "event_ids: at most 1000 per task (got 1001)"),
    ({"status": "failed", "limit": 0}, "limit: must be from 1 to 1000 (got 0)"),
    ({"received_after": "yesterday"}, 'received_after: must be an ISO 8601 time such as 2026-12-01T00:00:00Z (got "yesterday")'),
    ({"received_after": "2026-12-02T00:00:00Z", "received_before": "2026-12-01T00:00:00Z"},
     "received_after (2026-12-02T00:00:00Z) must be before received_before (2026-12-01T00:00:00Z)"),
])
def test_options_are_refused_before_any_request(scripted, options, message):
    http = scripted([])
    result = module.run(dict(PARAMS, **options), False, False, None)
    assert result["failed"] is True and message in result["msg"] and http.sent == []


def test_check_mode_counts_nothing_to_queue_as_no_change(scripted):
    scripted([replayed(1, 0, skipped=1)])
    result = module.run(dict(PARAMS, status="failed"), True, False, None)
    assert result["changed"] is False and result["would_queue"] == 0


def test_deliveries_of_a_deleted_registration_are_not_counted_as_would_be_queued_and_are_reported(scripted):
    scripted([replayed(3, 0, deleted=2), replayed(3, 1, deleted=2)])
    check = module.run(dict(PARAMS, status="failed"), True, False, None)
    assert check["would_queue"] == 1 and check["skipped_deleted"] == 2
    assert check["msg"] == ("check mode: 3 deliveries matched, 1 would be queued for delivery again, "
                            "2 of a deleted registration not queued (no receiver to deliver to)")
    real = module.run(dict(PARAMS, status="failed"), False, False, None)
    assert real["queued"] == 1 and real["skipped_deleted"] == 2
    assert real["msg"] == ("3 deliveries matched, 1 queued for delivery again, "
                           "2 of a deleted registration not queued (no receiver to deliver to)")


def test_an_access_tag_is_read_first_and_an_unknown_one_is_refused_without_replaying(scripted):
    http = scripted([answer(404, None, errors='access_tag: unknown access tag "nope" for product "p"')])
    result = module.run(dict(PARAMS, access_tag="nope", status="failed"), False, False, None)
    assert result["failed"] is True and 'unknown access tag "nope"' in result["msg"]
    assert [sent.method for sent in http.sent] == ["GET"], "no replay was asked for"


def test_a_known_access_tag_alone_is_read_then_replayed(scripted):
    http = scripted([listing(), replayed(1, 1)])
    result = module.run(dict(PARAMS, access_tag="stripe"), False, False, None)
    assert [(sent.method, sent.path) for sent in http.sent] == [
        ("GET", "/webhooks/v1/webhooks"), ("POST", "/webhooks/v1/deliveries/replay")]
    assert http.sent[1].json["access_tag"] == "stripe" and result["queued"] == 1
