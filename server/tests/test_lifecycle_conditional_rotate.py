"""A conditional rotate (expected_generation): the server rotates only a registration still at the
generation the caller saw, so a rotate retried after a gateway error never rotates twice."""
from __future__ import annotations

import pytest
import requests

from conftest import data_of, error_of
from ductape_local.testing import LocalServer
from lifecycle_support import RETRY_SCHEDULE, lifecycle, lifecycle_seed, link_for, listed


@pytest.fixture(scope="module")
def server():
    with LocalServer(lifecycle_seed(), retry_schedule=RETRY_SCHEDULE, delivery_timeout=5) as running:
        yield running


def conflict(response: requests.Response, generation: int, expected: int) -> str:
    body = response.json()
    assert response.status_code == 409 and body["status"] is False and "data" not in body, body
    assert body["meta"] == {"generation": generation, "expected_generation": expected}
    message = body["errors"]
    assert f"generation {generation}" in message and f"expected {expected}" in message, message
    return message


def test_a_retried_rotate_on_the_old_uuid_answers_409_and_rotates_nothing(api, tag):
    old = link_for(api, tag, "https://api.example.com/hook")
    rotated = data_of(lifecycle(api, old["uuid"], "rotate", json={"expected_generation": 1}))
    assert rotated["generation"] == 2
    # the retry of the same request (its answer was lost): the old uuid, the same expected generation
    message = conflict(lifecycle(api, old["uuid"], "rotate", json={"expected_generation": 1}), 2, 1)
    assert rotated["uuid"] not in message and rotated["link"] not in message
    after = listed(api, tag)
    assert (after["uuid"], after["generation"]) == (rotated["uuid"], 2)
    # without expected_generation the old uuid still answers 410 as rotated
    assert "rotated" in error_of(lifecycle(api, old["uuid"], "rotate", json={}), 410)


def test_a_stale_expected_generation_on_the_current_uuid_answers_409_and_a_current_one_rotates(api, tag):
    old = link_for(api, tag, "https://api.example.com/hook")
    rotated = data_of(lifecycle(api, old["uuid"], "rotate", json={}))
    for stale in (1, 3, 7):
        conflict(lifecycle(api, rotated["uuid"], "rotate", json={"expected_generation": stale}), 2, stale)
    assert listed(api, tag)["uuid"] == rotated["uuid"]
    third = data_of(lifecycle(api, rotated["uuid"], "rotate", json={"expected_generation": 2, "grace_seconds": 60}))
    assert third["generation"] == 3 and third["previous_link"]["uuid"] == rotated["uuid"]


@pytest.mark.parametrize("value", [0, -1, "2", 1.5, True])
def test_a_bad_expected_generation_is_refused_naming_it_and_the_value(api, tag, value):
    old = link_for(api, tag, "https://api.example.com/hook")
    message = error_of(lifecycle(api, old["uuid"], "rotate", json={"expected_generation": value}), 422)
    assert "expected_generation" in message
    assert listed(api, tag)["generation"] == 1
