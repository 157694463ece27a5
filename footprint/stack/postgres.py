"""A PostgreSQL server for the embedded stack, from the system's binaries or the pgserver wheel."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from glob import glob
from pathlib import Path
from typing import Any

from footprint.stack.process import ServerProcess, ServerStartError, run_checked

__all__ = ["PostgresServer", "find_postgres_bindir"]

_TOOLS = ("initdb", "postgres", "pg_ctl")
SERVER_USER = "postgres"
# Unix socket paths are capped at 104-108 bytes; leave room for "/.s.PGSQL.65535.lock".
_MAX_SOCKET_DIR = 80
# Test-friendly settings: no fsync at all. A crash of the OS (not of postgres) can corrupt the
# cluster, acceptable for tests and `make run`'s throwaway data; pass durable=True otherwise.
_FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


def _has_tools(bindir: Path) -> bool:
    return all(os.access(bindir / tool, os.X_OK) for tool in _TOOLS)


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path))


def _pgserver_bindir() -> Path | None:
    # Located without importing pgserver (whose import is heavy); the wheel keeps a whole
    # PostgreSQL install in pgserver/pginstall.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        bindir = Path(location) / "pginstall" / "bin"
        if _has_tools(bindir):
            return bindir
    return None


def find_postgres_bindir() -> Path:
    """The directory holding initdb, postgres and pg_ctl: PATH, pg_config, known dirs, pgserver."""
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        # Debian symlinks into /usr/lib/postgresql/N/bin, where the postgres binary lives.
        candidates.append(Path(on_path).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=False
            )
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(Path(out.stdout.strip()))
    patterns = (
        "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
        "/usr/pgsql-*/bin",  # RHEL, Fedora (PGDG)
        "/opt/homebrew/opt/postgresql*/bin",  # Homebrew, Apple silicon
        "/usr/local/opt/postgresql*/bin",  # Homebrew, Intel
        "/Applications/Postgres.app/Contents/Versions/*/bin",
    )
    for pattern in patterns:
        candidates.extend(Path(p) for p in sorted(glob(pattern), key=_version_key, reverse=True))
    for bindir in candidates:
        if _has_tools(bindir):
            return bindir
    bundled = _pgserver_bindir()
    if bundled is not None:
        return bundled
    install = (
        "brew install postgresql" if sys.platform == "darwin" else "apt-get install postgresql"
    )
    raise ServerStartError(
        "no PostgreSQL server binaries (initdb, postgres, pg_ctl) found on PATH, via pg_config, "
        f"or in the usual install dirs: {install}, or pip install pgserver, "
        "or point FOOTPRINT_POSTGRES_URL at a running server"
    )


def _make_traversable(path: Path) -> None:
    # Root runs the server as the postgres user, which must be able to walk down to the data dir;
    # pytest's /tmp/pytest-of-root and /root are 0700. Only o+x (enter, not list) is added.
    for directory in (path, *path.parents):
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(directory, stat.S_IMODE(mode) | stat.S_IXOTH)


class PostgresServer(ServerProcess):
    """A PostgreSQL cluster in ``data_dir/pgdata`` on 127.0.0.1, trust auth, user ``postgres``."""

    name = "postgres"
    # SIGINT is postgres's "fast" shutdown, what `pg_ctl stop -m fast` sends: SIGTERM would be
    # "smart" and wait for every pooled client to disconnect.
    stop_signal = signal.SIGINT

    def __init__(
        self,
        data_dir: Path | str,
        port: int | None = None,
        *,
        database: str = "footprint",
        durable: bool = False,
        bindir: Path | str | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        super().__init__(data_dir, port, start_timeout=start_timeout)
        self.database = database
        self.durable = durable
        self.bindir: Path | None = Path(bindir) if bindir is not None else None
        self._temp_socket_dir: Path | None = None
        self._socket_dir: Path | None = None

    @property
    def pgdata(self) -> Path:
        """The cluster directory (kept across restarts)."""
        return self.data_dir / "pgdata"

    @property
    def url(self) -> str:
        """``postgresql://postgres@127.0.0.1:PORT/<database>``."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        """A URL for another database on this server."""
        return f"postgresql://{SERVER_USER}@{self.host}:{self.port}/{database}"

    # --- running as the postgres user when we are root ---

    def _as_server_user(self) -> dict[str, Any]:
        # initdb and postgres refuse to run as root. Popen(user=...) switches user in the child
        # just before exec: the same as `runuser -u postgres --`, minus a runuser process between
        # us and the postmaster, so our pid and process group are the postmaster's own.
        if os.geteuid() != 0:
            return {}
        entry = self._server_user()
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _server_user(self) -> pwd.struct_passwd:
        try:
            return pwd.getpwnam(SERVER_USER)
        except KeyError:
            pass
        # A machine with only the pgserver wheel has no postgres user; pgserver makes one too.
        run_checked(
            ["useradd", "--system", "--user-group", "--no-create-home", SERVER_USER],
            f"creating the {SERVER_USER} system user",
        )
        return pwd.getpwnam(SERVER_USER)

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            entry = self._server_user()
            os.chown(path, entry.pw_uid, entry.pw_gid)

    # --- lifecycle hooks ---

    def prepare(self) -> None:
        """Find the binaries, make the dirs reachable, initdb on first use."""
        if self.bindir is None:
            self.bindir = find_postgres_bindir()
        if os.geteuid() == 0:
            _make_traversable(self.data_dir)
        self._socket_dir = self._make_socket_dir()
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        self._chown(self.pgdata)
        try:
            run_checked(
                [
                    str(self.bindir / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    SERVER_USER,
                    "--auth=trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    # C locale: no dependence on the host's generated locales, and faster sorts.
                    "--locale=C",
                ],
                f"initdb in {self.pgdata}",
                cwd=str(self.data_dir),
                **self._as_server_user(),
            )
        except PermissionError as e:
            raise ServerStartError(
                f"cannot run {self.bindir}/initdb as {SERVER_USER}: its directory must be "
                f"readable by that user ({e})"
            ) from e

    def _make_socket_dir(self) -> Path:
        sock = self.data_dir / "sock"
        if len(str(sock)) > _MAX_SOCKET_DIR:
            self._temp_socket_dir = Path(tempfile.mkdtemp(prefix="fp-pg-"))
            sock = self._temp_socket_dir
        sock.mkdir(exist_ok=True)
        self._chown(sock)
        return sock

    def command(self) -> list[str]:
        """The postmaster in the foreground."""
        assert self.bindir is not None and self._socket_dir is not None
        argv = [
            str(self.bindir / "postgres"),
            "-D",
            str(self.pgdata),
            "-p",
            str(self.port),
            "-k",
            str(self._socket_dir),
            "-c",
            f"listen_addresses={self.host}",
        ]
        if not self.durable:
            for setting in _FAST_SETTINGS:
                argv += ["-c", setting]
        return argv

    def popen_kwargs(self) -> dict[str, Any]:
        """Run as the postgres user when we are root."""
        return {"cwd": str(self.data_dir), **self._as_server_user()}

    def probe(self) -> bool:
        """A real ``select 1``: the port opens before the server accepts queries."""
        import psycopg

        with psycopg.connect(self.url_for("postgres"), connect_timeout=2) as conn:
            return conn.execute("select 1").fetchone() == (1,)

    def after_ready(self) -> None:
        """Create the application database if it is missing."""
        import psycopg
        from psycopg import errors, sql

        with psycopg.connect(self.url_for("postgres"), autocommit=True) as conn:
            found = conn.execute(
                "select 1 from pg_database where datname = %s", (self.database,)
            ).fetchone()
            if found is None:
                # Two stacks racing on one data dir: the loser's error is harmless.
                with contextlib.suppress(errors.DuplicateDatabase):
                    conn.execute(
                        sql.SQL("create database {}").format(sql.Identifier(self.database))
                    )

    def after_stop(self) -> None:
        """Remove a temporary socket dir."""
        if self._temp_socket_dir is not None:
            shutil.rmtree(self._temp_socket_dir, ignore_errors=True)
            self._temp_socket_dir = None
