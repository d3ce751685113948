"""The converge engine (module_utils/_engine.py) over scripted HTTP answered by route, from several threads.

It proves the read rule by counting requests, that results keep the input order whatever order the
answers come in, that a 429 pauses every worker, that parallelism 1 is sequential, and the decisions
(C1 salted and old digests, C2 urls) and what a failure after a write reports.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import threading

import pytest

from ansible_collections.ductape.webhooks.plugins.module_utils import _http
from ansible_collections.ductape.webhooks.plugins.module_utils import _engine as engine
from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_api import (
    DuctapeClient,
    auth_digest,
    auth_matches,
    canonical_auth,
    url_matches,
)
from ansible_collections.ductape.webhooks.tests.unit.scripted_http import RoutedHTTP, answer

API_URL = "http://ductape.test:4311"
KEY = "dtl_engine_unit_key_2b7c"
PRODUCT = "my-product"
SALT = "0123456789abcdef0123456789abcdef"
SECRET = "sk_live_engine_secret_5d"
AUTH = {"headers": {"Authorization": "Bearer " + SECRET}}


def salted(auth, salt=SALT):
    return "hmac-sha256:%s:%s" % (salt, hmac.new(salt.encode(), canonical_auth(auth).encode(), hashlib.sha256).hexdigest())


def registration(slug, url, auth=None, uuid=None, digest=None):
    uuid = uuid or "uuid-%s-%s" % (slug, abs(hash(url)) % 1000)
    return {"uuid": uuid, "productEnv": slug, "appEnv": "live", "url": url, "method": "POST",
            "link": API_URL + "/webhooks/v1/process/" + uuid, "active": False,
            "auth": {part: {k: "********" for k in v} for part, v in (auth or {}).items()},
            "auth_digest": digest or salted(auth or {}), "provider_registration": None}


def state(tag, *envs, access_tag="stripe"):
    return engine.WebhookState(access_tag, tag, [engine.EnvState(slug, url, "POST", auth) for slug, url, auth in envs])


def client(http, parallelism=8, sleep=None, clock=None):
    options = {}
    if sleep is not None:
        options.update(sleep=sleep, clock=clock)
    return DuctapeClient(API_URL, KEY, warn=http.warnings.append, session=http.session, pool_size=parallelism,
                         retries=3, **options)


class App:
    """A server's answers for one app: tags -> registrations; records nothing itself (RoutedHTTP does)."""

    def __init__(self, tags, registered=None):
        self.tags = list(tags)
        self.registered = registered or {}

    def webhook(self, tag):
        return {"tag": tag, "name": tag, "config": list(self.registered.get(tag, []))}

    def __call__(self, sent):
        if sent.method == "GET":
            tags = [sent.query["webhook_tag"]] if "webhook_tag" in sent.query else self.tags
            return answer(200, [self.webhook(tag) for tag in tags if tag in self.tags],
                          meta={"next_cursor": None, "product_envs": ["prd", "stg"]})
        if sent.path.endswith("/register"):
            body = sent.json
            return answer(200, {"envs": [registration(env["slug"], env["url"], env["auth"], uuid="new-" + body["webhook_tag"])
                                         for env in body["envs"]]})
        raise AssertionError(sent)


def reads(http):
    return [sent for sent in http.sent if sent.method == "GET"]


# The read rule.


@pytest.mark.parametrize("count", [1, engine.LISTING_THRESHOLD])
def test_a_few_webhooks_of_one_access_tag_are_read_with_one_filtered_read_each(count):
    tags = ["hook_%02d" % n for n in range(count)]
    http = RoutedHTTP(App(tags + ["other"]))
    engine.converge(client(http), PRODUCT, [state(tag, ("prd", "https://h.example/" + tag, None)) for tag in tags],
                    "present", check_mode=True)
    assert sorted(sent.query["webhook_tag"] for sent in reads(http)) == tags


