"""A throwaway local PostgreSQL cluster with pg_cron preloaded, for the demo.

initdb refuses to run as root, so when we are root every server command runs as the
unprivileged `postgres` user, which must own the data directory.

The cluster is reachable only through a Unix socket in its own data directory, which initdb
makes 0700: only the account that runs the server (and root) can connect. It listens on no
TCP port, so no other local account can reach its superuser; pg_cron connects through the
same socket (cron.host accepts a socket directory).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import psycopg

from pytools.config import build_url
from pytools.errors import ExitCode, UserError

SERVER_USER = "postgres"
SERVER_SETTINGS = {
    "shared_preload_libraries": "'pg_cron'",
    # pg_cron's scheduler lives in `postgres` and reaches other databases through cron.host
    # (see private_socket: the socket directory).
    "cron.database_name": "'postgres'",
    # A throwaway cluster: durability is not worth its cost here.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


# A Unix socket's path (directory + "/.s.PGSQL.<port>") must fit in 107 bytes.
MAX_SOCKET_DIR = 107 - len("/.s.PGSQL.65535")
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_./-]+")


def socket_dir_fits(path: Path) -> bool:
    """Whether `path` can be a socket directory: short enough, and nothing to quote in a setting."""
    text = str(path.absolute())
    return len(text.encode()) <= MAX_SOCKET_DIR and _PLAIN_PATH.fullmatch(text) is not None


def private_socket(directory: Path, tcp: str = "") -> dict[str, str]:
    """Settings for a server whose only unauthenticated door is a socket in `directory`, which
    must be 0700 and the server user's; `tcp`: the addresses it also listens on (password only)."""
    return {
        "listen_addresses": f"'{tcp}'",
        "unix_socket_directories": f"'{directory}'",
        "unix_socket_permissions": "0700",
        "cron.host": f"'{directory}'",
    }


# Trust on the private socket only; any TCP connection must give a password (scram-sha-256).
HBA = (
    "# patient-journey-pipeline: the socket's directory is private (0700); TCP needs a password\n"
    "local all all trust\n"
    "local replication all trust\n"
    "host all all 127.0.0.1/32 scram-sha-256\n"
    "host all all ::1/128 scram-sha-256\n"
)
_MARKER = "# patient-journey-pipeline: private socket"


def find_bindir() -> Path:
    """PostgreSQL server binaries: $PG_BINDIR, else the newest /usr/lib/postgresql/*/bin."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    if not candidates:
        raise UserError(
            "PostgreSQL server binaries not found: apt-get install postgresql-15 postgresql-15-cron "
            "(or set PG_BINDIR)",
            ExitCode.USAGE,
        )
    return candidates[-1].parent


def as_server_user(argv: list[str]) -> list[str]:
    """The command, run as the unprivileged server user when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", SERVER_USER, "--", *argv]
    return argv


def server_user_can_use(path: Path) -> bool:
    """Whether the server user can create files in `path` (it must reach every parent)."""
    if os.geteuid() != 0:
        return os.access(path, os.W_OK | os.X_OK)
    probe = subprocess.run(as_server_user(["test", "-x", str(path)]), check=False)
    return probe.returncode == 0


def give_to_server_user(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, SERVER_USER, SERVER_USER)


