"""Apply yoyo migrations, then (re)create every routine; check that a database is migrated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from yoyo import read_migrations
from yoyo.backends import DatabaseBackend, get_backend_class
from yoyo.connections import DatabaseURI
from yoyo.exceptions import LockTimeout
from yoyo.migrations import Migration, default_migration_table

from pytools.config import parse_url
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
    # the role that ran migrate is a superuser: everything belongs to it
    superuser: bool = False
    # (table, CREATE INDEX, what it is for, the plain index it can replace or "") for each
    # recommended source index no index serves
    missing_indexes: list[tuple[str, str, str, str]] = field(default_factory=list)
    # an event trigger calls pipeline._guard_source_tables() always (`python -m pytools guard`)
    guarded: bool = False


# UNIQUE NULLS NOT DISTINCT (migration 0004) is new in PostgreSQL 15.
MIN_SERVER_VERSION = 150000


_SCHEMA_EXISTS = "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'pipeline'"
# The event trigger `guard` installs, enabled ALWAYS (in replica mode too).
GUARD_INSTALLED = """
SELECT count(DISTINCT e.evtfoid) = 2
FROM pg_catalog.pg_event_trigger AS e
WHERE e.evtfoid IN (pg_catalog.to_regprocedure('pipeline._guard_source_tables()'),
                    pg_catalog.to_regprocedure('pipeline._guard_concurrent_index()'))
  AND e.evtenabled = 'A'
