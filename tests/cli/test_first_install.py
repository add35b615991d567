"""A first install, as a hospital DBA makes it into a database that holds real data: `migrate`
builds only on what the migrating role owns, in exactly the database named; settings and
options are checked where they enter; `generate` never erases data unasked; and every command
says what is true, with the grant that fixes a refusal.

Actors of threat-model.md played here: another role with CREATE on the database (it creates
schema `pipeline` before migrate does), and the DBA installing into the hospital's database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from yoyo import read_migrations

from pytools.config import parse_url, with_database
from pytools.migrations import yoyo_backend
from pytools.sql_files import migrations_dir, sample_file
from tests.helpers.cli import assert_ok, assert_one_error_line, clean_env, cli, cron_jobs
from tests.helpers.databases import with_params
from tests.helpers.pipeline import one_journey

USAGE, DATABASE_ERROR = 2, 6
WATCHED = ("patient_journey", "survey_result", "journey_activity", "activity", "schedule")


def as_role(url: str, role: str) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(with_params(url, user=role), autocommit=True, row_factory=dict_row)


def app_database(url: str, *, owner_grants: bool = True) -> None:
    """The app's tables (owned by the superuser, as the app's), and README "Roles"' grants."""
    dbname = parse_url(url)["dbname"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sample_file("source_tables.sql").read_text().encode())
        if owner_grants:
            conn.execute(f'GRANT CREATE ON DATABASE "{dbname}" TO pipeline_owner')
            tables = ", ".join(f"public.{t}" for t in WATCHED)
            conn.execute(f"GRANT SELECT, TRIGGER ON {tables} TO pipeline_owner")


def owned_by(url: str, role: str) -> list[str]:
    """Everything `role` owns in the database (schemas, relations, routines, types)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT 'schema ' || nspname FROM pg_namespace WHERE nspowner = %(r)s::regrole "
            "UNION ALL SELECT 'relation ' || oid::regclass FROM pg_class WHERE relowner = %(r)s::regrole "
            "UNION ALL SELECT 'routine ' || oid::regproc FROM pg_proc WHERE proowner = %(r)s::regrole "
            "UNION ALL SELECT 'type ' || oid::regtype FROM pg_type WHERE typowner = %(r)s::regrole",
            {"r": role},
        ).fetchall()
    return sorted(str(r[0]) for r in rows)


@pytest.fixture
def planter(server: str) -> Iterator[str]:
    """Another role that may log in; each test grants it what it needs."""
    role = f"pjp_planter_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
    yield role
    with psycopg.connect(server, autocommit=True) as conn:
        for (name,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'pjp_%'").fetchall():
            with psycopg.connect(with_database(server, name), autocommit=True) as db:
                db.execute(f"DROP OWNED BY {role} CASCADE")
        conn.execute(f"DROP ROLE {role}")


# --- migrate builds only on what the migrating role owns ---------------------------------------

STEAL = """
CREATE TABLE pipeline.loot (patient_journey text);
GRANT INSERT ON pipeline.loot TO PUBLIC;
CREATE FUNCTION pipeline.steal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pipeline.loot SELECT pj::text FROM public.patient_journey AS pj;
    RETURN NULL;
END $$;
CREATE TRIGGER steal AFTER INSERT ON pipeline.pipeline_runs
    FOR EACH STATEMENT EXECUTE FUNCTION pipeline.steal();
