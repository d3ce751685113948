"""Make the collection importable as ansible_collections.ductape.webhooks for the unit tests.

Under `ansible-test units` (scripts/test-units.sh) the collection loader already provides it: the
checkout is copied to a path ending in ansible_collections/ductape/webhooks. Under plain pytest
(`make test-unit`), ANSIBLE_COLLECTIONS_PATH names .build/collections, where a link named
ansible_collections/ductape/webhooks points at the checkout; that entry goes on sys.path.
Helpers shared by the tests are imported the same way in both:
`from ansible_collections.ductape.webhooks.tests.unit.scripted_http import ...`.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _collections_root() -> Path:
    if REPO.parent.name == "ductape" and REPO.parent.parent.name == "ansible_collections":
        return REPO.parents[2]
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
