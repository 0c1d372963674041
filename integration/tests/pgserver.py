"""A real, throwaway PostgreSQL server for the tests: initdb and pg_ctl in a temporary
directory, listening on 127.0.0.1 at a free port, trust authentication, fsync off.

The binaries come from STACKCI_PG_BINDIR, else `pg_config --bindir`, else the newest
/usr/lib/postgresql/*/bin (Debian's `postgresql` package, which .ci/run installs when missing),
else PATH. initdb refuses to run as root, so under root the server runs as `nobody` (its data
directory handed over to that user): no account is created. Where no server can be had,
`server_or_skip` says why and the PostgreSQL tests are skipped with that reason.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

USER = "stackci"


def find_bindir() -> Path | None:
    candidates = [os.environ.get("STACKCI_PG_BINDIR", "")]
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(found.stdout.strip())
    by_version = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit()
                        else 0)
    candidates += reversed(by_version)
    if shutil.which("initdb"):
        candidates.append(str(Path(shutil.which("initdb")).parent))
    for candidate in filter(None, candidates):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="stackci-pg-"))
        self.data, self.log = self.root / "data", self.root / "server.log"
        self.port = free_port()
        self._as = {}
        if os.geteuid() == 0:  # initdb: "cannot be run as root"
            nobody = pwd.getpwnam("nobody")
            os.chown(self.root, nobody.pw_uid, nobody.pw_gid)
            self._as = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}

    def _run(self, tool: str, *args: str) -> None:
        found = subprocess.run([str(self.bindir / tool), *args], capture_output=True, text=True,
                               cwd=self.root, **self._as)
        if found.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed ({found.returncode}): {found.stderr.strip()} "
                               f"{log[-2000:]}")

    def start(self) -> "PostgresServer":
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--no-instructions")
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w",
                  "-t", "60", "start")
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database on this server; its SQLAlchemy URL."""
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={USER} dbname=postgres",
                             autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def server_or_skip_reason() -> tuple[PostgresServer | None, str]:
    bindir = find_bindir()
    if bindir is None:
        return None, ("no PostgreSQL server binaries (initdb, pg_ctl) found: install Debian's "
                      "`postgresql` (.ci/run does) or set STACKCI_PG_BINDIR")
    try:
        return PostgresServer(bindir).start(), ""
    except (OSError, RuntimeError, KeyError) as exc:
        return None, f"PostgreSQL at {bindir} would not start: {exc}"
