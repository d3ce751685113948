"""The middleware's store: received provider events, their delivery state, and every attempt.

It lives in the same SQLite file as the control plane, in tables of its own, created idempotently.
Every thread gets its own connection (sqlite3 connections must not cross threads); WAL lets the
ingress route commit while the delivery worker reads and writes.

Internal states: ``pending`` (due at ``next_attempt_at``), ``in_flight`` (claimed by a worker thread),
``delivered`` and ``failed``. A ``failed`` delivery is a dead letter: its retries ran out or its last
outcome was not worth retrying; ``dead_letter_reason`` says which, and replay makes it ``pending`` again.
How a delivery reads on the wire is deliveries.py's business (``in_flight`` reads as ``pending`` there).

Beside the events: ``middleware_dedup`` holds the provider event ids accepted per registration key
until their window ends (dedup.py), and ``middleware_ingress`` counts per registration the events
refused at the door and the repeats acknowledged without a delivery; the group commit
(``commit_ingress``) writes all three in one transaction.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterable, TypeVar

from .store import Registration, immediate_transaction

_T = TypeVar("_T")
log = logging.getLogger(__name__)

PENDING = "pending"
IN_FLIGHT = "in_flight"
DELIVERED = "delivered"
FAILED = "failed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS middleware_events (
    seq               INTEGER PRIMARY KEY,
    event_id          TEXT    NOT NULL UNIQUE,
    registration_uuid TEXT    NOT NULL,
    product           TEXT    NOT NULL,
    access_tag        TEXT    NOT NULL,
    webhook_tag       TEXT    NOT NULL,
    env               TEXT    NOT NULL,
    target_url        TEXT    NOT NULL,
    target_method     TEXT    NOT NULL,
    request_method    TEXT    NOT NULL,
    request_path      TEXT    NOT NULL,
    request_query     TEXT    NOT NULL,
    request_headers   TEXT    NOT NULL,
    body              BLOB    NOT NULL,
    received_at       REAL    NOT NULL,
    state             TEXT    NOT NULL,
    attempt_count     INTEGER NOT NULL DEFAULT 0,
    round_attempts    INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   REAL,
    delivered_at      REAL,
    last_error        TEXT,
    dead_letter_reason TEXT,
    dead_lettered_at  REAL,
    test              INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER,
    duplicates        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS middleware_events_due ON middleware_events (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS middleware_events_product ON middleware_events (product, seq);
-- per receiver url, the deliveries in due order: back-pressure's oldest pending one in one lookup
CREATE INDEX IF NOT EXISTS middleware_events_url_due ON middleware_events (state, target_url, next_attempt_at);
CREATE TABLE IF NOT EXISTS middleware_attempts (
    event_id    TEXT    NOT NULL,
    n           INTEGER NOT NULL,
    at          REAL    NOT NULL,
    status_code INTEGER,
    latency_ms  REAL    NOT NULL,
    error       TEXT,
    PRIMARY KEY (event_id, n)
) WITHOUT ROWID;
-- The provider event ids accepted per registration key (dedup.py), each until its window ends.
CREATE TABLE IF NOT EXISTS middleware_dedup (
    product           TEXT NOT NULL,
    access_tag        TEXT NOT NULL,
    webhook_tag       TEXT NOT NULL,
    env               TEXT NOT NULL,
    provider_event_id TEXT NOT NULL,
    event_id          TEXT NOT NULL,
    expires_at        REAL NOT NULL,
    PRIMARY KEY (product, access_tag, webhook_tag, env, provider_event_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS middleware_dedup_expiry ON middleware_dedup (expires_at);
-- Per registration (keyed by its origin uuid, its first one, so that the counts survive a rotation):
-- events refused at the door (signature) and repeats acknowledged, not delivered. last_rejection_uuid:
-- the registration's uuid when the last rejection happened.
CREATE TABLE IF NOT EXISTS middleware_ingress (
    registration_uuid     TEXT PRIMARY KEY,
    product               TEXT NOT NULL,
    access_tag            TEXT NOT NULL,
    webhook_tag           TEXT NOT NULL,
    env                   TEXT NOT NULL,
    rejected              INTEGER NOT NULL DEFAULT 0,
    duplicates            INTEGER NOT NULL DEFAULT 0,
    last_rejection_reason TEXT,
    last_rejection_at     REAL,
    last_rejection_uuid   TEXT
);
"""

# Columns added after the first release, added to older databases on open.
_ADDED_COLUMNS = (("dead_letter_reason", "TEXT"), ("dead_lettered_at", "REAL"),
                  ("test", "INTEGER NOT NULL DEFAULT 0"), ("max_attempts", "INTEGER"),
                  ("duplicates", "INTEGER NOT NULL DEFAULT 0"))
# How often the group commit drops the dedup ids whose window has ended.
DEDUP_PRUNE_EVERY_S = 60.0

