"""Least privilege: the package installed and run as the roles README "Roles" tells a DBA to
create, the pg_cron job never running as a superuser, code planted on a search_path never run
by the pipeline, and no password from a URL ever printed.

pipeline_owner, pipeline_runner and pipeline_reader are cluster-wide roles that conftest
creates; each test here installs the pipeline into its own database as pipeline_owner, with
only the grants the README lists."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from pytools.config import parse_url
from pytools.sql_files import sample_file
from tests.helpers.cli import SECRET, assert_ok, assert_one_error_line, clean_env, cli, cron_jobs
from tests.helpers.databases import SOURCE_TABLES, connect, grant_owner, with_params
from tests.helpers.pipeline import (
    PLANTED_OPERATORS,
    PLANTED_TYPES,
    catalog_calls_in_sql,
    insert,
    one_journey,
    plant_look_alikes,
    planted_runs,
)

USAGE, CONNECTION, DATABASE_ERROR = 2, 3, 6


@dataclass
class Install:
    url: str  # superuser: the DBA, and the application that owns the source tables
    dbname: str
    migrate_output: str

    def as_role(self, role: str) -> str:
        return with_params(self.url, user=role)


@pytest.fixture
def install(empty_db_url: str, tmp_path: Path) -> Install:
    """The app's tables, the DBA's grants, then `migrate` run as pipeline_owner."""
    dbname = parse_url(empty_db_url)["dbname"]
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(sample_file("source_tables.sql").read_text().encode())
        grant_owner(conn, dbname)
    out = assert_ok(
        cli("migrate", env=clean_env(with_params(empty_db_url, user="pipeline_owner")), cwd=tmp_path)
    )
    return Install(empty_db_url, dbname, out)


@pytest.fixture
def app(install: Install) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """The application writing its own tables (it owns them)."""
    with psycopg.connect(install.url, autocommit=True, row_factory=dict_row) as conn:
        yield conn


# --- the three roles --------------------------------------------------------------------------


def test_the_owner_installs_the_runner_runs_and_the_reader_reads(
    install: Install, app: psycopg.Connection[dict[str, Any]], tmp_path: Path
) -> None:
    assert "access: pipeline_runner may run the pipeline" in install.migrate_output
    assert "access: pipeline_reader may read" in install.migrate_output
    assert "no right to create triggers" not in install.migrate_output
    # Not the tables' owner: the triggers are created, only ENABLE ALWAYS is refused.
    assert "session_replication_role" in install.migrate_output

    foreign = app.execute(
        "SELECT c.relname AS name FROM pg_class AS c WHERE c.relnamespace = 'pipeline'::regnamespace "
        "AND c.relowner <> 'pipeline_owner'::regrole "
        "UNION ALL SELECT p.proname FROM pg_proc AS p WHERE p.pronamespace = 'pipeline'::regnamespace "
        "AND p.proowner <> 'pipeline_owner'::regrole"
    ).fetchall()
    assert foreign == []
    schema_owner = app.execute(
        "SELECT nspowner::regrole::text AS r FROM pg_namespace WHERE nspname = 'pipeline'"
    )
    assert schema_owner.fetchone() == {"r": "pipeline_owner"}

    one_journey(app)
    runner_env = clean_env(install.as_role("pipeline_runner"))
    out = assert_ok(cli("run-now", "--format", "json", env=runner_env, cwd=tmp_path))
    assert '"status": "succeeded"' in out and '"rows_inserted": 1' in out
    run = app.execute(
        "SELECT run_by, mode FROM pipeline.pipeline_runs ORDER BY run_id DESC LIMIT 1"
    ).fetchone()
    assert run == {"run_by": "pipeline_runner", "mode": "full"}

    # change capture works although the owner only holds TRIGGER on the app's tables
    app.execute("UPDATE public.patient_journey SET operation_date = '2026-04-01' WHERE id = 1")
    out = assert_ok(cli("run-now", "--format", "json", env=runner_env, cwd=tmp_path))
    assert '"mode": "incremental"' in out and '"rows_updated": 1' in out

    reader_env = clean_env(install.as_role("pipeline_reader"))
    assert_ok(cli("failures", "--all", env=reader_env, cwd=tmp_path))
    with connect(install.url, "pipeline_reader") as reader:
        [row] = reader.execute("SELECT * FROM pipeline.patient_journey_schedule_window").fetchall()
        assert str(row["milestone_date"]) == "2026-04-01"


RUNNER_REFUSED = [
    "INSERT INTO pipeline.patient_journey_schedule_window (patient_journey_id, activity_id) VALUES (7, 7)",
    "UPDATE pipeline.patient_journey_schedule_window SET window_start_date = NULL",
    "DELETE FROM pipeline.patient_journey_schedule_window",
    "TRUNCATE pipeline.patient_journey_schedule_window",
    "SELECT * FROM pipeline.patient_journey_schedule_window",
    "SELECT * FROM pipeline.pipeline_failures",
    "INSERT INTO pipeline.pipeline_runs (trigger) VALUES ('forged')",
    "DELETE FROM pipeline.change_queue",
    "UPDATE pipeline.settings SET retention = '1 hour'",
    "INSERT INTO pipeline.milestone_alias VALUES ('surgery', 'operation')",
    "SELECT * FROM public.patient_journey",
]


@pytest.mark.parametrize("statement", RUNNER_REFUSED)
def test_the_runner_may_run_the_pipeline_and_nothing_else(
    install: Install, app: psycopg.Connection[dict[str, Any]], statement: str
) -> None:
    one_journey(app)
    with connect(install.url, "pipeline_runner") as runner:
        runner.execute("CALL pipeline.run_patient_journey_pipeline()")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            runner.execute(statement)
    assert app.execute("SELECT count(*) AS n FROM pipeline.patient_journey_schedule_window").fetchone() == {
        "n": 1
    }


def test_the_runner_reaches_the_owners_rights_only_through_the_procedure(
    install: Install, app: psycopg.Connection[dict[str, Any]]
) -> None:
    one_journey(app)
    with connect(install.url, "pipeline_runner") as runner:
        runner.execute("CALL pipeline.run_patient_journey_pipeline()")
        [run] = runner.execute("SELECT run_id FROM pipeline.pipeline_runs").fetchall()
        # The steps that run with the owner's rights work only on a running run that this
        # session began, under that run's own lock: a finished run cannot be run again or failed.
        # (_begin_run by hand starts a real run: tests/sql/test_run_guard.py.)
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
            runner.execute("SELECT pipeline._execute_run(%s, true)", (run["run_id"],))
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
            runner.execute("SELECT pipeline._fail_run(%s, 'XX000')", (run["run_id"],))
    # ...and the other routines run with the caller's rights, which do not reach the tables.
    with (
        connect(install.url, "pipeline_runner") as runner,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        runner.execute("SELECT pipeline._purge_history(0)")
    runs = app.execute("SELECT status FROM pipeline.pipeline_runs").fetchall()
    assert runs == [{"status": "succeeded"}]


READER_REFUSED = [
    "CALL pipeline.run_patient_journey_pipeline()",
    "INSERT INTO pipeline.patient_journey_schedule_window (patient_journey_id, activity_id) VALUES (7, 7)",
    "DELETE FROM pipeline.pipeline_failures",
    "UPDATE pipeline.pipeline_runs SET status = 'failed'",
    "SELECT * FROM pipeline.held_back_pair",
    "SELECT * FROM pipeline.change_queue",
    "SELECT * FROM pipeline.settings",
    "SELECT * FROM public.patient_journey",
    "SELECT pipeline._begin_run('forged')",
]


@pytest.mark.parametrize("statement", READER_REFUSED)
def test_the_reader_may_read_the_results_and_nothing_else(
    install: Install, app: psycopg.Connection[dict[str, Any]], statement: str
) -> None:
    one_journey(app, slug="7d-post-surgery")
    app.execute("CALL pipeline.run_patient_journey_pipeline()")
    with connect(install.url, "pipeline_reader") as reader:
        for table in (
            "patient_journey_schedule_window",
            "pipeline_failures",
            "current_failures",
            "pipeline_runs",
        ):
            reader.execute(f"SELECT * FROM pipeline.{table}").fetchall()
        [failure] = reader.execute("SELECT schedule_slug FROM pipeline.current_failures").fetchall()
        assert failure == {"schedule_slug": "7d-post-surgery"}
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute(statement)


def test_migrate_names_the_grant_the_owner_lacks(empty_db_url: str, tmp_path: Path) -> None:
    dbname = parse_url(empty_db_url)["dbname"]
    owner_env = clean_env(with_params(empty_db_url, user="pipeline_owner"))
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(sample_file("source_tables.sql").read_text().encode())
        line = assert_one_error_line(cli("migrate", env=owner_env, cwd=tmp_path), DATABASE_ERROR)
        assert "CREATE SCHEMA pipeline AUTHORIZATION" in line
        grant_owner(conn, dbname, select=False, trigger=False)
    out = assert_ok(cli("migrate", env=owner_env, cwd=tmp_path))
    # one line per missing grant, naming every table that lacks it
    [trigger] = [line for line in out.splitlines() if "GRANT TRIGGER ON" in line]
    [select] = [line for line in out.splitlines() if "GRANT SELECT ON" in line]
    for table in SOURCE_TABLES:
        assert f"public.{table}" in trigger.split("GRANT TRIGGER ON")[1]
        assert f"public.{table}" in select.split("GRANT SELECT ON")[1]
    assert trigger.endswith("TO pipeline_owner and migrate runs again") and select.endswith(
        "TO pipeline_owner"
    )
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        grant_owner(conn, dbname)
    out = assert_ok(cli("migrate", env=owner_env, cwd=tmp_path))
    assert "GRANT TRIGGER" not in out and "GRANT SELECT" not in out


def test_migrate_says_which_roles_are_missing(empty_db_url: str, server: str, tmp_path: Path) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute("ALTER ROLE pipeline_reader RENAME TO pjp_reader_away")
        try:
            out = assert_ok(cli("migrate", env=clean_env(empty_db_url), cwd=tmp_path))
        finally:
            conn.execute("ALTER ROLE pjp_reader_away RENAME TO pipeline_reader")
    assert "access: pipeline_runner may run" in out
    assert "note: role pipeline_reader does not exist" in out


# --- the pg_cron job runs as the runner -------------------------------------------------------


@pytest.fixture
def job(server: str) -> Iterator[str]:
    name = f"pjp-priv-test-{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute("DELETE FROM cron.job WHERE jobname = %s", (name,))


def test_schedule_runs_the_job_as_pipeline_runner_and_says_so(
    install: Install, server: str, job: str, tmp_path: Path
) -> None:
    out = assert_ok(cli("schedule", "--job-name", job, env=clean_env(install.url), cwd=tmp_path))
    assert "the job runs as role pipeline_runner (the default: role pipeline_runner exists)" in out
    assert "warning:" not in out and "note:" not in out  # pg_cron comes in through the trusted socket
    [row] = cron_jobs(server, job)
    assert row["username"] == "pipeline_runner" and row["database"] == install.dbname


def test_schedule_replaces_a_job_of_the_same_name_that_ran_as_another_role(
    install: Install, server: str, job: str, tmp_path: Path
) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(
            "SELECT cron.schedule_in_database(%s, '0 * * * *', 'SELECT 1', %s, 'postgres')",
            (job, install.dbname),
        )
    assert_ok(cli("schedule", "--job-name", job, env=clean_env(install.url), cwd=tmp_path))
    assert [r["username"] for r in cron_jobs(server, job)] == ["pipeline_runner"]
    assert_ok(cli("unschedule", "--job-name", job, env=clean_env(install.url), cwd=tmp_path))
    assert cron_jobs(server, job) == []


@pytest.mark.parametrize("via", ["flag", "env"])
def test_schedule_refuses_to_run_the_job_as_a_superuser(
    install: Install, server: str, job: str, via: str, tmp_path: Path
) -> None:
    env = clean_env(install.url)
    args = ["schedule", "--job-name", job]
    if via == "flag":
        args += ["--run-as", "postgres"]
    else:
        env["PIPELINE_RUN_AS"] = "postgres"
    line = assert_one_error_line(cli(*args, env=env, cwd=tmp_path), USAGE)
    assert "superuser" in line and "pipeline_runner" in line
    assert cron_jobs(server, job) == []


def test_schedule_refuses_when_only_a_superuser_is_there_to_run_it(
    install: Install, server: str, job: str, tmp_path: Path
) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute("ALTER ROLE pipeline_runner RENAME TO pjp_runner_away")
        try:
            result = cli("schedule", "--job-name", job, env=clean_env(install.url), cwd=tmp_path)
        finally:
            conn.execute("ALTER ROLE pjp_runner_away RENAME TO pipeline_runner")
    line = assert_one_error_line(result, USAGE)
    assert "CREATE ROLE pipeline_runner LOGIN" in line
    assert cron_jobs(server, job) == []


@pytest.mark.parametrize(
    ("role", "reason"),
    [("pipeline_reader", "may not run the pipeline"), ("pjp_no_such_role", "does not exist")],
)
def test_schedule_refuses_a_role_that_cannot_run_the_pipeline(
    install: Install, server: str, job: str, role: str, reason: str, tmp_path: Path
) -> None:
    result = cli("schedule", "--job-name", job, "--run-as", role, env=clean_env(install.url), cwd=tmp_path)
    assert reason in assert_one_error_line(result, USAGE)
    assert cron_jobs(server, job) == []


def test_the_runner_may_schedule_its_own_job_but_the_owner_not_one_for_it(
    install: Install, server: str, job: str, tmp_path: Path
) -> None:
    runner_env = clean_env(install.as_role("pipeline_runner"))
    line = assert_one_error_line(
        cli("schedule", "--job-name", job, env=runner_env, cwd=tmp_path), DATABASE_ERROR
    )
    assert "GRANT pg_read_all_settings" in line
    grants = [  # README "Roles": what lets a role schedule its own job
        "pg_read_all_settings TO {}",
        "USAGE ON SCHEMA cron TO {}",
        "EXECUTE ON FUNCTION cron.schedule_in_database(text, text, text, text, text, boolean) TO {}",
    ]
    with psycopg.connect(server, autocommit=True) as conn:
        for grant in grants:
            conn.execute("GRANT " + grant.format("pipeline_runner, pipeline_owner"))
        try:
            owner_env = clean_env(install.as_role("pipeline_owner"))
            line = assert_one_error_line(
                cli("schedule", "--job-name", job, env=owner_env, cwd=tmp_path), USAGE
            )
            assert "only a superuser" in line
            out = assert_ok(cli("schedule", "--job-name", job, env=runner_env, cwd=tmp_path))
            assert "the job runs as role pipeline_runner" in out
            assert [r["username"] for r in cron_jobs(server, job)] == ["pipeline_runner"]
            assert job in assert_ok(cli("status", "--job-name", job, env=runner_env, cwd=tmp_path))
            assert "removed" in assert_ok(cli("unschedule", "--job-name", job, env=runner_env, cwd=tmp_path))
        finally:
            for grant in grants:
                conn.execute(
                    "REVOKE " + grant.format("pipeline_runner, pipeline_owner").replace(" TO ", " FROM ")
                )


# --- code planted on a caller's search_path never runs ----------------------------------------

# A caller who puts public ahead of pg_catalog (as an older database's DBA may): every
# unqualified name in unpinned code resolves to a planter's look-alike first.
HOSTILE_PATH = "SET search_path = public, pg_catalog"


@dataclass
class Planter:
    role: str
    planted: list[str]  # what plant_look_alikes() shadowed


@contextmanager
def planted(superuser_url: str) -> Iterator[Planter]:
    """A role with only CREATE on schema public (which PUBLIC had before PostgreSQL 15) that
    planted there a look-alike of every type, function, aggregate and operator the SQL uses."""
    role = f"pjp_planter_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(superuser_url, autocommit=True, row_factory=dict_row) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        try:
            admin.execute(f"GRANT CREATE ON SCHEMA public TO {role}")
            with connect(superuser_url, role) as conn:
                look_alikes = plant_look_alikes(conn)
                # armed: on the hostile path, an unqualified name lands in a look-alike
                conn.execute(HOSTILE_PATH)
                conn.execute("SELECT lower('ARMED')::text, 1 = 1")
            assert planted_runs(admin) == [(role, "lower"), (role, "operator ="), (role, "type text")]
            admin.execute("DELETE FROM public.planted_log")
            yield Planter(role, look_alikes)
        finally:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")


@pytest.fixture
def planter(install: Install) -> Iterator[Planter]:
    """A planter at work in the installed database."""
    with planted(install.url) as who:
        yield who


@pytest.fixture
def writer(install: Install, app: psycopg.Connection[dict[str, Any]]) -> Iterator[str]:
    """The application writer: reads and writes the source tables, no right on the pipeline."""
    role = f"pjp_writer_{uuid.uuid4().hex[:8]}"
    app.execute(f"CREATE ROLE {role} LOGIN")
    try:
        tables = ", ".join(f"public.{t}" for t in SOURCE_TABLES)
        app.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON {tables} TO {role}")
        yield role
    finally:
        app.execute(f"DROP OWNED BY {role}")
        app.execute(f"DROP ROLE {role}")


def hostile_session(install: Install, role: str | None) -> psycopg.Connection[dict[str, Any]]:
    """A session of `role` (None: the superuser) with public ahead of pg_catalog. Its own
    statements below name every operator qualified, so only the pipeline's code is on trial."""
    url = install.as_role(role) if role else install.url
    conn = psycopg.connect(url, autocommit=True, row_factory=dict_row)
    conn.execute(HOSTILE_PATH)
    return conn


