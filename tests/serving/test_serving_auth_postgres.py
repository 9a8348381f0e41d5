"""Tokens in PostgreSQL (`CSE_SERVING_DB=postgresql://...`) against a real server: the CLI creates, lists and
revokes them there, a running app checks them there on every request (a revocation from another process
counts at once), a dropped connection is reopened, and a wrong password is one clear line, not a traceback.
A SQLite path keeps SQLite and never imports psycopg2."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg2
import pytest
from postgres_server import USER, PostgresServer, postgres_for_tests
from psycopg2 import sql
from serving_helpers import REPO_ROOT, bearer

from cse_models.errors import StoreError
from cse_serving.app import create_app
from cse_serving.auth import TokenStore, hash_token
from cse_serving.settings import Settings

PASSWORD_ROLE = "tokens_pw"
PASSWORD = "right-horse-battery"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_for_tests() as server:
        yield server


def _admin(server: PostgresServer, statement: sql.Composable | str, params: tuple = ()) -> list[tuple]:
    conn = psycopg2.connect(server.dsn)
    conn.autocommit = True  # CREATE DATABASE refuses to run inside a transaction
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description is not None else []
    finally:
        conn.close()


@pytest.fixture
def database_url(postgres: PostgresServer) -> str:
    """A fresh database per test, so each starts without a `tokens` table."""
    name = f"tokens_{uuid.uuid4().hex[:12]}"
    _admin(postgres, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"postgresql://{USER}@127.0.0.1:{postgres.port}/{name}"


@pytest.fixture(scope="module")
def password_role(postgres: PostgresServer) -> str:
    """A role that must log in with a password (the helper's server trusts everyone else): its pg_hba.conf
        line goes first, then the server reloads its configuration. Returns `host:port/database` of a database
    the role owns."""
    _admin(postgres, sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(PASSWORD_ROLE)), (PASSWORD,))
    hba = postgres.data_dir / "pg_hba.conf"
    hba.write_text(f"host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    _admin(postgres, "SELECT pg_reload_conf()")
    _admin(postgres, sql.SQL("CREATE DATABASE {0} OWNER {0}").format(sql.Identifier(PASSWORD_ROLE)))
    return f"127.0.0.1:{postgres.port}/{PASSWORD_ROLE}"


def cse_serving(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`cse-serving ...` in its own process, as an operator runs it beside a live server."""
    return subprocess.run(
        [sys.executable, "-m", "cse_serving", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})},
    )


def _tokens_table(url: str) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT name, token_sha256, role, revoked FROM tokens ORDER BY name")
            return cursor.fetchall()
    finally:
        conn.close()


def test_cli_creates_lists_and_revokes_tokens_in_postgres(database_url: str):
    created = cse_serving("token", "--db", database_url, "create", "--name", "alice")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert cse_serving("token", "--db", database_url, "create", "--name", "root", "--admin").returncode == 0

    rows = _tokens_table(database_url)
    assert [(name, role, revoked) for name, _, role, revoked in rows] == [("alice", "user", 0), ("root", "admin", 0)]
    assert rows[0][1] == hash_token(token) and token not in str(rows)  # only the hash is stored

    listed = cse_serving("token", "--db", database_url, "list")
    assert [line.split("\t")[::3] for line in listed.stdout.splitlines()] == [["alice", "active"], ["root", "active"]]

    assert cse_serving("token", "--db", database_url, "revoke", "alice").returncode == 0
    listed = cse_serving("token", "--db", database_url, "list")
    assert [line.split("\t")[::3] for line in listed.stdout.splitlines()] == [["alice", "revoked"], ["root", "active"]]
    again = cse_serving("token", "--db", database_url, "revoke", "alice")
    assert again.returncode == 1 and "no active token named 'alice'" in again.stderr

    duplicate = cse_serving("token", "--db", database_url, "create", "--name", "root")
    assert duplicate.returncode == 2 and "a token named 'root' already exists" in duplicate.stderr


