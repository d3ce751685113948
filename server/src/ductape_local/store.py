"""Everything ductape-local keeps, in one SQLite file (WAL mode).

Each operation opens its own connection, so request threads never share one. Writes run inside
`BEGIN IMMEDIATE`, which takes SQLite's write lock up front: two writers for the same registration
key run one after the other, and the second sees what the first wrote.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid as uuid_module
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from ductape_local.auth_digest import auth_digest, canonical_auth, new_salt, stored_auth, url_digest

SCHEMA_VERSION = 3
ENABLED = "enabled"
DISABLED = "disabled"
SCHEMA = """
CREATE TABLE IF NOT EXISTS catalog (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    document TEXT NOT NULL,
    loaded_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS registrations (
    uuid TEXT PRIMARY KEY,
    product TEXT NOT NULL,
    access_tag TEXT NOT NULL,
    webhook_tag TEXT NOT NULL,
    product_env TEXT NOT NULL,
    app_env TEXT NOT NULL,
    url TEXT NOT NULL,
    method TEXT NOT NULL,
    auth TEXT NOT NULL,
    auth_digest TEXT NOT NULL,
    digest_salt TEXT NOT NULL DEFAULT '',
    url_digest TEXT NOT NULL DEFAULT '',
    active INTEGER NOT NULL DEFAULT 0,
    provider_status TEXT,
    provider_http_status INTEGER,
    provider_at TEXT,
    provider_error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT,
    state TEXT NOT NULL DEFAULT 'enabled',
    generation INTEGER NOT NULL DEFAULT 1,
    link_created_at TEXT NOT NULL DEFAULT '',
    origin_uuid TEXT NOT NULL DEFAULT '',
    previous_uuid TEXT,
    previous_expires_at TEXT
);
-- At most one live registration per key; deleted ones stay behind as tombstones.
CREATE UNIQUE INDEX IF NOT EXISTS registrations_live_key
    ON registrations (product, access_tag, webhook_tag, product_env) WHERE deleted_at IS NULL;
-- Every uuid a registration had before a rotation; origin_uuid (its first uuid) names the registration.
CREATE TABLE IF NOT EXISTS retired_links (
    uuid TEXT PRIMARY KEY,
    origin_uuid TEXT NOT NULL,
    generation INTEGER NOT NULL,
    retired_at TEXT NOT NULL
);
"""


DATABASE_MODE = 0o600
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def create_private(path: Path) -> None:
    """Create the database file readable by its owner only before SQLite opens it: it holds auth values
    and provider signature headers. SQLite gives its -wal and -shm files the database file's mode."""
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, DATABASE_MODE))


def restrict_files(path: Path) -> None:
    """Bring the database and its companion files to owner-only, also when an older server made them 0644."""
    for suffix in SQLITE_COMPANIONS:
        companion = Path(str(path) + suffix)
        try:
            if companion.exists() and (companion.stat().st_mode & 0o777) != DATABASE_MODE:
                os.chmod(companion, DATABASE_MODE)
        except OSError:
            pass


@contextmanager
def immediate_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One transaction on `conn` (opened with isolation_level=None) that holds SQLite's write lock
    from its first statement: committed when the block ends, rolled back when it raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def utc_now() -> str:
    return utc_text(datetime.now(timezone.utc))