"""


def test_migrate_refuses_a_pipeline_schema_another_role_created_first(
    empty_db_url: str, planter: str, tmp_path: Path
) -> None:
    """Actor: another role with CREATE on the database. It creates schema pipeline and applies
    the migrations as itself (yoyo apply), puts a trigger that copies patient_journey on
    pipeline_runs, and grants it all to pipeline_owner. migrate as pipeline_owner refuses, names
    the schema and its owner, and creates nothing."""
    app_database(empty_db_url)
    dbname = parse_url(empty_db_url)["dbname"]
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(f'GRANT CREATE ON DATABASE "{dbname}" TO {planter}')
    with as_role(empty_db_url, planter) as conn:
        conn.execute("CREATE SCHEMA pipeline")
    backend = yoyo_backend(with_params(empty_db_url, user=planter))  # yoyo apply, as the planter
    try:
        with backend.lock():
            backend.apply_migrations(backend.to_apply(read_migrations(str(migrations_dir()))))
    finally:
        backend.connection.close()
    with as_role(empty_db_url, planter) as conn:
        conn.execute(STEAL)
        conn.execute("GRANT ALL ON SCHEMA pipeline TO pipeline_owner")
        conn.execute("GRANT ALL ON ALL TABLES IN SCHEMA pipeline TO pipeline_owner")
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        one_journey(conn)

    owner_env = clean_env(with_params(empty_db_url, user="pipeline_owner"))
    line = assert_one_error_line(cli("migrate", env=owner_env, cwd=tmp_path), DATABASE_ERROR)
    assert f"schema pipeline belongs to role {planter}, not to pipeline_owner" in line
    assert "DROP SCHEMA pipeline CASCADE" in line and "more object(s)" in line
    assert owned_by(empty_db_url, "pipeline_owner") == []  # no routine, no trigger, nothing
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pipeline%'").fetchone() == (
            0,
        )
        assert conn.execute("SELECT count(*) FROM pipeline.loot").fetchone() == (0,)


def test_migrate_refuses_a_role_that_may_not_create_temporary_tables_before_it_changes_anything(
    empty_db_url: str, tmp_path: Path
) -> None:
    """A hardened database without TEMP for PUBLIC: every run would fail (they build temporary
    tables), and so would migrate's last step, after its migrations had committed."""
    app_database(empty_db_url)
    dbname = parse_url(empty_db_url)["dbname"]
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(f'REVOKE TEMP ON DATABASE "{dbname}" FROM PUBLIC')
    owner_env = clean_env(with_params(empty_db_url, user="pipeline_owner"))
    line = assert_one_error_line(cli("migrate", env=owner_env, cwd=tmp_path), DATABASE_ERROR)
    assert "may not create temporary tables" in line
    assert "GRANT TEMP ON DATABASE <db> TO <this role>" in line
    assert owned_by(empty_db_url, "pipeline_owner") == []
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(f'GRANT TEMP ON DATABASE "{dbname}" TO pipeline_owner')
    assert_ok(cli("migrate", env=owner_env, cwd=tmp_path))


def test_migrate_refuses_an_object_or_a_trigger_function_of_another_role_in_its_schema(
    empty_db_url: str, planter: str, tmp_path: Path
) -> None:
    """Actor: another role that was given CREATE on schema pipeline, or TRIGGER on one of its
    tables (a careless grant): migrate names its object, or the function its trigger calls."""
    app_database(empty_db_url)
    dbname = parse_url(empty_db_url)["dbname"]
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(f'GRANT CREATE ON DATABASE "{dbname}" TO {planter}')  # for a schema of its own
    owner_env = clean_env(with_params(empty_db_url, user="pipeline_owner"))
    assert_ok(cli("migrate", env=owner_env, cwd=tmp_path))
    with as_role(empty_db_url, "pipeline_owner") as conn:
        conn.execute(f"GRANT USAGE, CREATE ON SCHEMA pipeline TO {planter}")
        conn.execute(f"GRANT TRIGGER ON pipeline.pipeline_runs TO {planter}")
    with as_role(empty_db_url, planter) as conn:
        conn.execute("CREATE TABLE pipeline.notes (note text)")

    line = assert_one_error_line(cli("migrate", env=owner_env, cwd=tmp_path), DATABASE_ERROR)
    assert f"table pipeline.notes belongs to role {planter}, not to pipeline_owner" in line
    assert "DROP TABLE pipeline.notes" in line

    with as_role(empty_db_url, planter) as conn:
        conn.execute("DROP TABLE pipeline.notes")
        conn.execute(f"CREATE SCHEMA {planter}")
        conn.execute(
            f"CREATE FUNCTION {planter}.watch() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RETURN NULL; END $$"
        )
        conn.execute(
            "CREATE TRIGGER watch AFTER INSERT ON pipeline.pipeline_runs "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {planter}.watch()"
        )
    line = assert_one_error_line(cli("migrate", env=owner_env, cwd=tmp_path), DATABASE_ERROR)
    assert f"trigger function {planter}.watch() (trigger watch on pipeline.pipeline_runs)" in line
    assert f"belongs to role {planter}" in line and "DROP TRIGGER watch ON pipeline.pipeline_runs" in line

    with as_role(empty_db_url, "pipeline_owner") as conn:  # dropping it takes the table's owner
        conn.execute("DROP TRIGGER watch ON pipeline.pipeline_runs")
    assert_ok(cli("migrate", env=owner_env, cwd=tmp_path))  # its own again: migrate works


