"""Provider signatures verified on the accept path, over real HTTP: every strategy's good signature is
accepted and delivered; a wrong secret, a tampered body, a missing header, a wrong prefix, a wrong
encoding, a stale or future Stripe timestamp answer 401, store nothing, are counted per registration
and in the summary, and neither the secret nor the signature that would have matched appears in any
answer or in the server log.

The signatures are computed here with hmac/hashlib from each provider's published algorithm, not
with the server's code."""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import time
import urllib.parse

import pytest
import requests
from delivery_receiver import Receiver

from conftest import Api, data_of, error_of, example_seed
from lifecycle_support import settled
from ductape_local.testing import LocalServer

HMAC_HEX_SECRET = "hex-secret-5f1d0c2e9a"
HMAC_B64_SECRET = "b64-secret-77aa01bc34"
STRIPE_SECRET = "whsec_test_9c1e5d7a3b"
STRIPE_LIVE_SECRET = "whsec_live_0b2d4f6a8c"
GITHUB_SECRET = "gh-secret-31415926535"
PAYSTACK_SECRET = "sk_test_paystack_2718281828"
# the example of GitHub's documentation of X-Hub-Signature-256: this secret, this payload, this signature
GITHUB_DOCS_SECRET = "It's a Secret to Everybody"
GITHUB_DOCS_PAYLOAD = b"Hello, World!"
GITHUB_DOCS_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
SECRETS = (HMAC_HEX_SECRET, HMAC_B64_SECRET, STRIPE_SECRET, STRIPE_LIVE_SECRET, GITHUB_SECRET, PAYSTACK_SECRET,
           GITHUB_DOCS_SECRET)
GITHUB_ENV = "DTL_TEST_GITHUB_WEBHOOK_SECRET"
SIGNED = "signed-app"


def signed_seed(secrets_dir) -> dict:
    def secret_file(name: str, value: str) -> str:
        path = secrets_dir / name
        path.write_text(value + "\n", encoding="utf-8")  # a trailing line break is not part of it
        return str(path)

    seed = example_seed()
    seed["products"][0]["connections"].append(
        {"access_tag": SIGNED, "app": "signed", "envs": {"prd": "live", "stg": "test", "dev": "test"}})
    seed["apps"].append({"tag": "signed", "webhooks": [
        {"tag": "hmac_hex", "verify": {"strategy": "hmac", "header": "X-Signature", "algorithm": "sha256",
                                       "encoding": "hex", "secret_file": secret_file("hex", HMAC_HEX_SECRET)}},
        {"tag": "hmac_b64", "verify": {"strategy": "hmac", "header": "X-Sig", "algorithm": "sha512",
                                       "encoding": "base64", "prefix": "v1=",
                                       "secret_file": secret_file("b64", HMAC_B64_SECRET)}},
        {"tag": "stripe_event", "verify": {
            "strategy": "stripe", "tolerance_seconds": 300, "secret_file": secret_file("stripe", STRIPE_SECRET),
            "envs": {"live": {"secret_file": secret_file("stripe-live", STRIPE_LIVE_SECRET)}}}},
        {"tag": "github_push", "verify": {"strategy": "github", "secret_env": GITHUB_ENV}},
        {"tag": "paystack_charge", "verify": {"strategy": "paystack",
                                              "secret_file": secret_file("paystack", PAYSTACK_SECRET)}},
        {"tag": "sandbox_only", "verify": {"strategy": "github", "secret_env": GITHUB_ENV,
                                           "envs": {"test": {"strategy": "none"}}}},
        {"tag": "github_docs", "verify": {"strategy": "github",
                                          "secret_file": secret_file("github-docs", GITHUB_DOCS_SECRET)}},
    ]})
    return seed


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    secrets_dir = tmp_path_factory.mktemp("secrets")
    os.environ[GITHUB_ENV] = GITHUB_SECRET
    try:
        with LocalServer(signed_seed(secrets_dir), retry_schedule="0.05") as server, Receiver() as receiver:
            yield server, receiver
    finally:
        os.environ.pop(GITHUB_ENV, None)


@pytest.fixture(scope="module")
def api(running):
    return Api(running[0])


@pytest.fixture(scope="module")
def receiver(running):
    return running[1]


