"""Where the tests' PostgreSQL (with pg_cron) comes from, in this order:

1. TEST_DATABASE_URL: a server you run, reached as a superuser; pg_cron preloaded there.
2. A testcontainers PostgreSQL 15 with pg_cron, when a Docker engine answers.
3. A cluster that pytest-postgresql starts from the local binaries (as `postgres` when root).
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pytools.cluster import HBA, SERVER_SETTINGS, SERVER_USER, find_bindir, private_socket
from pytools.config import build_url

DOCKERFILE_DIR = Path(__file__).resolve().parents[1] / "docker"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def docker_answers() -> str | None:
    """None when a Docker engine answers, else why not."""
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=3).ping()
    except Exception as exc:
        return f"no Docker engine answers ({type(exc).__name__})"
    return None


@contextmanager
def container_server() -> Iterator[str]:
    """A testcontainers PostgreSQL built from tests/docker/Dockerfile (postgres:15 + pg_cron)."""
    from testcontainers.core.image import DockerImage  # type: ignore[import-untyped]
    from testcontainers.postgres import PostgresContainer  # type: ignore[import-untyped]

    with DockerImage(path=str(DOCKERFILE_DIR), tag="patient-journey-pipeline-test:15") as image:
        container = PostgresContainer(str(image), username="postgres", password="postgres", dbname="postgres")
        container.with_command("postgres -c shared_preload_libraries=pg_cron -c cron.database_name=postgres")
        with container:
            host = container.get_container_host_ip()
            port = container.get_exposed_port(5432)
            yield f"postgresql://postgres:postgres@{host}:{port}/postgres"


def _pg_ctl_wrapper(directory: Path) -> Path:
    """pytest-postgresql calls pg_ctl; as root it must run as the server user."""
    real = find_bindir() / "pg_ctl"
    wrapper = directory / "pg_ctl"
    if os.geteuid() == 0:
        wrapper.write_text(f'#!/bin/sh\nexec runuser -u {SERVER_USER} -- "{real}" "$@"\n')
    else:
        wrapper.write_text(f'#!/bin/sh\nexec "{real}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return wrapper


@contextmanager
def local_server(preload_cron: bool = True) -> Iterator[str]:
    """A throwaway local cluster; preload_cron=False leaves pg_cron (and its cron.* settings) out."""
    from pytest_postgresql.executors.proc import PostgreSQLExecutor

    # 0700 and the server user's: the socket in it is the only door without a password; TCP on
    # 127.0.0.1 (which pytest-postgresql polls, and some tests use) wants scram-sha-256.
    base = Path(tempfile.mkdtemp(prefix="pjp-tests-"))
    if os.geteuid() == 0:
        shutil.chown(base, SERVER_USER, SERVER_USER)
    hba = base / "pg_hba.conf"
    hba.write_text(HBA)
    port = free_port()
    settings = {**SERVER_SETTINGS, **private_socket(base, tcp="127.0.0.1"), "hba_file": f"'{hba}'"}
    options = " ".join(
        f"-c {key}={value}"
        for key, value in settings.items()
        if key != "unix_socket_directories"  # pytest-postgresql sets it from unixsocketdir
        and (preload_cron or (key != "shared_preload_libraries" and not key.startswith("cron.")))
    )
    executor = PostgreSQLExecutor(
        executable=str(_pg_ctl_wrapper(base)),
        host="127.0.0.1",
        port=port,
        datadir=str(base / "data"),
        unixsocketdir=str(base),
        logfile=str(base / "server.log"),
        startparams="-w",
        dbname="postgres",
        user=SERVER_USER,
        postgres_options=options + " -c max_connections=200",
    )
    executor.start()
    url = build_url({"user": SERVER_USER, "host": str(base), "port": str(port), "dbname": "postgres"})
    try:
        wait_until_accepting(url)
        yield url
    finally:
        executor.stop()
        shutil.rmtree(base, ignore_errors=True)


def wait_until_accepting(url: str, timeout: float = 90.0) -> None:
    """pg_ctl -w can return while a loaded machine still has the server starting up."""
    import psycopg

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
def test_server() -> Iterator[tuple[str, str]]:
    """(superuser URL to the `postgres` database, which backend it is)."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield os.environ["TEST_DATABASE_URL"], "TEST_DATABASE_URL"
        return
    if docker_answers() is None:
        with container_server() as url:
            yield url, "testcontainers"
        return
    with local_server() as url:
        yield url, "pytest-postgresql"
