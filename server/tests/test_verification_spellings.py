"""Hostile and odd spellings of provider signatures, through the seed's rules and `admit` (the one
check the accept path makes; test_verification.py covers the same strategies over HTTP): which are
accepted, which are refused and why, that every signature is compared with hmac.compare_digest, and
that no reason holds the secret or the signature that would have matched, in any spelling.

Every expected signature is computed here with hmac/hashlib from the provider's published algorithm:
Stripe signs "<t>.<raw body>" with HMAC-SHA256 (hex, v1=), GitHub sends "sha256=" and the hex
HMAC-SHA256 of the raw body, Paystack the hex HMAC-SHA512 of the raw body."""
from __future__ import annotations

import base64
import copy
import hashlib
import hmac

import pytest

from conftest import example_seed
from ductape_local import verification
from ductape_local.catalog import parse_catalog
from ductape_local.verification import IngressRules, admit

NOW = 1_767_225_600  # the server's clock in these checks
BODY = b'{"id":"evt_1","type":"charge.succeeded","amount":1200}'
SECRETS = {
    "DTL_SPELL_STRIPE": "whsec_spellings_4b1f9e",
    "DTL_SPELL_GITHUB": "gh-spellings-secret-77",
    "DTL_SPELL_PAYSTACK": "sk_test_spellings_0c3d",
    "DTL_SPELL_B64": "b64-spellings-secret-1a",
}
WEBHOOKS = {
    "stripe": {"strategy": "stripe", "tolerance_seconds": 300, "secret_env": "DTL_SPELL_STRIPE"},
    "github": {"strategy": "github", "secret_env": "DTL_SPELL_GITHUB"},
    "paystack": {"strategy": "paystack", "secret_env": "DTL_SPELL_PAYSTACK"},
    "b64": {"strategy": "hmac", "header": "X-Sig", "algorithm": "sha512", "encoding": "base64",
            "secret_env": "DTL_SPELL_B64"},
}


@pytest.fixture(scope="module")
def rules():
    seed = copy.deepcopy(example_seed())
    seed["products"][0]["connections"].append({"access_tag": "spell", "app": "spell", "envs": {"dev": "test"}})
    seed["apps"].append({"tag": "spell", "webhooks": [{"tag": tag, "verify": verify} for tag, verify in
                                                      WEBHOOKS.items()]})
    with pytest.MonkeyPatch.context() as patch:
        for name, value in SECRETS.items():
            patch.setenv(name, value)
        return IngressRules.for_catalog(parse_catalog(seed))


def check(rules, webhook: str, headers: list[tuple[str, str]], body: bytes = BODY) -> str | None:
    """None when the event is admitted, else the 401's reason."""
    return admit(rules.rule("my-product", "spell", webhook, "test"), headers, body, NOW).rejection


def hmac_of(secret_env: str, message: bytes, digest=hashlib.sha256) -> bytes:
    return hmac.new(SECRETS[secret_env].encode(), message, digest).digest()


def stripe_v1(at: int | str, body: bytes = BODY, secret: str = SECRETS["DTL_SPELL_STRIPE"]) -> str:
    return hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()


GOOD_STRIPE = stripe_v1(NOW)
GOOD_GITHUB = hmac_of("DTL_SPELL_GITHUB", BODY).hex()
GOOD_PAYSTACK = hmac_of("DTL_SPELL_PAYSTACK", BODY, hashlib.sha512).hex()
GOOD_B64 = base64.b64encode(hmac_of("DTL_SPELL_B64", BODY, hashlib.sha512)).decode()


def test_the_published_github_example_is_what_the_tests_compute():
    """GitHub's documentation of X-Hub-Signature-256 gives this pair; the helper's algorithm gives it too."""
    assert hmac.new(b"It's a Secret to Everybody", b"Hello, World!", hashlib.sha256).hexdigest() == \
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