def test_more_webhooks_of_one_access_tag_than_the_threshold_are_read_with_the_apps_listing():
    tags = ["hook_%02d" % n for n in range(engine.LISTING_THRESHOLD + 1)]
    pages = {None: (tags[:3], "c1"), "c1": (tags[3:], None)}

    def handler(sent):
        assert sent.method == "GET" and "webhook_tag" not in sent.query and sent.query["limit"] == "250"
        page, cursor = pages[sent.query.get("cursor")]
        return answer(200, [{"tag": tag, "name": tag, "config": []} for tag in page], meta={"next_cursor": cursor})

    http = RoutedHTTP(handler)
    outcomes = engine.converge(client(http), PRODUCT, [state(tag, ("prd", "https://h.example/x", None)) for tag in tags],
                               "present", check_mode=True)
    assert len(http.sent) == 2, "one listing of two pages, not %d filtered reads" % len(tags)
    assert [outcome.envs[0].action for outcome in outcomes] == ["created"] * len(tags)


# Order, concurrency, pauses.


def test_results_keep_the_input_order_when_the_answers_come_in_reverse():
    tags = ["a", "b", "c", "d"]
    released = {tag: threading.Event() for tag in tags}
    app = App(tags)

    def handler(sent):
        if sent.method == "POST":
            tag = sent.json["webhook_tag"]
            later = tags[tags.index(tag) + 1:]
            if later:  # each register waits until every later one was answered
                assert released[later[0]].wait(10), "the writes were not concurrent"
            result = app(sent)
            released[tag].set()
            return result
        return app(sent)

    http = RoutedHTTP(handler)
    outcomes = engine.converge(client(http, parallelism=4), PRODUCT,
                               [state(tag, ("prd", "https://h.example/" + tag, AUTH)) for tag in tags], "present", False)
    assert [outcome.state.webhook_tag for outcome in outcomes] == tags
    assert [outcome.envs[0].answer["uuid"] for outcome in outcomes] == ["new-" + tag for tag in tags]
    answered = [event for name, event in http.events if event.startswith("request POST")]
    assert len(answered) == len(tags) and len({name for name, event in http.events if event in answered}) > 1


def test_parallelism_1_sends_every_request_in_turn_from_one_thread():
    tags = ["a", "b", "c"]
    http = RoutedHTTP(App(tags))
    engine.converge(client(http, parallelism=1), PRODUCT,
                    [state(tag, ("prd", "https://h.example/" + tag, None)) for tag in tags], "present", False, 1)
    assert len({name for name, event in http.events}) == 1
    assert [event for name, event in http.events] == (
        ["request GET /webhooks/v1/webhooks " + tag for tag in tags]
        + ["request POST /webhooks/v1/register " + tag for tag in tags])
    assert [sent.json["webhook_tag"] for sent in http.sent if sent.method == "POST"] == tags


def test_a_429_pauses_every_worker_not_only_the_one_that_got_it():
    tags = ["a", "b", "c"]
    app = App(tags)
    first_sleep_started = threading.Event()
    c_sent = threading.Event()
    throttled = []
    now = [0.0]
    lock = threading.Lock()

    def clock():
        with lock:
            return now[0]

    def sleep(seconds):
        http.note("sleep %.1f" % seconds)
        if not first_sleep_started.is_set():
            first_sleep_started.set()
            c_sent.wait(10)  # the worker that got the 429 sleeps until "c" went out (or was held back)
        with lock:
            now[0] += seconds

    def handler(sent):
        if sent.method == "POST":
            tag = sent.json["webhook_tag"]
            if tag == "a" and not throttled:
                throttled.append(tag)
                return answer(429, errors="slow down", headers={"Retry-After": "5"})
            if tag == "b":
                assert first_sleep_started.wait(10)  # b answers once the pause is set
            if tag == "c":
                c_sent.set()
        return app(sent)

    http = RoutedHTTP(handler)
    outcomes = engine.converge(client(http, parallelism=2, sleep=sleep, clock=clock), PRODUCT,
                               [state(tag, ("prd", "https://h.example/" + tag, None)) for tag in tags], "present", False, 2)
    assert not any(outcome.failed for outcome in outcomes)
    [c_at] = [i for i, (name, event) in enumerate(http.events) if event == "request POST /webhooks/v1/register c"]
    c_thread = http.events[c_at][0]
    slept_before_c = [event for name, event in http.events[:c_at] if name == c_thread and event.startswith("sleep")]
    assert slept_before_c, "the worker that sent c did not wait for a's Retry-After: %s" % http.events
    assert len(http.warnings) == 1 and "429" in http.warnings[0]


