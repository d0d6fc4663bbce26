"""A throwaway PostgreSQL server for tests, started from the installed Debian binaries.

`running_postgres()` runs initdb into a temporary folder, starts the server on 127.0.0.1 and a
free port (trust auth for local and 127.0.0.1 connections only), creates a `tool_server`
database and yields its URL. On exit the server is stopped and the folder removed. When the
server cannot be started, `PostgresUnavailableError` says why, with initdb's or pg_ctl's output.

initdb refuses to run as root, so when the tests run as root the server programs run as the
`postgres` system user (through `runuser`), in a folder that user owns.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

__all__ = ["PostgresUnavailableError", "create_database", "find_server_binaries", "running_postgres"]

BIN_GLOB = "/usr/lib/postgresql/*/bin"
SERVER_USER = "postgres"
DATABASE = "tool_server"
START_TIMEOUT = 60.0

_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "250",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
}
_HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\n"


class PostgresUnavailableError(RuntimeError):
    """PostgreSQL could not be started; the message carries the real reason."""


def find_server_binaries() -> Path:
    """The newest installed `/usr/lib/postgresql/<version>/bin` holding initdb and pg_ctl."""
    candidates = [
        path
        for path in Path("/").glob(BIN_GLOB.lstrip("/"))
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file()
    ]
    if not candidates:
        raise PostgresUnavailableError(
            f"no PostgreSQL server binaries under {BIN_GLOB} (install the Debian `postgresql` package)"
        )

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)

    return max(candidates, key=version)


def _temp_parent() -> str | None:
    """Where to make the temp folder: the usual place, unless the server user could not reach it."""
    if os.geteuid() != 0:
        return None
    usual = Path(tempfile.gettempdir()).resolve()
    reachable = all(folder.stat().st_mode & 0o001 for folder in (usual, *usual.parents))
    return None if reachable else "/tmp"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Server:
    """One initdb'd data folder and the commands that drive it."""

    def __init__(self, root: Path, binaries: Path) -> None:
        self.root = root
        self.binaries = binaries
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = 0
        self._as_root = os.geteuid() == 0
        self._user: pwd.struct_passwd | None = None
        if self._as_root:
            try:
                self._user = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise PostgresUnavailableError(
                    f"running as root, and there is no {SERVER_USER!r} user to run initdb and pg_ctl as"
                ) from None
            os.chown(root, self._user.pw_uid, self._user.pw_gid)

    def run(self, program: str, *args: str, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess[str]:
        command = [str(self.binaries / program), *args]
        if self._as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        # cwd in the temp folder: the server user may not be able to read the caller's directory.
        return subprocess.run(
            command,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
        )

    def check(self, step: str, result: subprocess.CompletedProcess[str]) -> None:
        if result.returncode != 0:
            raise PostgresUnavailableError(
                f"{step} failed (exit {result.returncode}): {' '.join(map(str, result.args))}\n"
                f"{result.stdout}{result.stderr}{self.log_tail()}"
            )

    def log_tail(self) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n--- server log ---\n" + text[-4000:] if text.strip() else ""

    def init(self) -> None:
        self.check(
            "initdb",
            self.run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                SERVER_USER,
                "-E",
                "UTF8",
                "--no-locale",
                "--auth-local=trust",
                "--auth-host=trust",
                "--no-sync",
            ),
        )
        # Trust only the socket in the temp folder and 127.0.0.1; nothing else may connect.
        (self.data / "pg_hba.conf").write_text(_HBA)
        settings = {**_SETTINGS, "unix_socket_directories": f"'{self.root}'"}
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# tests/support/postgres.py\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def start(self) -> None:
        self.port = _free_port()
        result = self.run(
            "pg_ctl",
            "start",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            f"-p {self.port}",
            "-w",
            "-t",
            str(int(START_TIMEOUT)),
        )
        self.check("pg_ctl start", result)

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def stop(self) -> None:
        if not self.running:
            return
        result = self.run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "30")
        if result.returncode != 0 and self.running:
            self.run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30")
        if self.running:
            # Last resort: the postmaster's pid is the first line of its own pid file.
            with contextlib.suppress(OSError, ValueError, IndexError):
                os.kill(int((self.data / "postmaster.pid").read_text().split()[0]), signal.SIGKILL)

    def conninfo(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={SERVER_USER} dbname={database} connect_timeout=5"

    def wait_until_accepting(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.conninfo("postgres")) as connection:
                    connection.execute("SELECT 1")
                return
            except psycopg.OperationalError as error:
                if time.monotonic() > deadline:
                    raise PostgresUnavailableError(
                        f"PostgreSQL on 127.0.0.1:{self.port} did not accept connections within {timeout:.0f}s: "
                        f"{error}{self.log_tail()}"
                    ) from error
                time.sleep(0.1)


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """Start a private PostgreSQL on 127.0.0.1 and yield `postgresql://postgres@127.0.0.1:<port>/tool_server`."""
    binaries = find_server_binaries()
    root = Path(tempfile.mkdtemp(prefix="tool-server-pg-", dir=_temp_parent()))
    server: _Server | None = None
    try:
        server = _Server(root, binaries)
        server.init()
        for attempt in range(3):
            try:
                server.start()
                break
            except PostgresUnavailableError:
                # Another process may have taken the free port between the probe and the bind.
                server.stop()
                if attempt == 2 or "could not bind" not in server.log_tail():
                    raise
        server.wait_until_accepting()
        with psycopg.connect(server.conninfo("postgres"), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
        yield f"postgresql://{SERVER_USER}@127.0.0.1:{server.port}/{DATABASE}"
    finally:
        try:
            if server is not None:
                server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


def create_database(url: str, name: str) -> str:
    """Create the empty database `name` on the server behind `url`; return the URL that names it."""
    parsed = make_url(url)
    conninfo = psycopg.conninfo.make_conninfo(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or SERVER_USER,
        dbname=parsed.database or "postgres",
        connect_timeout=5,
    )
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return parsed.set(database=name).render_as_string(hide_password=False)
