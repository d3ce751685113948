"""Provider signatures: each webhook definition's check of an event's raw body, per app env.

The seed names a strategy and where its secret is read (catalog.VerifyConfig); `IngressRules` reads
every secret once, at start (an unreadable reference is a SeedError naming the reference, never a
value), and `admit` is the one function the accept path calls for an event: it answers why the event
is refused (a 401), or where its provider event id is for deduplication (dedup.py).

Strategies, each over the raw body exactly as received:

- ``hmac``: HMAC-SHA256 or -SHA512 of the body, hex or base64, in a named header, after an optional
  prefix (``sha256=``).
- ``stripe``: ``Stripe-Signature: t=<unix time>,v1=<hex>[,v1=<hex>...]``, each v1 a hex HMAC-SHA256 of
  ``"<t>.<body>"``; one matching v1 is enough (several are sent while a secret is rolled), and a ``t``
  further than ``tolerance_seconds`` from the server's clock, past or future, is refused (replay).
- ``github``: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``.
- ``paystack``: ``x-paystack-signature: <hex HMAC-SHA512 of the body>``.

The signature header's value is read with the spaces around it dropped, and hex in either case; a
signature header sent more than once is refused (no provider sends two, and checking one would leave
which one counts to chance). Signatures are compared with hmac.compare_digest. A reason says what was
wrong with the request (missing or repeated header, malformed value, no match, stale timestamp), never
the secret or the signature that would have matched.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from typing import Callable

from .catalog import Catalog, DedupConfig, SecretRef, SeedError, VerifyConfig
from .dedup import provider_event_id

_DIGESTS: dict[str, Callable] = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
_HEX = re.compile(r"[0-9A-Fa-f]+")
_UNIX_TIME = re.compile(r"[0-9]{1,12}")


def read_secret(ref: SecretRef) -> bytes:
    """The secret a reference names, read now; a SeedError naming the reference (not the value) when
    it cannot be read or is empty. A file's trailing line breaks are not part of the secret."""
    if ref.kind == "secret_env":
        value = os.environb.get(os.fsencode(ref.name))  # the bytes, whatever their encoding
        if not value:
            raise SeedError(f"{ref.where}: the {ref.describe()} is not set or empty")
        return value
    try:
        with open(ref.name, "rb") as handle:
            value_bytes = handle.read().rstrip(b"\r\n")
    except OSError as exc:
        raise SeedError(f"{ref.where}: cannot read the {ref.describe()}: {exc.strerror}") from None
    if not value_bytes:
        raise SeedError(f"{ref.where}: the {ref.describe()} is empty")
    return value_bytes


def _header_values(headers: list[tuple[str, str]], name: str) -> list[str]:
    """Every value of a header, in order (names compare case-insensitively)."""
    wanted = name.lower()
    return [value for key, value in headers if key.lower() == wanted]


class Verifier:
    """One strategy with its secret: `problem(headers, body, now)` is None for a good signature,
    else the reason for refusing the event."""

    def __init__(self, config: VerifyConfig, secret: bytes):
        self.config = config
        self._secret = secret
        self._digest = _DIGESTS[config.algorithm]
        self._check = self._stripe if config.strategy == "stripe" else self._hmac

    def __repr__(self) -> str:  # never the secret
        return f"Verifier({self.config.strategy}, {self.config.header})"

    def problem(self, headers: list[tuple[str, str]], body: bytes, now: float) -> str | None:
        values = _header_values(headers, self.config.header)
        if not values:
            return f"missing signature header {self.config.header}"
        if len(values) > 1:
            # no provider sends two; checking one of them would leave which one to chance (and a
            # receiver behind the relay might read the other)
            return f"the signature header {self.config.header} is sent {len(values)} times"
        return self._check(values[0].strip(), body, now)

    def _hmac(self, value: str, body: bytes, now: float) -> str | None:  # pylint: disable=unused-argument
        config = self.config
        if config.prefix:
            if not value.startswith(config.prefix):
                return f"the {config.header} header does not start with {config.prefix!r}"
            value = value[len(config.prefix):]
        given = _decode(value, config.encoding)
        if given is None:
            return f"the {config.header} header is not a {config.encoding} signature"
        expected = hmac.new(self._secret, body, self._digest).digest()
        if not hmac.compare_digest(expected, given):
            return f"the {config.header} signature does not match the body"
        return None

    def _stripe(self, value: str, body: bytes, now: float) -> str | None:
        header = self.config.header
        timestamps, signatures = [], []
        for item in value.split(","):
            key, sep, part = item.strip().partition("=")
            if not sep:
                continue
            if key == "t":
                timestamps.append(part)
            elif key == "v1":
                signatures.append(part)
        if len(timestamps) != 1 or not _UNIX_TIME.fullmatch(timestamps[0]):
            return f"the {header} header has no single t=<unix time>"
        if not signatures:
            return f"the {header} header has no v1 signature"
        signed = timestamps[0].encode("ascii") + b"." + body
        expected = hmac.new(self._secret, signed, hashlib.sha256).digest()
        matched = False
        for signature in signatures:
            given = _decode(signature, "hex")
            # every v1 is compared, so that the time taken does not tell which one matched
            if given is not None and hmac.compare_digest(expected, given):
                matched = True
        if not matched:
            return f"no v1 signature of the {header} header matches the body"
        skew = now - int(timestamps[0])
        tolerance = self.config.tolerance_seconds
        if abs(skew) > tolerance:
            direction = "old" if skew > 0 else "in the future"
            return (f"the {header} timestamp is {abs(int(skew))} s {direction}, beyond the tolerance of "
                    f"{tolerance} s (a replayed or delayed event)")
        return None


