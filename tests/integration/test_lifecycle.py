"""The registration lifecycle (issue 13) in one real playbook against one real ductape-local --test-mode.

One ansible-playbook run (--diff) does every sequence in the hashi_vault order (check -> nothing
written -> apply -> apply again unchanged), with the server's request counts read around each step and
the stored registrations after it:

- ductape_webhook state=disabled and back to present (same uuid and link), a test of a disabled one;
- declarative rotation with a grace period (link_generation) while a steady stream of provider events
  keeps posting to the old link: none is refused and every one is delivered; rotate_older_than that is
  not due; a rotation with grace 0 whose old link answers 410 at once;
- ductape_webhook_test: check mode sends nothing, a receiver that accepts, one that answers 500 (the
  task fails showing every attempt), one that holds the event past wait_timeout (the task fails saying so);
- ductape_webhook_replay: check mode is the dry run (counts, queues nothing: the delivery is read back
  unchanged), then by filter, then by event id; an unknown access tag is refused, and so is an env or a
  webhook the product lacks when no access tag is given (by the server); in check mode a
  delivery of a deleted registration is not counted as one to queue;
- ductape_webhook's prune=disabled in the batch form, with prune_keep.
"""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from ductape_local.testing import LocalServer
from playbook import Step, run_steps

PRODUCT = "my-product"
ACCESS_TAG = "stripe-payments"
HOLD_TAG = "held-payments"  # its receiver holds every event: never pruned (another access tag), never replayed
MODULE_KEY = "dtl_lifecycle_module_key_3f9a1c"
OBSERVER_KEY = "dtl_lifecycle_observer_key_7d20e4"
SEED = {
    "access_keys": [{"key": MODULE_KEY, "products": [PRODUCT]}, {"key": OBSERVER_KEY, "products": [PRODUCT]}],
    "products": [{"tag": PRODUCT, "envs": ["prd", "stg", "dev"],
                  "connections": [{"access_tag": ACCESS_TAG, "app": "stripe",
                                   "envs": {"prd": "live", "stg": "test", "dev": "test"}},
                                  {"access_tag": HOLD_TAG, "app": "stripe", "envs": {"prd": "live"}}]}],
    "apps": [{"tag": "stripe", "webhooks": [
        {"tag": "payment_succeeded", "name": "Payment succeeded"},
        {"tag": "charge_refunded", "name": "Charge refunded"},
        {"tag": "dispute_created", "name": "Dispute created"},
        {"tag": "charge_captured", "name": "Charge captured"},
    ]}],
}
GRACE = 600  # far longer than the run: the stream's link must keep working all through it
STREAM_PAUSE = 0.1
STREAM_MAX = 2000
HOLD_MAX = 20


class _Receiver(BaseHTTPRequestHandler):
    """/ok... answers 204, /fail... answers 500, /hold... answers 204 only once released (at the end of the
    module's tests, or after HOLD_MAX seconds); every request is recorded."""

    seen: list[dict] = []
    release = threading.Event()

    def _answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append({"path": self.path, "event_id": self.headers.get("X-Ductape-Event-Id"),
                          "test": self.headers.get("X-Ductape-Test")})
        if self.path.startswith("/hold"):
            self.release.wait(HOLD_MAX)
        self.send_response(204 if self.path.startswith("/ok") else 500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = _answer

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def receiver():
    _Receiver.seen = []
    _Receiver.release.clear()
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    http.daemon_threads = True
    thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_address[1]}", _Receiver.seen
    _Receiver.release.set()
    http.shutdown()
    http.server_close()


@pytest.fixture(scope="module")
def server():
    with LocalServer(SEED, retry_schedule="0.05", delivery_timeout=5) as running:
        yield running


def _api(server, method, path, **kwargs):
    response = requests.request(method, server.url + path, headers={"Authorization": f"Bearer {OBSERVER_KEY}"},
                                timeout=30, **kwargs)
    return response


def hook(tag, envs, **options):
    return {"ductape.webhooks.ductape_webhook": {"product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": tag,
                                                 "envs": envs, **options}}


