"""Back-pressure over real HTTP (backpressure.py): while a receiver's due deliveries wait longer than
--backpressure-lag, new events for it are held before they are stored, until its deliveries catch up
or --backpressure-hold runs out (then they are accepted anyway); other receivers are never held."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
import requests
from delivery_receiver import Answer, Receiver

from conftest import Api, data_of, shared_seed
from ductape_local import config
from ductape_local.cli import build_parser
from ductape_local.testing import LocalServer
from test_limits import BAD_VALUES

LAG = 0.3
# one delivery thread per destination: a receiver that hangs on one delivery leaves the rest waiting
OPTIONS = {"delivery_workers": 4, "retry_schedule": "0.05,0.05,0.05", "backpressure_lag": LAG}


@pytest.fixture(scope="module")
def held():
    """A server whose held events wait for as long as their receiver lags (within any test's time)."""
    with LocalServer(shared_seed(), backpressure_hold=60, **OPTIONS) as running:
        yield running


def link_for(api: Api, url: str, tag: str) -> str:
    return data_of(api.generate_link(url=url, webhook_tag=tag))["link"]


def post(link: str, body: bytes = b'{"n": 1}', timeout: float = 30) -> str:
    return data_of(requests.post(link, data=body, timeout=timeout), 202)["event_id"]


def delivery(api: Api, event_id: str) -> dict:
    return data_of(api.call("GET", f"/webhooks/v1/deliveries/{event_id}"))


def settled(api: Api, event_id: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        record = delivery(api, event_id)
        if record["status"] != "pending" or time.monotonic() > deadline:
            return record
        time.sleep(0.02)


def wait_for_log(server: LocalServer, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.log_text():
        if time.monotonic() > deadline:
            raise AssertionError(f"the server never logged {text!r}:\n{server.log_tail()}")
        time.sleep(0.02)


def lagging(server: LocalServer, api: Api, receiver: Receiver, path: str, tag: str) -> str:
    """A link whose receiver hangs on its first delivery with three more due behind it, once the
    server has logged that it holds that receiver's events; returns the link."""
    link = link_for(api, receiver.url + path, tag)
    for _ in range(4):
        post(link)  # nothing lags yet: answered at once
    wait_for_log(server, f"back-pressure: deliveries to {receiver.url}{path} wait more than {LAG:g}s")
    return link


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class Sender(threading.Thread):
    """Posts one event in the background; `response` is its answer once it came."""

    def __init__(self, link: str):
        super().__init__(daemon=True)
        self.link = link
        self.response: requests.Response | None = None

    def run(self) -> None:
        self.response = requests.post(self.link, data=b'{"n": "held"}', timeout=120)


def test_an_event_for_a_lagging_receiver_is_stored_only_once_its_deliveries_catch_up(held, tag):
    api = Api(held)
    with Receiver(default=Answer(hang=True)) as receiver:
        link = lagging(held, api, receiver, "/slow", tag)
        sender = Sender(link)
        sender.start()
        # Without back-pressure the event is answered long before this; with it, it cannot be answered
        # before the receiver answers (its hold, 60 s, outlasts this wait).
        sender.join(3.0)
        assert sender.response is None, "answered while deliveries to its receiver lagged"
        released_at = time.time()
        receiver.set_default(Answer(200))
        receiver.release()
        sender.join(60)
        assert sender.response is not None, "never answered after the receiver caught up"
        event_id = data_of(sender.response, 202)["event_id"]
        record = settled(api, event_id)
        assert record["status"] == "delivered", record
        # stored after the receiver started answering, not when it arrived
        assert epoch(record["received_at"]) >= released_at - 0.001, record
        # the backlog is delivered too, in no particular order (the held event may arrive before some)
        deadline = time.monotonic() + 30
        while len(backlog_ids(receiver)) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert len(backlog_ids(receiver)) == 4


def backlog_ids(receiver: Receiver) -> set[str]:
    return {r.header("X-Ductape-Event-Id") for r in receiver.requests if r.body == b'{"n": 1}'}


def test_other_receivers_are_not_held_while_one_lags(held, case_tags):
    api = Api(held)
    with Receiver(default=Answer(hang=True)) as slow, Receiver() as healthy:
        lagging(held, api, slow, "/slow", next(case_tags))
        healthy_link = link_for(api, healthy.url + "/fine", next(case_tags))
        event_ids = [post(healthy_link, timeout=30) for _ in range(5)]
        assert [settled(api, event_id)["status"] for event_id in event_ids] == ["delivered"] * 5
        slow.release()


def test_a_held_event_is_accepted_when_its_hold_runs_out_never_refused(tag):
    with LocalServer(shared_seed(), backpressure_hold=0.2, **OPTIONS) as server, \
            Receiver(default=Answer(hang=True)) as receiver:
        api = Api(server)
        link = lagging(server, api, receiver, "/stuck", tag)
        event_ids = [post(link, timeout=30) for _ in range(3)]  # held 0.2 s each, then stored and answered
        records = [delivery(api, event_id) for event_id in event_ids]
        assert [record["status"] for record in records] == ["pending"] * 3  # stored: the receiver still hangs
        receiver.release()


def test_a_lag_of_zero_holds_nothing(tag):
    with LocalServer(shared_seed(), **{**OPTIONS, "backpressure_lag": 0}, backpressure_hold=60) as server, \
            Receiver(default=Answer(hang=True)) as receiver:
        api = Api(server)
        link = link_for(api, receiver.url + "/stuck", tag)
        post(link)
        receiver.wait_for(1)  # the first delivery hangs; the rest wait behind it
        time.sleep(2 * LAG)  # long enough to lag, were back-pressure on
        event_ids = [post(link, timeout=30) for _ in range(4)]
        assert len(set(event_ids)) == 4
        assert "back-pressure" not in server.log_text()
        receiver.release()


@pytest.mark.parametrize("option", ["--backpressure-lag", "--backpressure-hold"])
@pytest.mark.parametrize("value", [v for v in BAD_VALUES if v != "0"] + ["3601"])
def test_bad_backpressure_options_are_refused_naming_option_and_value(option, value, capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["serve", f"{option}={value}"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert option in err and repr(value) in err, err


def test_the_backpressure_defaults_are_config_s():
    args = build_parser().parse_args(["serve"])
    assert args.backpressure_lag == config.DEFAULT_BACKPRESSURE_LAG
    assert args.backpressure_hold == config.DEFAULT_BACKPRESSURE_HOLD
    with pytest.raises(ValueError, match="--backpressure-hold"):
        config.ServerConfig(db_path=Path("x"), public_url="http://x", backpressure_hold=0)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--backpressure-hold=0"])
