"""Bulk replay (contract L1) over real HTTP: by status, env, registration, time range and event ids,
with dry_run, limit and truncated; only the key's own product; every bad field a 422 naming it."""
from __future__ import annotations

import time

import pytest
import requests
from delivery_receiver import Answer, Receiver

from conftest import PRODUCT, Api, data_of, error_of
from ductape_local.testing import LocalServer
from lifecycle_support import (
    OTHER_KEY, RETRY_SCHEDULE, delivery, lifecycle, lifecycle_seed, link_for, replay, settled, wait_for,
)

TAG = "case_00"


@pytest.fixture(scope="module")
def server():
    with LocalServer(lifecycle_seed(), retry_schedule=RETRY_SCHEDULE, delivery_timeout=5) as running:
        yield running


@pytest.fixture(scope="module")
def receiver():
    # 404 is not retried: every event ends failed at once, until the test lets the receiver accept
    with Receiver(default=Answer(status=404)) as running:
        yield running


@pytest.fixture(scope="module")
def events(server, receiver):
    """Three failed events in prd, two in stg, one of another product; the time between the prd and
    the stg ones is the `middle` a time range can split them at."""
    api = Api(server)
    prd = link_for(api, TAG, receiver.url + "/prd", env="prd")
    stg = link_for(api, TAG, receiver.url + "/stg", env="stg")
    other = Api(server, key=OTHER_KEY)
    theirs = data_of(other.generate_link(product="other-product", access_tag="stripe-other", env="prd",
                                         webhook_tag=TAG, url=receiver.url + "/other"))
    sent = {"prd": [], "stg": []}
    for n in range(3):
        sent["prd"].append(data_of(requests.post(prd["link"], json={"n": n}), 202)["event_id"])
        time.sleep(0.01)  # receipts in distinct milliseconds, which the wire's timestamps show
    for event_id in sent["prd"]:
        settled(api, event_id)
    middle = delivery(api, sent["prd"][-1])["received_at"]
    time.sleep(0.01)  # so that the next receipt is strictly later than `middle` at millisecond precision
    for n in range(2):
        sent["stg"].append(data_of(requests.post(stg["link"], json={"n": n}), 202)["event_id"])
    foreign = data_of(requests.post(theirs["link"], json={"n": "other"}), 202)["event_id"]
    for event_id in sent["stg"]:
        settled(api, event_id)
    settled(other, foreign)
    return {"prd": sent["prd"], "stg": sent["stg"], "foreign": foreign, "middle": middle,
            "prd_uuid": prd["uuid"], "stg_uuid": stg["uuid"]}


def attempts(api: Api, event_ids: list[str]) -> dict[str, int]:
    return {event_id: delivery(api, event_id)["attempt_count"] for event_id in event_ids}


def test_dry_run_counts_what_would_be_replayed_and_changes_nothing(api, events):
    everything = events["prd"] + events["stg"]
    before = attempts(api, everything)
    answer = data_of(replay(api, status="failed", webhook_tag=TAG, dry_run=True))
    assert answer == {"matched": 5, "queued": 0, "skipped_in_flight": 0, "skipped_deleted": 0,
                      "event_ids": everything, "truncated": False}
    assert attempts(api, everything) == before
    assert all(delivery(api, event_id)["status"] == "failed" for event_id in everything)


