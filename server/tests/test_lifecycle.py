"""The lifecycle routes of contract L1 over real HTTP: disable, enable, rotate (with and without a
grace period), test events; their errors; and the REGISTRATION fields they add everywhere."""
from __future__ import annotations

import json
import threading

import pytest
import requests
from delivery_receiver import Answer, Receiver

from conftest import PRODUCT, STRIPE, Api, data_of, error_of
from ductape_local.testing import LocalServer
from lifecycle_support import (
    OTHER_KEY, RETRY_SCHEDULE, deliveries_of, delivery, lifecycle, lifecycle_seed, link_for, listed, settled,
    wait_for,
)

L1_FIELDS = {"state", "generation", "link_created_at", "previous_link"}


@pytest.fixture(scope="module")
def server():
    with LocalServer(lifecycle_seed(), retry_schedule=RETRY_SCHEDULE, delivery_timeout=5) as running:
        yield running


@pytest.fixture(scope="module")
def receiver():
    with Receiver() as running:
        yield running


def received_ids(receiver: Receiver, path: str) -> list[str]:
    return [r.header("X-Ductape-Event-Id") for r in list(receiver.requests) if r.path == path]


def test_a_new_registration_is_enabled_generation_1_in_every_answer(api, tag):
    created = data_of(api.register(webhook_tag=tag))["envs"][0]
    assert L1_FIELDS <= set(created)
    assert (created["state"], created["generation"], created["previous_link"]) == ("enabled", 1, None)
    assert created["link_created_at"] == created["created_at"]
    again = data_of(api.generate_link(webhook_tag=tag, env="prd", url="https://api.example.com/hook"))
    assert {k: again[k] for k in L1_FIELDS} == {k: created[k] for k in L1_FIELDS}
    assert {k: listed(api, tag)[k] for k in L1_FIELDS} == {k: created[k] for k in L1_FIELDS}
    removed = data_of(api.delete(created["uuid"]))
    assert removed["state"] == "enabled" and removed["generation"] == 1


def test_disable_stops_the_link_storing_anything_and_enable_restores_the_same_link(api, tag, receiver):
    registration = link_for(api, tag, receiver.url + f"/{tag}")
    uuid, link = registration["uuid"], registration["link"]
    disabled = data_of(lifecycle(api, uuid, "disable"))
    assert (disabled["state"], disabled["changed"], disabled["uuid"], disabled["link"]) == ("disabled", True, uuid, link)
    again = data_of(lifecycle(api, uuid, "disable"))
    assert (again["state"], again["changed"]) == ("disabled", False)
    assert again["updated_at"] == disabled["updated_at"]
    assert listed(api, tag)["state"] == "disabled"

    for method in ("POST", "GET", "PUT"):
        message = error_of(requests.request(method, link, json={"n": 1}), 410)
        assert uuid in message and "disabled" in message
    assert deliveries_of(api, tag) == []

    # register and generate-link update the receiver but leave the state alone
    moved = data_of(api.generate_link(webhook_tag=tag, env="prd", url=receiver.url + f"/{tag}/moved"))
    assert (moved["state"], moved["uuid"], moved["changed"]) == ("disabled", uuid, True)
    assert error_of(requests.post(link, json={}), 410)

    enabled = data_of(lifecycle(api, uuid, "enable"))
    assert (enabled["state"], enabled["changed"], enabled["uuid"], enabled["link"]) == ("enabled", True, uuid, link)
    assert data_of(lifecycle(api, uuid, "enable"))["changed"] is False
    # a disabled registration rotates and stays disabled
    data_of(lifecycle(api, uuid, "disable"))
    rotated = data_of(lifecycle(api, uuid, "rotate", json={"grace_seconds": 600}))
    assert (rotated["state"], rotated["generation"]) == ("disabled", 2)
    assert "disabled" in error_of(requests.post(rotated["link"], json={}), 410)
    uuid, link = rotated["uuid"], rotated["link"]
    assert data_of(lifecycle(api, uuid, "enable"))["changed"] is True
    event_id = data_of(requests.post(link, json={"n": 2}), 202)["event_id"]
    assert settled(api, event_id)["status"] == "delivered"
    assert received_ids(receiver, f"/{tag}/moved") == [event_id]
    assert [d["event_id"] for d in deliveries_of(api, tag)] == [event_id]


