"""Databases of a test server, URLs with other connection parameters, and the grants README
"Roles" tells a DBA to give pipeline_owner."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from pytools.config import build_url, parse_url, with_database
from pytools.migrations import migrate
from pytools.sql_files import sample_file
from tests.helpers.pipeline import one_journey

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


def connect(url: str, user: str | None = None) -> psycopg.Connection[dict[str, Any]]:
    """An autocommit connection with dict rows, to `url` as `user` (None: as the URL says)."""
    if user is not None:
        url = with_params(url, user=user)
    return psycopg.connect(url, autocommit=True, row_factory=dict_row)


def grant_owner(
    conn: psycopg.Connection[Any], dbname: str, *, select: bool = True, trigger: bool = True
) -> None:
    """What README "Roles" tells the DBA to grant pipeline_owner, in this database."""
    conn.execute(f'GRANT CREATE ON DATABASE "{dbname}" TO pipeline_owner')
    rights = ", ".join(r for r, wanted in (("SELECT", select), ("TRIGGER", trigger)) if wanted)
    if rights:
        tables = ", ".join(f"public.{t}" for t in SOURCE_TABLES)
        conn.execute(f"GRANT {rights} ON {tables} TO pipeline_owner")


# What the source tables' owner's code tries with the reading role's rights (a setting changed,
# a table planted in schema pipeline), logging who ran it first (owner_code() returns true, for
# a policy or an expression).
OWNER_CODE = """
CREATE TABLE public.owner_code_ran (who text);
GRANT INSERT ON public.owner_code_ran TO PUBLIC;
CREATE FUNCTION public.owner_code() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO public.owner_code_ran (who) VALUES (current_user);
    BEGIN
        UPDATE pipeline.settings SET retention = '1 hour';
        CREATE TABLE pipeline.planted (who text);
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    RETURN true;
END;
$$;
"""

# A range type of the owner's whose subtype_diff runs owner_code(): the planner calls it while it
# estimates a clause on a column of the type (run OWNER_CODE first).
OWNER_RANGE_TYPE = [
    "CREATE FUNCTION public.owner_diff(int8, int8) RETURNS float8 LANGUAGE plpgsql IMMUTABLE AS $$ "
    "BEGIN PERFORM public.owner_code(); RETURN ($1 - $2)::float8; END $$",
    "CREATE TYPE public.owner_range AS RANGE (SUBTYPE = int8, SUBTYPE_DIFF = public.owner_diff)",
]


@dataclass
class Install:
    """A database installed as README "Roles" says, with the source tables owned by a role of
    their own (not pipeline_owner), which may run code of its choosing on them."""

    url: str  # a superuser's
    owner: str  # the source tables' owner

    def as_role(self, role: str) -> str:
        return with_params(self.url, user=role)


@contextmanager
def installed_with_a_tables_owner(empty_db_url: str, owner_code: str) -> Iterator[Install]:
    """The sample source tables created by a new role, which then runs `owner_code` (its own
    functions, say) and loads one journey; pipeline_owner granted what README "Roles" says and
    `migrate` run as it. The role and everything it owns are dropped afterwards."""
    owner = f"pjp_tables_owner_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {owner} LOGIN")
        conn.execute(f"GRANT CREATE ON SCHEMA public TO {owner}")
        conn.execute(f'GRANT CREATE ON DATABASE "{dbname(empty_db_url)}" TO pipeline_owner')
    try:
        with psycopg.connect(with_params(empty_db_url, user=owner), autocommit=True) as conn:
            conn.execute(sample_file("source_tables.sql").read_text(encoding="utf-8").encode())
            tables = ", ".join(f"public.{t}" for t in SOURCE_TABLES)
            conn.execute(f"GRANT SELECT, TRIGGER ON {tables} TO pipeline_owner")
            conn.execute(owner_code.encode())
            one_journey(conn)
        migrate(with_params(empty_db_url, user="pipeline_owner"))
        yield Install(empty_db_url, owner)
    finally:
        with psycopg.connect(empty_db_url, autocommit=True) as conn:
            conn.execute("ALTER ROLE pipeline_owner NOBYPASSRLS")
            conn.execute(f"DROP OWNED BY {owner} CASCADE")
            conn.execute(f"DROP ROLE {owner}")
