"""A throwaway PostgreSQL server for the test run, started from the machine's PostgreSQL binaries.

`TEST_DATABASE=postgresql` selects it; `TEST_DATABASE_URL` uses a server you run yourself.
Each test gets its own database, so tests never see each other's rows.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.harness import free_port


def find_bin(name: str) -> str | None:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else shutil.which(name)


@dataclass
class PostgresServer:
    directory: Path
    port: int
    process_user: str | None

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        command = list(args)
        if self.process_user:
            command = ["runuser", "-u", self.process_user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    @classmethod
    def start(cls) -> PostgresServer:
        initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
        if not initdb or not pg_ctl:
            raise RuntimeError("PostgreSQL binaries not found: apt-get install -y postgresql")
        directory = Path(tempfile.mkdtemp(prefix="bot-pg-"))
        # PostgreSQL refuses to run as root; CI runs as root, so use the package's `postgres` user.
        user = "postgres" if os.geteuid() == 0 else None
        if user:
            shutil.chown(directory, user=user)
        server = cls(directory=directory, port=free_port(), process_user=user)
        data = directory / "data"
        server._run(initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
        options = (
            f"-p {server.port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        server._run(pg_ctl, "-D", str(data), "-o", options, "-l", str(directory / "log"), "-w", "-t", "60", "start")
        return server

    def stop(self) -> None:
        pg_ctl = find_bin("pg_ctl")
        if pg_ctl:
            with contextlib.suppress(subprocess.CalledProcessError):
                self._run(pg_ctl, "-D", str(self.directory / "data"), "-m", "immediate", "-w", "stop")
        # A run leaves a database per test (gigabytes of small files): removing them took ~55 s at the end
        # of every PostgreSQL run, so a detached `rm` does it while the next step goes on.
        subprocess.Popen(
            ["rm", "-rf", str(self.directory)],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


_counter = itertools.count(1)  # numbers this process's databases


def create_database(admin_url: str) -> str:
    """A fresh, empty database on the server; returns its name."""
    import psycopg

    name = f"t_{os.getpid()}_{next(_counter)}_{int(time.time() * 1000) % 100000}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name
