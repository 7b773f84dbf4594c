"""A throwaway PostgreSQL server for the test suite, from the binaries on this machine.

`initdb` refuses to run as root, and CI runs as root: then the server runs as the
`postgres` system user (created by the Debian package), in a temporary directory
that user owns. fsync is off: these tests are about reconciler's behaviour, not
the server's disk; `synchronous_commit` stays on, as reconciler asks for.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg

REQUIRE_ENV = "RECONCILER_REQUIRE_POSTGRES"
"""Set by .ci/run: missing binaries then fail the run instead of skipping tests."""


def find_bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parent.parent.name)
                        if Path(p).parent.parent.name.isdigit() else 0)
    return Path(candidates[-1]).parent if candidates else None


def unavailable_reason() -> str | None:
    """Why no server can be started here, or None."""
    if find_bindir() is None:
        return ("PostgreSQL server binaries (initdb, pg_ctl) not found: "
                "apt-get install postgresql (.ci/run does)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run initdb as"
        if shutil.which("runuser") is None:
            return "running as root and `runuser` is missing"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PgServer:
    """One server: `url(db)` for a database on it, `create_database()` for a fresh one."""

    def __init__(self) -> None:
        bindir = find_bindir()
        assert bindir is not None
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="reconciler-pg-"))
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]
        self.port = _free_port()
        self.data = self.root / "data"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_user, *args], check=True, capture_output=True, text=True,
                       timeout=120)

    def start(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust",
                  "-U", "reconciler", "-E", "UTF8", "--no-sync")
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c full_page_writes=off -c max_connections=300")
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l",
                      str(self.root / "server.log"), "-w", "-t", "60", "-o", options, "start")
        except subprocess.CalledProcessError as error:
            log = (self.root / "server.log")
            raise RuntimeError(f"pg_ctl start failed: {error.stderr}\n"
                               f"{log.read_text() if log.exists() else ''}") from None

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                      "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        secret = f":{password}" if password else ""
        return f"postgresql://reconciler{secret}@127.0.0.1:{self.port}/{database}"

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url(), autocommit=True)

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def terminate(self, backend_pid: int) -> None:
        """Ends one server session, as a network cut or a server restart would."""
        with self.admin() as conn:
            conn.execute("SELECT pg_terminate_backend(%s, 10000)", (backend_pid,))