def test_migrate_as_a_superuser_works_and_warns_once_to_install_as_pipeline_owner(
    empty_db_url: str, tmp_path: Path
) -> None:
    """The DBA installing as a superuser: everything would belong to the superuser, and the run
    steps would run with its rights; migrate says so in one warning line, naming pipeline_owner."""
    app_database(empty_db_url, owner_grants=False)
    out = assert_ok(cli("migrate", env=clean_env(empty_db_url), cwd=tmp_path))
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, out
    assert "superuser" in warnings[0] and "install it as role pipeline_owner" in warnings[0]


def index_notes(out: str) -> list[str]:
    return [line for line in out.splitlines() if "lacks a recommended index" in line]


def test_migrate_names_each_recommended_index_no_index_serves(empty_db_url: str, tmp_path: Path) -> None:
    """The app's tables as they often are: no index, or indexes that look right but cannot serve
    the run's reads (a plain one where the run needs the covering one, a partial one, one on an
    expression, a hash index). migrate names each recommended index missing, with its CREATE
    INDEX, and says nothing once the app has them."""
    app_database(empty_db_url)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(
            "DROP INDEX public.patient_journey_id_idx, public.patient_journey_journey_id_idx, "
            "public.survey_result_patient_journey_id_idx, public.survey_result_activity_id_idx"
        )
        conn.execute("CREATE INDEX plain_idx ON public.survey_result (patient_journey_id)")
        conn.execute(
            "CREATE INDEX partial_idx ON public.survey_result (patient_journey_id) "
            "INCLUDE (activity_id, start_time, end_time) WHERE patient_journey_id > 0"
        )
        conn.execute("CREATE INDEX expression_idx ON public.patient_journey ((id + 0))")
        conn.execute("CREATE INDEX hash_idx ON public.survey_result USING hash (activity_id)")
        conn.execute("CREATE INDEX second_column_idx ON public.patient_journey (patient_id, journey_id)")
        # left invalid by a build that failed (two rows of one key)
        conn.execute("INSERT INTO public.survey_result (id, patient_journey_id) VALUES (1, 7), (2, 7)")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "CREATE UNIQUE INDEX CONCURRENTLY invalid_idx ON public.survey_result (patient_journey_id) "
                "INCLUDE (activity_id, start_time, end_time)"
            )
    owner_env = clean_env(with_params(empty_db_url, user="pipeline_owner"))
    out = assert_ok(cli("migrate", env=owner_env, cwd=tmp_path))
    notes = index_notes(out)
    assert len(notes) == 4, out
    covering = (
        "CREATE INDEX CONCURRENTLY ON public.survey_result (patient_journey_id) "
        "INCLUDE (activity_id, start_time, end_time); "
        "then DROP INDEX CONCURRENTLY public.plain_idx, which it replaces"
    )
    assert any(covering in n and "from one table page per result" in n for n in notes), notes
    for definition in ("public.patient_journey (id)", "public.patient_journey (journey_id)",
                       "public.survey_result (activity_id)"):  # fmt: skip
        assert any(f"CREATE INDEX CONCURRENTLY ON {definition} (README, Installing)" in n for n in notes), (
            definition,
            notes,
        )
    # the recommended ones, made as the notes say (the covering one in the plain one's place)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        for note in notes:
            for statement in note.split("): ")[1].removesuffix(" (README, Installing)").split("; then "):
                conn.execute(statement.removesuffix(", which it replaces"))
        assert conn.execute("SELECT to_regclass('public.plain_idx')").fetchone() == (None,)
    assert index_notes(assert_ok(cli("migrate", env=owner_env, cwd=tmp_path))) == []


# --- exactly the database named ------------------------------------------------------------------


