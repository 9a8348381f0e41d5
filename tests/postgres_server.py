"""A real, throwaway PostgreSQL server for tests: Debian's binaries, a temporary data directory, a free
port on 127.0.0.1, trust authentication, stopped by its postmaster PID and deleted afterwards.

`initdb` and `postgres` refuse to run as root, so under root the server runs as the `postgres` user
(Debian's package creates it; `nobody` otherwise) through `runuser`, in a directory that user owns.
A module of its own under tests/ (on sys.path through tests/conftest.py), like `fake_binance`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from prerequisites import missing_prerequisite

USER = "cse"
DATABASE = "postgres"


def postgres_bin_dir() -> Path | None:
    """The newest `/usr/lib/postgresql/<version>/bin` holding initdb (Debian's layout), else the
    directory of an `initdb` on PATH, else None."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name), reverse=True
    )
    if versions:
        return versions[0].parent
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


@dataclass(frozen=True)
class PostgresServer:
    port: int
    pid: int
    data_dir: Path

    @property
    def dsn(self) -> str:
        """For psycopg2 itself (SQLAlchemy URLs name the driver: `postgresql+psycopg2://`)."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run_as() -> tuple[list[str], pwd.struct_passwd | None]:
    """The command prefix that drops root, and the account it drops to (None when not root)."""
    if os.geteuid() != 0:
        return [], None
    for name in ("postgres", "nobody"):
        try:
            account = pwd.getpwnam(name)
        except KeyError:
            continue
        return ["runuser", "-u", name, "--"], account
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' account exists")


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@contextmanager
def running_postgres(bin_dir: Path) -> Iterator[PostgresServer]:
    """initdb + pg_ctl start on a fresh directory; on exit SIGINT (fast shutdown) to the postmaster's PID,
    SIGKILL if it has not exited within 20 s, then the directory is removed."""
    prefix, account = _run_as()
    root = Path(tempfile.mkdtemp(prefix="cse-pg-"))  # not under pytest's 0700 tmp: the server user reads it
    data_dir, sockets, log = root / "data", root / "sockets", root / "server.log"
    sockets.mkdir()
    if account is not None:
        for path in (root, sockets):
            os.chown(path, account.pw_uid, account.pw_gid)
    pid = None
    try:
        initdb = [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync"]
        subprocess.run(
            [*prefix, *initdb, "--no-instructions"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        port = _free_port()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={sockets} -c fsync=off"
        started = subprocess.run(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-l", str(log), "-o", options, "-w", "start"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if started.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {started.stdout}{started.stderr}\n{server_log}")
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        yield PostgresServer(port=port, pid=pid, data_dir=data_dir)
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGINT)
            if not _wait_gone(pid, 20):
                os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, 5)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def postgres_for_tests() -> Iterator[PostgresServer]:
    """A running server for a test module; without Debian's binaries a skip locally and a failure in CI
    (where .ci/run installs them, so their absence is a broken setup, not a reason to skip)."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        reason = "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install -y postgresql"
        missing_prerequisite(reason, ".ci/run installs them")
    with running_postgres(bin_dir) as server:
        yield server