def test_disabling_keeps_delivering_what_was_already_accepted(api, tag):
    with Receiver(default=Answer(status=503)) as failing:
        registration = link_for(api, tag, failing.url + "/x")
        event_id = data_of(requests.post(registration["link"], json={"n": 1}), 202)["event_id"]
        failing.wait_for(1)
        data_of(lifecycle(api, registration["uuid"], "disable"))
        failing.set_default(Answer(status=200))
        assert settled(api, event_id)["status"] == "delivered"


def test_rotate_without_grace_retires_the_old_link_at_once(api, tag, receiver):
    old = link_for(api, tag, receiver.url + f"/{tag}")
    rotated = data_of(lifecycle(api, old["uuid"], "rotate", json={}))
    assert rotated["uuid"] != old["uuid"] and rotated["link"] != old["link"]
    assert rotated["link"].endswith("/webhooks/v1/process/" + rotated["uuid"])
    assert (rotated["generation"], rotated["changed"], rotated["previous_link"]) == (2, True, None)
    assert rotated["link_created_at"] > old["link_created_at"]
    assert rotated["created_at"] == old["created_at"] and rotated["url"] == old["url"]
    assert "created" not in rotated
    assert listed(api, tag)["uuid"] == rotated["uuid"]

    message = error_of(requests.post(old["link"], json={}), 410)
    assert "rotated" in message and old["uuid"] in message and rotated["uuid"] not in message
    assert deliveries_of(api, tag) == []
    # the old uuid on every /registrations/{uuid}... route: 410 as rotated, never naming the new one
    for response in (lifecycle(api, old["uuid"], "disable"), lifecycle(api, old["uuid"], "enable"),
                     lifecycle(api, old["uuid"], "rotate"), lifecycle(api, old["uuid"], "test"),
                     api.delete(old["uuid"])):
        message = error_of(response, 410)
        assert "rotated" in message and old["uuid"] in message and rotated["uuid"] not in message
    assert listed(api, tag)["state"] == "enabled"

    event_id = data_of(requests.post(rotated["link"], json={}), 202)["event_id"]
    assert settled(api, event_id)["status"] == "delivered"
    # rotating again counts on; a rotation with no body is a rotation without grace
    third = data_of(lifecycle(api, rotated["uuid"], "rotate"))
    assert third["generation"] == 3 and third["previous_link"] is None


def test_a_grace_period_keeps_the_old_link_working_on_the_same_registration(api, tag, receiver):
    old = link_for(api, tag, receiver.url + f"/{tag}")
    rotated = data_of(lifecycle(api, old["uuid"], "rotate", json={"grace_seconds": 3600}))
    previous = rotated["previous_link"]
    assert previous["uuid"] == old["uuid"] and previous["link"] == old["link"]
    assert previous["expires_at"] > rotated["link_created_at"]
    assert listed(api, tag)["previous_link"] == previous
    via_old = data_of(requests.post(old["link"], json={"via": "old"}), 202)["event_id"]
    via_new = data_of(requests.post(rotated["link"], json={"via": "new"}), 202)["event_id"]
    for event_id in (via_old, via_new):
        record = settled(api, event_id)
        assert record["status"] == "delivered" and record["registration_uuid"] == rotated["uuid"]
    assert sorted(received_ids(receiver, f"/{tag}")) == sorted([via_old, via_new])
    # the old uuid still names no route: only its link works
    assert "rotated" in error_of(lifecycle(api, old["uuid"], "disable"), 410)
    # disabling stops both links; a rotation after that ends the earlier grace at once
    data_of(lifecycle(api, rotated["uuid"], "disable"))
    assert "disabled" in error_of(requests.post(old["link"], json={}), 410)
    data_of(lifecycle(api, rotated["uuid"], "enable"))
    assert data_of(requests.post(old["link"], json={}), 202)
    third = data_of(lifecycle(api, rotated["uuid"], "rotate", json={"grace_seconds": 3600}))
    assert third["previous_link"]["uuid"] == rotated["uuid"]
    assert "rotated" in error_of(requests.post(old["link"], json={}), 410)
    assert data_of(requests.post(rotated["link"], json={}), 202)
    # deleting the registration stops the link in its grace period too
    data_of(api.delete(third["uuid"]))
    assert error_of(requests.post(rotated["link"], json={}), 410)


