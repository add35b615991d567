"""Apply yoyo migrations, then (re)create every routine; check that a database is migrated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from yoyo import get_backend, read_migrations
from yoyo.exceptions import LockTimeout

from pytools.config import yoyo_url
from pytools.db import connect, database_error
from pytools.errors import ExitCode, UserError
from pytools.sql_files import migrations_dir, routine_files

SCHEMA = "pipeline"
# Serialises concurrent `migrate` runs while they replace routines.
_ROUTINE_LOCK_KEY = 4857394022


@dataclass(frozen=True)
class MigrateResult:
    applied: list[str]
    routines: int
    # (table, problem) for each source table change capture could not watch: runs are full
    unwatched: list[tuple[str, str]]
    # (table, note) for what change capture misses there although runs stay incremental
    capture_notes: list[tuple[str, str]]
    # source tables that exist but the migrating role may not read: runs fail until it may
    unreadable: list[str]
    # the role that ran migrate, which owns what it created
    role: str
    # (role, granted, access) from pipeline.grant_access(): who may run the pipeline or read it
    access: list[tuple[str, bool, str]]


# UNIQUE NULLS NOT DISTINCT (migration 0004) is new in PostgreSQL 15.
MIN_SERVER_VERSION = 150000


def migrate(url: str) -> MigrateResult:
    with connect(url) as conn:
        version = conn.info.server_version
        if version < MIN_SERVER_VERSION:
            raise UserError(
                f"PostgreSQL {version // 10000} is too old: the pipeline needs PostgreSQL 15 or later; "
                "upgrade the server, then run migrate again",
                ExitCode.DATABASE_ERROR,
            )
        try:
            # yoyo keeps its bookkeeping in the pipeline schema, so the schema must exist first.
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        except psycopg.errors.InsufficientPrivilege:
            raise UserError(
                "creating schema pipeline failed: this role may not create schemas in the database; "
                "a superuser can run CREATE SCHEMA pipeline AUTHORIZATION <this role> (or GRANT CREATE "
                "ON DATABASE <db> TO <this role>), then run migrate again as this role",
                ExitCode.DATABASE_ERROR,
            ) from None
        except psycopg.Error as exc:
            raise database_error("creating schema pipeline", exc) from None

    backend = get_backend(yoyo_url(url, SCHEMA))
    migrations = read_migrations(str(migrations_dir()))
    try:
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
    except psycopg.Error as exc:
        raise database_error("applying migrations", exc) from None
    except LockTimeout:
        raise UserError(
            "another migrate holds yoyo's lock: wait for it, or clear a stale lock with "
            "DELETE FROM pipeline.yoyo_lock",
            ExitCode.DATABASE_ERROR,
        ) from None
    finally:
        backend.connection.close()

    with connect(url, autocommit=False) as conn:
        step = "waiting for another migrate"
        try:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_ROUTINE_LOCK_KEY,))
            for path in routine_files():
                step = f"creating routines ({path.name})"
                conn.execute(path.read_text(encoding="utf-8").encode())
            step = "installing change capture"
            capture = conn.execute(
                "SELECT table_name, problem, full_runs FROM pipeline.install_change_capture()"
            ).fetchall()
            problems = [(str(table), str(problem)) for table, problem, full in capture if full]
            notes = [(str(table), str(problem)) for table, problem, full in capture if not full]
            step = "checking which source tables it may read"
            unreadable = conn.execute(
                "SELECT w.table_name FROM pipeline._change_capture_tables() AS w "
                "WHERE w.table_name LIKE 'public.%' AND to_regclass(w.table_name) IS NOT NULL "
                "AND NOT has_table_privilege(to_regclass(w.table_name), 'SELECT') ORDER BY 1"
            ).fetchall()
            step = "granting access to pipeline_runner and pipeline_reader"
            access = conn.execute("SELECT role_name, granted, access FROM pipeline.grant_access()").fetchall()
            role = conn.execute("SELECT current_user").fetchone()
            conn.commit()
        except psycopg.Error as exc:
            raise database_error(step, exc) from None
    return MigrateResult(
        applied=[m.id for m in pending],
        routines=len(routine_files()),
        unwatched=problems,
        capture_notes=notes,
        unreadable=[str(row[0]) for row in unreadable],
        role=str(role[0]) if role else "",
        access=[(str(role), bool(granted), str(what)) for role, granted, what in access],
    )


def pending_migrations(conn: psycopg.Connection[Any]) -> list[str]:
    """Migration ids not yet applied to the connected database (all of them on a fresh one)."""
    wanted = [m.id for m in read_migrations(str(migrations_dir()))]
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute("SELECT to_regclass('pipeline._yoyo_migration') IS NOT NULL").fetchone()
        if not row or not row[0]:
            return wanted
        applied = {r[0] for r in cur.execute("SELECT migration_id FROM pipeline._yoyo_migration")}
    return [mid for mid in wanted if mid not in applied]


def require_migrated(conn: psycopg.Connection[Any]) -> None:
    pending = pending_migrations(conn)
    if pending:
        raise UserError(
            f"the pipeline schema is not up to date ({len(pending)} migration(s) pending, "
            f"first {pending[0]}): run `python -m pytools migrate`",
            ExitCode.NOT_MIGRATED,
        )
