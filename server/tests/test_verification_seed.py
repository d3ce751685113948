"""Bad verification and dedup config in a seed is refused at start with the path of the bad field, and
a secret reference that cannot be read is refused naming the reference, never a secret value."""
from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml

from conftest import example_seed
from ductape_local.catalog import SeedError, parse_catalog
from ductape_local.verification import IngressRules

PLANTED = "sk_live_planted_value_0123456789"


def seed_with(webhook_extra: dict, index: int = 1) -> dict:
    """The example seed with `webhook_extra` merged into apps[0].webhooks[index]."""
    seed = copy.deepcopy(example_seed())
    seed["apps"][0]["webhooks"][index].update(webhook_extra)
    return seed


BAD = [
    ({"verify": {"strategy": "hmac", "header": "X-Sig", "algorithm": "md5", "secret_env": "S"}},
     "apps[0].webhooks[1].verify.algorithm: must be one of sha256, sha512 (got 'md5')"),
    ({"verify": {"strategy": "hmac", "header": "X-Sig", "encoding": "base32", "secret_env": "S"}},
     "apps[0].webhooks[1].verify.encoding: must be one of hex, base64 (got 'base32')"),
    ({"verify": {"strategy": "hmac", "secret_env": "S"}},
     "apps[0].webhooks[1].verify: strategy 'hmac' needs header"),
    ({"verify": {"strategy": "hmac", "header": "X Sig", "secret_env": "S"}},
     "apps[0].webhooks[1].verify.header: must be an HTTP header name (got 'X Sig')"),
    ({"verify": {"strategy": "hmac", "header": "X-Sig", "prefix": 7, "secret_env": "S"}},
     "apps[0].webhooks[1].verify.prefix: must be a string without spaces (got 7)"),
    ({"verify": {"strategy": "svix", "secret_env": "S"}},
     "apps[0].webhooks[1].verify.strategy: must be one of hmac, stripe, github, paystack, none (got 'svix')"),
    ({"verify": {"secret_env": "S"}}, "apps[0].webhooks[1].verify.strategy: must be a non-empty string"),
    ({"verify": {"strategy": "github"}},
     "apps[0].webhooks[1].verify: strategy 'github' needs secret_env (an environment variable name) or secret_file"),
    ({"verify": {"strategy": "github", "secret_env": "A", "secret_file": "/x"}},
     "apps[0].webhooks[1].verify: strategy 'github' takes one of secret_env"),
    ({"verify": {"strategy": "github", "secret_env": "not a name"}},
     "apps[0].webhooks[1].verify.secret_env: must be an environment variable name (got 'not a name')"),
    ({"verify": {"strategy": "github", "secret_env": "S", "algorithm": "sha512"}},
     "apps[0].webhooks[1].verify.algorithm: not an option of strategy 'github' (its options: secret_env, secret_file)"),
    ({"verify": {"strategy": "stripe", "secret_env": "S", "tolerance_seconds": 0}},
     "apps[0].webhooks[1].verify.tolerance_seconds: must be a whole number of seconds from 1 to 86400 (got 0)"),
    ({"verify": {"strategy": "stripe", "secret_env": "S", "tolerance_seconds": "300"}},
     "apps[0].webhooks[1].verify.tolerance_seconds: must be a whole number of seconds from 1 to 86400 (got '300')"),
    ({"verify": {"strategy": "stripe", "secret_env": "S", "envs": {"live": {"tolerance_seconds": True}}}},
     "apps[0].webhooks[1].verify.envs.live.tolerance_seconds: must be a whole number"),
    ({"verify": {"strategy": "stripe", "secret_env": "S", "envs": {"live": {"strategy": "hmac"}}}},
     "apps[0].webhooks[1].verify.envs.live: strategy 'hmac' needs header"),
    ({"verify": {"envs": {"live": {"secret_env": "S"}}}},
     "apps[0].webhooks[1].verify.envs.live.strategy: must be a non-empty string"),
    ({"verify": "github"}, "apps[0].webhooks[1].verify: must be a mapping"),
    ({"verify": {}}, "apps[0].webhooks[1].verify: names no strategy"),
    ({"verify": {"envs": {}}}, "apps[0].webhooks[1].verify: names no strategy"),
    ({"verify": {"envs": None}}, "apps[0].webhooks[1].verify: names no strategy"),
    ({"dedup": {"header": "X-Id", "json_path": "id"}}, "apps[0].webhooks[1].dedup: needs exactly one of header"),
    ({"dedup": {}}, "apps[0].webhooks[1].dedup: needs exactly one of header"),
    ({"dedup": {"json_path": "data..id"}}, "apps[0].webhooks[1].dedup.json_path: must be dotted object keys"),
    ({"dedup": {"header": "X-Id", "window_seconds": -5}},
     "apps[0].webhooks[1].dedup.window_seconds: must be a whole number of seconds from 1 to 2592000 (got -5)"),
    ({"dedup": {"header": "X-Id", "window": 60}}, "apps[0].webhooks[1].dedup.window: not an option of dedup"),
]