def test_filters_by_env_registration_time_range_and_event_ids(api, events):
    def matched(**body):
        return data_of(replay(api, webhook_tag=TAG, dry_run=True, **body))["event_ids"]

    assert matched(env="prd") == events["prd"]
    assert matched(env="stg", status="failed") == events["stg"]
    assert matched(status="delivered") == [] and matched(status="pending") == []
    assert matched(registration_uuid=events["stg_uuid"]) == events["stg"]
    middle = events["middle"]
    assert matched(received_after=middle) == events["prd"][-1:] + events["stg"]
    assert matched(received_before=middle) == events["prd"][:-1]
    # naive times are UTC; an offset is honoured
    assert matched(received_before=middle.replace("Z", "")) == events["prd"][:-1]
    assert matched(received_before=middle.replace("Z", "+00:00")) == events["prd"][:-1]
    assert matched(event_ids=[events["stg"][1], events["prd"][0], "evt_unknown"]) == [events["prd"][0], events["stg"][1]]
    assert matched(event_ids=[]) == []
    assert matched(event_ids=[f"evt_{n:032x}" for n in range(999)] + [events["stg"][0]]) == events["stg"][:1]
    # another product's events never match, even by id
    assert matched(event_ids=[events["foreign"]]) == []
    assert events["foreign"] not in matched()


def test_limit_bounds_the_replay_and_truncated_says_more_matched(api, server, events, receiver):
    answer = data_of(replay(api, env="prd", status="failed", webhook_tag=TAG, limit=2))
    assert (answer["matched"], answer["queued"], answer["truncated"]) == (2, 2, True)
    assert answer["event_ids"] == events["prd"][:2]
    for event_id in events["prd"][:2]:
        record = wait_for(lambda: (lambda d: d if d["attempt_count"] == 2 and d["status"] != "pending" else None)(
            delivery(api, event_id)), f"the replay of {event_id}")
        assert record["status"] == "failed"
    assert delivery(api, events["prd"][2])["attempt_count"] == 1
    # once the receiver accepts, the rest of prd is replayed and delivered; stg stays as it was
    receiver.set_default(Answer(status=200))
    try:
        rest = data_of(replay(api, env="prd", status="failed", webhook_tag=TAG, limit=1000))
        assert rest == {"matched": 3, "queued": 3, "skipped_in_flight": 0, "skipped_deleted": 0,
                        "event_ids": events["prd"], "truncated": False}
        for event_id in events["prd"]:
            assert settled(api, event_id)["status"] == "delivered"
        assert {delivery(api, e)["status"] for e in events["stg"]} == {"failed"}
        # a replay of what matches nothing queues nothing
        assert data_of(replay(api, env="prd", status="failed", webhook_tag=TAG))["matched"] == 0
    finally:
        receiver.set_default(Answer(status=404))


def test_replay_follows_a_rotation_and_skips_deleted_registrations(api, events, receiver):
    with Receiver() as accepting:
        registration = link_for(api, "case_01", accepting.url + "/rot")
        before = data_of(requests.post(registration["link"], json={"n": 1}), 202)["event_id"]
        settled(api, before)
        rotated = data_of(lifecycle(api, registration["uuid"], "rotate"))
        after = data_of(requests.post(rotated["link"], json={"n": 2}), 202)["event_id"]
        settled(api, after)
        # the current uuid selects the events received under every uuid the registration had
        answer = data_of(replay(api, registration_uuid=rotated["uuid"]))
        assert (answer["event_ids"], answer["queued"]) == ([before, after], 2)
        accepting.wait_for(4)
        assert "rotated" in error_of(replay(api, registration_uuid=registration["uuid"]), 410)
        # a disabled registration's events are still replayed: disabling closes the link only
        data_of(lifecycle(api, rotated["uuid"], "disable"))
        assert data_of(replay(api, registration_uuid=rotated["uuid"], limit=1))["queued"] == 1
        accepting.wait_for(5)
        data_of(api.delete(rotated["uuid"]))
        answer = data_of(replay(api, webhook_tag="case_01", dry_run=True))
        assert (answer["matched"], answer["skipped_deleted"]) == (2, 2)
        answer = data_of(replay(api, webhook_tag="case_01"))
        assert (answer["matched"], answer["queued"], answer["skipped_deleted"]) == (2, 0, 2)


