"""API tokens: random, shown once, stored only as SHA-256 hashes in SQLite; and the Litestar guards.

A token is `secrets.token_urlsafe(32)` (256 bits), so a plain SHA-256 — not a slow password hash — is
enough: nobody can brute-force a 256-bit random secret from its hash. Every SQL statement is
parameterized. Lookups read the database on each request so that `cse-serving token revoke` (another
process) takes effect immediately; an indexed lookup on a warm connection costs microseconds.
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

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException, TooManyRequestsException
from litestar.handlers.base import BaseRouteHandler

from cse_models.errors import ConfigError
from cse_serving.errors import retry_after_header

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


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenRecord:
    name: str
    role: str
    created_at: str
    revoked: bool


class TokenStore:
    """The `tokens` table of the serving database."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

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
                self._conn.execute(
                    "INSERT INTO tokens (name, token_sha256, role, created_at) VALUES (?, ?, ?, ?)",
                    (name, hash_token(token), role, now),
                )
        except sqlite3.IntegrityError:
            raise ConfigError(f"a token named {name!r} already exists") from None
        log.info("created %s token %r", role, name)
        return token

    def revoke(self, name: str) -> bool:
        """Mark a token revoked (kept for the audit trail). False when no active token has that name."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            cursor = self._conn.execute(
                "UPDATE tokens SET revoked = 1, revoked_at = ? WHERE name = ? AND revoked = 0", (now, name)
            )
        return cursor.rowcount > 0

    def list(self) -> list[TokenRecord]:
        with self._lock:
            rows = self._conn.execute("SELECT name, role, created_at, revoked FROM tokens ORDER BY created_at, name")
            return [TokenRecord(name, role, created, bool(revoked)) for name, role, created, revoked in rows]

    def lookup(self, token: str) -> TokenRecord | None:
        """The active token record matching `token`, or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT name, role, created_at FROM tokens WHERE token_sha256 = ? AND revoked = 0",
                (hash_token(token),),
            ).fetchone()
        return TokenRecord(row[0], row[1], row[2], False) if row else None

    def count_active(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM tokens WHERE revoked = 0").fetchone()[0])


def presented_token(authorization: str | None, api_key: str | None) -> str | None:
    """The token of `Authorization: Bearer <token>` or `X-API-Key: <token>`; None when neither holds one
    (another Authorization scheme counts as none). Shared with the rate limiter, which keys by it."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        value = value.strip()
        return value if scheme.lower() == "bearer" and value else None
    return api_key or None


def _authenticate(connection: ASGIConnection) -> TokenRecord | None:
    """None when auth is switched off; raises 401 for a missing, malformed, unknown or revoked token, and
    429 while the client is locked out for presenting bad tokens (`AuthLockout`, see ratelimit)."""
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
    record = state.tokens.lookup(token)
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
