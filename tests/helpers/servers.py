"""Where the tests' PostgreSQL (with pg_cron) comes from, in this order:

1. TEST_DATABASE_URL: a server you run, reached as a superuser; pg_cron preloaded there.
2. A testcontainers PostgreSQL 15 with pg_cron, when a Docker engine answers.
3. A throwaway cluster started from the local binaries (pytools.cluster.throwaway_cluster, run
   as `postgres` when root), reached through its private socket.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pytools.cluster import throwaway_cluster

DOCKERFILE_DIR = Path(__file__).resolve().parents[1] / "docker"
# pg_cron and what only it reads, left out of a cluster started with preload_cron=False
WITHOUT_CRON: dict[str, str | None] = {
    "shared_preload_libraries": None,
    "cron.database_name": None,
    "cron.host": None,
}


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
        container.with_command(
            "postgres -c shared_preload_libraries=pg_cron -c cron.database_name=postgres "
            "-c max_prepared_transactions=10"
        )
        with container:
            host = container.get_container_host_ip()
            port = container.get_exposed_port(5432)
            yield f"postgresql://postgres:postgres@{host}:{port}/postgres"


@contextmanager
def local_server(preload_cron: bool = True) -> Iterator[str]:
    """A throwaway local cluster's superuser URL (through its private socket); TCP on 127.0.0.1
    too (some tests use it), where every role must give a password. preload_cron=False leaves
    pg_cron (and its cron.* settings) out."""
    # prepared transactions: a test holds a lock in one, as an application may by mistake
    settings: dict[str, str | None] = {
        "listen_addresses": "'127.0.0.1'",
        "max_connections": "200",
        "max_prepared_transactions": "10",
    }
    if not preload_cron:
        settings.update(WITHOUT_CRON)
    with throwaway_cluster(settings, prefix="pjp-tests-") as cluster:
        yield cluster.url("postgres")


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
        yield url, "a local throwaway cluster"