def test_the_environment_variable_selects_postgres_too(database_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CSE_SERVING_DB", database_url)
    assert Settings.from_env().db_path == database_url  # a URL stays a string (a Path would fold its //)
    created = cse_serving("token", "create", "--name", "env", env={"CSE_SERVING_DB": database_url})
    assert created.returncode == 0, created.stderr
    store = TokenStore(database_url)
    try:
        assert store.lookup(created.stdout.strip()).name == "env"
    finally:
        store.close()


def test_a_running_app_rejects_a_token_right_after_cli_revoke(publish, client_factory, settings, database_url):
    publish("BTCUSDT", "regression")
    token = cse_serving("token", "--db", database_url, "create", "--name", "alice").stdout.strip()
    client = client_factory(replace(settings, db_path=database_url))
    assert client.get("/models/count", headers=bearer(token)).json() == {"count": 1}

    revoked = cse_serving("token", "--db", database_url, "revoke", "alice")
    assert revoked.returncode == 0, revoked.stderr
    response = client.get("/models/count", headers=bearer(token))
    assert response.status_code == 401
    assert "unknown or revoked" in response.json()["detail"]


def test_a_dropped_connection_is_reopened_once(postgres: PostgresServer, database_url: str):
    store = TokenStore(database_url)
    try:
        token = store.create("alice")
        database = database_url.rsplit("/", 1)[1]
        ended = _admin(
            postgres,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )
        assert ended == [(True,)]  # the store's connection, and only it
        assert store.lookup(token).name == "alice"
        assert store.count_active() == 1
    finally:
        store.close()


def test_a_wrong_password_is_one_clear_line(settings, password_role: str):
    wrong = f"postgresql://{PASSWORD_ROLE}:not-the-password@{password_role}"
    for command in (["token", "--db", wrong, "list"], ["serve", "--port", "0", "--db", wrong]):
        result = cse_serving(*command)
        assert result.returncode == 2
        assert result.stderr.startswith(
            f"cse-serving: cannot connect to the token database postgresql://{PASSWORD_ROLE}:***@"
        )
        assert "password authentication failed" in result.stderr
        assert "Traceback" not in result.stderr and "not-the-password" not in result.stderr

    async def start() -> None:
        async with create_app(replace(settings, db_path=wrong)).lifespan():  # the real lifespan opens the tokens
            pass

    with pytest.raises(BaseExceptionGroup) as raised:  # Litestar runs the lifespan in a task group
        asyncio.run(start())
    (error,) = raised.value.exceptions
    assert isinstance(error, StoreError) and "password authentication failed" in str(error)
    assert "not-the-password" not in str(error)

    right = f"postgresql://{PASSWORD_ROLE}:{PASSWORD}@{password_role}"
    created = cse_serving("token", "--db", right, "create", "--name", "pw")  # the positive control
    assert created.returncode == 0, created.stderr
    from_env = cse_serving(
        "token", "--db", f"postgresql://{PASSWORD_ROLE}@{password_role}", "list", env={"PGPASSWORD": PASSWORD}
    )
    assert from_env.returncode == 0 and from_env.stdout.startswith("pw\tuser\t"), from_env.stderr  # libpq's PGPASSWORD


def test_a_role_that_may_not_create_the_table_is_one_clear_line(password_role: str):
    """PostgreSQL 15 grants no CREATE on the `postgres` database's public schema to an ordinary role."""
    url = f"postgresql://{PASSWORD_ROLE}:{PASSWORD}@{password_role.rsplit('/', 1)[0]}/postgres"
    result = cse_serving("token", "--db", url, "list")
    assert result.returncode == 2
    assert result.stderr.startswith(f"cse-serving: the token database postgresql://{PASSWORD_ROLE}:***@")
    assert "permission denied for schema public" in result.stderr and "Traceback" not in result.stderr


def test_a_sqlite_path_never_imports_psycopg2(tmp_path: Path):
    probe = (
        "import sys\n"
        "from cse_serving.auth import TokenStore\n"
        f"TokenStore({str(tmp_path / 'serving.db')!r}).close()\n"
        "assert 'psycopg2' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env={"PYTHONPATH": str(REPO_ROOT)}
    )
    assert result.returncode == 0, result.stderr
    assert isinstance(Settings(db_path=str(tmp_path / "serving.db")).db_path, Path)


def test_a_token_database_that_stays_unreachable_is_503(
    postgres: PostgresServer, publish, client_factory, settings, password_role: str
):
    """The connection drops and the reconnect is refused (here: the role's password changed meanwhile)."""
    publish("BTCUSDT", "regression")
    url = f"postgresql://{PASSWORD_ROLE}:{PASSWORD}@{password_role}"
    token = cse_serving("token", "--db", url, "create", "--name", "outage").stdout.strip()
    client = client_factory(replace(settings, db_path=url))
    assert client.get("/models/count", headers=bearer(token)).status_code == 200

    role = sql.Identifier(PASSWORD_ROLE)
    _admin(postgres, sql.SQL("ALTER ROLE {} PASSWORD %s").format(role), ("changed",))
    try:
        _admin(postgres, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (PASSWORD_ROLE,))
        response = client.get("/models/count", headers=bearer(token))
        assert response.status_code == 503
        assert response.json()["detail"] == "the token database is unavailable; retry shortly"
    finally:
        _admin(postgres, sql.SQL("ALTER ROLE {} PASSWORD %s").format(role), (PASSWORD,))
    assert client.get("/models/count", headers=bearer(token)).status_code == 200  # and it recovers by itself
