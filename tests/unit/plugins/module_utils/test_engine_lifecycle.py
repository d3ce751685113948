"""The lifecycle decisions of the one engine (module_utils/_engine.py): state disabled and back, declarative
rotation, pruning, and what a failure part way reports, over scripted HTTP answered by route."""
from __future__ import annotations

import datetime

import pytest

from ansible_collections.ductape.webhooks.plugins.module_utils import _engine as engine
from ansible_collections.ductape.webhooks.plugins.module_utils.ductape_api import DuctapeClient, auth_digest
from ansible_collections.ductape.webhooks.tests.unit.scripted_http import RoutedHTTP, answer

API_URL = "http://ductape.test:4311"
NOW = datetime.datetime(2026, 12, 2, 3, 0, 0, tzinfo=datetime.timezone.utc)
URL = "https://h.example/x"


def registration(slug, uuid, state="enabled", generation=1, created="2026-12-01T03:00:00Z", url=URL):
    return {"uuid": uuid, "productEnv": slug, "appEnv": "live", "url": url, "method": "POST",
            "link": API_URL + "/webhooks/v1/process/" + uuid, "auth": {},
            "auth_digest": auth_digest({}),
            "provider_registration": None, "state": state, "generation": generation, "link_created_at": created,
            "previous_link": None}


def env(slug, url=URL, rotation=None):
    return engine.EnvState(slug, url, "POST", None, rotation=rotation)


# One decision per env: the registration's own action and its lifecycle steps.


@pytest.mark.parametrize("state, current, url, expected", [
    ("present", "disabled", URL, ("enabled", ["enable"])),
    ("present", "enabled", URL, ("unchanged", [])),
    ("present", None, URL, ("created", [])),
    ("disabled", "enabled", None, ("disabled", ["disable"])),
    ("disabled", "disabled", None, ("unchanged", [])),
    ("disabled", None, None, ("absent", [])),
    ("disabled", None, URL, ("created", ["disable"])),
    ("disabled", "enabled", URL + "/v2", ("updated", ["disable"])),
    ("absent", "disabled", None, ("deleted", [])),
])
def test_plan_env_decides_the_action_and_the_steps(state, current, url, expected):
    existing = registration("prd", "u1", state=current) if current else None
    outcome, problem = engine.plan_env(env("prd", url), existing, state, NOW)
    assert problem is None
    assert (outcome.action, outcome.steps) == expected
    assert outcome.writes is (expected != ("unchanged", []) and expected != ("absent", []))


@pytest.mark.parametrize("generation, older_than, current_generation, created, due", [
    (2, None, 1, "2026-12-01T03:00:00Z", 1),
    (3, None, 1, "2026-12-01T03:00:00Z", 2),
    (2, None, 2, "2026-12-01T03:00:00Z", 0),
    (1, None, 4, "2026-12-01T03:00:00Z", 0),  # never back
    (None, 86400, 1, "2026-12-01T03:00:00Z", 1),  # exactly a day old
    (None, 86400, 1, "2026-12-01T03:00:01.5Z", 0),
    (None, 90 * 86400, 7, "2026-09-02T00:00:00+00:00", 1),
    (2, 86400, 2, "2026-11-01T00:00:00Z", 1),  # either rule
])
def test_rotations_are_due_below_the_generation_or_past_the_age(
        generation, older_than, current_generation, created, due):
    rotation = engine.Rotation(generation, older_than, grace=60)
    outcome, problem = engine.plan_env(env("prd", rotation=rotation),
                                       registration("prd", "u1", generation=current_generation, created=created),
                                       "present", NOW)
    assert problem is None
    assert outcome.steps == ["rotate"] * due
    assert outcome.action == ("rotated" if due else "unchanged")


def test_a_new_registration_is_never_rotated():
    outcome, _problem = engine.plan_env(env("prd", rotation=engine.Rotation(5)), None, "present", NOW)
    assert (outcome.action, outcome.steps) == ("created", [])


@pytest.mark.parametrize("missing, option", [("generation", "link_generation"),
                                             ("link_created_at", "rotate_older_than")])