def utc_text(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    """A timestamp this store wrote (utc_now) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class RegistrationKey:
    product: str
    access_tag: str
    webhook_tag: str
    product_env: str


@dataclass(frozen=True)
class ProviderRegistration:
    status: str
    http_status: int | None
    at: str
    error: str | None


@dataclass(frozen=True)
class Registration:
    uuid: str
    product: str
    access_tag: str
    webhook_tag: str
    product_env: str
    app_env: str
    url: str
    method: str
    auth: dict[str, Any]
    auth_digest: str
    url_digest: str
    active: bool
    provider_registration: ProviderRegistration | None
    created_at: str
    updated_at: str
    deleted_at: str | None
    state: str = ENABLED
    generation: int = 1
    link_created_at: str = ""
    origin_uuid: str = ""
    # during a rotation's grace period: the uuid just retired, and when it stops forwarding
    previous_uuid: str | None = None
    previous_expires_at: str | None = None

    def grace_link(self, now: datetime | None = None) -> tuple[str, str] | None:
        """(previous uuid, expires_at) while the rotation's grace period runs, else None."""
        if self.previous_uuid is None or self.previous_expires_at is None:
            return None
        if parse_utc(self.previous_expires_at) <= (now or datetime.now(timezone.utc)):
            return None
        return self.previous_uuid, self.previous_expires_at

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Registration":
        provider = None
        if row["provider_status"] is not None:
            provider = ProviderRegistration(
                status=row["provider_status"],
                http_status=row["provider_http_status"],
                at=row["provider_at"],
                error=row["provider_error"],
            )
        return cls(
            uuid=row["uuid"],
            product=row["product"],
            access_tag=row["access_tag"],
            webhook_tag=row["webhook_tag"],
            product_env=row["product_env"],
            app_env=row["app_env"],
            url=row["url"],
            method=row["method"],
            auth=json.loads(row["auth"]),
            auth_digest=row["auth_digest"],
            url_digest=row["url_digest"],
            active=bool(row["active"]),
            provider_registration=provider,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            deleted_at=row["deleted_at"],
            state=row["state"],
            generation=row["generation"],
            link_created_at=row["link_created_at"] or row["created_at"],
            origin_uuid=row["origin_uuid"] or row["uuid"],
            previous_uuid=row["previous_uuid"],
            previous_expires_at=row["previous_expires_at"],
        )


@dataclass(frozen=True)
class RetiredLink:
    """A uuid that a registration had before a rotation."""

    uuid: str
    generation: int
    retired_at: str


@dataclass(frozen=True)
class LinkLookup:
    """What a uuid names: a registration (live or a tombstone) and, when the uuid is an old one of a
    rotated registration, that retired link (then `registration` holds the current uuid)."""

    registration: Registration
    retired: RetiredLink | None


@dataclass(frozen=True)
class UpsertRequest:
    key: RegistrationKey
    app_env: str
    url: str
    method: str
    auth: dict[str, Any] | None  # None: keep the stored auth


@dataclass(frozen=True)
class UpsertOutcome:
    registration: Registration
    created: bool
    changed: bool
    provider_due: bool = False


def _salted_digests(conn: sqlite3.Connection, columns: set[str]) -> None:
    """Version 2: the salted digests (contracts C1, C2): each stored registration gets a salt of its
    own and its digests are computed again with it."""
    for column in ("digest_salt", "url_digest"):
        if column not in columns:
            conn.execute(f"ALTER TABLE registrations ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")
    for row in conn.execute("SELECT uuid, url, auth FROM registrations WHERE digest_salt = ''").fetchall():
        salt = new_salt()
        conn.execute("UPDATE registrations SET digest_salt = ?, auth_digest = ?, url_digest = ? WHERE uuid = ?",
                     (salt, auth_digest(json.loads(row["auth"]), salt), url_digest(row["url"], salt),
                      row["uuid"]))


_LIFECYCLE_COLUMNS = (
    ("state", "TEXT NOT NULL DEFAULT 'enabled'"),
    ("generation", "INTEGER NOT NULL DEFAULT 1"),
    ("link_created_at", "TEXT NOT NULL DEFAULT ''"),
    ("origin_uuid", "TEXT NOT NULL DEFAULT ''"),
    ("previous_uuid", "TEXT"),
    ("previous_expires_at", "TEXT"),
)


def _lifecycle(conn: sqlite3.Connection, columns: set[str]) -> None:
    """Version 3 (contract L1): state, generation, the current link's creation time, the first uuid
    that names a registration across rotations, and the previous uuid of a rotation's grace period.
    A registration stored before is enabled, generation 1, its link as old as the registration."""
    for column, kind in _LIFECYCLE_COLUMNS:
        if column not in columns:
            conn.execute(f"ALTER TABLE registrations ADD COLUMN {column} {kind}")
    conn.execute("UPDATE registrations SET link_created_at = created_at WHERE link_created_at = ''")
    conn.execute("UPDATE registrations SET origin_uuid = uuid WHERE origin_uuid = ''")
    conn.execute("CREATE INDEX IF NOT EXISTS registrations_origin ON registrations (origin_uuid)")
    conn.execute("CREATE INDEX IF NOT EXISTS retired_links_origin ON retired_links (origin_uuid)")


# In version order; each step takes the connection and the registrations table's columns as found.
MIGRATIONS = (_salted_digests, _lifecycle)


class Store:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        # Bumped after every committed change of a registration, so that a reader in this process
        # (the ingress cache) knows its copy is stale. Only this process writes the database.
        self.registrations_version = 0
        self._version_lock = threading.Lock()
        create_private(self.path)
        with self.connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
        self._migrate()
        with self.connect() as conn:
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        restrict_files(self.path)

    def _migrate(self) -> None:
        """Brings a database of an earlier version to SCHEMA_VERSION in place, in one transaction.
        Each step is idempotent (it looks at what is there), so a fresh database passes through all."""
        with self.write() as conn:
            columns = {row["name"] for row in conn.execute("PRAGMA table_info(registrations)")}
            for step in MIGRATIONS:
                step(conn, columns)


    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout=30000")
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def write(self, registrations_change: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction holding SQLite's write lock from its first statement.

        Unless told it changes nothing the ingress reads, it bumps registrations_version once committed.
        """
        with self.connect() as conn, immediate_transaction(conn):
            yield conn
        if registrations_change:
            with self._version_lock:
                self.registrations_version += 1

    # The catalog (what the seed declared).

    def save_catalog(self, document: dict[str, Any]) -> None:
        with self.write() as conn:
            conn.execute(
                "INSERT INTO catalog (id, document, loaded_at) VALUES (1, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET document = excluded.document, loaded_at = excluded.loaded_at",
                (json.dumps(document, sort_keys=True), utc_now()),
            )

    def load_catalog(self) -> dict[str, Any] | None:
        with self.connect() as conn:
            row = conn.execute("SELECT document FROM catalog WHERE id = 1").fetchone()
        return json.loads(row["document"]) if row else None

    # Registrations.

    def upsert_registrations(
        self, wanted: list[UpsertRequest], provider_due: Callable[[UpsertOutcome], bool] = lambda _: False,
    ) -> list[UpsertOutcome]:
        """Create or update the live registration of each request, all in one transaction: a request
        writes all of its envs or none. Where `provider_due(outcome)` says the provider must be called,
        the same transaction records provider_registration "pending" (the call happens after the commit,
        outside any write lock)."""
        now = utc_now()
        outcomes = []
        with self.write() as conn:
            for item in wanted:
                outcome = self._upsert(conn, item, now)
                if provider_due(outcome):
                    conn.execute(
                        "UPDATE registrations SET provider_status = 'pending', provider_http_status = NULL,"
                        " provider_at = ?, provider_error = NULL WHERE uuid = ?", (now, outcome.registration.uuid))
                    row = conn.execute("SELECT * FROM registrations WHERE uuid = ?",
                                       (outcome.registration.uuid,)).fetchone()
                    outcome = UpsertOutcome(Registration.from_row(row), outcome.created, outcome.changed, True)
                outcomes.append(outcome)
        return outcomes

    def _upsert(self, conn: sqlite3.Connection, item: UpsertRequest, now: str) -> UpsertOutcome:
        """Create or update the live registration for `item.key`; auth None keeps the stored auth."""
        key, app_env, url, method, auth = item.key, item.app_env, item.url, item.method, item.auth
        row = self._live_row(conn, key)
        if row is None:
            new_auth, salt = stored_auth(auth), new_salt()
            uuid = str(uuid_module.uuid4())
            conn.execute(
                "INSERT INTO registrations (uuid, product, access_tag, webhook_tag, product_env, app_env, url,"
                " method, auth, auth_digest, digest_salt, url_digest, created_at, updated_at, link_created_at,"
                " origin_uuid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (uuid, key.product, key.access_tag, key.webhook_tag, key.product_env,
                 app_env, url, method, json.dumps(new_auth), auth_digest(new_auth, salt), salt,
                 url_digest(url, salt), now, now, now, uuid),
            )
            return UpsertOutcome(Registration.from_row(self._live_row(conn, key)), created=True, changed=True)
        old_auth = json.loads(row["auth"])
        new_auth = old_auth if auth is None else stored_auth(auth)
        secrets_changed = row["url"] != url or canonical_auth(old_auth) != canonical_auth(new_auth)
        if not secrets_changed and (row["method"], row["app_env"]) == (method, app_env):
            return UpsertOutcome(Registration.from_row(row), created=False, changed=False)
        # A new salt whenever the auth or the url changes: no digest of the old version serves the new one.
        salt = new_salt() if secrets_changed else row["digest_salt"]
        conn.execute(
            "UPDATE registrations SET app_env = ?, url = ?, method = ?, auth = ?, auth_digest = ?, digest_salt = ?,"
            " url_digest = ?, updated_at = ? WHERE uuid = ?",
            (app_env, url, method, json.dumps(new_auth), auth_digest(new_auth, salt), salt, url_digest(url, salt),
             now, row["uuid"]),
        )
        return UpsertOutcome(Registration.from_row(self._live_row(conn, key)), created=False, changed=True)

    def record_provider_registration(self, uuid: str, result: ProviderRegistration) -> Registration | None:
        with self.write() as conn:
            conn.execute(
                "UPDATE registrations SET provider_status = ?, provider_http_status = ?, provider_at = ?,"
                " provider_error = ? WHERE uuid = ?",
                (result.status, result.http_status, result.at, result.error, uuid),
            )
            row = conn.execute("SELECT * FROM registrations WHERE uuid = ?", (uuid,)).fetchone()
        return Registration.from_row(row) if row else None

    def live_registrations(self, product: str, access_tag: str, webhook_tags: list[str]) -> list[Registration]:
        if not webhook_tags:
            return []
        marks = ",".join("?" * len(webhook_tags))
        with self.connect() as conn:
            rows = conn.execute(
                f"SELECT * FROM registrations WHERE product = ? AND access_tag = ? AND webhook_tag IN ({marks})"
                " AND deleted_at IS NULL ORDER BY created_at, rowid",
                (product, access_tag, *webhook_tags),
            ).fetchall()
        return [Registration.from_row(row) for row in rows]

    def get_registration(self, uuid: str, include_deleted: bool = True) -> Registration | None:
        """A registration by uuid; with include_deleted, tombstones too (their deleted_at is set)."""
        query = "SELECT * FROM registrations WHERE uuid = ?"
        if not include_deleted:
            query += " AND deleted_at IS NULL"
        with self.connect() as conn:
            row = conn.execute(query, (uuid,)).fetchone()
        return Registration.from_row(row) if row else None

    def soft_delete(self, uuid: str) -> Registration | None:
        """Turn a live registration into a tombstone; None when there is no live one."""
        now = utc_now()
        with self.write() as conn:
            changed = conn.execute(
                "UPDATE registrations SET deleted_at = ?, updated_at = ? WHERE uuid = ? AND deleted_at IS NULL",
                (now, now, uuid),
            ).rowcount
            row = conn.execute("SELECT * FROM registrations WHERE uuid = ?", (uuid,)).fetchone()
        return Registration.from_row(row) if changed else None

    def mark_active(self, uuid: str) -> bool:
        """Record that an event reached the registration's url; False when it is unknown or deleted.
        `uuid` may be one the registration had before a rotation."""
        # `active` is not part of what the ingress reads: its cache stays valid.
        with self.write(registrations_change=False) as conn:
            return conn.execute(
                "UPDATE registrations SET active = 1 WHERE deleted_at IS NULL AND (uuid = ? OR origin_uuid ="
                " (SELECT origin_uuid FROM retired_links WHERE uuid = ?))", (uuid, uuid)
            ).rowcount == 1

    # The lifecycle (contract L1): state, rotation, and what a uuid names.

    def lookup_link(self, uuid: str) -> LinkLookup | None:
        """The registration (live or a tombstone) whose current or earlier uuid is `uuid`; None for a
        uuid no registration ever had."""
        with self.connect() as conn:
            row = conn.execute("SELECT * FROM registrations WHERE uuid = ?", (uuid,)).fetchone()
            if row is not None:
                return LinkLookup(Registration.from_row(row), None)
            retired = conn.execute("SELECT * FROM retired_links WHERE uuid = ?", (uuid,)).fetchone()
            if retired is None:
                return None
            row = conn.execute("SELECT * FROM registrations WHERE origin_uuid = ?",
                               (retired["origin_uuid"],)).fetchone()
        if row is None:
            return None
        return LinkLookup(Registration.from_row(row),
                          RetiredLink(retired["uuid"], retired["generation"], retired["retired_at"]))

    def link_uuids(self, registration: Registration) -> list[str]:
        """Every uuid the registration has had: the current one first, then the retired ones."""
        with self.connect() as conn:
            rows = conn.execute("SELECT uuid FROM retired_links WHERE origin_uuid = ? ORDER BY generation DESC",
                                (registration.origin_uuid,)).fetchall()
        return [registration.uuid, *(row["uuid"] for row in rows)]

    def set_state(self, uuid: str, state: str) -> tuple[Registration, bool] | None:
        """Enable or disable a live registration: (it, whether its state changed); None when there is
        no live registration with this uuid."""
        with self.write() as conn:
            changed = conn.execute(
                "UPDATE registrations SET state = ?, updated_at = ? WHERE uuid = ? AND deleted_at IS NULL"
                " AND state != ?", (state, utc_now(), uuid, state)).rowcount
            row = conn.execute("SELECT * FROM registrations WHERE uuid = ? AND deleted_at IS NULL",
                               (uuid,)).fetchone()
        return (Registration.from_row(row), bool(changed)) if row else None

    def rotate(self, uuid: str, grace_seconds: int, provider_due: bool,
               expected_generation: int | None = None) -> tuple[Registration, bool] | None:
        """Give a live registration a new uuid (generation + 1): (the registration, True). The old uuid is
        retired; with a grace period it keeps forwarding until previous_expires_at. A rotation ends the
        grace of any earlier uuid at once: at most one old link works at any time. With `provider_due`,
        the same transaction records provider_registration "pending" (the call happens after the commit).
        With `expected_generation` it rotates only a registration still at that generation, checked in
        the same transaction; otherwise (the registration as it is, False). None: no live registration
        with this uuid."""
        moment = datetime.now(timezone.utc)
        now = utc_text(moment)
        new_uuid = str(uuid_module.uuid4())
        with self.write() as conn:
            row = conn.execute("SELECT * FROM registrations WHERE uuid = ? AND deleted_at IS NULL",
                               (uuid,)).fetchone()
            if row is None:
                return None
            current = Registration.from_row(row)
            if expected_generation is not None and current.generation != expected_generation:
                return current, False
            conn.execute("INSERT INTO retired_links (uuid, origin_uuid, generation, retired_at) VALUES (?, ?, ?, ?)",
                         (uuid, current.origin_uuid, current.generation, now))
            previous, expires = (uuid, utc_text(moment + timedelta(seconds=grace_seconds))) if grace_seconds else (None, None)
            conn.execute(
                "UPDATE registrations SET uuid = ?, generation = generation + 1, link_created_at = ?,"
                " previous_uuid = ?, previous_expires_at = ?, updated_at = ?, origin_uuid = ? WHERE uuid = ?",
                (new_uuid, now, previous, expires, now, current.origin_uuid, uuid))
            if provider_due:
                conn.execute(
                    "UPDATE registrations SET provider_status = 'pending', provider_http_status = NULL,"
                    " provider_at = ?, provider_error = NULL WHERE uuid = ?", (now, new_uuid))
            row = conn.execute("SELECT * FROM registrations WHERE uuid = ?", (new_uuid,)).fetchone()
        return Registration.from_row(row), True

    @staticmethod
    def _live_row(conn: sqlite3.Connection, key: RegistrationKey) -> sqlite3.Row | None:
        return conn.execute(
            "SELECT * FROM registrations WHERE product = ? AND access_tag = ? AND webhook_tag = ?"
            " AND product_env = ? AND deleted_at IS NULL",
            (key.product, key.access_tag, key.webhook_tag, key.product_env),
        ).fetchone()