def test_the_old_link_answers_410_once_the_grace_period_is_over(api, tag, receiver):
    old = link_for(api, tag, receiver.url + f"/{tag}")
    rotated = data_of(lifecycle(api, old["uuid"], "rotate", json={"grace_seconds": 1}))
    assert rotated["previous_link"]["uuid"] == old["uuid"]

    def expired():
        response = requests.post(old["link"], json={"probe": True})
        return response.json()["errors"] if response.status_code == 410 else None

    message = wait_for(expired, "the old link to answer 410 after its grace")
    assert "rotated" in message and rotated["uuid"] not in message
    assert f'grace period ended at {rotated["previous_link"]["expires_at"]}' in message
    assert listed(api, tag)["previous_link"] is None
    accepted = {d["event_id"] for d in deliveries_of(api, tag)}
    assert error_of(requests.post(old["link"], json={}), 410)
    assert {d["event_id"] for d in deliveries_of(api, tag)} == accepted
    assert data_of(requests.post(rotated["link"], json={}), 202)


def test_a_rotation_under_a_steady_stream_loses_no_event(api, tag):
    """Events posted to the old link, the rotation, more events to the old link in its grace period,
    then events to the new link: every accepted event reaches the receiver, counted by event id."""
    with Receiver() as counting:
        old = link_for(api, tag, counting.url + "/stream")
        accepted: list[str] = []
        refused: list[int] = []
        rotated: dict = {}
        rotation_done = threading.Event()

        def stream() -> None:
            with requests.Session() as session:
                for n in range(150):
                    if n == 50:
                        rotated.update(data_of(lifecycle(api, old["uuid"], "rotate", json={"grace_seconds": 600})))
                        rotation_done.set()
                    link = rotated["link"] if n >= 100 else old["link"]
                    response = session.post(link, json={"n": n})
                    if response.status_code == 202:
                        accepted.append(response.json()["data"]["event_id"])
                    else:
                        refused.append(response.status_code)

        poster = threading.Thread(target=stream)
        poster.start()
        poster.join(120)
        assert not poster.is_alive() and rotation_done.is_set()
        assert refused == [] and len(accepted) == 150 == len(set(accepted))
        counting.wait_for(150)
        for event_id in accepted:
            assert settled(api, event_id)["status"] == "delivered"
        seen = [r.header("X-Ductape-Event-Id") for r in counting.requests]
        assert sorted(set(seen)) == sorted(accepted)
        assert rotated["generation"] == 2


def test_lifecycle_routes_answer_404_for_unknown_and_other_products_uuids(api, server, tag):
    mine = link_for(api, tag, "https://api.example.com/hook")
    other = Api(server, key=OTHER_KEY)
    theirs = data_of(other.generate_link(product="other-product", access_tag="stripe-other", env="prd",
                                         url="https://other.example.com/hook"))
    for action in ("disable", "enable", "rotate", "test"):
        unknown = error_of(lifecycle(api, "no-such-uuid", action), 404)
        assert unknown == 'uuid: no registration "no-such-uuid"'
        foreign = error_of(lifecycle(api, theirs["uuid"], action), 404)
        assert foreign == f'uuid: no registration "{theirs["uuid"]}"'
        assert error_of(lifecycle(api, mine["uuid"], action, key=None), 401)
        assert error_of(lifecycle(api, mine["uuid"], action, key="dtl_wrong_key"), 401)
    # nothing of theirs changed
    page = data_of(other.webhooks(product="other-product", access_tag="stripe-other", webhook_tag="payment_succeeded"))
    [still] = page[0]["config"]
    assert (still["uuid"], still["state"], still["generation"]) == (theirs["uuid"], "enabled", 1)
    data_of(api.delete(mine["uuid"]))
    assert error_of(lifecycle(api, mine["uuid"], "disable"), 404) == f'uuid: no registration "{mine["uuid"]}"'