def _decode(value: str, encoding: str) -> bytes | None:
    try:
        if encoding == "hex":
            return bytes.fromhex(value) if _HEX.fullmatch(value) and len(value) % 2 == 0 else None
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


@dataclass(frozen=True)
class IngressRule:
    """What the accept path checks for the events of one registration."""

    verifier: Verifier | None = None
    dedup: DedupConfig | None = None


NO_RULE = IngressRule()


@dataclass(frozen=True)
class Admission:
    """What `admit` found: `rejection` (the 401's reason), or `dedup`: the provider event id to
    deduplicate by and the window in seconds (None: no dedup for this event)."""

    rejection: str | None = None
    dedup: tuple[str, float] | None = None


ADMITTED = Admission()


def admit(rule: IngressRule, headers: list[tuple[str, str]], body: bytes, now: float) -> Admission:
    """The one check of an event on the accept path: its signature, then its provider event id."""
    if rule.verifier is not None:
        problem = rule.verifier.problem(headers, body, now)
        if problem is not None:
            return Admission(rejection="signature verification failed: " + problem)
    if rule.dedup is None:
        return ADMITTED
    found = provider_event_id(rule.dedup, headers, body)
    return ADMITTED if found is None else Admission(dedup=(found, float(rule.dedup.window_seconds)))


class IngressRules:
    """Every webhook definition's rule, with its secrets read (at start: `for_catalog` raises SeedError)."""

    def __init__(self, catalog: Catalog, secrets: dict[SecretRef, bytes]):
        self._catalog = catalog
        self._rules: dict[tuple[str, str, str], IngressRule] = {}
        self._secrets = secrets

    @classmethod
    def for_catalog(cls, catalog: Catalog) -> "IngressRules":
        secrets: dict[SecretRef, bytes] = {}
        for app in catalog.apps.values():
            for webhook in app.webhooks.values():
                for config in (webhook.verify_default, *webhook.verify_envs.values()):
                    if config is not None and config.secret is not None and config.secret not in secrets:
                        secrets[config.secret] = read_secret(config.secret)
        return cls(catalog, secrets)

    def rule(self, product: str, access_tag: str, webhook_tag: str, app_env: str) -> IngressRule:
        """The rule for the events of a registration (NO_RULE when the seed declares none)."""
        connection = self._catalog.products[product].connections.get(access_tag) \
            if product in self._catalog.products else None
        app = self._catalog.apps.get(connection.app) if connection else None
        webhook = app.webhooks.get(webhook_tag) if app else None
        if webhook is None:
            return NO_RULE
        key = (app.tag, webhook_tag, app_env)
        found = self._rules.get(key)
        if found is None:
            config = webhook.verification(app_env)
            verifier = None
            if config is not None and config.secret is not None:
                verifier = Verifier(config, self._secrets[config.secret])
            found = self._rules[key] = IngressRule(verifier=verifier, dedup=webhook.dedup)
        return found