_CLAIM_COLUMNS = (
    "event_id, registration_uuid, webhook_tag, env, target_url, target_method, request_query, "
    "request_headers, body, attempt_count, round_attempts, test, max_attempts"
)


def new_event_id() -> str:
    return "evt_" + uuid.uuid4().hex


@dataclass(frozen=True)
class Target:
    """Where and how an event is delivered: the registration's receiver at the time of receipt."""

    registration_uuid: str
    product: str
    access_tag: str
    webhook_tag: str
    env: str
    url: str
    method: str
    origin_uuid: str = ""  # the registration's first uuid (the key of its ingress counts)

    @classmethod
    def of(cls, registration: "Registration") -> "Target":
        """A registration's receiver as it is now."""
        return cls(
            origin_uuid=registration.origin_uuid or registration.uuid,
            registration_uuid=registration.uuid,
            product=registration.product,
            access_tag=registration.access_tag,
            webhook_tag=registration.webhook_tag,
            env=registration.product_env,
            url=registration.url,
            method=registration.method,
        )


@dataclass(frozen=True)
class ReceivedEvent:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    # a registration's test event (lifecycle.py), sent by its owner rather than a provider
    test: bool = False
    # the most attempts per round (None: the retry schedule decides)
    max_attempts: int | None = None


@dataclass(frozen=True)
class Rejection:
    """An event refused at the door (its signature): counted for its registration, never stored."""

    target: Target
    reason: str
    at: float


@dataclass(frozen=True)
class Accepted:
    """What the group commit made of an event: the id it is answered with, and whether it repeats
    an event accepted before (that event's id; the repeat is not stored)."""

    event_id: str
    duplicate: bool = False


@dataclass(frozen=True)
class ClaimedDelivery:
    """One delivery taken by a worker thread; ``attempt_number`` is the number its attempt gets."""

    event_id: str
    registration_uuid: str
    webhook_tag: str
    env: str
    url: str
    method: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    attempt_number: int
    round_attempt_number: int
    test: bool = False
    max_attempts: int | None = None


@dataclass(frozen=True)
class AttemptOutcome:
    at: float
    status_code: int | None
    latency_ms: float
    error: str | None
    # what the attempt leads to: DELIVERED, FAILED, or PENDING again at next_attempt_at
    state: str
    next_attempt_at: float | None
    # set when the state is FAILED: why the delivery is a dead letter
    dead_letter_reason: str | None = None


@dataclass(frozen=True)
class DeliveryFilter:
    products: tuple[str, ...]
    access_tag: str | None = None
    webhook_tag: str | None = None
    env: str | None = None
    status: str | None = None


@dataclass(frozen=True)
class ReplayFilter(DeliveryFilter):
    """What a bulk replay selects: a DeliveryFilter narrowed by registration (every uuid it has had),
    receipt time (after inclusive, before exclusive, epoch seconds) and event ids."""

    registration_uuids: tuple[str, ...] | None = None
    received_after: float | None = None
    received_before: float | None = None
    event_ids: tuple[str, ...] | None = None


def _filter_clauses(where: DeliveryFilter) -> tuple[list[str], list[Any]]:
    """The SQL conditions (and parameters) of a delivery filter; `where.products` must not be empty."""
    clauses, params = _scope_clauses(where)
    if where.status == PENDING:
        clauses.append("state IN (?, ?)")
        params.extend((PENDING, IN_FLIGHT))
    elif where.status is not None:
        clauses.append("state = ?")
        params.append(where.status)
    if isinstance(where, ReplayFilter):
        for column, values in (("registration_uuid", where.registration_uuids), ("event_id", where.event_ids)):
            if values is not None:
                # one parameter however many values (up to 1,000 event ids), within any SQLite's limit
                clauses.append(f"{column} IN (SELECT value FROM json_each(?))")
                params.append(json.dumps(list(values)))
        if where.received_after is not None:
            clauses.append("received_at >= ?")
            params.append(where.received_after)
        if where.received_before is not None:
            clauses.append("received_at < ?")
            params.append(where.received_before)
    return clauses, params


# Most ids in one IN (...) list of the bulk replay's statements.
_IDS_PER_STATEMENT = 500


# The longest a writer (group commit, claim, recorder) sleeps between two tries for SQLite's write lock.
WRITE_LOCK_POLL_S = 0.0005
# The checkpoint thread (EventStore.start_checkpoints): how often it checkpoints, the WAL size (pages)
# past which it makes the WAL start over from its beginning, and how long that may wait for readers.
CHECKPOINT_EVERY_S = 0.05
CHECKPOINT_RESTART_PAGES = 16384
CHECKPOINT_RESTART_WAIT_S = 0.2

