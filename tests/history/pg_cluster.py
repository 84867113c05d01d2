"""A throw-away PostgreSQL cluster for the history tests: initdb + pg_ctl in a temp dir, 127.0.0.1 only."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

SUPERUSER = "bastion"
# Debian's postgresql package installs its binaries here (not on PATH); other systems put them on PATH.
DEBIAN_GLOB = "/usr/lib/postgresql/*/bin"


def find_pg_bin() -> Path | None:
    """The directory holding initdb and pg_ctl: on PATH, /usr/local/bin, or Debian's versioned dirs."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).parent] if on_path else []
    candidates.append(Path("/usr/local/bin"))
    candidates += [Path(p) for p in sorted(glob.glob(DEBIAN_GLOB), reverse=True)]  # newest version first
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres_user(argv: list[str]) -> list[str]:
    """initdb refuses to run as root: drop to `nobody` when we are root."""
    if os.geteuid() != 0:
        return argv
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "nobody", "--", *argv]
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv]


@dataclass
class PgCluster:
    """A running cluster; `database_url(name)` creates a fresh database and returns its SQLAlchemy URL."""

    bin_dir: Path
    root: Path
    port: int
    created: int = 0

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _run(self, *args: str) -> None:
        out = subprocess.run(_as_postgres_user([str(self.bin_dir / args[0]), *args[1:]]), capture_output=True,
                             text=True, cwd=self.root, timeout=120, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({out.returncode}): {out.stderr or out.stdout}")

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                  "--no-instructions", "--locale=C")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w",
                  "-t", "120", "start")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres",
                               autocommit=True)

    def database_url(self, prefix: str = "h") -> str:
        """A new, empty database on the cluster."""
        self.created += 1
        name = f"{prefix}_{os.getpid()}_{self.created}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{name}"


def start_cluster(bin_dir: Path) -> PgCluster:
    """Start a cluster in a new temp dir (owned by the user the server runs as); retry on a taken port."""
    root = Path(tempfile.mkdtemp(prefix="bastion-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "nobody")
    last: Exception | None = None
    for _attempt in range(3):
        cluster = PgCluster(bin_dir=bin_dir, root=root, port=_free_port())
        try:
            cluster.start()
            return cluster
        except RuntimeError as exc:  # most likely the port was taken between probing and binding
            last = exc
            shutil.rmtree(cluster.data, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
    raise RuntimeError(f"cannot start a PostgreSQL cluster: {last}")


def remove_cluster(cluster: PgCluster) -> None:
    try:
        cluster.stop()
    finally:
        shutil.rmtree(cluster.root, ignore_errors=True)
