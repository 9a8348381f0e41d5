"""API tokens: random, shown once, stored only as SHA-256 hashes in SQLite or PostgreSQL; and the Litestar
guards.

A token is `secrets.token_urlsafe(32)` (256 bits), so a plain SHA-256 — not a slow password hash — is
enough: nobody can brute-force a 256-bit random secret from its hash. Every SQL statement is
parameterized. Lookups read the database on each request so that `cse-serving token revoke` (another
process) takes effect immediately; an indexed lookup on a warm connection costs microseconds.

The database is a local SQLite file, or — when `CSE_SERVING_DB` is a `postgresql://` URL — a `tokens` table
in PostgreSQL that several replicas share. Both run the same statements (`_STATEMENTS`, written with `?`
placeholders; the Postgres side swaps in `%s` once); psycopg2 is imported only for a Postgres URL.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from litestar.connection import ASGIConnection
from litestar.exceptions import (
    NotAuthorizedException,
    PermissionDeniedException,
    ServiceUnavailableException,
    TooManyRequestsException,
)
from litestar.handlers.base import BaseRouteHandler

from cse_models.errors import ConfigError, StoreError
from cse_serving.errors import retry_after_header
from cse_serving.settings import is_postgres_url

log = logging.getLogger(__name__)

ROLES = ("user", "admin")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    created_at TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    revoked_at TEXT
)
"""
_STATEMENTS = {
    "schema": _SCHEMA,
    "create": "INSERT INTO tokens (name, token_sha256, role, created_at) VALUES (?, ?, ?, ?)",
    "revoke": "UPDATE tokens SET revoked = 1, revoked_at = ? WHERE name = ? AND revoked = 0",
    "list": "SELECT name, role, created_at, revoked FROM tokens ORDER BY created_at, name",
    "lookup": "SELECT name, role, created_at FROM tokens WHERE token_sha256 = ? AND revoked = 0",
    "count_active": "SELECT COUNT(*) FROM tokens WHERE revoked = 0",
}
"""Every statement the store runs, in both databases; `?` is the only placeholder and no `%` appears, so
the Postgres dialect is a plain substitution."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def redact_url(url: str) -> str:
    """`url` with its password replaced by ***, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username or ''}:***@{host}").geturl()


@dataclass(frozen=True)
class TokenRecord:
    name: str
    role: str
    created_at: str
    revoked: bool


Rows = list[tuple[Any, ...]]


def _one_line(error: Exception) -> str:
    """A database error's message on one line (libpq's span several; none repeats the password)."""
    return " ".join(str(error).split())


class _SqliteTokens:
    """A SQLite file (or ":memory:"): one connection in autocommit mode, WAL so readers never block."""

    integrity_error: type[Exception] = sqlite3.IntegrityError

    def __init__(self, path: str | Path) -> None:
        self.where = str(path)
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._statements = dict(_STATEMENTS)

    def run(self, statement: str, params: tuple[Any, ...] = ()) -> tuple[Rows, int]:
        """(rows, rowcount) of one statement of `_STATEMENTS`."""
        cursor = self._conn.execute(self._statements[statement], params)
        return cursor.fetchall(), cursor.rowcount

    def close(self) -> None:
        self._conn.close()


class _PostgresTokens:
    """A PostgreSQL database: one psycopg2 connection in autocommit mode (each statement its own
    transaction, so a revocation is visible to every server at once), reopened once when it has dropped."""

    def __init__(self, url: str) -> None:
        try:
            import psycopg2
        except ImportError:
            raise ConfigError(
                "CSE_SERVING_DB is a postgresql:// URL but psycopg2 is not installed: pip install psycopg2-binary"
            ) from None
        self._psycopg2 = psycopg2
        self.integrity_error: type[Exception] = psycopg2.IntegrityError
        self.url = url
        self.where = redact_url(url)
        self._statements = {name: sql.replace("?", "%s") for name, sql in _STATEMENTS.items()}
        self._conn = self._connect()

    def _connect(self) -> Any:
        try:
            conn = self._psycopg2.connect(self.url, connect_timeout=10)
        except self._psycopg2.OperationalError as exc:
            raise StoreError(f"cannot connect to the token database {self.where}: {_one_line(exc)}") from None
        except self._psycopg2.ProgrammingError as exc:  # a malformed URL or an unknown option
            raise ConfigError(
                f"CSE_SERVING_DB is not a usable PostgreSQL URL ({self.where}): {_one_line(exc)}"
            ) from None
        conn.autocommit = True
        return conn

    def _execute(self, sql: str, params: tuple[Any, ...]) -> tuple[Rows, int]:
        with self._conn.cursor() as cursor:
            cursor.execute(sql, params)
            return (cursor.fetchall() if cursor.description is not None else []), cursor.rowcount

    def _execute_reconnecting(self, sql: str, params: tuple[Any, ...]) -> tuple[Rows, int]:
        try:
            return self._execute(sql, params)
        except (self._psycopg2.OperationalError, self._psycopg2.InterfaceError):
            if not self._conn.closed:  # the connection is fine: the statement itself failed
                raise
        log.warning("the token database connection dropped; reconnecting to %s", self.where)
        self._conn = self._connect()
        return self._execute(sql, params)

    def run(self, statement: str, params: tuple[Any, ...] = ()) -> tuple[Rows, int]:
        """(rows, rowcount) of one statement of `_STATEMENTS`. A dropped connection (server restart, idle
        timeout, failover) is reopened and the statement retried once; any other refusal but a constraint
        violation (e.g. no CREATE privilege for the table) is a StoreError that names the database."""
        try:
            return self._execute_reconnecting(self._statements[statement], params)
        except self._psycopg2.IntegrityError:
            raise
        except self._psycopg2.Error as exc:
            raise StoreError(f"the token database {self.where} refused {statement!r}: {_one_line(exc)}") from None

    def close(self) -> None:
        self._conn.close()


