"""Databases of a test server, URLs with other connection parameters, and the grants README
"Roles" tells a DBA to give pipeline_owner."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from pytools.config import build_url, parse_url, with_database

TEMPLATE = "pjp_template"  # the migrated schema, built once a session (conftest.template_url)
SOURCE_TABLES = ("patient_journey", "journey_activity", "activity", "schedule", "survey_result")


def create_database(server: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        clause = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{clause}')
    return with_database(server, name)


def drop_database(server: str, name: str) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute("DELETE FROM cron.job WHERE database = %s", (name,))
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def with_params(url: str, **params: str) -> str:
    """The URL with some connection parameters replaced (user, password, port, dbname...)."""
    return build_url({**parse_url(url), **params})


def dbname(url: str) -> str:
    return parse_url(url)["dbname"]


def connect(url: str, user: str) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(with_params(url, user=user), autocommit=True, row_factory=dict_row)


def grant_owner(
    conn: psycopg.Connection[Any], dbname: str, *, select: bool = True, trigger: bool = True
) -> None:
    """What README "Roles" tells the DBA to grant pipeline_owner, in this database."""
    conn.execute(f'GRANT CREATE ON DATABASE "{dbname}" TO pipeline_owner')
    rights = ", ".join(r for r, wanted in (("SELECT", select), ("TRIGGER", trigger)) if wanted)
    if rights:
        tables = ", ".join(f"public.{t}" for t in SOURCE_TABLES)
        conn.execute(f"GRANT {rights} ON {tables} TO pipeline_owner")