def webhook_test_task(tag, env, **options):
    return {"ductape.webhooks.ductape_webhook_test": {"product": PRODUCT, "access_tag": ACCESS_TAG,
                                                      "webhook_tag": tag, "env": env, "wait_timeout": 30, **options}}


def replay(**options):
    return {"ductape.webhooks.ductape_webhook_replay": {"product": PRODUCT, **options}}


def delivery_of(step):
    return {"ductape.webhooks.ductape_webhook_delivery_info": {"event_id": "{{ step_%s.event_id }}" % step}}


def steps(ok, fail, hold):
    paid = [{"slug": "prd", "url": ok + "/paid"}, {"slug": "stg", "url": ok + "/paid-stg"}]
    stg_only = [{"slug": "stg"}]
    rotate = dict(link_generation=2, rotation_grace=GRACE)
    captured = [{"slug": "stg", "url": ok + "/captured"}]
    batch = [{"access_tag": ACCESS_TAG, "webhook_tag": "payment_succeeded", "envs": paid},
             {"access_tag": ACCESS_TAG, "webhook_tag": "charge_refunded", "envs": [{"slug": "dev", "url": fail + "/r"}]}]
    prune = {"ductape.webhooks.ductape_webhook": {
        "product": PRODUCT, "webhooks": batch, "prune": "disabled",
        "prune_keep": [{"access_tag": ACCESS_TAG, "webhook_tag": "charge_captured", "envs": ["stg"]}]}}
    return [
        Step("setup", hook("payment_succeeded", paid)),
        Step("setup_refunded", hook("charge_refunded", [{"slug": "dev", "url": fail + "/r"}]), read_state=False),
        Step("setup_disputed", hook("dispute_created", [{"slug": "dev", "url": ok + "/d"},
                                                        {"slug": "prd", "url": ok + "/d"}]), read_state=False),
        Step("setup_captured", hook("charge_captured", captured)),
        # Disable and enable.
        Step("disable_check", hook("payment_succeeded", stg_only, state="disabled"), check_mode=True),
        Step("disable", hook("payment_succeeded", stg_only, state="disabled")),
        Step("disable_again", hook("payment_succeeded", stg_only, state="disabled"), read_state=False),
        Step("test_disabled", webhook_test_task("payment_succeeded", "stg"), expect_failure=True, read_state=False),
        Step("enable_check", hook("payment_succeeded", paid), check_mode=True),
        Step("enable", hook("payment_succeeded", paid)),
        Step("enable_again", hook("payment_succeeded", paid), read_state=False),
        # Rotation with a grace period, while the stream posts to the old prd link.
        Step("rotate_check", hook("payment_succeeded", paid[:1], **rotate), check_mode=True),
        Step("rotate", hook("payment_succeeded", paid[:1], **rotate)),
        Step("rotate_again", hook("payment_succeeded", paid[:1], **rotate), read_state=False),
        Step("rotate_not_old", hook("payment_succeeded", paid[:1], rotate_older_than="30d", rotation_grace=GRACE)),
        Step("rotate_no_grace", hook("charge_captured", captured, link_generation=2), read_state=False),
        # The test module.
        Step("test_check", webhook_test_task("payment_succeeded", "prd"), check_mode=True, read_state=False),
        Step("test_ok", webhook_test_task("payment_succeeded", "prd"), read_state=False),
        Step("test_fail", webhook_test_task("charge_refunded", "dev", max_attempts=2), expect_failure=True, read_state=False),
        Step("setup_hold", {"ductape.webhooks.ductape_webhook": {
            "product": PRODUCT, "access_tag": HOLD_TAG, "webhook_tag": "payment_succeeded",
            "envs": [{"slug": "prd", "url": hold}]}}, read_state=False),
        Step("test_timeout", {"ductape.webhooks.ductape_webhook_test": {
            "product": PRODUCT, "access_tag": HOLD_TAG, "webhook_tag": "payment_succeeded", "env": "prd",
            "wait_timeout": 1}}, expect_failure=True, read_state=False),
        # Replay.
        Step("replay_check", replay(access_tag=ACCESS_TAG, env="dev", status="failed"), check_mode=True, read_state=False),
        Step("replay_check_delivery", delivery_of("test_fail"), read_state=False),
        Step("replay", replay(access_tag=ACCESS_TAG, env="dev", status="failed"), read_state=False),
        Step("replay_ids", replay(event_ids=["{{ step_test_fail.event_id }}"]), read_state=False),
        Step("replay_bad_env", replay(access_tag=ACCESS_TAG, env="qas", status="failed"), expect_failure=True, read_state=False),
        Step("replay_no_filter", replay(), expect_failure=True, read_state=False),
        Step("replay_bad_access_tag", replay(access_tag="nope-payments", status="failed"), expect_failure=True,
             read_state=False),
        # without access_tag the module cannot read the app's webhooks or the product's envs: the server
        # refuses a filter that names none of them (it used to match nothing, which read as "nothing failed")
        Step("replay_bad_env_alone", replay(env="qas", status="failed"), expect_failure=True, read_state=False),
        Step("replay_bad_webhook_alone", replay(webhook_tag="payment_suceeded"), check_mode=True, expect_failure=True,
             read_state=False),
        Step("deliveries_bad_env_alone", {"ductape.webhooks.ductape_webhook_delivery_info": {
            "product": PRODUCT, "env": "qas"}}, expect_failure=True, read_state=False),
        # Pruning in the batch form: dispute_created (dev, prd) is declared nowhere, charge_captured is kept.
        Step("prune_check", prune, check_mode=True),
        Step("prune", prune),
        Step("prune_again", prune, read_state=False),
        # A delivery whose registration is deleted has nowhere to go: check mode does not count it.
        Step("delete_refunded", hook("charge_refunded", [{"slug": "dev"}], state="absent"), read_state=False),
        Step("replay_deleted_check", replay(event_ids=["{{ step_test_fail.event_id }}"]), check_mode=True,
             read_state=False),
        Step("replay_deleted", replay(event_ids=["{{ step_test_fail.event_id }}"]), read_state=False),
    ]