def test_rotation_on_an_api_without_the_lifecycle_fields_fails_naming_the_option(missing, option):
    current = registration("stg", "u1")
    del current[missing]
    rotation = engine.Rotation(2) if option == "link_generation" else engine.Rotation(None, 60)
    outcome, problem = engine.plan_env(env("stg", rotation=rotation), current, "present", NOW)
    assert outcome is None
    assert problem.startswith(option + ': rotate the link in env "stg": this Ductape API does not offer it (')
    assert "lifecycle extension" in problem


@pytest.mark.parametrize("params, message", [
    ({"link_generation": 0}, "link_generation: must be a whole number from 1 (got 0)"),
    ({"rotate_older_than": "90 days"}, 'rotate_older_than: must be an age such as 90d, 12h, 30m, 45s or 2w (got "90 days")'),
    ({"rotate_older_than": "0d"}, 'rotate_older_than: must be an age such as 90d, 12h, 30m, 45s or 2w (got "0d")'),
    ({"rotation_grace": 604801}, "rotation_grace: must be a whole number of seconds from 0 to 604800 (7 days; got 604801)"),
    ({"rotation_grace": -1}, "rotation_grace: must be a whole number of seconds from 0 to 604800 (7 days; got -1)"),
    ({"link_generation": 2, "state": "absent"}, 'link_generation, rotate_older_than: only with state=present (got state="absent")'),
])
def test_rotation_options_are_refused_naming_the_field_and_the_value(params, message):
    assert engine.rotation_problems(dict({"state": "present"}, **params)) == [message]


@pytest.mark.parametrize("text, seconds", [("90d", 90 * 86400), ("12h", 43200), ("30m", 1800), ("45s", 45),
                                           ("2w", 1209600), (" 7d ", 604800), ("1x", None), ("d", None),
                                           ("-1d", None), (True, None)])
def test_ages(text, seconds):
    assert engine.age_seconds(text) == seconds


# Converging over HTTP.


class Server:
    """One app's registrations, answering the listing and the lifecycle routes; records every write."""

    def __init__(self, registered, fail=None):
        self.registered = registered  # {webhook tag: [registration]}
        self.fail = fail or {}  # {path suffix: status}

    def find(self, uuid):
        return next(r for rs in self.registered.values() for r in rs if r["uuid"] == uuid)

    def __call__(self, sent):
        if sent.method == "GET":
            tags = [sent.query["webhook_tag"]] if "webhook_tag" in sent.query else list(self.registered)
            return answer(200, [{"tag": tag, "name": tag, "config": self.registered[tag]} for tag in tags],
                          meta={"next_cursor": None, "product_envs": ["prd", "stg", "dev"]})
        for suffix, status in self.fail.items():
            if sent.path.endswith(suffix):
                return answer(status, errors="refused by the test")
        if sent.path.endswith("/register"):
            envs = []
            for item in sent.json["envs"]:
                [current] = [r for r in self.registered[sent.json["webhook_tag"]] if r["productEnv"] == item["slug"]]
                current.update(url=item["url"])
                envs.append(dict(current, changed=True))
            return answer(200, {"envs": envs})
        if sent.method == "DELETE":
            uuid = sent.path.split("/")[-1]
            current = self.find(uuid)
            for tag, items in self.registered.items():
                self.registered[tag] = [r for r in items if r["uuid"] != uuid]
            return answer(200, current)
        uuid, operation = sent.path.split("/")[-2:]
        current = self.find(uuid)
        if operation in ("enable", "disable"):
            current["state"] = operation + "d"
        elif operation == "rotate":
            current.update(uuid=uuid + "-r", link=current["link"] + "-r", generation=current["generation"] + 1,
                           previous_link={"uuid": uuid, "link": current["link"],
                                          "expires_at": "2026-12-02T04:00:00Z"} if sent.json["grace_seconds"] else None)
        return answer(200, dict(current, changed=True))


def client(http):
    return DuctapeClient(API_URL, "dtl_unit_key_lifecycle", session=http.session, retries=0)


def writes(http):
    return [(sent.method, sent.path.replace("/webhooks/v1", "")) for sent in http.sent if sent.method != "GET"]