@pytest.mark.parametrize("body, expected", [
    ({"grace_seconds": -1}, 'grace_seconds: Input should be greater than or equal to 0 (got -1)'),
    ({"grace_seconds": 604801}, 'grace_seconds: Input should be less than or equal to 604800 (got 604801)'),
    ({"grace_seconds": "60"}, 'grace_seconds: Input should be a valid integer (got "60")'),
    ({"grace_seconds": True}, 'grace_seconds: Input should be a valid integer (got true)'),
    ({"grace_seconds": 1.5}, 'grace_seconds: Input should be a valid integer (got 1.5)'),
    ({"grace": 60}, 'grace: is not a known field'),
])
def test_rotate_refuses_a_bad_body_naming_the_field_and_value_and_changes_nothing(api, tag, body, expected):
    registration = link_for(api, tag, "https://api.example.com/hook")
    assert error_of(lifecycle(api, registration["uuid"], "rotate", json=body), 422) == expected
    assert listed(api, tag)["uuid"] == registration["uuid"] and listed(api, tag)["generation"] == 1
    assert error_of(lifecycle(api, registration["uuid"], "rotate", data=b"{nope",
                              headers={"Content-Type": "application/json"}), 400)


def test_a_test_event_reaches_the_receiver_with_the_test_header_and_is_marked_in_the_log(api, tag, receiver):
    registration = link_for(api, tag, receiver.url + f"/{tag}")
    answer = data_of(lifecycle(api, registration["uuid"], "test"), 202)
    assert set(answer) == {"event_id", "registration_uuid"} and answer["registration_uuid"] == registration["uuid"]
    # stored before the answer: the delivery log has it at once
    record = delivery(api, answer["event_id"])
    assert record["test"] is True and record["registration_uuid"] == registration["uuid"]
    assert settled(api, answer["event_id"])["status"] == "delivered"
    [got] = [r for r in receiver.requests if r.header("X-Ductape-Event-Id") == answer["event_id"]]
    assert got.header("X-Ductape-Test") == "true" and got.method == "POST"
    synthetic = json.loads(got.body)
    assert synthetic["type"] == "ductape.test" and synthetic["webhook_tag"] == tag and synthetic["env"] == "prd"
    assert got.header("X-Ductape-Webhook-Tag") == tag and got.header("X-Ductape-Env") == "prd"

    payload = {"id": "evt_custom", "data": {"amount": 12, "note": "é"}}
    custom = data_of(lifecycle(api, registration["uuid"], "test", json={"payload": payload}), 202)["event_id"]
    settled(api, custom)
    [got] = [r for r in receiver.requests if r.header("X-Ductape-Event-Id") == custom]
    assert json.loads(got.body) == payload and got.header("X-Ductape-Test") == "true"

    # a provider's event is no test, even when the provider sends the header itself
    real = data_of(requests.post(registration["link"], json={"n": 1}, headers={"X-Ductape-Test": "true"}), 202)
    assert settled(api, real["event_id"])["test"] is False
    [got] = [r for r in receiver.requests if r.header("X-Ductape-Event-Id") == real["event_id"]]
    assert got.header("X-Ductape-Test") is None