def test_the_planted_look_alikes_cover_every_type_function_and_operator_the_sql_uses(
    app: psycopg.Connection[dict[str, Any]], planter: Planter
) -> None:
    """Plays a planter: every catalog function or aggregate the routines call has a look-alike
    in the tests below, so a routine that starts calling something new is on trial too."""
    called = catalog_calls_in_sql()
    assert {"format", "now", "clock_timestamp", "lower", "pg_try_advisory_lock", "count"} <= set(called)
    in_catalog = app.execute(
        "SELECT DISTINCT p.proname::text AS name FROM pg_proc AS p "
        "WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname = ANY (%s) ORDER BY 1",
        (called,),
    ).fetchall()
    assert len(in_catalog) > 20
    assert [r["name"] for r in in_catalog if r["name"] not in planter.planted] == []
    shadowed = {f"type {t}" for t in PLANTED_TYPES} | {f"operator {o}" for o in PLANTED_OPERATORS}
    assert shadowed <= set(planter.planted)


def test_a_run_never_uses_a_type_function_or_operator_planted_on_the_callers_search_path(
    install: Install, app: psycopg.Connection[dict[str, Any]], planter: Planter, writer: str
) -> None:
    """Plays a planter against a superuser and pipeline_runner calling the procedure with public
    ahead of pg_catalog: a full run, then a routine one after the application writer's change.
    Not one planted object runs, and every run succeeds."""
    one_journey(app)
    insert(app, "schedule", ["id", "slug"], [(200, "7D-post-Surgery")])  # parse errors take their own path
    insert(app, "activity", ["id", "content_slug", "schedule_id"], [(20, "wound", 200)])
    insert(app, "journey_activity", ["journey_id", "activity_id"], [(1, 20)])
    for caller in (None, "pipeline_runner"):
        with hostile_session(install, caller) as conn:
            conn.execute("CALL pipeline.run_patient_journey_pipeline('manual', true)")
            with hostile_session(install, writer) as app_session:
                app_session.execute(
                    "UPDATE public.patient_journey SET operation_date = pg_catalog.now() "
                    "WHERE id OPERATOR(pg_catalog.=) 1"
                )
            conn.execute("CALL pipeline.run_patient_journey_pipeline()")
            conn.execute("CALL pipeline.run_patient_journey_pipeline()")
    runs = app.execute("SELECT run_by, mode, status, failures FROM pipeline.pipeline_runs ORDER BY run_id")
    superuser = parse_url(install.url)["user"]
    assert [(r["run_by"], r["mode"], r["status"], r["failures"]) for r in runs] == [
        (who, mode, "succeeded", 1)
        for who in (superuser, "pipeline_runner")
        for mode in ("full", "incremental", "noop")
    ]
    assert planted_runs(app) == []

    # Control: the same look-alikes catch the owner's code once the step that runs with its
    # rights no longer pins search_path: the planted text type's check runs as the owner while
    # the step sets up its variables, and the row it logs makes the step refuse to go on (a step
    # starts only in a transaction that has written nothing; the refusal rolls the log back).
    app.execute("ALTER FUNCTION pipeline._execute_run(bigint, boolean) RESET search_path")
    refused = pytest.raises(psycopg.Error, match="has written nothing yet")
    with hostile_session(install, "pipeline_runner") as conn, refused:
        conn.execute("CALL pipeline.run_patient_journey_pipeline('manual', true)")