def test_a_rotation_in_check_mode_shows_the_new_link_as_assigned_by_the_server_and_sends_nothing():
    http = RoutedHTTP(Server({"paid": [registration("prd", "u1")]}))
    rotation = engine.Rotation(2, grace=3600)
    [outcome] = engine.converge(client(http), "p", [engine.WebhookState("s", "paid", [env("prd", rotation=rotation)])],
                                "present", check_mode=True)
    assert writes(http) == []
    assert outcome.changed is True
    assert engine.diff_of(outcome) == {
        "before": {"prd": {"link": API_URL + "/webhooks/v1/process/u1", "generation": 1}},
        "after": {"prd": {"link": engine.NEW_LINK, "generation": 2}}}
    result = engine.env_result(outcome.envs[0])
    assert (result["action"], result["rotated"], result["generation"]) == ("rotated", 1, 2)


def test_a_real_rotation_reports_the_new_link_and_the_previous_one():
    http = RoutedHTTP(Server({"paid": [registration("prd", "u1")]}))
    [outcome] = engine.converge(client(http), "p", [engine.WebhookState(
        "s", "paid", [env("prd", rotation=engine.Rotation(2, grace=3600))])], "present", check_mode=False)
    assert writes(http) == [("POST", "/registrations/u1/rotate")]
    assert http.sent[-1].json == {"grace_seconds": 3600, "expected_generation": 1}
    result = engine.env_result(outcome.envs[0])
    assert result["link"].endswith("/u1-r") and result["uuid"] == "u1-r" and result["generation"] == 2
    assert result["previous_link"]["link"].endswith("/u1")
    assert engine.diff_of(outcome)["after"]["prd"]["link"].endswith("/u1-r")


class LostRotateAnswer:
    """The server rotates, then a gateway answers 502 instead of its answer; the retry (same uuid, same
    expected_generation) meets a conditional rotate: 409 with both generations, or a second rotation
    when the server ignores expected_generation (``conditional=False``)."""

    def __init__(self, server, conditional=True):
        self.server = server
        self.conditional = conditional
        self.rotations = 0

    def __call__(self, sent):
        if not sent.path.endswith("/rotate"):
            return self.server(sent)
        uuid = sent.path.split("/")[-2]
        current = next((r for rs in self.server.registered.values() for r in rs
                        if r["uuid"] == uuid or r["uuid"].startswith(uuid + "-r")), None)
        expected = sent.json.get("expected_generation")
        if self.conditional and expected is not None and current["generation"] != expected:
            return answer(409, errors="expected_generation: the registration is at generation %d, not the expected "
                                      "%d" % (current["generation"], expected),
                          meta={"generation": current["generation"], "expected_generation": expected})
        self.rotations += 1
        current.update(uuid=current["uuid"] + "-r", link=current["link"] + "-r", generation=current["generation"] + 1)
        if self.rotations == 1:
            return answer(502, raw="<html>502 Bad Gateway</html>")
        return answer(200, dict(current, changed=True))


def test_a_rotate_retried_after_a_gateway_error_rotates_once_and_reports_the_new_link():
    routed = LostRotateAnswer(Server({"paid": [registration("prd", "u1")]}))
    http = RoutedHTTP(routed)
    api = DuctapeClient(API_URL, "dtl_unit_key_lifecycle", session=http.session, retries=2, sleep=lambda _: None)
    [outcome] = engine.converge(api, "p", [engine.WebhookState(
        "s", "paid", [env("prd", rotation=engine.Rotation(2))])], "present", check_mode=False)
    assert outcome.msg is None or "rotate" not in outcome.msg, outcome.msg
    assert routed.rotations == 1, "the retry must not rotate a second time"
    assert writes(http) == [("POST", "/registrations/u1/rotate")] * 2
    assert [sent.json["expected_generation"] for sent in http.sent if sent.path.endswith("/rotate")] == [1, 1]
    assert outcome.changed is True and outcome.envs[0].action == "rotated"
    result = engine.env_result(outcome.envs[0])
    assert (result["uuid"], result["generation"]) == ("u1-r", 2)
    assert result["link"].endswith("/u1-r")


def test_a_first_try_refused_for_its_generation_is_a_failure_naming_both_generations():
    """No retry: another run rotated between this run's read and its rotate; nothing is counted done."""
    server = Server({"paid": [registration("prd", "u1", generation=1)]})
    http = RoutedHTTP(lambda sent: answer(409, errors="expected_generation: the registration is at generation 2, "
                                                      "not the expected 1", meta={"generation": 2, "expected_generation": 1})
                      if sent.path.endswith("/rotate") else server(sent))
    [outcome] = engine.converge(client(http), "p", [engine.WebhookState(
        "s", "paid", [env("prd", rotation=engine.Rotation(2))])], "present", check_mode=False)
    assert outcome.changed is False and outcome.envs[0].action is None
    assert "HTTP 409" in outcome.msg and "generation 2" in outcome.msg and "expected 1" in outcome.msg


