"""The rule functions of module_utils/_rules.py: what the modules, the engine and the role's plan refuse."""
from __future__ import annotations

import pytest

from ansible_collections.ductape.webhooks.plugins.module_utils import _rules as rules


@pytest.mark.parametrize("url, masked", [
    # The contract's vectors (C2).
    ("https://user:pa55@h.example/p?a=1", "https://********@h.example/p?a=1"),
    ("https://tok3n@h.example/p", "https://********@h.example/p"),
    ("https://h.example/p?token=abc&v=2&API_KEY=x#frag", "https://h.example/p?token=********&v=2&API_KEY=********#frag"),
    ("http://127.0.0.1:8080/hooks/a", "http://127.0.0.1:8080/hooks/a"),
    # More of the class: every secret word, any case, userinfo with a port, an @ in the path only.
    ("https://h.example/?Session_Id=1&sig=2&pwd=3&passwd=4&x_credential=5&AUTHz=6&q=7&secret",
     "https://h.example/?Session_Id=********&sig=********&pwd=********&passwd=********&x_credential=********"
     "&AUTHz=********&q=7&secret"),
    ("http://a:b@h.example:8443", "http://********@h.example:8443"),
    ("https://h.example/users/@me?v=1", "https://h.example/users/@me?v=1"),
    ("https://h.example/p#token=x", "https://h.example/p#token=x"),
])
def test_mask_url(url, masked):
    assert rules.mask_url(url) == masked
    assert rules.mask_url(masked) == masked, "masking twice changes nothing"


@pytest.mark.parametrize("url", ["ftp://h.example/x", "h.example/x", "https://", "https://exa mple.com/", "http:///p"])
def test_url_problems_name_the_field_and_the_masked_value(url):
    [problem] = rules.url_problems("envs[2].url", url, ' in env "dev"')
    assert problem.startswith("envs[2].url: ") and 'in env "dev"' in problem


def test_a_url_problem_never_shows_the_credential_inside_it():
    [problem] = rules.url_problems("url", "ftp://user:hunter2@h.example/?token=abc")
    assert "hunter2" not in problem and "abc" not in problem and "********" in problem


def test_method_and_auth_problems():
    assert rules.method_problems("m", "POST") == []
    [problem] = rules.method_problems("webhooks[0].envs[1].method", "post")
    assert problem.startswith("webhooks[0].envs[1].method: ") and '"post"' in problem
    problems = rules.auth_problems("envs[0].auth", {"headers": "sk_live_1", "cookies": {}, "body": None})
    assert [p.split(":")[0] for p in problems] == ["envs[0].auth", "envs[0].auth.headers"]
    assert all("sk_live_1" not in p for p in problems)
    [problem] = rules.auth_problems("auth", ["sk_live_2"])
    assert "a list" in problem and "sk_live_2" not in problem


def test_slugs_duplicates_envs_and_webhook_tags():
    assert rules.slug_problems("envs[0].slug", "") and rules.slug_problems("envs[0].slug", None)
    [problem] = rules.duplicate_problems(["prd", "stg", "prd"], lambda i: "envs[%d].slug" % i, "env")
    assert problem.startswith("envs[2].slug: ") and "envs[0]" in problem and "twice" in problem
    [problem] = rules.env_exists_problems("env", "sbx", "my-product", ["prd", "stg"])
    assert '"sbx"' in problem and '"my-product"' in problem and "prd, stg" in problem
    assert rules.env_exists_problems("env", "sbx", "p", None) == [], "unknown envs: nothing to say"
    [problem] = rules.webhook_tag_problems("webhook_tag", "nope", "stripe", ["b", "a"])
    assert '"nope"' in problem and '"stripe"' in problem and "a, b" in problem


@pytest.mark.parametrize("key", ["dtl_key\n", "dtl\x00key", " dtl_key", "dtl_key\t", "dtl\u2028key", "dtl_key "])
def test_an_access_key_that_cannot_be_sent_is_refused_without_showing_it(key):
    [problem] = rules.access_key_problems(key)
    assert problem.startswith("access_key: ")
    for form in (key, key.strip(), "dtl_key", "dtl", repr(key)[1:-1]):
        assert form not in problem.replace("access_key", "")
    assert rules.access_key_problems("dtl_fine_key") == []
    assert rules.access_key_problems(None)[0].startswith("access_key: no access key")
