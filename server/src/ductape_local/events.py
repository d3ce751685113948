"""The middleware's store: received provider events, their delivery state, and every attempt.

It lives in the same SQLite file as the control plane, in tables of its own, created idempotently.
Every thread gets its own connection (sqlite3 connections must not cross threads); WAL lets the
ingress route commit while the delivery worker reads and writes.

Internal states: ``pending`` (due at ``next_attempt_at``), ``in_flight`` (claimed by a worker thread),
``delivered`` and ``failed``. On the wire ``in_flight`` reads as ``pending``: from the outside a delivery
that is being attempted is still waiting for its outcome.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

from .store import immediate_transaction

PENDING = "pending"
IN_FLIGHT = "in_flight"
DELIVERED = "delivered"
FAILED = "failed"
WIRE_STATUSES = (PENDING, DELIVERED, FAILED)

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
    last_error        TEXT
);
CREATE INDEX IF NOT EXISTS middleware_events_due ON middleware_events (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS middleware_events_product ON middleware_events (product, seq);
CREATE TABLE IF NOT EXISTS middleware_attempts (
    event_id    TEXT    NOT NULL,
    n           INTEGER NOT NULL,
    at          REAL    NOT NULL,
    status_code INTEGER,
    latency_ms  REAL    NOT NULL,
    error       TEXT,
    PRIMARY KEY (event_id, n)
) WITHOUT ROWID;
"""

_CLAIM_COLUMNS = (
    "event_id, registration_uuid, webhook_tag, env, target_url, target_method, request_query, "
    "request_headers, body, attempt_count, round_attempts"
)