def test_an_update_of_a_disabled_registration_then_its_enable_run_in_order_on_one_worker():
    http = RoutedHTTP(Server({"paid": [registration("prd", "u1", state="disabled")]}))
    [outcome] = engine.converge(client(http), "p", [engine.WebhookState("s", "paid", [env("prd", URL + "/v2")])],
                                "present", check_mode=False)
    assert writes(http) == [("POST", "/register"), ("POST", "/registrations/u1/enable")]
    assert (outcome.envs[0].action, engine.env_result(outcome.envs[0])["state"]) == ("updated", "enabled")


def test_a_failing_step_after_a_written_registration_still_counts_the_write_and_fails_naming_it():
    http = RoutedHTTP(Server({"paid": [registration("prd", "u1", state="disabled")]}, fail={"/enable": 500}))
    [outcome] = engine.converge(client(http), "p", [engine.WebhookState("s", "paid", [env("prd", URL + "/v2")])],
                                "present", check_mode=False)
    assert outcome.changed is True, "the register went through"
    assert outcome.envs[0].action == "updated" and outcome.envs[0].steps == []
    assert "enable the registration u1 in prd: HTTP 500" in outcome.msg


def test_a_failing_step_alone_is_no_change():
    http = RoutedHTTP(Server({"paid": [registration("prd", "u1")]}, fail={"/disable": 409}))
    [outcome] = engine.converge(client(http), "p", [engine.WebhookState("s", "paid", [env("prd", None)])],
                                "disabled", check_mode=False)
    assert outcome.changed is False and outcome.envs[0].action is None
    assert "disable the registration u1 in prd: HTTP 409" in outcome.msg


# Pruning.


def test_pruning_plans_only_the_undeclared_registrations_of_the_tasks_access_tags():
    server = Server({"paid": [registration("prd", "p1"), registration("stg", "p2")],
                     "refunded": [registration("dev", "r1", state="disabled"), registration("prd", "r2")],
                     "captured": [registration("stg", "c1")]})
    http = RoutedHTTP(server)
    webhooks = [engine.WebhookState("s", "paid", [env("prd")], field="webhooks[0]")]
    prune = engine.Prune("disabled", keep=[("s", "captured", "stg")])
    outcomes = engine.converge(client(http), "p", webhooks, "present", check_mode=True, prune=prune)
    reads = [sent for sent in http.sent if sent.method == "GET"]
    assert len(reads) == 1 and "webhook_tag" not in reads[0].query, "one listing of the whole app"
    assert [(o.state.webhook_tag, o.state.pruned, [(e.slug, e.action) for e in o.envs]) for o in outcomes] == [
        ("paid", False, [("prd", "unchanged")]),
        ("paid", True, [("stg", "disabled")]),
        ("refunded", True, [("dev", "unchanged"), ("prd", "disabled")]),
    ]
    report = engine.batch_report(outcomes, want_diff=True)
    assert [entry.get("pruned", False) for entry in report["webhooks"]] == [False, True, True]
    assert report["diff"]["after"] == {"s/paid": {"stg": {"state": "disabled"}},
                                       "s/refunded": {"prd": {"state": "disabled"}}}
    assert writes(http) == []

    http = RoutedHTTP(server)
    engine.converge(client(http), "p", webhooks, "present", check_mode=False, prune=engine.Prune("absent"))
    assert sorted(writes(http)) == [("DELETE", "/registrations/c1"), ("DELETE", "/registrations/p2"),
                                    ("DELETE", "/registrations/r1"), ("DELETE", "/registrations/r2")]


def test_pruning_an_access_tag_whose_listing_fails_fails_naming_it():
    def handler(sent):
        return answer(404, errors='access_tag: unknown access tag "gone"')

    http = RoutedHTTP(handler)
    outcomes = engine.converge(client(http), "p", [], "present", check_mode=True,
                               prune=engine.Prune("absent", keep=[("gone", "x", "prd")]))
    [failed] = outcomes
    assert failed.failed and 'prune: the registrations of access tag "gone" could not be read' in failed.msg
