"""The one place that turns a registration's secrets into what may be shown: the salted digests of
its auth and url (contracts C1, C2), its masked auth, and its url with credentials masked.

A digest is "hmac-sha256:<salt>:<hex>", keyed by a salt drawn anew whenever the registration's auth or
url is stored changed: two registrations with the same secret, or one registration before and after a
change, never show the same digest. What a holder of an access key can still learn from one digest:
whether a guess of that one registration's auth (or url) is right, at HMAC-SHA256 speed per guess;
nothing computed for one registration, or for one version of it, serves another.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any
from urllib.parse import unquote_plus

AUTH_PARTS = ("body", "headers", "params", "query")
MASK = "********"
DIGEST_SCHEME = "hmac-sha256"
SALT_BYTES = 16


def stored_auth(auth: dict[str, Any] | None) -> dict[str, Any]:
    """The auth parts that were given, without the absent or null ones."""
    return {part: dict(auth[part]) for part in AUTH_PARTS if auth and auth.get(part) is not None}


def canonical_auth(auth: dict[str, Any] | None) -> bytes:
    """The contract's canonical JSON of an auth: the four parts, absent or null as {}, keys sorted."""
    canonical = {part: (auth or {}).get(part) or {} for part in AUTH_PARTS}
    return json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def new_salt() -> str:
    """32 lowercase hex characters, drawn each time a registration's auth or url is stored anew."""
    return secrets.token_hex(SALT_BYTES)


def _hmac(salt: str, message: bytes) -> str:
    return f"{DIGEST_SCHEME}:{salt}:" + hmac.new(salt.encode("ascii"), message, hashlib.sha256).hexdigest()


def auth_digest(auth: dict[str, Any] | None, salt: str | None = None) -> str:
    """"hmac-sha256:<salt>:<hex>" of the canonical auth (contract C1). Without a salt, the unsalted
    "sha256:<hex>" that servers before C1 answered: the server never stores it, and clients' tests use
    it to check that they still understand an older server."""
    if salt is None:
        return "sha256:" + hashlib.sha256(canonical_auth(auth)).hexdigest()
    return _hmac(salt, canonical_auth(auth))


def url_digest(url: str, salt: str) -> str:
    """"hmac-sha256:<salt>:<hex>" of the exact stored url, with the auth digest's salt (contract C2)."""
    return _hmac(salt, url.encode("utf-8"))


def digest_salt(digest: str) -> str | None:
    scheme, _, rest = (digest or "").partition(":")
    salt, _, _ = rest.partition(":")
    return salt if scheme == DIGEST_SCHEME and len(salt) == 2 * SALT_BYTES else None


def auth_matches(digest: str, auth: dict[str, Any] | None) -> bool:
    """Whether `auth` is the auth that `digest` was made of (what a client does with its desired auth)."""
    salt = digest_salt(digest)
    return salt is not None and hmac.compare_digest(digest, auth_digest(auth, salt))


# A query parameter whose name (lowercased, percent-decoded) contains one of these holds a secret.
SECRET_PARAM_WORDS = ("token", "key", "secret", "password", "passwd", "pwd", "auth", "sig", "credential", "session")


def mask_url(url: str) -> str:
    """The url with its credentials hidden (contract C2): the whole userinfo becomes ******** and so does
    the value of every query parameter whose name holds a secret word; everything else byte for byte."""
    if not isinstance(url, str):
        return url
    head, hash_mark, fragment = url.partition("#")
    head, question, query = head.partition("?")
    scheme_end = head.find("://")
    if scheme_end >= 0:
        authority_start = scheme_end + 3
        slash = head.find("/", authority_start)
        authority_end = len(head) if slash < 0 else slash
        authority = head[authority_start:authority_end]
        if "@" in authority:
            host = authority.rsplit("@", 1)[1]
            head = head[:authority_start] + MASK + "@" + host + head[authority_end:]
    if question:
        query = "&".join(_mask_parameter(part) for part in query.split("&"))
    return head + question + query + hash_mark + fragment


def _mask_parameter(part: str) -> str:
    name, equals, _ = part.partition("=")
    if equals and any(word in unquote_plus(name).lower() for word in SECRET_PARAM_WORDS):
        return name + "=" + MASK
    return part


def mask_auth(auth: dict[str, Any] | None) -> dict[str, Any]:
    """Same keys as stored, every value hidden: the API never returns a secret."""
    return {part: {key: MASK for key in values} for part, values in stored_auth(auth).items()}
