"""The one place that turns a registration's `auth` into its digest and its masked form."""
from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import unquote_plus

AUTH_PARTS = ("body", "headers", "params", "query")
MASK = "********"


def stored_auth(auth: dict[str, Any] | None) -> dict[str, Any]:
    """The auth parts that were given, without the absent or null ones."""
    return {part: dict(auth[part]) for part in AUTH_PARTS if auth and auth.get(part) is not None}


def auth_digest(auth: dict[str, Any] | None) -> str:
    canonical = {part: (auth or {}).get(part) or {} for part in AUTH_PARTS}
    encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


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