@pytest.mark.parametrize("extra, message", BAD, ids=[m.split(":")[0] + f"-{i}" for i, (_, m) in enumerate(BAD)])
def test_bad_verification_config_names_the_field(extra, message):
    with pytest.raises(SeedError) as raised:
        parse_catalog(seed_with(extra))
    assert str(raised.value).startswith(message), str(raised.value)


def test_an_env_override_must_name_an_app_env_of_the_connections():
    with pytest.raises(SeedError) as raised:
        parse_catalog(seed_with({"verify": {"envs": {"lvie": {"strategy": "github", "secret_env": "S"}}}}))
    assert str(raised.value) == ("apps[0].webhooks[1].verify.envs.lvie: no connection maps a product env to the app "
                                 "env 'lvie' of app 'stripe' (its app envs: live, test)")


def test_a_secret_value_in_the_seed_is_refused_without_echoing_it():
    with pytest.raises(SeedError) as raised:
        parse_catalog(seed_with({"verify": {"strategy": "github", "secret": PLANTED}}))
    assert str(raised.value).startswith("apps[0].webhooks[1].verify.secret: a signing secret never goes in the seed")
    assert PLANTED not in str(raised.value)


@pytest.mark.parametrize("kind, value", [("secret_env", PLANTED), ("secret_file", "whsec_planted_0123456789"),
                                         ("secret_env", "sk_test_planted_0123456789"), ("secret_env", 1234567890)])
def test_a_secret_pasted_as_its_reference_is_refused_without_echoing_it(kind, value, tmp_path, monkeypatch):
    """A Stripe or Paystack secret written where its variable or file name goes would otherwise be
    quoted back ('the environment variable ... is not set') and stored in the catalog."""
    monkeypatch.setenv(str(value), "a variable of that name, set")  # so that nothing else refuses it
    with pytest.raises(SeedError) as raised:
        parse_catalog(seed_with({"verify": {"strategy": "stripe", kind: value}}))
    message = str(raised.value)
    assert message.startswith(f"apps[0].webhooks[1].verify.{kind}: "), message
    assert str(value) not in message


def test_unreadable_secret_references_are_named(tmp_path, monkeypatch):
    monkeypatch.delenv("DTL_UNSET_SECRET", raising=False)
    catalog = parse_catalog(seed_with({"verify": {"strategy": "github", "secret_env": "DTL_UNSET_SECRET"}}))
    with pytest.raises(SeedError, match=r"^apps\[0\]\.webhooks\[1\]\.verify\.secret_env: the environment variable "
                                        r"'DTL_UNSET_SECRET' is not set or empty$"):
        IngressRules.for_catalog(catalog)
    monkeypatch.setenv("DTL_EMPTY_SECRET", "")
    catalog = parse_catalog(seed_with({"verify": {"strategy": "github", "secret_env": "DTL_EMPTY_SECRET"}}))
    with pytest.raises(SeedError, match=r"verify\.secret_env: the environment variable 'DTL_EMPTY_SECRET' is not set "
                                        r"or empty$"):
        IngressRules.for_catalog(catalog)
    missing = tmp_path / "no-such-secret"
    catalog = parse_catalog(seed_with({"verify": {"strategy": "paystack", "envs": {
        "live": {"secret_file": str(missing)}}, "secret_env": "DTL_UNSET_SECRET"}}))
    monkeypatch.setenv("DTL_UNSET_SECRET", PLANTED)
    with pytest.raises(SeedError) as raised:
        IngressRules.for_catalog(catalog)
    assert str(raised.value).startswith(f"apps[0].webhooks[1].verify.envs.live.secret_file: cannot read the file "
                                        f"'{missing}': ")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    catalog = parse_catalog(seed_with({"verify": {"strategy": "paystack", "secret_file": str(empty)}}))
    with pytest.raises(SeedError, match=r"verify\.secret_file: the file '.*empty' is empty$"):
        IngressRules.for_catalog(catalog)