ACCEPTED = [
    ("stripe", [("Stripe-Signature", f"t={NOW},v1={GOOD_STRIPE}")]),
    ("stripe", [("stripe-signature", f"t={NOW},v1={GOOD_STRIPE}")]),  # header names in any case
    ("stripe", [("Stripe-Signature", f"t={NOW}, v1={GOOD_STRIPE}")]),  # a space after a comma
    ("stripe", [("Stripe-Signature", f"  t={NOW},v1={GOOD_STRIPE}  ")]),  # around the value
    ("stripe", [("Stripe-Signature", f"t={NOW},v1={GOOD_STRIPE.upper()}")]),  # hex in either case
    ("stripe", [("Stripe-Signature", f"v1={GOOD_STRIPE},t={NOW}")]),  # t after v1
    ("stripe", [("Stripe-Signature", f"t={NOW},v1={'ab' * 32},v1={GOOD_STRIPE},v1={'0' * 64}")]),  # one of three
    ("stripe", [("Stripe-Signature", f"t={NOW},v1={GOOD_STRIPE},v0={'cd' * 32},scheme=x")]),  # others ignored
    ("stripe", [("Stripe-Signature", f"t={NOW - 300},v1={stripe_v1(NOW - 300)}")]),  # at the tolerance
    ("stripe", [("Stripe-Signature", f"t={NOW + 300},v1={stripe_v1(NOW + 300)}")]),
    ("github", [("X-Hub-Signature-256", f"sha256={GOOD_GITHUB}")]),
    ("github", [("x-hub-signature-256", f"sha256={GOOD_GITHUB.upper()}")]),
    ("github", [("X-Hub-Signature-256", f"\tsha256={GOOD_GITHUB} ")]),
    ("paystack", [("x-paystack-signature", GOOD_PAYSTACK)]),
    ("paystack", [("X-Paystack-Signature", GOOD_PAYSTACK.upper())]),
    ("b64", [("X-Sig", GOOD_B64)]),
]


@pytest.mark.parametrize("webhook, headers", ACCEPTED, ids=[f"{w}-{i}" for i, (w, _) in enumerate(ACCEPTED)])
def test_accepted_spellings(rules, webhook, headers):
    assert check(rules, webhook, headers) is None


