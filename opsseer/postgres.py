"""A private PostgreSQL server for the local stack and the tests: initdb, start, create the database.

PostgreSQL refuses to run as root, so as root the server runs as the `postgres` system user. Its data
directory must then be reachable by that user. When the state directory is not (for example under a
mode-700 home directory), the data lives under /var/lib/opsseer and the state directory contains a symlink to it.
"""

import hashlib
import logging
import os
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from opsseer.supervisor import Component

logger = logging.getLogger(__name__)

SUPERUSER = "opsseer"
DATABASE = "opsseer"
FALLBACK_ROOT = Path("/var/lib/opsseer")
# Server settings for throwaway test clusters: durability is not needed there and fsync dominates run time.
FAST_UNSAFE_OPTIONS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


class PostgresSetupError(RuntimeError):
    """initdb failed, PostgreSQL's binaries are missing or a data directory lacks its password file."""


def find_bin_dir() -> Path:
    """Return the newest /usr/lib/postgresql/<version>/bin, or OPSSEER_PG_BIN when set."""
    configured = os.environ.get("OPSSEER_PG_BIN")
    if configured:
        return Path(configured)
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda path: int(path.parent.parent.name))
    if not candidates:
        raise PostgresSetupError(
            "PostgreSQL server binaries not found under /usr/lib/postgresql; run `make setup` "
            "(apt-get install postgresql) or set OPSSEER_PG_BIN"
        )
    return candidates[-1].parent


@dataclass(frozen=True)
class PostgresCluster:
    data_dir: Path
    port: int
    password: str
    run_as: str | None

    @property
    def url(self) -> str:
        return self.url_for(DATABASE)

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{database}"

    def libpq_url(self, database: str) -> str:
        return self.url_for(database).replace("postgresql+psycopg://", "postgresql://")


def _run_as() -> str | None:
    return "postgres" if os.geteuid() == 0 else None


def _reachable_by(user: str, directory: Path) -> bool:
    result = subprocess.run(["test", "-x", str(directory)], user=user, capture_output=True, check=False)
    return result.returncode == 0


def init_cluster(state_dir: Path, port: int) -> PostgresCluster:
    """Create (once) a cluster under state_dir and return how to reach it; later calls reuse it."""
    run_as = _run_as()
    data_dir = state_dir / "postgres"
    if run_as and not data_dir.is_symlink() and not data_dir.exists() and not _reachable_by(run_as, state_dir):
        target = fallback_dir(state_dir) / "postgres"
        if target.exists():
            # Its state directory, and with it the password, was deleted: the data can no longer be used.
            logger.warning("deleting PostgreSQL data %s left behind by a deleted state directory %s", target, state_dir)
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(target.parent.parent, 0o755)
        os.chmod(target.parent, 0o755)
        logger.info("%s is not reachable by the postgres user; keeping PostgreSQL data in %s", state_dir, target)
        data_dir.symlink_to(target, target_is_directory=True)
    real_dir = data_dir.resolve()

    password_file = state_dir / "secrets" / "postgres_password"
    if not (real_dir / "PG_VERSION").exists():
        password_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        password = secrets.token_urlsafe(24)
        password_file.write_text(password)
        password_file.chmod(0o600)
        _initdb(real_dir, password, run_as)
    if not password_file.exists():
        raise PostgresSetupError(
            f"PostgreSQL data in {real_dir} has no password file at {password_file}; "
            f"remove {real_dir} to create a new cluster"
        )
    password = password_file.read_text().strip()
    return PostgresCluster(data_dir=real_dir, port=port, password=password, run_as=run_as)


def _initdb(data_dir: Path, password: str, run_as: str | None) -> None:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    pwfile = data_dir.parent / f".pwfile-{os.getpid()}"
    pwfile.write_text(password + "\n")
    if run_as:
        shutil.chown(data_dir, run_as, run_as)
        shutil.chown(pwfile, run_as, run_as)
    pwfile.chmod(0o600)
    try:
        result = subprocess.run(
            [
                str(find_bin_dir() / "initdb"),
                "--pgdata", str(data_dir),
                "--username", SUPERUSER,
                "--pwfile", str(pwfile),
                "--auth", "scram-sha-256",
                "--encoding", "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            user=run_as,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        raise PostgresSetupError(f"initdb in {data_dir} failed with exit code {result.returncode}: {result.stderr.strip()}")


def fallback_dir(state_dir: Path) -> Path:
    """Return the directory under /var/lib/opsseer that belongs to state_dir."""
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]
    return FALLBACK_ROOT / digest


def purge_state(state_dir: Path) -> list[Path]:
    """Delete a state directory and every PostgreSQL data directory it links to; return what was deleted."""
    removed = []
    for link in sorted(state_dir.rglob("postgres")):
        if link.is_symlink():
            target = link.resolve()
            if FALLBACK_ROOT in target.parents:
                shutil.rmtree(target.parent, ignore_errors=True)
                removed.append(target.parent)
    shutil.rmtree(state_dir)
    removed.append(state_dir)
    return removed


def remove_cluster(cluster: PostgresCluster) -> None:
    """Delete a stopped cluster's data, including data kept outside the state directory."""
    if FALLBACK_ROOT in cluster.data_dir.parents:
        shutil.rmtree(cluster.data_dir.parent, ignore_errors=True)
    else:
        shutil.rmtree(cluster.data_dir, ignore_errors=True)


def postgres_component(cluster: PostgresCluster, *, extra_options: tuple[str, ...] = ()) -> Component:
    options = ["listen_addresses=127.0.0.1", "unix_socket_directories=", "max_connections=200", *extra_options]
    argv = [str(find_bin_dir() / "postgres"), "-D", str(cluster.data_dir), "-p", str(cluster.port)]
    for option in options:
        argv += ["-c", option]
    return Component(
        name="postgres",
        argv=argv,
        url=f"postgresql://127.0.0.1:{cluster.port}/{DATABASE}",
        ready=lambda: _can_connect(cluster),
        ready_timeout=60,
        user=cluster.run_as,
        cwd=Path("/"),
        # SIGTERM is PostgreSQL's "smart" shutdown, which waits for every client to disconnect.
        stop_signal=signal.SIGINT,
    )


def _can_connect(cluster: PostgresCluster) -> bool:
    with psycopg.connect(cluster.libpq_url("postgres"), connect_timeout=2):
        return True


def create_database(cluster: PostgresCluster, name: str = DATABASE) -> None:
    """Create the database unless it exists."""
    with psycopg.connect(cluster.libpq_url("postgres"), autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