class TokenStore:
    """The `tokens` table of the serving database: a SQLite path, or a `postgresql://` URL.

    One connection per store, used under a lock (requests run the guard on the event loop, the CLI in its
    own process). A database that cannot be reached raises StoreError, a malformed URL ConfigError."""

    def __init__(self, path: str | Path) -> None:
        self._lock = threading.Lock()
        self._db: _SqliteTokens | _PostgresTokens
        if is_postgres_url(path):
            self.path = None
            self._db = _PostgresTokens(str(path))
        else:
            self.path = Path(path)
            self._db = _SqliteTokens(path)
        with self._lock:
            self._db.run("schema")

    @property
    def where(self) -> str:
        """The database for messages: the path, or the URL without its password."""
        return self._db.where

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def create(self, name: str, role: str = "user") -> str:
        """Create a token and return it — the only time it exists outside the caller's hands."""
        if role not in ROLES:
            raise ConfigError(f"role must be one of {ROLES}, got {role!r}")
        if not name or len(name) > 100:
            raise ConfigError("token name must be 1..100 characters")
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            with self._lock:
                self._db.run("create", (name, hash_token(token), role, now))
        except self._db.integrity_error:
            raise ConfigError(f"a token named {name!r} already exists") from None
        log.info("created %s token %r", role, name)
        return token

    def revoke(self, name: str) -> bool:
        """Mark a token revoked (kept for the audit trail). False when no active token has that name."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            _, changed = self._db.run("revoke", (now, name))
        return changed > 0

    def list(self) -> list[TokenRecord]:
        with self._lock:
            rows, _ = self._db.run("list")
        return [TokenRecord(name, role, created, bool(revoked)) for name, role, created, revoked in rows]

    def lookup(self, token: str) -> TokenRecord | None:
        """The active token record matching `token`, or None."""
        with self._lock:
            rows, _ = self._db.run("lookup", (hash_token(token),))
        return TokenRecord(rows[0][0], rows[0][1], rows[0][2], False) if rows else None

    def count_active(self) -> int:
        with self._lock:
            rows, _ = self._db.run("count_active")
        return int(rows[0][0])


def presented_token(authorization: str | None, api_key: str | None) -> str | None:
    """The token of `Authorization: Bearer <token>` or `X-API-Key: <token>`; None when neither holds one
    (another Authorization scheme counts as none). Shared with the rate limiter, which keys by it."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        value = value.strip()
        return value if scheme.lower() == "bearer" and value else None
    return api_key or None


def _authenticate(connection: ASGIConnection) -> TokenRecord | None:
    """None when auth is switched off; raises 401 for a missing, malformed, unknown or revoked token,
    429 while the client is locked out for presenting bad tokens (`AuthLockout`, see ratelimit), and 503
    while the token database cannot be reached."""
    state = connection.app.state
    if not state.settings.auth:
        return None
    lockout = state.auth_lockout
    client = connection.client.host if connection.client else "unknown"
    if lockout is not None and (left := lockout.retry_after(client)):
        raise TooManyRequestsException(
            f"too many bad API tokens from this client; retry after {retry_after_header(left)} s",
            headers={"Retry-After": retry_after_header(left)},
        )
    token = presented_token(connection.headers.get("authorization"), connection.headers.get("x-api-key"))
    if token is None:
        raise NotAuthorizedException(
            "an API token is required: send `Authorization: Bearer <token>` or `X-API-Key: <token>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        record = state.tokens.lookup(token)
    except StoreError as exc:  # the token database is unreachable even after a reconnect: not the client's fault
        log.error("cannot check an API token: %s", exc)
        raise ServiceUnavailableException("the token database is unavailable; retry shortly") from None
    if record is None:
        if lockout is not None:
            lockout.record_failure(client)
        raise NotAuthorizedException("the API token is unknown or revoked", headers={"WWW-Authenticate": "Bearer"})
    connection.state.token = record  # handlers tailor what they show by role (`token_role`)
    return record


def token_role(connection: ASGIConnection) -> str:
    """The role of the request's token as set by the guard; "admin" when auth is off (a local demo)."""
    if not connection.app.state.settings.auth:
        return "admin"
    record = connection.state.get("token")
    return record.role if record is not None else "user"


async def require_token(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Guard: any active token. Async on purpose: Litestar would run a sync guard in a worker thread."""
    _authenticate(connection)


async def require_admin(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Guard: an active token with role admin (403 for a valid user token)."""
    record = _authenticate(connection)
    if record is not None and record.role != "admin":
        raise PermissionDeniedException(f"token {record.name!r} has role {record.role!r}; this route needs admin")