@pytest.fixture
def spaced_databases(server: str) -> Iterator[tuple[str, str]]:
    """URLs of `pjp my app` and of `pjp%20my%20app`, the name yoyo used to look for."""
    names = ("pjp my app", "pjp%20my%20app")
    with psycopg.connect(server, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    yield with_database(server, names[0]), with_database(server, names[1])
    with psycopg.connect(server, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migrate_applies_the_migrations_in_exactly_the_database_named(
    spaced_databases: tuple[str, str], tmp_path: Path
) -> None:
    """A database name that needs URL-encoding: the migrations land in it, not in the database
    whose name is its encoded form (here another one that exists, with a pipeline schema)."""
    named, encoded = spaced_databases
    assert "%20" in named  # the URL encodes the space once
    app_database(named, owner_grants=False)
    with psycopg.connect(encoded, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA pipeline")
    out = assert_ok(cli("migrate", env=clean_env(named), cwd=tmp_path))
    assert "0001.create-pipeline-schema" in out
    with psycopg.connect(named, autocommit=True) as conn:
        applied = {r[0] for r in conn.execute("SELECT migration_id FROM pipeline._yoyo_migration")}
        assert {m.id for m in read_migrations(str(migrations_dir()))} <= applied
    with psycopg.connect(encoded, autocommit=True) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'pipeline'::regnamespace"
        ).fetchone() == (0,)


# --- settings and options are checked where they enter ----------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("retention", "300000 years", "settings_retention_at_most_100_years"),
        ("work_mem", "10GB", "settings_work_mem_from_64kb_to_2gb"),
        ("work_mem", "32kB", "settings_work_mem_from_64kb_to_2gb"),
        ("work_mem", "lots", "settings_work_mem_from_64kb_to_2gb"),
        ("work_mem", "256MB'; SET x = 1; --", "settings_work_mem_from_64kb_to_2gb"),
        ("work_mem", "99999999999999999999MB", "settings_work_mem_from_64kb_to_2gb"),
    ],
)
def test_settings_refuse_a_value_no_run_could_use(
    db: psycopg.Connection[Any], db_url: str, column: str, value: str, constraint: str, tmp_path: Path
) -> None:
    env = clean_env(db_url)
    """The DBA tuning settings: a value every run would fail on (timestamp out of range, a
    work_mem set_config refuses or that would exhaust memory) is refused by the UPDATE, naming
    the check it breaks; runs go on."""
    with pytest.raises(psycopg.errors.CheckViolation, match=constraint):
        db.execute(f"UPDATE pipeline.settings SET {column} = %s", (value,))
    one_journey(db)
    assert '"status": "succeeded"' in assert_ok(cli("run-now", "--format", "json", env=env, cwd=tmp_path))