def test_parallelism_is_validated():
    assert engine.parallelism_problems(1) == [] and engine.parallelism_problems(64) == []
    for bad in (0, -1, 65, True, "8", None):
        [problem] = engine.parallelism_problems(bad)
        assert problem.startswith("parallelism: must be a whole number from 1 to 64")


# Decisions: C1 and C2.


def test_c1_digests_salted_and_old_forms():
    assert auth_digest(AUTH, SALT) == salted(AUTH)
    assert auth_matches(AUTH, salted(AUTH)) is True
    assert auth_matches({"headers": {"Authorization": "Bearer other"}}, salted(AUTH)) is False
    assert auth_matches(AUTH, auth_digest(AUTH)) is True and auth_digest(AUTH).startswith("sha256:")
    assert auth_matches(AUTH, "sha256:" + "0" * 64) is False
    for unknown in (None, "", "md5:x", "hmac-sha256:onlysalt"):
        assert auth_matches(AUTH, unknown) is None
    assert salted(AUTH, "f" * 32) != salted(AUTH), "the salt makes equal secrets look different"


def test_c2_url_comparison_masked_and_by_digest():
    url = "https://user:pa55@h.example/p?token=abc&v=2"
    masked = "https://********@h.example/p?token=********&v=2"
    digest = "hmac-sha256:%s:%s" % (SALT, hmac.new(SALT.encode(), url.encode(), hashlib.sha256).hexdigest())
    assert url_matches(url, {"url": masked, "url_digest": digest})
    assert not url_matches(url.replace("pa55", "pa66"), {"url": masked, "url_digest": digest}), "a changed password"
    assert url_matches(url, {"url": url}), "an older server answers the url unmasked"
    assert url_matches(url, {"url": masked}), "masked without digest: plain comparison of the masked forms"
    assert not url_matches("https://h.example/q", {"url": masked})


def test_an_auth_change_under_a_salted_digest_is_an_update_and_the_same_auth_is_unchanged():
    same = engine.EnvState("prd", "https://h.example/x", "POST", AUTH)
    assert engine.decide(same, registration("prd", "https://h.example/x", AUTH), "present") == ("unchanged", False)
    changed = engine.EnvState("prd", "https://h.example/x", "POST", {"headers": {"Authorization": "x"}})
    assert engine.decide(changed, registration("prd", "https://h.example/x", AUTH), "present") == ("updated", True)
    old = registration("prd", "https://h.example/x", AUTH, digest=auth_digest(AUTH))
    assert engine.decide(same, old, "present") == ("unchanged", False), "the old sha256: form still compares"


# What a failure after a write reports.


def test_an_api_502_after_the_registration_was_stored_is_a_change_in_both_forms():
    def handler(sent):
        if sent.method == "GET":
            return App(["a"])(sent)
        return answer(502, errors='envs[0]: the provider refused the registration (HTTP 401) in env "prd"')

    for form in ("single", "batch"):
        http = RoutedHTTP(handler)
        [outcome] = engine.converge(client(http), PRODUCT, [state("a", ("prd", "https://h.example/a", AUTH))],
                                    "present", False)
        assert outcome.failed and outcome.changed, form
        report = engine.single_report(outcome, True) if form == "single" else engine.batch_report([outcome], True)
        assert report["failed"] is True and report["changed"] is True, report
        assert len([sent for sent in http.sent if sent.method == "POST"]) == 1, "the API's 502 is not retried"
        assert SECRET not in json.dumps(report)