STALE = NOW - 301
FUTURE = NOW + 301
REFUSED = [
    # Stripe
    ("stripe", [], "missing signature header Stripe-Signature"),
    ("stripe", [("Stripe-Signature", "")], "no single t=<unix time>"),
    ("stripe", [("Stripe-Signature", f"v1={GOOD_STRIPE}")], "no single t=<unix time>"),
    ("stripe", [("Stripe-Signature", f"t={NOW},t={NOW},v1={GOOD_STRIPE}")], "no single t=<unix time>"),
    ("stripe", [("Stripe-Signature", f"t=soon,v1={stripe_v1('soon')}")], "no single t=<unix time>"),
    ("stripe", [("Stripe-Signature", f"t={NOW}.0,v1={stripe_v1(f'{NOW}.0')}")], "no single t=<unix time>"),
    ("stripe", [("Stripe-Signature", f"t=-{NOW},v1={stripe_v1(f'-{NOW}')}")], "no single t=<unix time>"),
    ("stripe", [("Stripe-Signature", f"t=+{NOW},v1={stripe_v1(f'+{NOW}')}")], "no single t=<unix time>"),
    ("stripe", [("Stripe-Signature", f"t=1e9,v1={stripe_v1('1e9')}")], "no single t=<unix time>"),
    ("stripe", [("Stripe-Signature", f"t=\u0661\u0662\u0663,v1={stripe_v1('123')}")], "no single t=<unix time>"),
    ("stripe", [("Stripe-Signature", f"T={NOW},v1={GOOD_STRIPE}")], "no single t=<unix time>"),
    ("stripe", [("Stripe-Signature", f"t ={NOW},v1={GOOD_STRIPE}")], "no single t=<unix time>"),
    ("stripe", [("Stripe-Signature", f"t={NOW};v1={GOOD_STRIPE}")], "no single t=<unix time>"),
    ("stripe", [("Stripe-Signature", f"t={NOW}")], "has no v1 signature"),
    ("stripe", [("Stripe-Signature", f"t={NOW},v0={GOOD_STRIPE}")], "has no v1 signature"),
    ("stripe", [("Stripe-Signature", f"t={NOW},V1={GOOD_STRIPE}")], "has no v1 signature"),
    ("stripe", [("Stripe-Signature", f"t={NOW},v1=")], "no v1 signature of the Stripe-Signature header matches"),
    ("stripe", [("Stripe-Signature", f"t={NOW},v1={GOOD_STRIPE[:-1]}")], "no v1 signature"),
    ("stripe", [("Stripe-Signature", f"t={NOW},v1={GOOD_STRIPE}00")], "no v1 signature"),
    ("stripe", [("Stripe-Signature", f"t={NOW},v1=sha256={GOOD_STRIPE}")], "no v1 signature"),
    ("stripe", [("Stripe-Signature", f"t={NOW},v1={GOOD_STRIPE[:10]} {GOOD_STRIPE[10:]}")], "no v1 signature"),
    ("stripe", [("Stripe-Signature", f"t={NOW},v1={stripe_v1(NOW, secret='whsec_other')}")], "no v1 signature"),
    # the body alone signed, or t not part of what was signed
    ("stripe", [("Stripe-Signature", f"t={NOW},v1={hmac_of('DTL_SPELL_STRIPE', BODY).hex()}")], "no v1 signature"),
    ("stripe", [("Stripe-Signature", f"t={NOW + 1},v1={GOOD_STRIPE}")], "no v1 signature"),
    ("stripe", [("Stripe-Signature", f"t={STALE},v1={stripe_v1(STALE)}")], "301 s old, beyond the tolerance of 300 s"),
    ("stripe", [("Stripe-Signature", f"t={FUTURE},v1={stripe_v1(FUTURE)}")],
     "301 s in the future, beyond the tolerance"),
    ("stripe", [("Stripe-Signature", f"t=999999999999,v1={stripe_v1(999999999999)}")], "in the future"),
    ("stripe", [("Stripe-Signature", "t=0,v1=" + stripe_v1(0))], "s old"),
    ("stripe", [("Stripe-Signature", f"t={NOW},v1={GOOD_STRIPE}"), ("Stripe-Signature", f"t={NOW},v1={'ab' * 32}")],
     "the signature header Stripe-Signature is sent 2 times"),
    # GitHub
    ("github", [], "missing signature header X-Hub-Signature-256"),
    ("github", [("X-Hub-Signature", "sha1=" + hmac_of("DTL_SPELL_GITHUB", BODY, hashlib.sha1).hex())],
     "missing signature header X-Hub-Signature-256"),
    ("github", [("X-Hub-Signature-256", "")], "does not start with 'sha256='"),
    ("github", [("X-Hub-Signature-256", GOOD_GITHUB)], "does not start with 'sha256='"),
    ("github", [("X-Hub-Signature-256", f"SHA256={GOOD_GITHUB}")], "does not start with 'sha256='"),
    ("github", [("X-Hub-Signature-256", f"sha1={GOOD_GITHUB}")], "does not start with 'sha256='"),
    ("github", [("X-Hub-Signature-256", "sha256=")], "is not a hex signature"),
    ("github", [("X-Hub-Signature-256", f"sha256= {GOOD_GITHUB}")], "is not a hex signature"),
    ("github", [("X-Hub-Signature-256", f"sha256={GOOD_GITHUB[:-1]}")], "is not a hex signature"),
    ("github", [("X-Hub-Signature-256", f"sha256={GOOD_GITHUB},sha256={GOOD_GITHUB}")], "is not a hex signature"),
    ("github", [("X-Hub-Signature-256", "sha256=" + base64.b64encode(bytes.fromhex(GOOD_GITHUB)).decode())],
     "is not a hex signature"),
    ("github", [("X-Hub-Signature-256", f"sha256={GOOD_GITHUB}00")], "does not match the body"),
    ("github", [("X-Hub-Signature-256", "sha256=" + hmac_of("DTL_SPELL_PAYSTACK", BODY).hex())], "does not match"),
    ("github", [("X-Hub-Signature-256", "sha256=00"), ("X-Hub-Signature-256", f"sha256={GOOD_GITHUB}")],
     "the signature header X-Hub-Signature-256 is sent 2 times"),
    ("github", [("X-Hub-Signature-256", f"sha256={GOOD_GITHUB}"), ("x-hub-signature-256", "sha256=00")],
     "is sent 2 times"),
    # Paystack
    ("paystack", [], "missing signature header x-paystack-signature"),
    ("paystack", [("x-paystack-signature", hmac_of("DTL_SPELL_PAYSTACK", BODY).hex())], "does not match the body"),
    ("paystack", [("x-paystack-signature", f"sha512={GOOD_PAYSTACK}")], "is not a hex signature"),
    ("paystack", [("x-paystack-signature", base64.b64encode(bytes.fromhex(GOOD_PAYSTACK)).decode())],
     "is not a hex signature"),
    ("paystack", [("x-paystack-signature", GOOD_PAYSTACK)] * 2, "is sent 2 times"),
    # generic HMAC, base64
    ("b64", [("X-Sig", GOOD_B64.rstrip("="))], "is not a base64 signature"),
    ("b64", [("X-Sig", GOOD_B64[:8] + " " + GOOD_B64[8:])], "is not a base64 signature"),
    ("b64", [("X-Sig", "\u00e9" + GOOD_B64)], "is not a base64 signature"),
    # hex is base64 too (its alphabet is inside base64's): read as base64, it does not match
    ("b64", [("X-Sig", hmac_of("DTL_SPELL_B64", BODY, hashlib.sha512).hex())], "does not match the body"),
]