ANSWERS: list[str] = []  # every answer text of the module, searched for secrets at the end


def link_of(api: Api, receiver: Receiver, webhook_tag: str, env: str = "dev") -> dict:
    return data_of(api.generate_link(access_tag=SIGNED, webhook_tag=webhook_tag, env=env,
                                     url=f"{receiver.url}/{webhook_tag}/{env}"))


def post(link: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    response = requests.post(link, data=body, headers={"Content-Type": "application/json", **headers}, timeout=30)
    ANSWERS.append(response.text)
    return response


def hex_hmac(secret: str, message: bytes, digest=hashlib.sha256) -> str:
    return hmac.new(secret.encode(), message, digest).hexdigest()


def stripe_header(secret: str, body: bytes, at: int | None = None, extra_v1: tuple[str, ...] = ()) -> str:
    at = int(time.time()) if at is None else at
    signature = hex_hmac(secret, f"{at}.".encode() + body)
    return ",".join([f"t={at}", *[f"v1={v}" for v in extra_v1], f"v1={signature}", "v0=ignored"])


def deliveries_of(api: Api, webhook_tag: str) -> list[dict]:
    return data_of(api.call("GET", "/webhooks/v1/deliveries",
                            params={"product": "my-product", "access_tag": SIGNED, "webhook_tag": webhook_tag}))


def ingress_of(api: Api, uuid: str) -> dict:
    listing = data_of(api.webhooks(access_tag=SIGNED, limit=250))
    [found] = [r for w in listing for r in w["config"] if r["uuid"] == uuid]
    return found["ingress"]


def refused(response: requests.Response, *words: str) -> str:
    message = error_of(response, 401)
    assert message.startswith("signature verification failed: "), message
    for word in words:
        assert word in message, message
    return message


def body_of(n: int) -> bytes:
    return json.dumps({"id": f"evt_{n}", "amount": n}, separators=(",", ":")).encode()


def check_outcome(api: Api, receiver: Receiver, registration: dict, accepted: list[str], refusals: int) -> None:
    """The accepted events (by event id) and only those are stored and delivered; the refusals are counted."""
    webhook_tag = registration["url"].rsplit("/", 2)[-2]
    stored = {d["event_id"] for d in deliveries_of(api, webhook_tag) if d["registration_uuid"] == registration["uuid"]}
    assert stored == set(accepted)
    path = "/" + "/".join(registration["url"].rsplit("/", 2)[-2:])
    arrived = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        arrived = [r for r in receiver.wait_for(0) if r.path == path]
        if {r.header("X-Ductape-Event-Id") for r in arrived} >= set(accepted):
            break
        time.sleep(0.05)
    assert sorted(r.header("X-Ductape-Event-Id") for r in arrived) == sorted(accepted)
    ingress = ingress_of(api, registration["uuid"])
    assert ingress["rejected"] == refusals
    if refusals:
        assert ingress["last_rejection"]["reason"].startswith("signature verification failed: ")
        assert ingress["last_rejection"]["at"].endswith("Z")
    else:
        assert ingress["last_rejection"] is None


def test_generic_hmac_hex_sha256(api, receiver):
    registration = link_of(api, receiver, "hmac_hex")
    link, body = registration["link"], body_of(1)
    good = hex_hmac(HMAC_HEX_SECRET, body)
    accepted = [data_of(post(link, body, {"X-Signature": good}), 202)["event_id"],
                # hex is read in either case
                data_of(post(link, body, {"X-Signature": good.upper()}), 202)["event_id"]]
    refused(post(link, body, {"X-Signature": hex_hmac("not-the-secret", body)}), "does not match")
    refused(post(link, body + b" ", {"X-Signature": good}), "does not match")
    refused(post(link, body, {}), "missing signature header X-Signature")
    refused(post(link, body, {"X-Signature": "sha256=" + good}), "not a hex signature")
    refused(post(link, body, {"X-Signature": hex_hmac(HMAC_HEX_SECRET, body, hashlib.sha512)}), "does not match")
    refused(post(link, body, {"X-Signature": base64.b64encode(bytes.fromhex(good)).decode()}), "not a hex")
    check_outcome(api, receiver, registration, accepted, refusals=6)


def test_generic_hmac_base64_sha512_with_a_prefix(api, receiver):
    registration = link_of(api, receiver, "hmac_b64")
    link, body = registration["link"], body_of(2)
    raw = hmac.new(HMAC_B64_SECRET.encode(), body, hashlib.sha512).digest()
    good = "v1=" + base64.b64encode(raw).decode()
    accepted = [data_of(post(link, body, {"X-Sig": good}), 202)["event_id"]]
    refused(post(link, body, {"X-Sig": base64.b64encode(raw).decode()}), "does not start with 'v1='")
    refused(post(link, body, {"X-Sig": "v2=" + base64.b64encode(raw).decode()}), "does not start with 'v1='")
    refused(post(link, body, {"X-Sig": "v1=" + raw.hex()}), "does not match")  # hex where base64 is declared
    refused(post(link, body, {"X-Sig": "v1=" + base64.b64encode(hmac.new(
        HMAC_B64_SECRET.encode(), body, hashlib.sha256).digest()).decode()}), "does not match")  # sha256
    refused(post(link, b'{"id":"evt_2","amount":200}', {"X-Sig": good}), "does not match")
    refused(post(link, body, {"X-Sig": "v1=***"}), "not a base64 signature")
    check_outcome(api, receiver, registration, accepted, refusals=6)


def test_stripe_timestamped_signatures(api, receiver):
    registration = link_of(api, receiver, "stripe_event")
    link, body = registration["link"], body_of(3)
    now = int(time.time())
    header = "Stripe-Signature"
    accepted = [
        data_of(post(link, body, {header: stripe_header(STRIPE_SECRET, body)}), 202)["event_id"],
        # several v1 (a secret being rolled): one that matches is enough, wherever it is
        data_of(post(link, body, {header: stripe_header(STRIPE_SECRET, body, extra_v1=(
            hex_hmac("an-older-secret", f"{now}.".encode() + body), "00" * 32))}), 202)["event_id"],
        # within the tolerance on either side
        data_of(post(link, body, {header: stripe_header(STRIPE_SECRET, body, at=now - 200)}), 202)["event_id"],
        data_of(post(link, body, {header: stripe_header(STRIPE_SECRET, body, at=now + 200)}), 202)["event_id"],
    ]
    refused(post(link, body, {header: stripe_header("whsec_wrong", body)}), "no v1 signature", "matches")
    refused(post(link, body, {header: stripe_header("whsec_wrong", body, extra_v1=("ab" * 32,))}), "no v1")
    refused(post(link, body + b"\n", {header: stripe_header(STRIPE_SECRET, body)}), "no v1 signature")
    refused(post(link, body, {header: stripe_header(STRIPE_SECRET, body, at=now - 3600)}), "old", "tolerance of 300 s")
    refused(post(link, body, {header: stripe_header(STRIPE_SECRET, body, at=now + 3600)}), "in the future")
    # the timestamp is part of what is signed: a fresh t on an old signature does not match
    old_signature = hex_hmac(STRIPE_SECRET, f"{now - 3600}.".encode() + body)
    refused(post(link, body, {header: f"t={now},v1={old_signature}"}), "no v1 signature")
    refused(post(link, body, {header: f"v1={hex_hmac(STRIPE_SECRET, body)}"}), "no single t=")
    refused(post(link, body, {header: f"t={now}"}), "no v1 signature")
    refused(post(link, body, {header: f"t=soon,v1={hex_hmac(STRIPE_SECRET, body)}"}), "no single t=")
    refused(post(link, body, {}), "missing signature header Stripe-Signature")
    check_outcome(api, receiver, registration, accepted, refusals=10)


def test_stripe_live_env_uses_its_own_secret(api, receiver):
    registration = link_of(api, receiver, "stripe_event", env="prd")  # prd maps to the app env live
    link, body = registration["link"], body_of(4)
    accepted = [data_of(post(link, body, {"Stripe-Signature": stripe_header(STRIPE_LIVE_SECRET, body)}),
                        202)["event_id"]]
    refused(post(link, body, {"Stripe-Signature": stripe_header(STRIPE_SECRET, body)}), "no v1 signature")
    check_outcome(api, receiver, registration, accepted, refusals=1)


def test_github_sha256_signature_from_an_environment_variable(api, receiver):
    registration = link_of(api, receiver, "github_push")
    link, body = registration["link"], body_of(5)
    good = "sha256=" + hex_hmac(GITHUB_SECRET, body)
    accepted = [data_of(post(link, body, {"X-Hub-Signature-256": good}), 202)["event_id"]]
    refused(post(link, body, {"X-Hub-Signature-256": hex_hmac(GITHUB_SECRET, body)}), "does not start with 'sha256='")
    refused(post(link, body, {"X-Hub-Signature-256": "sha1=" + hmac.new(
        GITHUB_SECRET.encode(), body, hashlib.sha1).hexdigest()}), "does not start with 'sha256='")
    refused(post(link, body, {"X-Hub-Signature": "sha1=" + hmac.new(
        GITHUB_SECRET.encode(), body, hashlib.sha1).hexdigest()}), "missing signature header X-Hub-Signature-256")
    refused(post(link, body, {"X-Hub-Signature-256": "sha256=" + hex_hmac("other", body)}), "does not match")
    check_outcome(api, receiver, registration, accepted, refusals=4)


def test_github_documentation_example(api, receiver):
    """The pair GitHub publishes for checking an implementation: not computed by anyone's code here."""
    registration = link_of(api, receiver, "github_docs")
    link = registration["link"]
    accepted = [data_of(post(link, GITHUB_DOCS_PAYLOAD, {"X-Hub-Signature-256": GITHUB_DOCS_SIGNATURE}),
                        202)["event_id"]]
    refused(post(link, GITHUB_DOCS_PAYLOAD + b"\n", {"X-Hub-Signature-256": GITHUB_DOCS_SIGNATURE}), "does not match")
    check_outcome(api, receiver, registration, accepted, refusals=1)


def raw_post(link: str, body: bytes, headers: list[tuple[str, str]]) -> requests.Response:
    """A POST with headers exactly as listed (a name may repeat), over http.client."""
    parts = urllib.parse.urlsplit(link)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest("POST", parts.path)
        for name, value in [*headers, ("Content-Type", "application/json"), ("Content-Length", str(len(body)))]:
            connection.putheader(name, value)
        connection.endheaders(body)
        answer = connection.getresponse()
        response = requests.Response()
        response.status_code, response._content = answer.status, answer.read()  # pylint: disable=protected-access
    finally:
        connection.close()
    ANSWERS.append(response.text)
    return response


def test_a_signature_header_sent_twice_is_refused(api, receiver):
    """Checking only one of two would leave to chance which one counts (and a receiver behind the
    relay might read the other): the event is refused, whichever of the two is the good one."""
    registration = link_of(api, receiver, "github_push", env="stg")
    link, body = registration["link"], body_of(9)
    good = "sha256=" + hex_hmac(GITHUB_SECRET, body)
    accepted = [data_of(raw_post(link, body, [("X-Hub-Signature-256", good)]), 202)["event_id"]]
    for headers in ([("X-Hub-Signature-256", good), ("X-Hub-Signature-256", "sha256=" + "0" * 64)],
                    [("X-Hub-Signature-256", "sha256=" + "0" * 64), ("x-hub-signature-256", good)],
                    [("X-Hub-Signature-256", good)] * 2):
        refused(raw_post(link, body, headers), "the signature header X-Hub-Signature-256 is sent 2 times")
    check_outcome(api, receiver, registration, accepted, refusals=3)


def test_paystack_sha512_signature(api, receiver):
    registration = link_of(api, receiver, "paystack_charge")
    link, body = registration["link"], body_of(6)
    good = hex_hmac(PAYSTACK_SECRET, body, hashlib.sha512)
    accepted = [data_of(post(link, body, {"x-paystack-signature": good}), 202)["event_id"]]
    refused(post(link, body, {"x-paystack-signature": hex_hmac(PAYSTACK_SECRET, body)}), "does not match")  # sha256
    refused(post(link, body, {"x-paystack-signature": hex_hmac("sk_test_other", body, hashlib.sha512)}), "match")
    refused(post(link, body[:-1] + b"7}", {"x-paystack-signature": good}), "does not match")
    refused(post(link, body, {}), "missing signature header x-paystack-signature")
    check_outcome(api, receiver, registration, accepted, refusals=4)


def test_an_app_env_may_turn_verification_off(api, receiver):
    sandbox = link_of(api, receiver, "sandbox_only")  # dev maps to test: strategy none
    live = link_of(api, receiver, "sandbox_only", env="prd")
    body = body_of(7)
    accepted = [data_of(post(sandbox["link"], body, {}), 202)["event_id"]]
    refused(post(live["link"], body, {}), "missing signature header X-Hub-Signature-256")
    check_outcome(api, receiver, sandbox, accepted, refusals=0)
    assert ingress_of(api, live["uuid"])["rejected"] == 1


def test_the_summary_counts_rejections_and_names_the_last(api, receiver):
    registration = link_of(api, receiver, "paystack_charge", env="stg")
    before = data_of(api.call("GET", "/webhooks/v1/deliveries/summary",
                              params={"product": "my-product", "access_tag": SIGNED}))
    refused(post(registration["link"], body_of(8), {"x-paystack-signature": "00"}), "does not match")
    summary = data_of(api.call("GET", "/webhooks/v1/deliveries/summary",
                               params={"product": "my-product", "access_tag": SIGNED}))
    assert summary["rejected"] == before["rejected"] + 1
    assert summary["last_rejection"]["registration_uuid"] == registration["uuid"]
    assert "does not match" in summary["last_rejection"]["reason"]
    just_one = data_of(api.call("GET", "/webhooks/v1/deliveries/summary", params={
        "product": "my-product", "access_tag": SIGNED, "webhook_tag": "paystack_charge", "env": "stg"}))
    assert (just_one["rejected"], just_one["pending"], just_one["delivered"], just_one["failed"]) == (1, 0, 0, 0)
    other = data_of(api.call("GET", "/webhooks/v1/deliveries/summary",
                             params={"product": "my-product", "access_tag": "stripe-payments"}))
    assert (other["rejected"], other["last_rejection"]) == (0, None)


def test_no_secret_or_expected_signature_in_any_answer_or_the_log(api, running):
    server = running[0]
    # what a wrong-secret request would have had to send, for the bodies the tests refused
    body = body_of(6)
    forbidden = list(SECRETS) + [
        hex_hmac(PAYSTACK_SECRET, body, hashlib.sha512), hex_hmac(GITHUB_SECRET, body_of(5)),
        hex_hmac(HMAC_HEX_SECRET, body_of(1) + b" "),
        hex_hmac(GITHUB_DOCS_SECRET, GITHUB_DOCS_PAYLOAD + b"\n"),
    ]
    # the Stripe body sent with a newline added, signed at any second of the last ten minutes
    now = int(time.time())
    forbidden += [hex_hmac(STRIPE_SECRET, f"{t}.".encode() + body_of(3) + b"\n") for t in range(now - 600, now + 2)]
    listing = api.webhooks(access_tag=SIGNED, limit=250).text
    deliveries = api.call("GET", "/webhooks/v1/deliveries", params={"product": "my-product", "limit": 250}).text
    summary = api.call("GET", "/webhooks/v1/deliveries/summary", params={"product": "my-product"}).text
    log = server.log_text()
    assert "signature verification failed" in log  # the refusals are in the log, with their reasons
    assert len(ANSWERS) > 30
    for text in [*ANSWERS, listing, deliveries, summary, log]:
        for secret in forbidden:
            assert secret not in text


def test_a_test_event_skips_the_provider_signature_but_a_provider_post_does_not(api, receiver):
    """A registration's test event (POST .../test) is sent by its owner with the access key, not by the
    provider: it passes a webhook definition's signature check and reaches the receiver, while the same
    link still refuses an unsigned provider post."""
    registration = link_of(api, receiver, "github_push")
    refused(post(registration["link"], body_of(7), {}))
    sent = data_of(api.call("POST", f"/webhooks/v1/registrations/{registration['uuid']}/test", json={}), 202)
    record = settled(api, sent["event_id"])
    assert record["status"] == "delivered" and record["test"] is True
    [arrived] = [r for r in receiver.wait_for(0) if r.header("X-Ductape-Event-Id") == sent["event_id"]]
    assert arrived.header("X-Ductape-Test") == "true"
    assert ingress_of(api, registration["uuid"])["rejected"] >= 1