@pytest.mark.parametrize("status", ["failed", "pending"])
def test_a_provider_that_does_not_hold_the_link_makes_the_env_an_update(status):
    current = dict(registration("prd", "https://h.example/x", AUTH), provider_registration={"status": status})
    env = engine.EnvState("prd", "https://h.example/x", "POST", AUTH)
    assert engine.decide(env, current, "present") == ("updated", False)
    current["provider_registration"] = {"status": "registered"}
    assert engine.decide(env, current, "present") == ("unchanged", False)


def test_no_auth_equals_empty_parts_and_method_defaults_to_post():
    current = registration("dev", "https://h.example/x", None)
    for auth in (None, {}, {"headers": {}, "query": None}):
        assert engine.decide(engine.EnvState("dev", "https://h.example/x", None, auth), current, "present") == (
            "unchanged", False), auth
    assert engine.decide(engine.EnvState("dev", "https://h.example/x", "PUT"), current, "present")[0] == "updated"


def test_absent_deletes_what_is_registered_and_reports_the_rest_absent():
    current = registration("stg", "https://h.example/x")
    assert engine.decide(engine.EnvState("stg"), current, "absent") == ("deleted", False)
    assert engine.decide(engine.EnvState("qas"), None, "absent") == ("absent", False)


def test_the_diff_masks_every_auth_value_and_says_which_secret_changed():
    http = RoutedHTTP(App(["a"], {"a": [registration("prd", "https://u:pw1@h.example/x", AUTH)]}))
    new = {"headers": {"Authorization": "Bearer " + SECRET + "-2"}}
    [outcome] = engine.converge(client(http), PRODUCT, [state("a", ("prd", "https://u:pw2@h.example/x", new))],
                                "present", check_mode=True)
    diff = engine.diff_of(outcome)
    assert diff["before"]["prd"]["url"] == diff["after"]["prd"]["url"] == "https://********@h.example/x"
    assert diff["after"]["prd"]["auth"] == {"headers": {"Authorization": "******** (changed)"}}
    assert SECRET not in json.dumps(diff) and "pw2" not in json.dumps(diff) and "pw1" not in json.dumps(diff)
    [env] = engine.single_report(outcome, False)["envs"]
    assert set(env) == {"slug", "action", "uuid", "link", "url", "method", "provider_registration"}
    assert env["url"] == "https://********@h.example/x"


def test_a_server_that_is_down_is_one_warning_for_the_whole_task_whatever_the_parallelism():
    def handler(sent):
        error = _http.ConnectFailed("the connection failed: [Errno 111] Connection refused")
        error.__cause__ = ConnectionRefusedError(111, "Connection refused")
        return error

    http = RoutedHTTP(handler)
    webhooks = [state(tag, ("prd", "https://h.example/" + tag, None), access_tag=tag) for tag in "abcdef"]
    outcomes = engine.converge(client(http, parallelism=8, sleep=lambda seconds: None, clock=lambda: 0.0), PRODUCT,
                               webhooks, "present", False, 8)
    assert all(outcome.failed for outcome in outcomes)
    assert len(http.warnings) == 1, http.warnings
    assert len(http.sent) <= 2 * len(webhooks)
    report = engine.batch_report(outcomes, False)
    assert "connection refused" in report["msg"]


@pytest.mark.parametrize("auth, kind", [("", "a string"), ([], "a list"), (0, "a number"), (False, "a boolean")])
def test_an_auth_of_the_wrong_shape_is_refused_even_when_it_is_empty(auth, kind):
    [problem] = engine.check_states([state("a", ("prd", "https://h.example/a", auth))], "present")
    assert problem.startswith("auth: must be a mapping") and kind in problem, problem