def test_a_test_event_to_a_failing_receiver_is_bounded_by_max_attempts(api, tag):
    with Receiver(default=Answer(status=500)) as failing:
        registration = link_for(api, tag, failing.url + "/fail")
        once = data_of(lifecycle(api, registration["uuid"], "test"), 202)["event_id"]
        record = settled(api, once)
        assert (record["status"], record["attempt_count"], record["test"]) == ("failed", 1, True)
        assert record["attempts"][0]["status_code"] == 500
        thrice = data_of(lifecycle(api, registration["uuid"], "test", json={"max_attempts": 3}), 202)["event_id"]
        record = settled(api, thrice)
        assert (record["status"], record["attempt_count"]) == ("failed", 3)
        assert [a["status_code"] for a in record["attempts"]] == [500, 500, 500]
        assert "retries exhausted after 3 attempts" in record["dead_letter"]["reason"]
        # more than the server's schedule allows is bounded by the schedule (4 retries: 5 attempts)
        many = data_of(lifecycle(api, registration["uuid"], "test", json={"max_attempts": 10}), 202)["event_id"]
        assert settled(api, many)["attempt_count"] == 5


def test_a_test_of_a_disabled_registration_is_409_and_stores_nothing(api, tag, receiver):
    registration = link_for(api, tag, receiver.url + f"/{tag}")
    data_of(lifecycle(api, registration["uuid"], "disable"))
    message = error_of(lifecycle(api, registration["uuid"], "test"), 409)
    assert registration["uuid"] in message and "disabled" in message
    assert deliveries_of(api, tag) == []


@pytest.mark.parametrize("body, expected", [
    ({"max_attempts": 0}, "max_attempts: Input should be greater than or equal to 1 (got 0)"),
    ({"max_attempts": 11}, "max_attempts: Input should be less than or equal to 10 (got 11)"),
    ({"max_attempts": "2"}, 'max_attempts: Input should be a valid integer (got "2")'),
    ({"payload": "text"}, "payload: Input should be a valid dictionary"),
    ({"payload": [1, 2]}, "payload: Input should be a valid dictionary"),
    ({"max_attempt": 2}, "max_attempt: is not a known field"),
])
def test_a_bad_test_body_is_422_naming_the_field_and_stores_nothing(api, tag, body, expected):
    registration = link_for(api, tag, "https://api.example.com/hook")
    assert error_of(lifecycle(api, registration["uuid"], "test", json=body), 422).startswith(expected)
    assert deliveries_of(api, tag) == []


def test_no_secret_reaches_an_answer_or_the_server_log(server, api, tag):
    secret, url_secret = "sk_live_lifecycle_SECRET_1", "pw_lifecycle_SECRET_2"
    envs = [{"slug": "prd", "url": f"https://user:{url_secret}@api.example.com/hook?token={url_secret}",
             "auth": {"headers": {"Authorization": f"Bearer {secret}"}, "query": {"key": secret}}}]
    registration = data_of(api.register(webhook_tag=tag, envs=envs))["envs"][0]
    uuid = registration["uuid"]
    answers = [lifecycle(api, uuid, "disable"), lifecycle(api, uuid, "disable"), lifecycle(api, uuid, "test"),
               lifecycle(api, uuid, "enable")]
    rotated = lifecycle(api, uuid, "rotate", json={"grace_seconds": 60})
    new_uuid = rotated.json()["data"]["uuid"]
    answers += [rotated, lifecycle(api, uuid, "disable"), lifecycle(api, new_uuid, "test", json={"max_attempts": 1}),
                lifecycle(api, new_uuid, "rotate", json={"grace_seconds": -1}),
                api.call("POST", "/webhooks/v1/deliveries/replay", json={"product": PRODUCT, "webhook_tag": tag}),
                api.call("POST", "/webhooks/v1/deliveries/replay", json={"product": PRODUCT, "dry_run": "yes"}),
                api.webhooks(access_tag=STRIPE, webhook_tag=tag), api.delete(new_uuid)]
    for response in answers:
        assert secret not in response.text and url_secret not in response.text, response.text
        assert server.access_key not in response.text
    log = server.log_path.read_text()
    assert secret not in log and url_secret not in log and server.access_key not in log