def iso_utc(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_event_id() -> str:
    return "evt_" + uuid.uuid4().hex


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The seq a cursor stands for; ValueError when the text is not a cursor this store made."""
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        text = base64.urlsafe_b64decode(padded.encode()).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(cursor) from exc
    prefix, _, number = text.partition(":")
    if prefix != "seq" or not number.isdigit():
        raise ValueError(cursor)
    return int(number)


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


@dataclass(frozen=True)
class ReceivedEvent:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes


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


@dataclass(frozen=True)
class AttemptOutcome:
    at: float
    status_code: int | None
    latency_ms: float
    error: str | None
    # what the attempt leads to: DELIVERED, FAILED, or PENDING again at next_attempt_at
    state: str
    next_attempt_at: float | None


@dataclass(frozen=True)
class DeliveryFilter:
    products: tuple[str, ...]
    access_tag: str | None = None
    webhook_tag: str | None = None
    env: str | None = None
    status: str | None = None


# The longest the group commit sleeps between two tries for SQLite's write lock.
WRITE_LOCK_POLL_S = 0.0005

_INSERT_EVENTS = (
    "INSERT INTO middleware_events (event_id, registration_uuid, product, access_tag, "
    "webhook_tag, env, target_url, target_method, request_method, request_path, "
    "request_query, request_headers, body, received_at, state, next_attempt_at) VALUES "
)
_EVENT_VALUES = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_EVENT = _INSERT_EVENTS + _EVENT_VALUES
# Rows per INSERT statement in a group commit: 16 parameters each, within the 999 of old SQLite builds.
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


class EventStore:
    def __init__(self, db_path: str, busy_timeout_s: float = 30.0):
        self._db_path = db_path
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        with self._connection() as conn:
            conn.executescript(_SCHEMA)

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
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a committed event survives the process being killed; only an
            # operating-system crash could lose the last commits.
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

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
        """Commits all the events in one transaction (group commit) and returns their ids, in order.

        Either every event is committed or none is (the exception is raised after the rollback). While
        another connection holds the write lock it tries again, for as long as the busy timeout.
        """
        rows = [self._event_row(target, event, None) for target, event in events]
        statements = _insert_statements([row for _, row in rows])
        conn = self._connection()
        # SQLite's own busy handler sleeps 1, 2, 5, 10... ms between tries for the write lock, which the
        # delivery threads take for every claim and attempt; waiting requests are better served by
        # trying again within WRITE_LOCK_POLL_S of its release.
        conn.execute("PRAGMA busy_timeout=0")
        try:
            deadline = time.monotonic() + self._busy_timeout_s
            pause = WRITE_LOCK_POLL_S / 8
            while True:
                try:
                    with immediate_transaction(conn):
                        for statement, parameters in statements:
                            conn.execute(statement, parameters)
                    break
                except sqlite3.OperationalError as error:
                    if getattr(error, "sqlite_errorcode", None) != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                        raise
                time.sleep(pause)
                pause = min(pause * 2, WRITE_LOCK_POLL_S)
        finally:
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_s * 1000)}")
        return [event_id for event_id, _ in rows]

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
        )

    # --- the worker's side -----------------------------------------------------------------

    def recover_in_flight(self) -> int:
        """Makes deliveries that a killed process left in flight due again (at-least-once)."""
        cur = self._connection().execute(
            "UPDATE middleware_events SET state = ?, next_attempt_at = ? WHERE state = ?",
            (PENDING, time.time(), IN_FLIGHT),
        )
        return cur.rowcount

    def claim_due(self, now: float | None = None) -> ClaimedDelivery | None:
        moment = time.time() if now is None else now
        row = (
            self._connection()
            .execute(
                f"UPDATE middleware_events SET state = ? WHERE seq = ("
                f"  SELECT seq FROM middleware_events WHERE state = ? AND next_attempt_at <= ?"
                f"  ORDER BY next_attempt_at LIMIT 1"
                f") RETURNING {_CLAIM_COLUMNS}",
                (IN_FLIGHT, PENDING, moment),
            )
            .fetchone()
        )
        if row is None:
            return None
        return ClaimedDelivery(
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
        )

    def next_due_at(self) -> float | None:
        row = (
            self._connection()
            .execute(
                "SELECT MIN(next_attempt_at) FROM middleware_events WHERE state = ?", (PENDING,)
            )
            .fetchone()
        )
        return row[0]

    def record_attempt(self, claimed: ClaimedDelivery, outcome: AttemptOutcome) -> None:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT INTO middleware_attempts (event_id, n, at, status_code, latency_ms, error) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    claimed.event_id,
                    claimed.attempt_number,
                    outcome.at,
                    outcome.status_code,
                    outcome.latency_ms,
                    outcome.error,
                ),
            )
            conn.execute(
                "UPDATE middleware_events SET state = ?, attempt_count = ?, round_attempts = ?, "
                "next_attempt_at = ?, "
                "delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END, "
                "last_error = ? WHERE event_id = ?",
                (
                    outcome.state,
                    claimed.attempt_number,
                    claimed.round_attempt_number,
                    outcome.next_attempt_at,
                    outcome.state,
                    outcome.at,
                    outcome.error,
                    claimed.event_id,
                ),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # --- reading and replay ----------------------------------------------------------------

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
        return _delivery(row, attempts)

    def list(
        self, where: DeliveryFilter, limit: int, after_seq: int | None = None
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Newest first; returns one page and the seq to continue after (None on the last page)."""
        if not where.products:
            return [], None
        clauses = [f"product IN ({', '.join('?' for _ in where.products)})"]
        params: list[Any] = list(where.products)
        for column, value in (
            ("access_tag", where.access_tag),
            ("webhook_tag", where.webhook_tag),
            ("env", where.env),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if where.status == PENDING:
            clauses.append("state IN (?, ?)")
            params.extend((PENDING, IN_FLIGHT))
        elif where.status is not None:
            clauses.append("state = ?")
            params.append(where.status)
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
        deliveries = [_delivery(row, attempts_by_event.get(row["event_id"], [])) for row in page]
        return deliveries, (page[-1]["seq"] if more else None)

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

    def replay(self, event_id: str, target: Target | None = None) -> str:
        """Makes a delivery due now with a fresh retry budget; the receiver may be updated to the
        registration's current one. Returns the state found: a delivery in flight is left alone."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT state FROM middleware_events WHERE event_id = ?", (event_id,)
            ).fetchone()
            if row is None or row["state"] == IN_FLIGHT:
                conn.execute("ROLLBACK")
                return row["state"] if row is not None else ""
            assignments = "state = ?, next_attempt_at = ?, round_attempts = 0"
            params: list[Any] = [PENDING, time.time()]
            if target is not None:
                assignments += ", target_url = ?, target_method = ?"
                params.extend((target.url, target.method))
            conn.execute(
                f"UPDATE middleware_events SET {assignments} WHERE event_id = ?",
                (*params, event_id),
            )
            conn.execute("COMMIT")
            return row["state"]
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def _delivery(row: sqlite3.Row, attempts: Iterable[sqlite3.Row]) -> dict[str, Any]:
    state = row["state"]
    return {
        "event_id": row["event_id"],
        "registration_uuid": row["registration_uuid"],
        "product": row["product"],
        "access_tag": row["access_tag"],
        "webhook_tag": row["webhook_tag"],
        "env": row["env"],
        "method": row["target_method"],
        "status": PENDING if state == IN_FLIGHT else state,
        "attempt_count": row["attempt_count"],
        "received_at": iso_utc(row["received_at"]),
        "delivered_at": iso_utc(row["delivered_at"]),
        "next_attempt_at": iso_utc(row["next_attempt_at"]) if state in (PENDING, IN_FLIGHT) else None,
        "last_error": row["last_error"],
        "attempts": [
            {
                "n": attempt["n"],
                "at": iso_utc(attempt["at"]),
                "status_code": attempt["status_code"],
                "latency_ms": round(attempt["latency_ms"], 3),
                "error": attempt["error"],
            }
            for attempt in attempts
        ],
    }