def _serve(tmp_path, seed: dict, env: dict[str, str]) -> subprocess.CompletedProcess:
    seed_path = tmp_path / "seed.yml"
    seed_path.write_text(yaml.safe_dump(seed), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "ductape_local", "serve", "--port", "9", "--db", str(tmp_path / "db.sqlite"),
         "--seed", str(seed_path)],
        capture_output=True, text=True, timeout=60, env=env)


def test_the_server_refuses_to_start_naming_the_path_and_the_reference(tmp_path):
    import os

    env = {key: value for key, value in os.environ.items() if key != "DTL_UNSET_SECRET"}
    bad = _serve(tmp_path, seed_with({"verify": {"strategy": "hmac", "header": "X-Sig", "algorithm": "sha1",
                                                 "secret_env": "S"}}), env)
    assert bad.returncode == 2
    assert "seed error: apps[0].webhooks[1].verify.algorithm: must be one of sha256, sha512 (got 'sha1')" in bad.stderr
    unreadable = _serve(tmp_path, seed_with({"verify": {"strategy": "github", "secret_env": "DTL_UNSET_SECRET"}}), env)
    assert unreadable.returncode == 2
    assert ("seed error: apps[0].webhooks[1].verify.secret_env: the environment variable 'DTL_UNSET_SECRET' "
            "is not set or empty") in unreadable.stderr
    missing = tmp_path / "no-such-secret-file"
    no_file = _serve(tmp_path, seed_with({"verify": {"strategy": "stripe", "secret_file": str(missing)}}), env)
    assert no_file.returncode == 2
    assert (f"seed error: apps[0].webhooks[1].verify.secret_file: cannot read the file '{missing}': "
            "No such file or directory") in no_file.stderr


def test_the_stored_catalog_keeps_the_references_not_the_values(tmp_path):
    """Restarted without --seed, the server reads the secrets again from the stored references."""
    seed = seed_with({"verify": {"strategy": "github", "secret_env": "DTL_STORED_SECRET"},
                      "dedup": {"header": "X-GitHub-Delivery", "window_seconds": 600}})
    document = parse_catalog(seed).to_document()
    again = parse_catalog(copy.deepcopy(document))
    webhook = again.apps["stripe"].webhooks["charge_refunded"]
    assert webhook.verification("live").secret.name == "DTL_STORED_SECRET"
    assert (webhook.dedup.header, webhook.dedup.window_seconds) == ("X-GitHub-Delivery", 600)
    assert again.to_document() == document


def test_a_seed_refused_for_its_secret_leaves_the_stored_seed_as_it_was(tmp_path):
    """A seed whose secret reference cannot be read is refused at start, and the seed stored by the
    last good start stays: a later start without --seed serves that one, not the refused one."""
    import os

    from ductape_local.store import Store

    env = {key: value for key, value in os.environ.items() if key != "DTL_UNSET_SECRET"}
    db = tmp_path / "db.sqlite"
    good = seed_with({})
    stored_before = parse_catalog(good).to_document()
    Store(db).save_catalog(stored_before)  # what a good start with this seed stores
    refused_seed = seed_with({"verify": {"strategy": "github", "secret_env": "DTL_UNSET_SECRET"}})
    refused_seed["apps"][0]["webhooks"].append({"tag": "only_in_the_refused_seed"})
    refused = _serve(tmp_path, refused_seed, env)
    assert refused.returncode == 2
    assert "apps[0].webhooks[1].verify.secret_env: the environment variable 'DTL_UNSET_SECRET'" in refused.stderr
    assert Store(db).load_catalog() == stored_before


def test_a_secret_variable_holding_bytes_that_are_not_utf8_is_read_as_its_bytes(monkeypatch):
    """The environment holds bytes; an HMAC key is bytes: a secret that is not UTF-8 is used as it is
    (it failed the start with a UnicodeEncodeError traceback)."""
    from ductape_local.verification import admit

    monkeypatch.setenv("DTL_BYTES_SECRET", b"key-\xff\xfe".decode("utf-8", "surrogateescape"))
    catalog = parse_catalog(seed_with({"verify": {"strategy": "paystack", "secret_env": "DTL_BYTES_SECRET"}}))
    rules = IngressRules.for_catalog(catalog)
    body = b'{"event":"charge.success"}'
    signature = __import__("hmac").new(b"key-\xff\xfe", body, "sha512").hexdigest()
    rule = rules.rule("my-product", "stripe-payments", "charge_refunded", "live")
    assert admit(rule, [("x-paystack-signature", signature)], body, 0).rejection is None