def test_change_capture_never_uses_code_planted_on_the_writers_search_path(
    install: Install, app: psycopg.Connection[dict[str, Any]], planter: Planter, writer: str
) -> None:
    """Plays a planter against the application writer and a superuser writing the source tables
    with public ahead of pg_catalog: the change-capture triggers (INSERT, UPDATE, DELETE,
    TRUNCATE) queue every change and run nothing planted. (pipeline_runner may not write the
    source tables, so it fires no trigger.)"""
    app.execute("DELETE FROM pipeline.change_queue")

    def write_as(role: str | None, base: int) -> None:
        with hostile_session(install, role) as conn:
            pj, id_is = "public.patient_journey", "id OPERATOR(pg_catalog.=)"
            conn.execute(f"INSERT INTO {pj} (id, journey_id) VALUES ({base}, 4), ({base + 1}, 4)")
            conn.execute(f"UPDATE {pj} SET operation_date = '2026-01-01' WHERE {id_is} {base}")
            conn.execute(f"DELETE FROM {pj} WHERE {id_is} {base + 1}")
            conn.execute(f"INSERT INTO public.schedule (id, slug) VALUES ({base}, 'op')")
            conn.execute("TRUNCATE public.journey_activity")
            if role:  # the writer has no right on the queue its writes fill: the trigger runs as the owner
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute("SELECT * FROM pipeline.change_queue")

    for role, base in ((writer, 40), (None, 50)):
        write_as(role, base)
    queued = app.execute("SELECT kind, keys FROM pipeline.change_queue").fetchall()  # kept in no order
    assert sorted((q["kind"], q["keys"] or []) for q in queued) == sorted(
        change
        for base in (40, 50)
        for change in (
            ("patient_journey", [base, base + 1]),
            ("patient_journey", [base, base]),
            ("patient_journey", [base + 1]),
            ("schedule", [base]),
            ("full", []),
        )
    )
    assert planted_runs(app) == []

    # Control: the same writes through a trigger function whose search_path is not pinned.
    # (A TRUNCATE: on the other writes the look-alike array_agg makes the statement fail, which
    # rolls back the log of what ran.)
    app.execute("ALTER FUNCTION pipeline._capture_changes() RESET search_path")
    with hostile_session(install, writer) as conn:
        conn.execute("TRUNCATE public.journey_activity")
    assert ("pipeline_owner", "operator =") in planted_runs(app)


