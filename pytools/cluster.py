"""A throwaway local PostgreSQL cluster with pg_cron preloaded, for the demo.

initdb refuses to run as root, so when we are root every server command runs as the
unprivileged `postgres` user, which must own the data directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from pytools.errors import ExitCode, UserError

SERVER_USER = "postgres"
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "shared_preload_libraries": "'pg_cron'",
    # pg_cron's scheduler lives in `postgres` and reaches other databases over localhost.
    "cron.database_name": "'postgres'",
    "cron.host": "'127.0.0.1'",
    # A throwaway cluster: durability is not worth its cost here.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


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
    def __init__(self, datadir: Path, port: int, bindir: Path | None = None) -> None:
        self.datadir = datadir
        self.port = port
        self.bindir = bindir or find_bindir()
        self.logfile = datadir / "server.log"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}/{dbname}"

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
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ),
        )  # fmt: skip
        settings = "\n".join(f"{key} = {value}" for key, value in SERVER_SETTINGS.items())
        with (self.datadir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(f"\n# patient-journey-pipeline\nport = {self.port}\n{settings}\n")

    def is_running(self) -> bool:
        if not self.initialised:
            return False
        return self._run(str(self.bindir / "pg_ctl"), "status", "-D", str(self.datadir)).returncode == 0

    def start(self) -> None:
        if not self.initialised:
            self.init()
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