"""
_IS_SUPERUSER = "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user"
# Runs, and migrate's last step, build temporary tables as the owner.
_MAY_USE_TEMP = "SELECT pg_catalog.has_database_privilege(pg_catalog.current_database(), 'TEMP')"

# Everything in schema pipeline (and every trigger on its tables) that another role owns: the
# code of a role that may create objects there would run with the owner's rights in each run.
# Superusers are trusted: a superuser migrating accepts what other superusers own, and a
# trigger function a superuser owns (PostgreSQL's own foreign-key triggers) is accepted.
_FOREIGN_OBJECTS = """
WITH ns AS (SELECT n.oid FROM pg_catalog.pg_namespace AS n WHERE n.nspname = 'pipeline'),
objects (kind, name, owner, dropping) AS (
    SELECT 'schema', n.nspname::text, n.nspowner, 'DROP SCHEMA pipeline CASCADE'
    FROM pg_catalog.pg_namespace AS n WHERE n.oid = (SELECT oid FROM ns)
    UNION ALL
    SELECT k.kind, c.oid::pg_catalog.regclass::text, c.relowner,
           'DROP ' || pg_catalog.upper(k.kind) || ' ' || c.oid::pg_catalog.regclass::text
    FROM pg_catalog.pg_class AS c,
         LATERAL (SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table'
                         WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
                         WHEN 'f' THEN 'foreign table' WHEN 'c' THEN 'type' ELSE 'index' END AS kind) AS k
    WHERE c.relnamespace = (SELECT oid FROM ns)
    UNION ALL
    SELECT k.kind, p.oid::pg_catalog.regprocedure::text, p.proowner,
           'DROP ' || pg_catalog.upper(k.kind) || ' ' || p.oid::pg_catalog.regprocedure::text
    FROM pg_catalog.pg_proc AS p,
         LATERAL (SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate'
                         ELSE 'function' END AS kind) AS k
    WHERE p.pronamespace = (SELECT oid FROM ns)
    UNION ALL
    SELECT 'type', t.oid::pg_catalog.regtype::text, t.typowner,
           'DROP TYPE ' || t.oid::pg_catalog.regtype::text
    FROM pg_catalog.pg_type AS t
    WHERE t.typnamespace = (SELECT oid FROM ns) AND t.typrelid = 0 AND t.typcategory <> 'A'
    UNION ALL
    SELECT 'operator', o.oid::pg_catalog.regoperator::text, o.oprowner,
           'DROP OPERATOR ' || o.oid::pg_catalog.regoperator::text
    FROM pg_catalog.pg_operator AS o WHERE o.oprnamespace = (SELECT oid FROM ns)
    UNION ALL
    SELECT 'operator class', c.opcname::text, c.opcowner, 'DROP OPERATOR CLASS'
    FROM pg_catalog.pg_opclass AS c WHERE c.opcnamespace = (SELECT oid FROM ns)
    UNION ALL
    SELECT 'operator family', f.opfname::text, f.opfowner, 'DROP OPERATOR FAMILY'
    FROM pg_catalog.pg_opfamily AS f WHERE f.opfnamespace = (SELECT oid FROM ns)
    UNION ALL
    SELECT 'collation', c.collname::text, c.collowner, 'DROP COLLATION'
    FROM pg_catalog.pg_collation AS c WHERE c.collnamespace = (SELECT oid FROM ns)
    UNION ALL
    SELECT 'conversion', c.conname::text, c.conowner, 'DROP CONVERSION'
    FROM pg_catalog.pg_conversion AS c WHERE c.connamespace = (SELECT oid FROM ns)
    UNION ALL
    SELECT 'text search configuration', c.cfgname::text, c.cfgowner, 'DROP TEXT SEARCH CONFIGURATION'
    FROM pg_catalog.pg_ts_config AS c WHERE c.cfgnamespace = (SELECT oid FROM ns)
    UNION ALL
    SELECT 'text search dictionary', d.dictname::text, d.dictowner, 'DROP TEXT SEARCH DICTIONARY'
    FROM pg_catalog.pg_ts_dict AS d WHERE d.dictnamespace = (SELECT oid FROM ns)
    UNION ALL
    SELECT 'statistics object', x.stxname::text, x.stxowner, 'DROP STATISTICS'
    FROM pg_catalog.pg_statistic_ext AS x WHERE x.stxnamespace = (SELECT oid FROM ns)
    UNION ALL
    SELECT 'extension', e.extname::text, e.extowner, 'DROP EXTENSION ' || pg_catalog.quote_ident(e.extname)
    FROM pg_catalog.pg_extension AS e WHERE e.extnamespace = (SELECT oid FROM ns)
    UNION ALL
    SELECT 'trigger function',
           tg.tgfoid::pg_catalog.regprocedure::text || ' (trigger ' || pg_catalog.quote_ident(tg.tgname)
               || ' on ' || c.oid::pg_catalog.regclass || ')',
           p.proowner,
           'DROP TRIGGER ' || pg_catalog.quote_ident(tg.tgname) || ' ON ' || c.oid::pg_catalog.regclass
    FROM pg_catalog.pg_trigger AS tg
    JOIN pg_catalog.pg_class AS c ON c.oid = tg.tgrelid
    JOIN pg_catalog.pg_proc AS p ON p.oid = tg.tgfoid
    JOIN pg_catalog.pg_roles AS r ON r.oid = p.proowner
    WHERE c.relnamespace = (SELECT oid FROM ns) AND NOT r.rolsuper
)
SELECT o.kind, o.name, r.rolname::text AS owner, r.rolsuper, o.dropping
FROM objects AS o
JOIN pg_catalog.pg_roles AS r ON r.oid = o.owner
JOIN pg_catalog.pg_roles AS me ON me.rolname = current_user
WHERE o.owner <> me.oid AND NOT (me.rolsuper AND r.rolsuper)
ORDER BY o.kind <> 'schema', o.kind, o.name
"""


def refuse_foreign_objects(conn: psycopg.Connection[Any]) -> None:
    """A one-line error naming an object of schema pipeline that another role owns, if any.

    Another role with CREATE on the database can create the schema and its tables before
    migrate does, grant them to this role, and put a trigger on them: migrate would then find
    nothing pending, and that role's code would run inside every run with this role's rights.
    """
    with conn.cursor(row_factory=tuple_row) as cur:
        foreign = cur.execute(_FOREIGN_OBJECTS).fetchall()
        me = str((cur.execute("SELECT current_user::text").fetchone() or ("",))[0])
    if not foreign:
        return
    kind, name, owner, dropping = (str(foreign[0][i]) for i in (0, 1, 2, 4))
    owner_is_super = bool(foreign[0][3])
    what = "schema pipeline" if kind == "schema" else f"{kind} {name}"
    more = f" (and {len(foreign) - 1} more object(s) of other roles there)" if len(foreign) > 1 else ""
    if owner_is_super:
        fix = f"run migrate as {owner}, which installed it, or as a superuser"
        if len(foreign) == 1 and kind in ("schema", "table", "view", "sequence", "function", "type"):
            fix += f"; or have a superuser hand it over: ALTER {kind.upper()} {name} OWNER TO {me}"
    else:
        fix = (
            f"if {owner} installed the pipeline, run migrate as {owner}; if not, {owner} may have "
            f"planted it: have a superuser inspect it and drop it ({dropping}), then run migrate again"
        )
    raise UserError(
        f"{what} belongs to role {owner}, not to {me}, the role that migrates{more}; migrate "
        f"builds only on what the migrating role owns: {fix}",
        ExitCode.DATABASE_ERROR,
    )


def yoyo_backend(url: str, schema: str = SCHEMA) -> DatabaseBackend:
    """yoyo's backend (psycopg 3) connected to exactly the database of `url`, keeping its
    tables in `schema`.

    yoyo takes a URL but does not decode the database name in it, so a name that needs
    encoding (`my app`) would reach the server as `my%20app`, another database. Every
    connection parameter is handed over decoded instead, as libpq parsed them.
    """
    args: dict[str, str] = {**parse_url(url), "schema": schema}
    args.setdefault("connect_timeout", "10")
    args.setdefault("application_name", "pytools")
    dbname = args.pop("dbname", None)
    uri = DatabaseURI("postgresql+psycopg", None, None, None, None, dbname, args)
    backend: DatabaseBackend = get_backend_class(uri.scheme)(uri, default_migration_table)
    backend.init_database()
    return backend


def migrate(url: str) -> MigrateResult:
    """Migrations, then routines: over one connection of ours, and yoyo's own for its step."""
    with connect(url) as conn:
        superuser = _prepare_schema(conn)
        pending = _apply_migrations(url)
        conn.autocommit = False  # the routines, change capture and grants: one transaction
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
            step = "looking for the recommended indexes on the source tables"
            missing = conn.execute(
                "SELECT table_name, definition, purpose, coalesce(replaces, '') "
                "FROM pipeline._missing_source_indexes()"
            ).fetchall()
            guarded = conn.execute(GUARD_INSTALLED).fetchone()
            # last: it locks the window table against runs' writes until the commit
            step = "counting the adherence groups"
            conn.execute("SELECT pipeline._install_adherence_counts()")
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
        superuser=superuser,
        missing_indexes=[
            (str(table), str(definition), str(purpose), str(replaces))
            for table, definition, purpose, replaces in missing
        ],
        guarded=bool(guarded and guarded[0]),
    )