def depends_on_planted(conn: psycopg.Connection[dict[str, Any]], role: str) -> list[str]:
    """The pipeline's objects (routines, columns, constraints, ...) that depend on an object
    `role` owns: a routine whose signature or a column whose type is a planted type, say."""
    rows = conn.execute(
        "SELECT DISTINCT pg_describe_object(d.classid, d.objid, d.objsubid) AS what "
        "FROM pg_depend AS d "
        "JOIN pg_shdepend AS o ON o.classid = d.refclassid AND o.objid = d.refobjid AND o.deptype = 'o' "
        "WHERE o.refobjid = %s::regrole "
        "  AND (pg_identify_object(d.classid, d.objid, d.objsubid)).schema = 'pipeline' "
        "ORDER BY 1",
        (role,),
    ).fetchall()
    return [r["what"] for r in rows]


def test_the_cli_never_uses_code_planted_on_its_roles_search_path(empty_db_url: str, tmp_path: Path) -> None:
    """Plays a planter who got there first, in a database whose roles default to public ahead of
    pg_catalog: migrate (as pipeline_owner), run-now (as pipeline_runner) and failures (as
    pipeline_reader) run nothing planted, and no routine or table of the pipeline takes a planted type."""
    dbname = parse_url(empty_db_url)["dbname"]
    with psycopg.connect(empty_db_url, autocommit=True, row_factory=dict_row) as admin:
        admin.execute(sample_file("source_tables.sql").read_text().encode())
        grant_owner(admin, dbname)
        for role in (
            "pipeline_owner",
            "pipeline_runner",
            "pipeline_reader",
        ):  # a setting of this database only
            admin.execute(f'ALTER ROLE {role} IN DATABASE "{dbname}" SET search_path = public, pg_catalog')
        with planted(empty_db_url) as planter:
            one_journey(admin)
            owner_env = clean_env(with_params(empty_db_url, user="pipeline_owner"))
            runner_env = clean_env(with_params(empty_db_url, user="pipeline_runner"))
            assert_ok(cli("migrate", env=owner_env, cwd=tmp_path))
            assert_ok(cli("guard", env=clean_env(empty_db_url), cwd=tmp_path))  # fires at each run's DDL
            assert "succeeded" in assert_ok(cli("run-now", env=runner_env, cwd=tmp_path))
            reader_env = clean_env(with_params(empty_db_url, user="pipeline_reader"))
            assert_ok(cli("failures", env=reader_env, cwd=tmp_path))
            with connect(empty_db_url, "pipeline_runner") as runner:  # the role's own session
                runner.execute("CALL pipeline.run_patient_journey_pipeline()")
            assert planted_runs(admin) == []
            assert depends_on_planted(admin, planter.role) == []