_INSERT_EVENTS = (
    "INSERT INTO middleware_events (event_id, registration_uuid, product, access_tag, "
    "webhook_tag, env, target_url, target_method, request_method, request_path, "
    "request_query, request_headers, body, received_at, state, next_attempt_at, test, max_attempts) VALUES "
)
_EVENT_VALUES = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_EVENT = _INSERT_EVENTS + _EVENT_VALUES
# Rows per INSERT statement in a group commit: 18 parameters each, within the 999 of old SQLite builds.
ROWS_PER_INSERT = 32


def _insert_statements(rows: list[tuple]) -> list[tuple[str, list]]:
    """Multi-row INSERTs for `rows`: one statement runs with a single release of the GIL, where
    executemany releases and takes it back once per row while the write lock is held."""
    statements = []
    for start in range(0, len(rows), ROWS_PER_INSERT):
        part = rows[start:start + ROWS_PER_INSERT]
        parameters = [value for row in part for value in row]
        statements.append((_INSERT_EVENTS + ", ".join([_EVENT_VALUES] * len(part)), parameters))
    return statements


def _key_ingress_counts_by_origin(conn: sqlite3.Connection) -> None:
    """Upgrades middleware_ingress of a database made before it was keyed by origin uuid: the rows of
    every uuid a registration had (current or retired) become one row under its origin uuid, their
    counts added up and the latest rejection kept (last_rejection_uuid: the uuid it happened on)."""

    with immediate_transaction(conn):
        conn.execute("ALTER TABLE middleware_ingress ADD COLUMN last_rejection_uuid TEXT")
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        origin: dict[str, str] = {}
        if "registrations" in tables:
            origin.update((row[0], row[1] or row[0]) for row in conn.execute("SELECT uuid, origin_uuid FROM registrations"))
        if "retired_links" in tables:
            origin.update((row[0], row[1]) for row in conn.execute("SELECT uuid, origin_uuid FROM retired_links"))
        merged: dict[str, list] = {}
        for row in conn.execute("SELECT * FROM middleware_ingress").fetchall():
            uuid = row["registration_uuid"]
            key = origin.get(uuid, uuid)
            entry = merged.get(key)
            at = row["last_rejection_at"]
            if entry is None:
                merged[key] = [row["product"], row["access_tag"], row["webhook_tag"], row["env"], row["rejected"],
                               row["duplicates"], row["last_rejection_reason"], at, uuid if at is not None else None]
                continue
            entry[4] += row["rejected"]
            entry[5] += row["duplicates"]
            if at is not None and (entry[7] is None or at >= entry[7]):
                entry[6], entry[7], entry[8] = row["last_rejection_reason"], at, uuid
        conn.execute("DELETE FROM middleware_ingress")
        conn.executemany(
            "INSERT INTO middleware_ingress (registration_uuid, product, access_tag, webhook_tag, env, rejected,"
            " duplicates, last_rejection_reason, last_rejection_at, last_rejection_uuid)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [(key, *entry) for key, entry in merged.items()])


class EventStore:
    def __init__(self, db_path: str, busy_timeout_s: float = 30.0):
        self._db_path = db_path
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._last_prune = 0.0
        # set by start_checkpoints: connections made after it leave checkpoints to the checkpoint thread
        self._checkpoint_thread: threading.Thread | None = None
        self._checkpoint_stop = threading.Event()
        with self._connection() as conn:
            conn.executescript(_SCHEMA)
            present = {row["name"] for row in conn.execute("PRAGMA table_info(middleware_events)")}
            for column, kind in _ADDED_COLUMNS:
                if column not in present:
                    conn.execute(f"ALTER TABLE middleware_events ADD COLUMN {column} {kind}")
            if "last_rejection_uuid" not in {row["name"] for row in conn.execute("PRAGMA table_info(middleware_ingress)")}:
                _key_ingress_counts_by_origin(conn)

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # isolation_level=None: transactions are explicit, so each one is exactly what the
            # code says (one INSERT on the accept path, one claim, one outcome).
            conn = sqlite3.connect(
                self._db_path,
                timeout=self._busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.row_factory = sqlite3.Row
            # the delivery worker's claims skip destinations at their share of the workers
            conn.create_function("ductape_destination", 1, _destination_of, deterministic=True)
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a committed event survives the process being killed; only an
            # operating-system crash could lose the last commits.
            conn.execute("PRAGMA synchronous=NORMAL")
            if self._checkpoint_thread is not None:
                conn.execute("PRAGMA wal_autocheckpoint=0")
            self._local.conn = conn
        return conn

    # --- WAL checkpoints ------------------------------------------------------------------

    def start_checkpoints(self) -> None:
        """Moves WAL checkpoints off the writers into a thread of their own.

        With SQLite's automatic checkpoint, the connection whose commit takes the WAL past 1,000 pages
        copies them into the database file and fsyncs both files before its commit call returns: on
        whichever thread that is (the group commit, before the 202s and the wake-up of a delivery
        thread; a claim; the recorder), a few milliseconds every few hundred events. The thread here
        checkpoints every CHECKPOINT_EVERY_S (PASSIVE: it waits for no reader or writer), and with
        RESTART once the WAL file holds CHECKPOINT_RESTART_PAGES (readers that keep the WAL from
        starting over could otherwise let it grow without bound under load). Durability is unchanged:
        a commit is in the WAL (and survives a killed process) before it returns. Connections made
        after this call leave checkpoints to the thread; `stop_checkpoints` ends it."""
        if self._checkpoint_thread is not None:
            return
        self._checkpoint_stop.clear()
        self._checkpoint_thread = threading.Thread(target=self._checkpoints, name="ductape-checkpoint", daemon=True)
        self._checkpoint_thread.start()

    def stop_checkpoints(self, wait_s: float = 2.0) -> None:
        thread, self._checkpoint_thread = self._checkpoint_thread, None
        if thread is not None:
            self._checkpoint_stop.set()
            thread.join(wait_s)

    def _checkpoints(self) -> None:
        # RESTART waits for readers, and blocks writers while it waits: at most this long
        conn = sqlite3.connect(self._db_path, timeout=CHECKPOINT_RESTART_WAIT_S, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute("PRAGMA wal_autocheckpoint=0")
            while not self._checkpoint_stop.wait(CHECKPOINT_EVERY_S):
                try:
                    # copies what was committed since the last one (nothing new: a look at the WAL index)
                    _, wal_pages, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if wal_pages >= CHECKPOINT_RESTART_PAGES:
                        conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
                except sqlite3.Error as error:
                    log.warning("WAL checkpoint failed: %s", type(error).__name__)
        finally:
            conn.close()

    def close_thread_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # --- the accept path -------------------------------------------------------------------

    def add_event(self, target: Target, event: ReceivedEvent, now: float | None = None) -> str:
        """Commits the event, due at once, and returns its id. One INSERT, one transaction."""
        event_id, row = self._event_row(target, event, now)
        self._connection().execute(_INSERT_EVENT, row)
        return event_id

    def add_events(self, events: list[tuple[Target, ReceivedEvent]]) -> list[str]:
        """Commits all the events in one transaction (group commit) and returns their ids, in order."""
        return [outcome.event_id for outcome in self.commit_ingress([(t, e, None) for t, e in events])]

    def commit_ingress(
        self,
        events: list[tuple[Target, ReceivedEvent, tuple[str, float] | None]],
        rejections: Iterable[Rejection] = (),
    ) -> list[Accepted]:
        """The group commit: every event (with its provider event id and dedup window, or None) and
        every rejection's count, in one transaction; returns what each event is answered with, in order.

        An event whose provider id was accepted for its registration key within the window (in the
        database, or earlier in this batch) is not stored: it is answered with the first event's id
        and counted as a duplicate of it. Either everything is committed or nothing is (the exception
        is raised after the rollback). While another connection holds the write lock it tries again,
        for as long as the busy timeout.
        """
        rejections = list(rejections)
        return self._write(lambda conn: self._write_ingress(conn, events, rejections))

    def _write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """`work(conn)` in one immediate transaction on this thread's connection: committed when it
        returns, rolled back (and the exception raised) when it raises. While another connection holds
        the write lock it tries again, for as long as the busy timeout: `work` must be safe to run again.

        SQLite's own busy handler sleeps 1, 2, 5, 10... up to 100 ms between tries, so a writer that
        once found the lock taken would lose it to the others again and again (the group commit takes
        it for every batch, the delivery threads for every claim, the recorder for every batch of
        outcomes); every writer here tries again within WRITE_LOCK_POLL_S of its release instead.
        """
        conn = self._connection()
        conn.execute("PRAGMA busy_timeout=0")
        try:
            deadline = time.monotonic() + self._busy_timeout_s
            pause = WRITE_LOCK_POLL_S / 8
            while True:
                try:
                    with immediate_transaction(conn):
                        return work(conn)
                except sqlite3.OperationalError as error:
                    if getattr(error, "sqlite_errorcode", None) != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                        raise
                time.sleep(pause)
                pause = min(pause * 2, WRITE_LOCK_POLL_S)
        finally:
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_s * 1000)}")

    @staticmethod
    def _known_ids(conn: sqlite3.Connection, events: list[tuple[Target, ReceivedEvent, tuple[str, float] | None]],
                   now: float) -> dict[tuple[str, ...], str]:
        """The provider ids of these events accepted before and still within their window, with the
        event id they were accepted as: one SELECT per registration key (and per 500 ids)."""
        wanted: dict[tuple[str, str, str, str], set[str]] = {}
        for target, _, dedup in events:
            if dedup is not None:
                scope = (target.product, target.access_tag, target.webhook_tag, target.env)
                wanted.setdefault(scope, set()).add(dedup[0])
        known: dict[tuple[str, ...], str] = {}
        for scope, ids in wanted.items():
            ordered = sorted(ids)
            for start in range(0, len(ordered), 500):
                part = ordered[start:start + 500]
                for row in conn.execute(
                    "SELECT provider_event_id, event_id FROM middleware_dedup WHERE product = ? AND access_tag = ? "
                    "AND webhook_tag = ? AND env = ? AND expires_at > ? AND provider_event_id IN "
                    f"({', '.join('?' for _ in part)})", (*scope, now, *part)):
                    known[(*scope, row[0])] = row[1]
        return known

    def _write_ingress(
        self,
        conn: sqlite3.Connection,
        events: list[tuple[Target, ReceivedEvent, tuple[str, float] | None]],
        rejections: list[Rejection],
    ) -> list[Accepted]:
        """commit_ingress's statements, inside its transaction."""
        now = time.time()
        outcomes: list[Accepted] = []
        rows: list[tuple] = []
        seen = self._known_ids(conn, events, now)  # dedup key -> event id, this batch's added as it goes
        repeats: dict[str, int] = {}  # first event id -> repeats in this batch
        new_ids: list[tuple] = []  # middleware_dedup rows of the events accepted now
        counts: dict[str, list] = {}  # registration uuid -> [target, rejected, duplicates, reason, at]
        for target, event, dedup in events:
            if dedup is not None:
                provider_id, window = dedup
                key = (target.product, target.access_tag, target.webhook_tag, target.env, provider_id)
                first = seen.get(key)
                if first is not None:
                    outcomes.append(Accepted(first, duplicate=True))
                    repeats[first] = repeats.get(first, 0) + 1
                    counts.setdefault(target.origin_uuid or target.registration_uuid, [target, 0, 0, None, None])[2] += 1
                    continue
            event_id, row = self._event_row(target, event, now)
            rows.append(row)
            outcomes.append(Accepted(event_id))
            if dedup is not None:
                seen[key] = event_id
                new_ids.append((*key, event_id, now + window))
        for statement, parameters in _insert_statements(rows):
            conn.execute(statement, parameters)
        if new_ids:
            conn.executemany("INSERT OR REPLACE INTO middleware_dedup (product, access_tag, webhook_tag, env, "
                             "provider_event_id, event_id, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)", new_ids)
        if repeats:
            conn.executemany("UPDATE middleware_events SET duplicates = duplicates + ? WHERE event_id = ?",
                             [(n, event_id) for event_id, n in repeats.items()])
        for rejection in rejections:
            target = rejection.target
            entry = counts.setdefault(target.origin_uuid or target.registration_uuid, [target, 0, 0, None, None])
            entry[1] += 1
            if entry[4] is None or rejection.at >= entry[4]:
                entry[0], entry[3], entry[4] = target, rejection.reason, rejection.at
        if counts:
            conn.executemany(
                "INSERT INTO middleware_ingress (registration_uuid, product, access_tag, webhook_tag, env, "
                "rejected, duplicates, last_rejection_reason, last_rejection_at, last_rejection_uuid) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (registration_uuid) DO UPDATE SET rejected = rejected + excluded.rejected, "
                "duplicates = duplicates + excluded.duplicates, "
                "last_rejection_reason = COALESCE(excluded.last_rejection_reason, last_rejection_reason), "
                "last_rejection_at = COALESCE(excluded.last_rejection_at, last_rejection_at), "
                "last_rejection_uuid = COALESCE(excluded.last_rejection_uuid, last_rejection_uuid)",
                [(key, t.product, t.access_tag, t.webhook_tag, t.env, rejected, duplicates, reason, at,
                  t.registration_uuid if at is not None else None)
                 for key, (t, rejected, duplicates, reason, at) in counts.items()])
        if now - self._last_prune >= DEDUP_PRUNE_EVERY_S:
            conn.execute("DELETE FROM middleware_dedup WHERE expires_at <= ?", (now,))
            self._last_prune = now
        return outcomes

    @staticmethod
    def _event_row(target: Target, event: ReceivedEvent, now: float | None) -> tuple[str, tuple]:
        event_id = new_event_id()
        received_at = time.time() if now is None else now
        return event_id, (
            event_id,
            target.registration_uuid,
            target.product,
            target.access_tag,
            target.webhook_tag,
            target.env,
            target.url,
            target.method,
            event.method,
            event.path,
            event.query,
            json.dumps(event.headers, ensure_ascii=False),
            sqlite3.Binary(event.body),
            received_at,
            PENDING,
            received_at,
            1 if event.test else 0,
            event.max_attempts,
        )

    # --- the worker's side -----------------------------------------------------------------

    def recover_in_flight(self) -> int:
        """Makes deliveries that a killed process left in flight due again (at-least-once)."""
        cur = self._connection().execute(
            "UPDATE middleware_events SET state = ?, next_attempt_at = ? WHERE state = ?",
            (PENDING, time.time(), IN_FLIGHT),
        )
        return cur.rowcount

    def claim_due(self, now: float | None = None, exclude: Iterable[str] = ()) -> ClaimedDelivery | None:
        """Takes the delivery due first, except those to a destination in ``exclude``
        (delivery.destination_key of the receiver url): it is in flight until its attempt is recorded."""
        claimed = self.claim_due_batch(now, exclude, limit=1)
        return claimed[0] if claimed else None

    def claim_due_batch(
        self, now: float | None = None, exclude: Iterable[str] = (), limit: int | Callable[[str], int] = 1
    ) -> list[ClaimedDelivery]:
        """Takes the delivery due first (skipping destinations in ``exclude``) and more due deliveries
        to the same receiver url, up to ``limit`` (a number, or a function of that url), in one
        transaction; in due order. Nothing due: no transaction at all."""
        moment = time.time() if now is None else now
        skip, params = _exclusion(exclude)
        # which url is due first is read without the write lock (WAL: readers wait for no writer), so
        # that a thread with nothing to claim does not queue for the lock behind the group commit
        first = self._connection().execute(
            f"SELECT target_url FROM middleware_events WHERE state = ? AND next_attempt_at <= ?{skip} "
            f"ORDER BY next_attempt_at, seq LIMIT 1",
            (PENDING, moment, *params),
        ).fetchone()
        if first is None:
            return []
        url = first["target_url"]
        count = max(1, limit(url) if callable(limit) else limit)
        # taken under the lock only if still pending: what another connection claimed meanwhile is
        # skipped, and an empty answer makes the caller look again (next_due_at) at once
        rows = self._write(lambda conn: conn.execute(
            f"UPDATE middleware_events SET state = ? WHERE seq IN ("
            f"  SELECT seq FROM middleware_events WHERE state = ? AND next_attempt_at <= ? AND target_url = ?"
            f"  ORDER BY next_attempt_at, seq LIMIT ?"
            f") RETURNING {_CLAIM_COLUMNS}, next_attempt_at, seq",
            (IN_FLIGHT, PENDING, moment, url, count),
        ).fetchall())
        # due order; events received in one group commit share their time and go in receipt order
        rows.sort(key=lambda row: (row["next_attempt_at"], row["seq"]))
        return [
            ClaimedDelivery(
                event_id=row["event_id"],
                registration_uuid=row["registration_uuid"],
                webhook_tag=row["webhook_tag"],
                env=row["env"],
                url=row["target_url"],
                method=row["target_method"],
                query=row["request_query"],
                headers=[tuple(pair) for pair in json.loads(row["request_headers"])],
                body=bytes(row["body"]),
                attempt_number=row["attempt_count"] + 1,
                round_attempt_number=row["round_attempts"] + 1,
                test=bool(row["test"]),
                max_attempts=row["max_attempts"],
            )
            for row in rows
        ]

    def oldest_pending(self, urls: Iterable[str]) -> dict[str, float]:
        """For each of these receiver urls with a pending delivery (not in flight), the due time of the
        one due first (epoch seconds); one index lookup per url."""
        conn = self._connection()
        found = {}
        for url in urls:
            row = conn.execute(
                "SELECT MIN(next_attempt_at) FROM middleware_events WHERE state = ? AND target_url = ?",
                (PENDING, url),
            ).fetchone()
            if row[0] is not None:
                found[url] = row[0]
        return found

    def next_due_at(self, exclude: Iterable[str] = ()) -> float | None:
        skip, params = _exclusion(exclude)
        row = (
            self._connection()
            .execute(
                f"SELECT MIN(next_attempt_at) FROM middleware_events WHERE state = ?{skip}",
                (PENDING, *params),
            )
            .fetchone()
        )
        return row[0]

    def release(self, event_id: str, due_at: float) -> None:
        """Gives a claimed delivery back, due at ``due_at``, without an attempt: its attempt could not
        be recorded, or was not made."""
        self._connection().execute(
            "UPDATE middleware_events SET state = ?, next_attempt_at = ? WHERE event_id = ? AND state = ?",
            (PENDING, due_at, event_id, IN_FLIGHT),
        )

    def record_attempt(self, claimed: ClaimedDelivery, outcome: AttemptOutcome) -> None:
        self.record_attempts([(claimed, outcome)])

    def record_attempts(self, outcomes: list[tuple[ClaimedDelivery, AttemptOutcome]]) -> None:
        """Writes attempts and what they lead to, all in one transaction (or none of them)."""
        now = time.time()
        attempts, updates = [], []
        for claimed, outcome in outcomes:
            dead_lettered = outcome.state == FAILED
            attempts.append((claimed.event_id, claimed.attempt_number, outcome.at, outcome.status_code,
                             outcome.latency_ms, outcome.error))
            updates.append((
                outcome.state,
                claimed.attempt_number,
                claimed.round_attempt_number,
                outcome.next_attempt_at,
                outcome.state,
                outcome.at,
                outcome.error,
                (outcome.dead_letter_reason or outcome.error or "failed") if dead_lettered else None,
                now if dead_lettered else None,
                claimed.event_id,
            ))

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO middleware_attempts (event_id, n, at, status_code, latency_ms, error) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                attempts,
            )
            conn.executemany(
                "UPDATE middleware_events SET state = ?, attempt_count = ?, round_attempts = ?, "
                "next_attempt_at = ?, "
                "delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END, "
                "last_error = ?, dead_letter_reason = ?, dead_lettered_at = ? WHERE event_id = ?",
                updates,
            )

        self._write(write)

    # --- reading and replay ----------------------------------------------------------------
    # Records are plain dicts of the stored columns plus "attempts"; deliveries.py makes them wire answers.

    def get(self, event_id: str) -> dict[str, Any] | None:
        conn = self._connection()
        row = conn.execute(
            "SELECT * FROM middleware_events WHERE event_id = ?", (event_id,)
        ).fetchone()
        if row is None:
            return None
        attempts = conn.execute(
            "SELECT n, at, status_code, latency_ms, error FROM middleware_attempts "
            "WHERE event_id = ? ORDER BY n",
            (event_id,),
        ).fetchall()
        return _record(row, attempts)

    def list(
        self, where: DeliveryFilter, limit: int, after_seq: int | None = None
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Newest first; returns one page and the seq to continue after (None on the last page)."""
        if not where.products:
            return [], None
        clauses, params = _filter_clauses(where)
        if after_seq is not None:
            clauses.append("seq < ?")
            params.append(after_seq)
        conn = self._connection()
        rows = conn.execute(
            f"SELECT * FROM middleware_events WHERE {' AND '.join(clauses)} "
            f"ORDER BY seq DESC LIMIT ?",
            (*params, limit + 1),
        ).fetchall()
        page, more = rows[:limit], len(rows) > limit
        attempts_by_event = self._attempts_of(conn, [row["event_id"] for row in page])
        records = [_record(row, attempts_by_event.get(row["event_id"], [])) for row in page]
        return records, (page[-1]["seq"] if more else None)

    def summary(self, where: DeliveryFilter) -> dict[str, Any]:
        """Counts of deliveries by state, of rejected and duplicate events, and the last rejection."""
        if not where.products:
            return {"states": {}, "rejected": 0, "duplicates": 0, "last_rejection": None}
        scope, params = _scope_clauses(where)
        clauses = " AND ".join(scope)
        conn = self._connection()
        states = {row[0]: row[1] for row in conn.execute(
            f"SELECT state, COUNT(*) FROM middleware_events WHERE {clauses} GROUP BY state", params)}
        totals = conn.execute(
            f"SELECT COALESCE(SUM(rejected), 0), COALESCE(SUM(duplicates), 0) FROM middleware_ingress "
            f"WHERE {clauses}", params).fetchone()
        last = conn.execute(
            f"SELECT COALESCE(last_rejection_uuid, registration_uuid) AS registration_uuid, last_rejection_reason, "
            f"last_rejection_at FROM middleware_ingress "
            f"WHERE {clauses} AND last_rejection_at IS NOT NULL ORDER BY last_rejection_at DESC LIMIT 1",
            params).fetchone()
        return {"states": states, "rejected": totals[0], "duplicates": totals[1],
                "last_rejection": dict(last) if last is not None else None}

    @staticmethod
    def _attempts_of(conn: sqlite3.Connection, event_ids: list[str]) -> dict[str, list]:
        if not event_ids:
            return {}
        rows = conn.execute(
            f"SELECT event_id, n, at, status_code, latency_ms, error FROM middleware_attempts "
            f"WHERE event_id IN ({', '.join('?' for _ in event_ids)}) ORDER BY event_id, n",
            event_ids,
        ).fetchall()
        grouped: dict[str, list] = {}
        for row in rows:
            grouped.setdefault(row["event_id"], []).append(row)
        return grouped

    def matching(self, where: ReplayFilter, limit: int) -> tuple[list[dict[str, Any]], bool]:
        """The oldest `limit` deliveries the filter selects, as {event_id, registration_uuid, state},
        and whether more matched."""
        if not where.products:
            return [], False
        clauses, params = _filter_clauses(where)
        rows = self._connection().execute(
            f"SELECT event_id, registration_uuid, state FROM middleware_events WHERE {' AND '.join(clauses)} "
            f"ORDER BY seq LIMIT ?",
            (*params, limit + 1),
        ).fetchall()
        return [dict(row) for row in rows[:limit]], len(rows) > limit

    def replay_many(self, targets: dict[str, Target]) -> tuple[list[str], list[str]]:
        """Replay (as `replay` does) every event of `targets` (event id -> its registration's current
        receiver) in one transaction; returns (the ids queued, the ids left alone being in flight)."""
        ids = list(targets)
        now = time.time()
        in_flight: set[str] = set()
        conn = self._connection()
        with immediate_transaction(conn):
            for start in range(0, len(ids), _IDS_PER_STATEMENT):
                part = ids[start:start + _IDS_PER_STATEMENT]
                in_flight.update(row["event_id"] for row in conn.execute(
                    f"SELECT event_id FROM middleware_events WHERE state = ? AND event_id IN "
                    f"({', '.join('?' for _ in part)})", (IN_FLIGHT, *part)))
            queued = [event_id for event_id in ids if event_id not in in_flight]
            conn.executemany(
                "UPDATE middleware_events SET state = ?, next_attempt_at = ?, round_attempts = 0, "
                "dead_letter_reason = NULL, dead_lettered_at = NULL, target_url = ?, target_method = ? "
                "WHERE event_id = ?",
                [(PENDING, now, targets[event_id].url, targets[event_id].method, event_id) for event_id in queued],
            )
        return queued, [event_id for event_id in ids if event_id in in_flight]

    def replay(self, event_id: str, target: Target | None = None) -> str:
        """Makes a delivery due now with a fresh retry budget, out of the dead letters if it was one;
        the receiver may be updated to the registration's current one. Returns the state found: a
        delivery in flight is left alone. The event id, headers and body stay as received."""
        conn = self._connection()
        with immediate_transaction(conn):
            row = conn.execute(
                "SELECT state FROM middleware_events WHERE event_id = ?", (event_id,)
            ).fetchone()
            if row is None or row["state"] == IN_FLIGHT:
                return row["state"] if row is not None else ""
            assignments = (
                "state = ?, next_attempt_at = ?, round_attempts = 0, "
                "dead_letter_reason = NULL, dead_lettered_at = NULL"
            )
            params: list[Any] = [PENDING, time.time()]
            if target is not None:
                assignments += ", target_url = ?, target_method = ?"
                params.extend((target.url, target.method))
            conn.execute(
                f"UPDATE middleware_events SET {assignments} WHERE event_id = ?",
                (*params, event_id),
            )
            return row["state"]


def _scope_clauses(where: DeliveryFilter) -> tuple[list[str], list[Any]]:
    """The SQL conditions of a filter's product, tags and env (not its status), over either table
    (deliveries or ingress counts); `where.products` must not be empty."""
    clauses = [f"product IN ({', '.join('?' for _ in where.products)})"]
    params: list[Any] = list(where.products)
    for column, value in (("access_tag", where.access_tag), ("webhook_tag", where.webhook_tag), ("env", where.env)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    return clauses, params


def ingress_counts(conn: sqlite3.Connection, registrations: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """Each registration's rejected and duplicate counts and last rejection (zeros when none yet), by its
    current uuid; `registrations`: (current uuid, origin uuid) pairs (the counts are kept by origin uuid,
    so they run on across rotations)."""
    counts = {uuid: {"rejected": 0, "duplicates": 0, "last_rejection": None} for uuid, _ in registrations}
    current = {origin or uuid: uuid for uuid, origin in registrations}
    if registrations:
        for row in conn.execute(
            f"SELECT registration_uuid, rejected, duplicates, last_rejection_reason, last_rejection_at "
            f"FROM middleware_ingress WHERE registration_uuid IN ({', '.join('?' for _ in current)})",
            list(current),
        ):
            counts[current[row[0]]] = {
                "rejected": row[1],
                "duplicates": row[2],
                "last_rejection": None if row[4] is None else {"reason": row[3], "at": row[4]},
            }
    return counts


def _exclusion(destinations: Iterable[str]) -> tuple[str, tuple[str, ...]]:
    """The SQL condition (and its parameters) that skips deliveries to these destinations.

    ``destinations`` may also hold receiver urls, as ``url:<url>``: those rows are skipped by a plain
    comparison before the destination of any other row is computed (the usual case, one url per
    destination, then costs no call into Python per row)."""
    skipped = tuple(destinations)
    if not skipped:
        return "", ()
    urls = tuple(item[4:] for item in skipped if item.startswith("url:"))
    keys = tuple(item for item in skipped if not item.startswith("url:"))
    condition = ""
    if urls:
        condition += f" AND target_url NOT IN ({', '.join('?' for _ in urls)})"
    if keys:
        condition += f" AND ductape_destination(target_url) NOT IN ({', '.join('?' for _ in keys)})"
    return condition, urls + keys


def _destination_of(url: str) -> str:
    from .delivery import destination_key

    return destination_key(url)


def _record(row: sqlite3.Row, attempts: Iterable[sqlite3.Row]) -> dict[str, Any]:
    record = {key: row[key] for key in row.keys() if key not in ("body", "request_headers")}
    record["attempts"] = [dict(attempt) for attempt in attempts]
    return record