def test_settings_take_the_bounds_themselves_and_a_run_uses_them(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    env = clean_env(db_url)
    db.execute("UPDATE pipeline.settings SET retention = '100 years', work_mem = '64kB'")
    db.execute("UPDATE pipeline.settings SET work_mem = '2GB'")
    db.execute("UPDATE pipeline.settings SET work_mem = '512MB'")
    one_journey(db)
    assert '"status": "succeeded"' in assert_ok(cli("run-now", "--format", "json", env=env, cwd=tmp_path))


def test_migrate_names_a_stored_setting_the_new_checks_refuse(empty_db_url: str, tmp_path: Path) -> None:
    """An install from before the checks, with a retention no run could use: migrate stops at
    it, names the setting and gives the UPDATE that fixes it."""
    app_database(empty_db_url, owner_grants=False)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA pipeline")
    backend = yoyo_backend(empty_db_url)
    try:
        migrations = read_migrations(str(migrations_dir()))
        with backend.lock():
            backend.apply_migrations(backend.to_apply(migrations.filter(lambda m: m.id < "0006")))
    finally:
        backend.connection.close()
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute("UPDATE pipeline.settings SET retention = '300000 years'")
    line = assert_one_error_line(cli("migrate", env=clean_env(empty_db_url), cwd=tmp_path), DATABASE_ERROR)
    assert "pipeline.settings.retention" in line and "UPDATE pipeline.settings SET retention" in line
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute("UPDATE pipeline.settings SET retention = '30 days'")
    assert_ok(cli("migrate", env=clean_env(empty_db_url), cwd=tmp_path))


@pytest.fixture
def job(server: str) -> Iterator[str]:
    name = f"pjp-install-test-{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute("DELETE FROM cron.job WHERE jobname = %s", (name,))


@pytest.mark.parametrize(
    "expression",
    [
        "0 0 * * *'; SELECT 1; --",  # pg_cron 1.4 ignores what follows the fifth field
        "0 0 * * * /usr/bin/true",
        "5-1 * * * *",  # a range that never matches: pg_cron stores it, the job never runs
    ],
)
@pytest.mark.parametrize("via", ["flag", "env"])
def test_schedule_refuses_a_cron_expression_that_is_not_just_a_schedule(
    db_url: str, server: str, job: str, expression: str, via: str, tmp_path: Path
) -> None:
    """The README promises exit 2 for a bad cron expression: checked before pg_cron sees it."""
    env = clean_env(db_url)
    args = ["schedule", "--job-name", job]
    if via == "flag":
        args += ["--cron", expression]
    else:
        env = {**env, "PIPELINE_CRON": expression}
    line = assert_one_error_line(cli(*args, env=env, cwd=tmp_path), USAGE)
    assert "invalid cron schedule" in line
    assert cron_jobs(server, job) == []


@pytest.mark.parametrize("expression", ["@daily", "0 9 * jan-mar mon-fri", "*/15 8-18 1,15 * *"])
def test_schedule_takes_the_forms_pg_cron_reads(
    db_url: str, server: str, job: str, expression: str, tmp_path: Path
) -> None:
    env = clean_env(db_url)
    assert_ok(cli("schedule", "--job-name", job, "--cron", expression, env=env, cwd=tmp_path))
    assert [j["schedule"] for j in cron_jobs(server, job)] == [expression]


# --- generate never erases data unasked ----------------------------------------------------------


def test_generate_refuses_while_any_table_it_would_erase_holds_a_row(db_url: str, tmp_path: Path) -> None:
    """The hospital's data in tables other than patient_journey (here: patient and
    step_result): generate names them with their counts, changes nothing, and says in --help
    that it erases."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO public.patient (id) VALUES (1), (2), (3)")
        conn.execute("INSERT INTO public.step_result (patient_id, value) VALUES (1, 4200)")
    env = clean_env(db_url)
    line = assert_one_error_line(cli("generate", "--journeys", "5", env=env, cwd=tmp_path), USAGE)
    assert "public.patient (3 rows), public.step_result (1 row)" in line and "--force" in line
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM public.patient").fetchone() == (3,)
        assert conn.execute("SELECT value FROM public.step_result").fetchone() == (4200,)
        assert conn.execute("SELECT count(*) FROM public.patient_journey").fetchone() == (0,)
    help_text = assert_ok(cli("generate", "--help", cwd=tmp_path))
    assert "Erases every row" in help_text and "step_result" in help_text
    assert_ok(cli("generate", "--journeys", "5", "--force", env=env, cwd=tmp_path))
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM public.step_result").fetchone() == (0,)


# --- say only what is true; a refusal names its grant ---------------------------------------------


def test_migrate_as_the_readme_owner_says_once_what_change_capture_misses(
    empty_db_url: str, tmp_path: Path
) -> None:
    """pipeline_owner does not own the app's tables (README "Roles"): the triggers exist and
    runs are incremental; only writes under session_replication_role = replica go unseen. One
    line says that, naming the five tables, and nothing claims runs will be full."""
    app_database(empty_db_url)
    owner_url = with_params(empty_db_url, user="pipeline_owner")
    out = assert_ok(cli("migrate", env=clean_env(owner_url), cwd=tmp_path))
    assert "full run" not in out.replace("run-now --full", "")
    [line] = [line for line in out.splitlines() if "session_replication_role" in line]
    assert line.startswith("note: change capture on ") and "pipeline_owner does not own" in line
    assert all(f"public.{t}" in line for t in WATCHED)
    with psycopg.connect(empty_db_url, autocommit=True, row_factory=dict_row) as app:
        one_journey(app)
        app.execute("CALL pipeline.run_patient_journey_pipeline()")
        app.execute("UPDATE public.patient_journey SET operation_date = '2026-04-01'")
        app.execute("CALL pipeline.run_patient_journey_pipeline()")
        modes = app.execute("SELECT mode FROM pipeline.pipeline_runs ORDER BY run_id").fetchall()
    assert [m["mode"] for m in modes] == ["full", "incremental"]


def test_run_now_by_a_role_that_may_not_run_the_pipeline_exits_6_with_the_grant(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    """pipeline_reader may read pipeline_runs but not run the pipeline: no run happens, so it
    is not a failed run (exit 1) but a refusal (exit 6) with the GRANT that fixes it."""
    one_journey(db)
    reader_env = clean_env(with_params(db_url, user="pipeline_reader"))
    line = assert_one_error_line(cli("run-now", env=reader_env, cwd=tmp_path), DATABASE_ERROR)
    assert "GRANT pipeline_runner TO pipeline_reader" in line
    assert db.execute("SELECT count(*) AS n FROM pipeline.pipeline_runs").fetchone() == {"n": 0}


@pytest.mark.parametrize(
    ("command", "grant"),
    [("run-now", "pipeline_runner"), ("status", "pipeline_reader"), ("failures", "pipeline_reader")],
)
def test_a_command_refused_for_lack_of_privilege_exits_6_with_the_grant(
    db_url: str, planter: str, command: str, grant: str, tmp_path: Path
) -> None:
    """A role with no grant at all: each command says, in one line, which role to grant it."""
    env = clean_env(with_params(db_url, user=planter))
    line = assert_one_error_line(cli(command, env=env, cwd=tmp_path), DATABASE_ERROR)
    assert f"GRANT {grant} TO {planter}" in line