class LocalCluster:
    def __init__(
        self,
        datadir: Path,
        port: int,
        bindir: Path | None = None,
        settings: Mapping[str, str | None] | None = None,
    ) -> None:
        """`settings`: written over SERVER_SETTINGS and the private socket's (None: left out)."""
        self.datadir = datadir
        self.port = port
        self.bindir = bindir or find_bindir()
        self.logfile = datadir / "server.log"
        self.settings = dict(settings or {})

    def url(self, dbname: str = "postgres") -> str:
        """The URL through the private socket (the data directory); no password in it."""
        return build_url(
            {"user": SERVER_USER, "host": str(self.datadir), "port": str(self.port), "dbname": dbname}
        )

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(as_server_user(list(argv)), capture_output=True, text=True, check=False)

    def _check(self, what: str, result: subprocess.CompletedProcess[str]) -> None:
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise UserError(
                f"{what} failed: {detail[-1] if detail else 'no output'} (see {self.logfile})",
                ExitCode.CONNECTION,
            )

    @property
    def initialised(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def init(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        give_to_server_user(self.datadir)
        os.chmod(self.datadir, 0o700)
        self._check(
            "initdb",
            self._run(
                str(self.bindir / "initdb"),
                "-D", str(self.datadir),
                "-U", SERVER_USER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ),
        )  # fmt: skip
        self.make_private()

    def _is_private(self) -> bool:
        return _MARKER in (self.datadir / "postgresql.conf").read_text(encoding="utf-8")

    def make_private(self) -> None:
        """Only the private socket, in postgresql.conf and pg_hba.conf (also for a cluster made
        by an older demo, which listened on 127.0.0.1 with trust)."""
        if not socket_dir_fits(self.datadir):
            raise UserError(
                f"the data directory {self.datadir} cannot hold the server's socket (at most "
                f"{MAX_SOCKET_DIR} bytes, letters, digits and _./- only): use a shorter path",
                ExitCode.USAGE,
            )
        settings = {**SERVER_SETTINGS, **private_socket(self.datadir), **self.settings}
        lines = "\n".join(f"{key} = {value}" for key, value in settings.items() if value is not None)
        with (self.datadir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(f"\n{_MARKER}\nport = {self.port}\n{lines}\n")
        (self.datadir / "pg_hba.conf").write_text(HBA, encoding="utf-8")

    def is_running(self) -> bool:
        if not self.initialised:
            return False
        return self._run(str(self.bindir / "pg_ctl"), "status", "-D", str(self.datadir)).returncode == 0

    def start(self) -> None:
        if not self.initialised:
            self.init()
        if not self._is_private():
            self.stop()
            self.make_private()
        if self.is_running():
            return
        self._check(
            "starting PostgreSQL",
            self._run(
                str(self.bindir / "pg_ctl"), "start", "-w", "-t", "60",
                "-D", str(self.datadir), "-l", str(self.logfile),
            ),
        )  # fmt: skip

    def stop(self) -> bool:
        """Stop the server if it runs; True when it was running."""
        if not self.is_running():
            return False
        self._check(
            "stopping PostgreSQL",
            self._run(str(self.bindir / "pg_ctl"), "stop", "-m", "fast", "-D", str(self.datadir)),
        )
        return True


def free_port() -> int:
    """A TCP port nothing listens on now (on 127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_accepting(url: str, timeout: float = 90.0) -> None:
    """pg_ctl -w can return while a loaded machine still has the server starting up."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(url, connect_timeout=5).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextmanager
def throwaway_cluster(
    settings: Mapping[str, str | None] | None = None,
    *,
    prefix: str = "pjp-cluster-",
    port: int | None = None,
    make: Callable[[LocalCluster], None] | None = None,
) -> Iterator[LocalCluster]:
    """A cluster of its own for a test or a benchmark, stopped and removed on exit.

    In a new temporary directory that the server user owns: the data directory `data` (0700,
    the only door without a password is the socket in it) and `server.log` beside it.
    `settings` go over SERVER_SETTINGS (None leaves one out); `make` builds the data directory
    instead of initdb (say, pg_basebackup of another cluster); `port` defaults to a free one.
    """
    base = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        base.chmod(0o755)  # the server user reaches its data directory inside
        give_to_server_user(base)
        cluster = LocalCluster(base / "data", port or free_port(), settings=settings)
        cluster.logfile = base / "server.log"
        if make is None:
            cluster.init()
        else:
            make(cluster)
            cluster.make_private()  # its own port and socket over what `make` copied
        try:
            cluster.start()
            wait_until_accepting(cluster.url())
            yield cluster
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