@pytest.mark.parametrize("webhook, headers, reason", REFUSED,
                         ids=[f"{w}-{i}" for i, (w, _, _) in enumerate(REFUSED)])
def test_refused_spellings(rules, webhook, headers, reason):
    found = check(rules, webhook, headers)
    assert found is not None and found.startswith("signature verification failed: "), found
    assert reason in found, found


def test_a_tampered_body_is_refused_by_every_strategy(rules):
    tampered = BODY.replace(b"1200", b"9200")
    good = {"stripe": [("Stripe-Signature", f"t={NOW},v1={GOOD_STRIPE}")],
            "github": [("X-Hub-Signature-256", f"sha256={GOOD_GITHUB}")],
            "paystack": [("x-paystack-signature", GOOD_PAYSTACK)], "b64": [("X-Sig", GOOD_B64)]}
    for webhook, headers in good.items():
        assert check(rules, webhook, headers) is None
        assert "match" in check(rules, webhook, headers, tampered)
        assert "match" in check(rules, webhook, headers, BODY + b"\n")


def spellings_of(digest: bytes) -> list[str]:
    """How a signature could be written in a reason: hex in either case, base64."""
    return [digest.hex(), digest.hex().upper(), base64.b64encode(digest).decode(), digest.hex()[:16]]


def test_no_reason_holds_a_secret_or_the_signature_that_would_have_matched(rules):
    forbidden = [*SECRETS.values()]
    for at in (NOW, STALE, FUTURE, NOW + 1, 999999999999, 0, "soon", f"{NOW}.0"):
        forbidden += spellings_of(bytes.fromhex(stripe_v1(at)))
    for body in (BODY, BODY + b"\n", BODY.replace(b"1200", b"9200")):
        forbidden += spellings_of(hmac_of("DTL_SPELL_GITHUB", body))
        forbidden += spellings_of(hmac_of("DTL_SPELL_PAYSTACK", body, hashlib.sha512))
        forbidden += spellings_of(hmac_of("DTL_SPELL_B64", body, hashlib.sha512))
    reasons = [check(rules, webhook, headers) for webhook, headers, _ in REFUSED]
    reasons += [check(rules, webhook, headers, BODY + b"\n") for webhook, headers in ACCEPTED]
    assert all(reasons) and len(reasons) == len(REFUSED) + len(ACCEPTED)
    for reason in reasons:
        for value in forbidden:
            assert value not in reason, reason
    assert all(secret not in repr(rules.rule("my-product", "spell", w, "test")) for w in WEBHOOKS
               for secret in SECRETS.values())


def test_every_signature_is_compared_in_constant_time(rules, monkeypatch):
    """Each candidate signature goes through hmac.compare_digest (every v1 of a Stripe header, also
    after one matched), with the expected digest computed here."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a, b):
        calls.append((bytes(a), bytes(b)))
        return real(a, b)

    monkeypatch.setattr(verification.hmac, "compare_digest", recording)
    stripe = bytes.fromhex(GOOD_STRIPE)
    cases = [
        ("stripe", [("Stripe-Signature", f"t={NOW},v1={GOOD_STRIPE},v1={'ab' * 32},v1={'cd' * 32}")], None,
         {stripe: 3}),
        ("stripe", [("Stripe-Signature", f"t={NOW},v1={'ab' * 32}")], "no v1", {stripe: 1}),
        ("github", [("X-Hub-Signature-256", f"sha256={'ab' * 32}")], "does not match",
         {hmac_of("DTL_SPELL_GITHUB", BODY): 1}),
        ("paystack", [("x-paystack-signature", GOOD_PAYSTACK)], None,
         {hmac_of("DTL_SPELL_PAYSTACK", BODY, hashlib.sha512): 1}),
        ("b64", [("X-Sig", GOOD_B64)], None, {hmac_of("DTL_SPELL_B64", BODY, hashlib.sha512): 1}),
    ]
    for webhook, headers, refused, expected in cases:
        calls.clear()
        found = check(rules, webhook, headers)
        assert (found is None) if refused is None else (refused in found), found
        compared = {}
        for a, b in calls:
            assert a in expected or b in expected, (webhook, a, b)
            key = a if a in expected else b
            compared[key] = compared.get(key, 0) + 1
        assert compared == expected, webhook