def _prepare_schema(conn: psycopg.Connection[Any]) -> bool:
    """Check the server, create schema pipeline if need be (yoyo keeps its bookkeeping there),
    refuse objects of other roles in it; whether the migrating role is a superuser."""
    version = conn.info.server_version
    if version < MIN_SERVER_VERSION:
        raise UserError(
            f"PostgreSQL {version // 10000} is too old: the pipeline needs PostgreSQL 15 or later; "
            "upgrade the server, then run migrate again",
            ExitCode.DATABASE_ERROR,
        )
    if not (conn.execute(_MAY_USE_TEMP).fetchone() or (False,))[0]:
        raise UserError(
            "this role may not create temporary tables in the database, which every run needs: a "
            "superuser can run GRANT TEMP ON DATABASE <db> TO <this role>, then run migrate again",
            ExitCode.DATABASE_ERROR,
        )
    try:
        if conn.execute(_SCHEMA_EXISTS).fetchone() is None:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        refuse_foreign_objects(conn)
        return bool((conn.execute(_IS_SUPERUSER).fetchone() or (False,))[0])
    except psycopg.errors.InsufficientPrivilege:
        raise UserError(
            "creating schema pipeline failed: this role may not create schemas in the database; "
            "a superuser can run CREATE SCHEMA pipeline AUTHORIZATION <this role> (or GRANT CREATE "
            "ON DATABASE <db> TO <this role>), then run migrate again as this role",
            ExitCode.DATABASE_ERROR,
        ) from None
    except psycopg.Error as exc:
        raise database_error("creating schema pipeline", exc) from None


def _apply_migrations(url: str) -> list[Migration]:
    """The pending migrations, applied by yoyo over its own connection, under its lock."""
    try:
        backend = yoyo_backend(url)
    except psycopg.Error as exc:
        raise database_error("connecting yoyo", exc) from None
    migrations = read_migrations(str(migrations_dir()))
    try:
        with backend.lock():
            pending = backend.to_apply(migrations)  # a MigrationList: it carries the post-apply steps
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
    return list(pending)


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
