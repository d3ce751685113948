"""The one place that turns a registration's `auth` into its digest and its masked form."""
from __future__ import annotations

import hashlib
import json
from typing import Any

AUTH_PARTS = ("body", "headers", "params", "query")
MASK = "********"


def stored_auth(auth: dict[str, Any] | None) -> dict[str, Any]:
    """The auth parts that were given, without the absent or null ones."""
    return {part: dict(auth[part]) for part in AUTH_PARTS if auth and auth.get(part) is not None}


def auth_digest(auth: dict[str, Any] | None) -> str:
    canonical = {part: (auth or {}).get(part) or {} for part in AUTH_PARTS}
    encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


def mask_auth(auth: dict[str, Any] | None) -> dict[str, Any]:
    """Same keys as stored, every value hidden: the API never returns a secret."""
    return {part: {key: MASK for key in values} for part, values in stored_auth(auth).items()}
