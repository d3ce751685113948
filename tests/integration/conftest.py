"""Make the collection importable as ansible_collections.ductape.webhooks for the integration tests that use its code (the digest comparison).

`make test-unit` exports ANSIBLE_COLLECTIONS_PATH (.build/collections, where a link named
ansible_collections/ductape/webhooks points at the checkout); its first entry goes on sys.path.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _collections_root() -> Path:
    configured = os.environ.get("ANSIBLE_COLLECTIONS_PATH", "")
    for entry in configured.split(os.pathsep):
        if entry and (Path(entry) / "ansible_collections" / "ductape" / "webhooks").exists():
            return Path(entry)
    default = REPO / ".build" / "collections"
    if (default / "ansible_collections" / "ductape" / "webhooks").exists():
        return default
    raise pytest.UsageError("the collection is not linked into .build/collections: run `make collection` first")


_root = str(_collections_root())
if _root not in sys.path:
    sys.path.insert(0, _root)
