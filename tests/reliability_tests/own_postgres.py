"""A throwaway PostgreSQL cluster of the test's own (initdb + pg_ctl on a free port in a temporary folder),
which the test may stop and restart: never the shared server that ADAMTUNE_TEST_POSTGRES_URL names."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from _require_all import missing
from reliability_tests.workers import free_port

PG_BIN = Path(os.environ.get("ADAMTUNE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


@dataclass
class Cluster:
    folder: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, *args: str) -> None:
        _as_owner(PG_BIN / "pg_ctl", "-D", str(self.folder / "data"), "-w", "-t", "120", *args)

    def start(self) -> None:
        self.pg_ctl("-l", str(self.folder / "server.log"), "-o",
                    f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self) -> None:
        """Fast shutdown: every session is terminated, as in a real restart."""
        self.pg_ctl("-m", "fast", "stop")


@contextlib.contextmanager
def own_cluster() -> Iterator[Cluster]:
    """A fresh cluster, trusted for `postgres` on 127.0.0.1 only; stopped and deleted afterwards, even on failure.
    As root, initdb and pg_ctl run as the `postgres` user (initdb refuses root) in a folder it owns."""
    if not (PG_BIN / "initdb").exists():
        missing(f"no PostgreSQL server binaries in {PG_BIN} (set ADAMTUNE_TEST_PG_BIN)")
    folder = Path(tempfile.mkdtemp(prefix="adamtune-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    cluster = Cluster(folder, free_port())
    try:
        _as_owner(PG_BIN / "initdb", "-D", str(folder / "data"), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-sync")
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            if (folder / "data" / "postmaster.pid").exists():
                cluster.pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def _as_owner(*command: str | Path) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    done = subprocess.run([*prefix, *map(str, command)], capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, done.args, done.stdout, done.stderr)
