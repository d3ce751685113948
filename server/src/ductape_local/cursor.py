"""The one cursor codec of every paged listing: an opaque, URL-safe text that names its listing.

    encode_cursor("webhooks", ["stripe", "refund"]) -> "eyJrIjoid2ViaG9va3MiLCJwIjpbInN0cmlwZSIsInJlZnVuZCJdfQ"
    decode_cursor("webhooks", that) -> ["stripe", "refund"]

A position is an int (within SQLite's int64 range), a string, or a flat list of those. Whatever a
client sends instead (bad base64, not JSON, JSON nested deep, a number SQLite cannot hold, another
listing's cursor, a position of another shape) raises BadCursor, which the routes answer as 422
naming the `cursor` field. Decoding never recurses deeper than the small, bounded text allows.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Union

from ductape_local.envelope import ApiError, quoted

INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
# Every cursor this server makes is far shorter; a longer text is not one of ours and is not decoded.
MAX_CURSOR_CHARS = 1024
MAX_POSITION_ITEMS = 8
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]*$")

Scalar = Union[int, str]
Position = Union[Scalar, list[Scalar]]


class BadCursor(ApiError, ValueError):
    """A cursor that this server did not make for this listing; answered 422 naming the field."""

    def __init__(self, field: str = "cursor", value: Any = None):
        super().__init__(
            422, f"{field}: not a cursor of this listing (got {quoted(str(value))}); pass meta.next_cursor as given"
        )
        self.field = field
        self.value = value


def _valid_scalar(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return INT64_MIN <= value <= INT64_MAX
    return isinstance(value, str) and "\x00" not in value and _encodable(value)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _valid_position(position: Any) -> bool:
    if isinstance(position, list):
        return 0 < len(position) <= MAX_POSITION_ITEMS and all(_valid_scalar(item) for item in position)
    return _valid_scalar(position)


def encode_cursor(kind: str, position: Position) -> str:
    if not _valid_position(position):
        raise ValueError(f"not a cursor position: {position!r}")
    raw = json.dumps({"k": kind, "p": position}, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(kind: str, text: Any, field: str = "cursor") -> Position:
    """The position `text` stands for in the listing `kind`; BadCursor for anything else."""
    if not isinstance(text, str) or not text or len(text) > MAX_CURSOR_CHARS or not _BASE64URL.match(text):
        raise BadCursor(field, text)
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        document = json.loads(raw.decode("ascii"))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise BadCursor(field, text) from None
    if not isinstance(document, dict) or set(document) != {"k", "p"} or document["k"] != kind:
        raise BadCursor(field, text)
    position = document["p"]
    if not _valid_position(position):
        raise BadCursor(field, text)
    return position
