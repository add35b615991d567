"""Real PostgreSQL with pg_cron for every test: the schema is built once in a template
database, and each test gets its own database cloned from it."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from pytools.demo import create_roles
from pytools.migrations import migrate
from pytools.sql_files import sample_file
from tests.helpers.databases import TEMPLATE, create_database, drop_database
from tests.helpers.servers import test_server

_counter = itertools.count()


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """Superuser URL of the `postgres` database, where pg_cron lives."""
    with test_server() as (url, backend):
        print(f"\ntest PostgreSQL from {backend}")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
            # cluster-wide, so once, before the template is migrated (migrate grants them access)
            create_roles(conn)
        yield url


@pytest.fixture(scope="session")
def template_url(server: str) -> Iterator[str]:
    """The schema built once: the app's source tables plus every migration and routine."""
    url = create_database(server, TEMPLATE)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sample_file("source_tables.sql").read_text().encode())
    migrate(url)
    yield url
    drop_database(server, TEMPLATE)


@pytest.fixture
def empty_db_url(server: str) -> Iterator[str]:
    """A database with nothing in it, for install and error tests."""
    name = f"pjp_empty_{os.getpid()}_{next(_counter)}"
    yield create_database(server, name)
    drop_database(server, name)


@pytest.fixture
def db_url(server: str, template_url: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own."""
    name = f"pjp_test_{os.getpid()}_{next(_counter)}"
    yield create_database(server, name, template=TEMPLATE)
    drop_database(server, name)


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """Autocommit connection (the procedure COMMITs) returning dict rows."""
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        yield conn