def test_every_routine_pins_search_path_and_only_the_run_steps_have_the_owners_rights(
    install: Install, app: psycopg.Connection[dict[str, Any]]
) -> None:
    routines = app.execute(
        "SELECT p.oid::regprocedure::text AS name, p.prokind, p.prosecdef, p.proconfig, "
        "       p.prosqlbody IS NOT NULL AS bound_at_creation, p.prosrc AS body, "
        "       has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute, "
        "       has_function_privilege('pipeline_runner', p.oid, 'EXECUTE') AS runner_execute "
        "FROM pg_proc AS p WHERE p.pronamespace = 'pipeline'::regnamespace ORDER BY 1"
    ).fetchall()
    assert len(routines) > 20
    pinned = {"search_path=pg_catalog, pipeline, pg_temp", "search_path=pg_catalog, pg_temp"}
    for routine in routines:
        if routine["prokind"] == "p":  # it COMMITs, so it cannot pin: every name in it is qualified
            assert routine["name"] == "pipeline.run_patient_journey_pipeline(text,boolean,bigint)"
            assert not routine["prosecdef"] and not routine["public_execute"] and routine["runner_execute"]
            continue
        if routine["bound_at_creation"]:  # inlined, or called per row: its standard body binds every name
            assert routine["name"] in {
                "pipeline.adherence(date)",
                "pipeline._adherence(date)",
                "pipeline._adherence_counts(date)",
                "pipeline._settled_rank(bigint,text,date,date,date,date,integer)",
                "pipeline._completed_on(date[],date,date)",
            }
            assert not routine["prosecdef"] and not routine["proconfig"]
            continue
        if routine["name"] == "pipeline._computed_once(anyelement)":  # inlined: it names nothing
            assert routine["body"].strip() == "SELECT p_value" and not routine["proconfig"], routine
            continue
        assert set(routine["proconfig"] or []) & pinned, routine
    definers = {r["name"]: r for r in routines if r["prosecdef"]}
    assert set(definers) == {
        "pipeline._begin_run(text)",
        "pipeline._execute_run(bigint,boolean)",
        "pipeline._fail_run(bigint,text)",
        "pipeline._capture_changes()",
        "pipeline._capture_row_change()",
        "pipeline._guard_source_tables()",  # the event trigger's: the role running DDL needs no rights
        "pipeline._guard_concurrent_index()",  # the same, at the start of CREATE INDEX
    }
    assert not any(r["public_execute"] for r in definers.values())
    assert [n for n, r in definers.items() if r["runner_execute"]] == [
        "pipeline._begin_run(text)",
        "pipeline._execute_run(bigint,boolean)",
        "pipeline._fail_run(bigint,text)",
    ]