def test_the_product_is_the_keys_own(api, server, events):
    assert error_of(replay(api, product="other-product"), 403)
    assert error_of(replay(api, product="nope"), 404) == 'product: unknown product "nope"'
    other = Api(server, key=OTHER_KEY)
    assert error_of(replay(other, registration_uuid=events["prd_uuid"]), 403)
    theirs = data_of(replay(other, product="other-product", dry_run=True))
    assert theirs["event_ids"] == [events["foreign"]]
    assert error_of(replay(api, registration_uuid="no-such-uuid"), 404) == 'uuid: no registration "no-such-uuid"'
    assert error_of(api.call("POST", "/webhooks/v1/deliveries/replay", json={"product": PRODUCT}, key=None), 401)


@pytest.mark.parametrize("body, expected", [
    ({"product": None}, "product: Input should be a valid string"),
    ({"status": "dead"}, 'status: must be one of pending, delivered, failed (got "dead")'),
    ({"limit": 0}, "limit: Input should be greater than or equal to 1 (got 0)"),
    ({"limit": 1001}, "limit: Input should be less than or equal to 1000 (got 1001)"),
    ({"limit": "5"}, 'limit: Input should be a valid integer (got "5")'),
    ({"dry_run": "yes"}, 'dry_run: Input should be a valid boolean (got "yes")'),
    ({"received_after": "yesterday"},
     'received_after: must be an ISO-8601 time such as 2026-12-02T03:00:00Z (got "yesterday")'),
    ({"received_before": "2026-13-01T00:00:00Z"},
     'received_before: must be an ISO-8601 time such as 2026-12-02T03:00:00Z (got "2026-13-01T00:00:00Z")'),
    ({"received_after": "2026-12-02T03:00:00Z", "received_before": "2026-12-02T02:00:00Z"},
     'received_before: must be later than received_after (got "2026-12-02T02:00:00Z" and "2026-12-02T03:00:00Z")'),
    ({"event_ids": ["evt_a", 3]}, "event_ids[1]: Input should be a valid string (got 3)"),
    ({"event_ids": ["evt_a", ""]}, 'event_ids[1]: String should have at least 1 character (got "")'),
    ({"event_ids": [f"evt_{n}" for n in range(1001)]}, "event_ids: List should have at most 1000 items"),
    ({"registration_uuid": 7}, "registration_uuid: Input should be a valid string (got 7)"),
    ({"env": ""}, 'env: String should have at least 1 character (got "")'),
    ({"statuses": ["failed"]}, "statuses: is not a known field"),
])
def test_a_bad_field_is_422_naming_the_field_and_the_value_and_replays_nothing(api, events, body, expected):
    everything = events["prd"] + events["stg"]
    before = attempts(api, everything)
    message = error_of(replay(api, webhook_tag=TAG, **body), 422)
    assert message.startswith(expected), message
    assert attempts(api, everything) == before


def test_the_product_is_required(api):
    assert error_of(api.call("POST", "/webhooks/v1/deliveries/replay", json={"status": "failed"}), 422) == \
        "product: is required"


def test_a_delivery_being_attempted_is_counted_and_left_alone():
    with Receiver(default=Answer(hang=True)) as hanging, \
            LocalServer(lifecycle_seed(), retry_schedule="0.05", delivery_timeout=120) as server:
        api = Api(server)
        registration = link_for(api, TAG, hanging.url + "/hang")
        event_id = data_of(requests.post(registration["link"], json={"n": 1}), 202)["event_id"]
        hanging.wait_for(1)  # the attempt holds the delivery in flight until the receiver lets go
        dry = data_of(replay(api, dry_run=True))
        assert (dry["matched"], dry["queued"], dry["skipped_in_flight"], dry["event_ids"]) == (1, 0, 1, [event_id])
        real = data_of(replay(api))
        assert (real["matched"], real["queued"], real["skipped_in_flight"]) == (1, 0, 1)
        assert delivery(api, event_id)["attempt_count"] == 0
        hanging.set_default(Answer(status=200))
        hanging.release()
        record = settled(api, event_id)
        assert record["status"] == "delivered" and record["attempt_count"] == 2