class _Stream:
    """Posts a provider event to one link every STREAM_PAUSE seconds until stopped (at most STREAM_MAX)."""

    def __init__(self, link):
        self.link = link
        self.answers: list[tuple[int, str | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        with requests.Session() as session:
            session.trust_env = False
            for n in range(STREAM_MAX):
                if self._stop.is_set():
                    return
                response = session.post(self.link, json={"n": n}, timeout=30)
                event_id = response.json().get("data", {}).get("event_id") if response.status_code == 202 else None
                self.answers.append((response.status_code, event_id))
                self._stop.wait(STREAM_PAUSE)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=60)


@pytest.fixture(scope="module")
def run(server, receiver, tmp_path_factory):
    ok = receiver[0] + "/ok"
    fail = receiver[0] + "/fail"
    hold = receiver[0] + "/hold"
    # The prd link exists before the play, as a provider would hold it.
    answer = _api(server, "POST", "/webhooks/v1/generate-link", json={
        "product": PRODUCT, "access_tag": ACCESS_TAG, "webhook_tag": "payment_succeeded", "env": "prd",
        "url": ok + "/paid", "method": "POST"})
    assert answer.status_code == 200, answer.text
    old_link = answer.json()["data"]["link"]
    with _Stream(old_link) as stream:
        result = run_steps(tmp_path_factory.mktemp("lifecycle"), server, OBSERVER_KEY, steps(ok, fail, hold),
                           module_defaults={"group/ductape.webhooks.ductape": {"api_url": "{{ server_url }}",
                                                                               "access_key": "{{ module_key }}"}},
                           state_query={"product": PRODUCT, "access_tag": ACCESS_TAG},
                           extra_vars={"module_key": MODULE_KEY}, diff=True)
    return result, old_link, stream


def stored(run, step, tag="payment_succeeded"):
    [found] = [webhook for webhook in run.state(step) if webhook["tag"] == tag]
    return {registration["productEnv"]: registration for registration in found["config"]}


def lifecycle_writes(run, step):
    """The step's writes to the control plane: the stream's provider events to a link are not the step's."""
    return {route: count for route, count in run.delta(step)["requests"].items()
            if not route.startswith("GET") and "/process/" not in route}


# Disable and enable.


def test_disable_in_check_mode_writes_nothing_then_disables_then_changes_nothing(run):
    run = run[0]
    check = run.result("disable_check")
    assert check["changed"] is True and check["envs"][0]["action"] == "disabled"
    assert check["envs"][0]["state"] == "disabled", "check mode says what the state would be"
    assert check["diff"] == {"before": {"stg": {"state": "enabled"}}, "after": {"stg": {"state": "disabled"}}}
    assert lifecycle_writes(run, "disable_check") == {}
    assert stored(run, "disable_check")["stg"]["state"] == "enabled"

    done = run.result("disable")
    assert done["changed"] is True and done["envs"][0]["state"] == "disabled"
    assert lifecycle_writes(run, "disable") == {"POST /webhooks/v1/registrations/{uuid}/disable": 1}
    assert stored(run, "disable")["stg"]["state"] == "disabled"
    assert stored(run, "disable")["prd"]["state"] == "enabled", "an env not listed is untouched"

    again = run.result("disable_again")
    assert again["changed"] is False and again["envs"][0]["action"] == "unchanged"
    assert lifecycle_writes(run, "disable_again") == {}


def test_a_disabled_registration_cannot_be_tested_and_the_task_says_so(run):
    run = run[0]
    failed = run.result("test_disabled")
    assert "is disabled" in failed["msg"] and "enable it first" in failed["msg"]
    assert failed["changed"] is False
    assert lifecycle_writes(run, "test_disabled") == {}


def test_present_enables_again_on_the_same_link(run):
    run = run[0]
    before = stored(run, "disable")["stg"]
    check = run.result("enable_check")
    assert check["changed"] is True
    assert [env["action"] for env in check["envs"]] == ["unchanged", "enabled"]
    assert lifecycle_writes(run, "enable_check") == {}
    assert stored(run, "enable_check")["stg"]["state"] == "disabled"

    enable = run.result("enable")
    assert enable["envs"][1]["state"] == "enabled"
    assert lifecycle_writes(run, "enable") == {"POST /webhooks/v1/registrations/{uuid}/enable": 1}
    after = stored(run, "enable")["stg"]
    assert (after["state"], after["uuid"], after["link"]) == ("enabled", before["uuid"], before["link"])

    assert run.result("enable_again")["changed"] is False
    assert lifecycle_writes(run, "enable_again") == {}


# Rotation.


def test_rotation_check_mode_shows_old_and_new_link_and_writes_nothing(run):
    run, old_link, _stream = run
    check = run.result("rotate_check")
    assert check["changed"] is True and check["envs"][0]["action"] == "rotated"
    assert check["envs"][0]["rotated"] == 1 and check["envs"][0]["generation"] == 2
    assert check["diff"] == {"before": {"prd": {"link": old_link, "generation": 1}},
                             "after": {"prd": {"link": "(new link, assigned by the server)", "generation": 2}}}
    assert lifecycle_writes(run, "rotate_check") == {}
    assert stored(run, "rotate_check")["prd"]["link"] == old_link


def test_rotation_reports_the_new_link_keeps_the_old_one_for_the_grace_and_is_not_repeated(run):
    run, old_link, _stream = run
    rotated = run.result("rotate")["envs"][0]
    assert rotated["action"] == "rotated" and rotated["generation"] == 2 and rotated["rotated"] == 1
    assert rotated["link"] != old_link
    assert rotated["previous_link"]["link"] == old_link and rotated["previous_link"]["expires_at"]
    assert run.result("rotate")["diff"]["after"]["prd"]["link"] == rotated["link"]
    assert lifecycle_writes(run, "rotate") == {"POST /webhooks/v1/registrations/{uuid}/rotate": 1}
    assert stored(run, "rotate")["prd"]["link"] == rotated["link"]

    for step in ("rotate_again", "rotate_not_old"):
        assert run.result(step)["changed"] is False, run.describe(step)
        assert run.result(step)["envs"][0]["rotated"] == 0
        assert lifecycle_writes(run, step) == {}
    assert stored(run, "rotate_not_old")["prd"]["link"] == rotated["link"]


def test_no_event_of_a_steady_stream_to_the_old_link_is_lost_across_the_rotation(run, server, receiver):
    run, old_link, stream = run
    assert len(stream.answers) > 10, "the stream ran during the play"
    refused = [status for status, _event in stream.answers if status != 202]
    assert refused == [], "the old link refused events during its grace period"
    event_ids = {event for _status, event in stream.answers}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        delivered = {seen["event_id"] for seen in receiver[1] if seen["path"] == "/ok/paid"}
        if event_ids <= delivered:
            break
        time.sleep(0.1)
    assert event_ids - delivered == set(), "events stored but never delivered"
    # The stream really spanned the rotation: its first event reached the old link before it, its last after.
    rotated_at = run.result("rotate")["envs"][0]["link_created_at"]
    received = [_api(server, "GET", "/webhooks/v1/deliveries/" + stream.answers[n][1]).json()["data"]["received_at"]
                for n in (0, -1)]
    assert received[0] < rotated_at < received[1], (received, rotated_at)
    new_link = run.result("rotate")["envs"][0]["link"]
    assert requests.post(new_link, json={"after": True}, timeout=30).status_code == 202


def test_a_rotation_without_grace_retires_the_old_link_at_once(run):
    run = run[0]
    before = stored(run, "setup_captured", "charge_captured")["stg"]
    rotated = run.result("rotate_no_grace")["envs"][0]
    assert rotated["rotated"] == 1 and rotated["link"] != before["link"] and rotated["previous_link"] is None
    answer = requests.post(before["link"], json={}, timeout=30)
    assert answer.status_code == 410, answer.text


# The test module.


def test_the_test_module_sends_nothing_in_check_mode(run):
    run = run[0]
    check = run.result("test_check")
    assert check["changed"] is True, "check mode reports what a real run does: it sends an event"
    assert check["status"] == "not_sent" and check["event_id"] is None
    assert "check mode" in check["msg"]
    assert lifecycle_writes(run, "test_check") == {}


def test_the_test_module_reports_a_delivered_test_event_marked_as_a_test(run, receiver):
    run = run[0]
    ok = run.result("test_ok")
    assert ok["changed"] is True and ok["status"] == "delivered"
    assert [attempt["status_code"] for attempt in ok["attempts"]] == [204]
    assert ok["delivery"]["test"] is True
    assert lifecycle_writes(run, "test_ok") == {"POST /webhooks/v1/registrations/{uuid}/test": 1}
    [seen] = [seen for seen in receiver[1] if seen["event_id"] == ok["event_id"]]
    assert seen["test"] == "true"


def test_the_test_module_fails_when_the_receiver_answers_500_and_shows_every_attempt(run):
    run = run[0]
    failed = run.result("test_fail")
    assert failed["status"] == "failed" and failed["changed"] is True
    assert [attempt["status_code"] for attempt in failed["attempts"]] == [500, 500]
    assert "did not accept" in failed["msg"]
    assert "attempt 1: HTTP 500" in failed["msg"] and "attempt 2: HTTP 500" in failed["msg"]


def test_the_test_module_fails_with_a_clear_timeout_when_the_receiver_holds_the_event(run):
    run = run[0]
    held = run.result("test_timeout")
    assert held["status"] == "pending" and held["changed"] is True and held["attempts"] == []
    assert "had no outcome within wait_timeout (1.0 s); still pending with no attempt ended yet" in held["msg"]
    assert "Raise wait_timeout" in held["msg"] and "event_id=%s" % held["event_id"] in held["msg"]


# Replay.


def test_replay_check_mode_counts_then_replays_by_filter_and_by_event_id(run):
    run = run[0]
    event_id = run.result("test_fail")["event_id"]
    check = run.result("replay_check")
    assert check["changed"] is True, "check mode reports what a real run would do"
    assert check["dry_run"] is True and check["queued"] == 0
    assert check["matched"] == 1 and check["would_queue"] == 1 and check["event_ids"] == [event_id]
    assert "would be queued" in check["msg"]
    [unchanged] = run.result("replay_check_delivery")["deliveries"]
    assert (unchanged["status"], len(unchanged["attempts"])) == ("failed", 2), "the dry run queued nothing"

    replayed = run.result("replay")
    assert replayed["changed"] is True and replayed["queued"] == 1 and replayed["event_ids"] == [event_id]

    by_id = run.result("replay_ids")
    assert by_id["matched"] == 1 and by_id["queued"] + by_id["skipped_in_flight"] == 1
    assert lifecycle_writes(run, "replay_ids") == {"POST /webhooks/v1/deliveries/replay": 1}


def test_replay_refuses_an_unknown_env_and_a_call_without_any_filter(run):
    run = run[0]
    assert '"qas" is not an env of product "my-product"' in run.result("replay_bad_env")["msg"]
    assert "give event_ids or at least one filter" in run.result("replay_no_filter")["msg"]
    assert lifecycle_writes(run, "replay_no_filter") == {}
    assert 'unknown access tag "nope-payments"' in run.result("replay_bad_access_tag")["msg"]
    assert lifecycle_writes(run, "replay_bad_access_tag") == {}


def test_replay_and_delivery_info_refuse_a_filter_the_product_lacks_without_an_access_tag(run):
    run = run[0]
    assert '"qas" is not an env of product "my-product" (prd, stg, dev)' in run.result("replay_bad_env_alone")["msg"]
    assert lifecycle_writes(run, "replay_bad_env_alone") == {"POST /webhooks/v1/deliveries/replay": 1}
    failed = run.result("replay_bad_webhook_alone")
    assert 'webhook_tag: no app of product "my-product" defines a webhook "payment_suceeded"' in failed["msg"]
    assert "matched" not in failed, "refused, not counted as 0 matched"
    assert '"qas" is not an env of product "my-product"' in run.result("deliveries_bad_env_alone")["msg"]


def test_replay_does_not_count_a_delivery_of_a_deleted_registration_as_one_to_queue(run):
    run = run[0]
    check = run.result("replay_deleted_check")
    assert (check["matched"], check["would_queue"], check["skipped_deleted"]) == (1, 0, 1)
    assert check["changed"] is False
    assert "1 of a deleted registration not queued" in check["msg"]
    real = run.result("replay_deleted")
    assert (real["matched"], real["queued"], real["skipped_deleted"], real["changed"]) == (1, 0, 1, False)


# Pruning.


def test_prune_shows_first_then_disables_only_what_is_undeclared_and_kept_ones_stay(run):
    run = run[0]
    check = run.result("prune_check")
    pruned = [entry for entry in check["webhooks"] if entry.get("pruned")]
    assert [(entry["webhook_tag"], sorted(env["slug"] for env in entry["envs"])) for entry in pruned] == [
        ("dispute_created", ["dev", "prd"])]
    assert all(env["action"] == "disabled" for env in pruned[0]["envs"])
    assert lifecycle_writes(run, "prune_check") == {}
    assert {env: r["state"] for env, r in stored(run, "prune_check", "dispute_created").items()} == {
        "dev": "enabled", "prd": "enabled"}

    assert run.result("prune")["changed"] is True
    assert lifecycle_writes(run, "prune") == {"POST /webhooks/v1/registrations/{uuid}/disable": 2}
    assert {env: r["state"] for env, r in stored(run, "prune", "dispute_created").items()} == {
        "dev": "disabled", "prd": "disabled"}
    assert stored(run, "prune", "charge_captured")["stg"]["state"] == "enabled", "kept by prune_keep"

    again = run.result("prune_again")
    assert again["changed"] is False
    assert lifecycle_writes(run, "prune_again") == {}