# --- no password from a URL is ever printed ---------------------------------------------------


@pytest.fixture
def password_roles(server: str) -> Iterator[tuple[str, str]]:
    """(a superuser, a role with no rights), both logging in with SECRET over scram-sha-256."""
    suffix = uuid.uuid4().hex[:8]
    roles = (f"pjp_pw_dba_{suffix}", f"pjp_pw_nobody_{suffix}")
    with psycopg.connect(server, autocommit=True) as conn:
        hba = Path(str(conn.execute("SHOW hba_file").fetchone()[0]))  # type: ignore[index]
        if not hba.is_file():
            pytest.skip(f"the server's hba file {hba} is not reachable by the tests")
        conn.execute(f"CREATE ROLE {roles[0]} LOGIN SUPERUSER PASSWORD '{SECRET}'")
        conn.execute(f"CREATE ROLE {roles[1]} LOGIN PASSWORD '{SECRET}'")
        original = hba.read_text()
        hba.write_text("".join(f"host all {r} 127.0.0.1/32 scram-sha-256\n" for r in roles) + original)
        try:
            conn.execute("SELECT pg_reload_conf()")
            yield roles
        finally:
            hba.write_text(original)
            conn.execute("SELECT pg_reload_conf()")
            for role in roles:
                conn.execute(f"DROP ROLE {role}")


