"""Duplicate provider events: where a webhook definition's provider event id is read from.

The seed's `dedup` names a header (`X-GitHub-Delivery`) or a dotted JSON path into the body (`id`,
`data.object.id`). An event whose id was accepted for the same registration key (product, access
tag, webhook tag, env) less than `window_seconds` ago is answered as the first one was (202 with the
first event's id) and not delivered again; the first delivery counts it in `duplicates`. The ids
live in the database (events.py, table middleware_dedup), so this holds across restarts, and the
group commit decides them one batch at a time in one thread, so concurrent identical posts are
delivered once.

An event without a usable id (no such header, a body that is not JSON or is nested too deep to read,
a path that is missing or holds an object, an id longer than MAX_ID_LENGTH) is accepted and delivered
as any event is.
"""
from __future__ import annotations

import json
from typing import Any

from .catalog import DedupConfig

MAX_ID_LENGTH = 512


def provider_event_id(config: DedupConfig, headers: list[tuple[str, str]], body: bytes) -> str | None:
    """The provider's id of this event, or None when it has none that can be used."""
    if config.header is not None:
        wanted = config.header.lower()
        value = next((v.strip() for k, v in headers if k.lower() == wanted), None)
    else:
        value = _json_value(body, config.json_path or ())
    if value is None or value == "" or len(value) > MAX_ID_LENGTH:
        return None
    return value


def _json_value(body: bytes, path: tuple[str, ...]) -> str | None:
    try:
        found: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: JSON nested too deep
        return None
    for key in path:
        if not isinstance(found, dict) or key not in found:
            return None
        found = found[key]
    if isinstance(found, bool) or not isinstance(found, (str, int, float)):
        return None
    return found if isinstance(found, str) else json.dumps(found)