def server_log(server: str) -> str:
    """The server's log, where the tests' local cluster keeps it (next to its data directory)."""
    with psycopg.connect(server, autocommit=True) as conn:
        data = Path(str(conn.execute("SHOW data_directory").fetchone()[0]))  # type: ignore[index]
    log = data.parent / "server.log"
    return log.read_text(errors="replace") if log.is_file() else ""


def test_no_command_prints_the_password_of_its_url(
    db_url: str, server: str, job: str, password_roles: tuple[str, str], tmp_path: Path
) -> None:
    dba, nobody = password_roles
    with psycopg.connect(db_url, autocommit=True) as conn:
        one_journey(conn, slug="7d-post-surgery")  # a failure to list
    url = with_params(db_url, user=dba, password=SECRET, host="127.0.0.1")
    in_query = with_params(db_url, user=dba, host="127.0.0.1") + f"?password={SECRET}"
    env = clean_env(url)
    outputs = [
        cli("migrate", env=env, cwd=tmp_path),
        cli("run-now", env=env, cwd=tmp_path),
        cli("run-now", "--database-url", in_query, cwd=tmp_path),
        cli("schedule", "--job-name", job, env=env, cwd=tmp_path),
        cli("schedule", "--job-name", job, "--format", "json", env=env, cwd=tmp_path),
        cli("status", "--job-name", job, env=env, cwd=tmp_path),
        cli("status", "--job-name", job, "--format", "json", env=env, cwd=tmp_path),
        cli("failures", "--all", env=env, cwd=tmp_path),
        cli("failures", "--format", "csv", env=env, cwd=tmp_path),
        cli("unschedule", "--job-name", job, env=env, cwd=tmp_path),
    ]
    for result in outputs:
        assert_ok(result)
    assert "7d-post-surgery" in outputs[7].stdout and job in outputs[5].stdout

    # errors, from the server and from the CLI, as a role that may do nothing
    denied = clean_env(with_params(url, user=nobody))
    refusals = [
        (cli("status", env=denied, cwd=tmp_path), DATABASE_ERROR),
        (cli("run-now", env=denied, cwd=tmp_path), DATABASE_ERROR),
        (cli("migrate", env=denied, cwd=tmp_path), DATABASE_ERROR),
        (cli("schedule", "--job-name", job, "--run-as", dba, env=env, cwd=tmp_path), USAGE),
        (cli("status", env=clean_env(with_params(url, dbname="pjp_nowhere")), cwd=tmp_path), CONNECTION),
        (
            cli("failures", env=clean_env(with_params(url, password="not-" + SECRET)), cwd=tmp_path),
            CONNECTION,
        ),
    ]
    for result, code in refusals:
        assert_one_error_line(result, code)
    for result, _ in refusals[-2:]:  # these name the URL, its password masked
        assert f"{dba}:***@" in result.stderr
    outputs += [result for result, _ in refusals]

    for result in outputs:
        assert SECRET not in result.stdout + result.stderr, result.args
    with psycopg.connect(server, autocommit=True) as conn:  # nor anything the commands left behind
        left = conn.execute(
            "SELECT count(*) FROM cron.job WHERE row(cron.job.*)::text LIKE %s", (f"%{SECRET}%",)
        )
        assert left.fetchone() == (0,)
    with psycopg.connect(db_url, autocommit=True) as conn:
        for table in ("pipeline_runs", "pipeline_failures"):
            query = f"SELECT count(*) FROM pipeline.{table} AS t WHERE t::text LIKE %s"
            assert conn.execute(query, (f"%{SECRET}%",)).fetchone() == (0,)
    assert SECRET not in server_log(server)
