"""`python -m pytools` end to end, as a user runs it: a subprocess with a clean environment,
in an empty working directory, checked on its exit code and on what it prints."""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pytools.cluster import find_bindir, free_port
from pytools.config import parse_url, with_database
from pytools.errors import UserError
from pytools.sql_files import sample_file
from tests.helpers.cli import (
    CONNECTION,
    NO_PG_CRON,
    NOT_MIGRATED,
    SECRET,
    USAGE,
    assert_ok,
    assert_one_error_line,
    clean_env,
    cli,
    closed_port_url,
    cron_jobs,
)
from tests.helpers.databases import dbname, with_params
from tests.helpers.pipeline import insert, one_journey
from tests.helpers.servers import local_server

COMMANDS = ("migrate", "run-now", "schedule", "unschedule", "status", "failures")
# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def env(db_url: str) -> dict[str, str]:
    """A clean environment whose DATABASE_URL is this test's migrated database."""
    return clean_env(db_url)


@pytest.fixture
def job_name(server: str) -> Iterator[str]:
    """A pg_cron job name of this test's own, removed afterwards."""
    name = f"pjp-cli-test-{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute("DELETE FROM cron.job WHERE jobname = %s", (name,))


def _second_cluster(preload_cron: bool) -> Iterator[str]:
    if os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("a second local cluster is not started when TEST_DATABASE_URL is set")
    try:
        find_bindir()
    except UserError as exc:
        pytest.skip(f"no local PostgreSQL binaries for a second cluster: {exc}")
    with local_server(preload_cron=preload_cron) as url:
        yield url


@pytest.fixture(scope="module")
def no_cron_server() -> Iterator[str]:
    """A second cluster without pg_cron in shared_preload_libraries."""
    yield from _second_cluster(preload_cron=False)


@pytest.fixture(scope="module")
def cron_not_created_server() -> Iterator[str]:
    """A second cluster with pg_cron preloaded but no CREATE EXTENSION pg_cron anywhere."""
    yield from _second_cluster(preload_cron=True)


def migrated_database(server: str, tmp_dir: Path) -> str:
    """A database on `server` with the source tables, migrated through the CLI."""
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS pjp_cli")
        conn.execute("CREATE DATABASE pjp_cli")
    url = with_database(server, "pjp_cli")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sample_file("source_tables.sql").read_text().encode())
    assert_ok(cli("migrate", env=clean_env(url), cwd=tmp_dir))
    return url


@pytest.fixture(scope="module")
def no_cron_db_url(no_cron_server: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return migrated_database(no_cron_server, tmp_path_factory.mktemp("no-cron"))


@pytest.fixture(scope="module")
def cron_not_created_db_url(cron_not_created_server: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return migrated_database(cron_not_created_server, tmp_path_factory.mktemp("no-ext"))


# --- help ----------------------------------------------------------------------------------


def test_top_level_help_lists_commands_and_exit_codes(tmp_path: Path) -> None:
    out = assert_ok(cli("--help", cwd=tmp_path))
    for command in (*COMMANDS, "demo"):
        assert command in out
    assert "exit codes:" in out
    for code in range(7):
        assert f"  {code}  " in out


def test_top_level_help_names_database_url(tmp_path: Path) -> None:
    assert "DATABASE_URL" in assert_ok(cli("--help", cwd=tmp_path))


HELP_ENV_VARS = {
    "migrate": ["DATABASE_URL"],
    "run-now": ["DATABASE_URL", "PIPELINE_FORMAT"],
    "schedule": ["DATABASE_URL", "PIPELINE_FORMAT", "PIPELINE_JOB_NAME", "PIPELINE_CRON", "PIPELINE_RUN_AS"],
    "unschedule": ["DATABASE_URL", "PIPELINE_JOB_NAME"],
    "status": ["DATABASE_URL", "PIPELINE_FORMAT", "PIPELINE_JOB_NAME", "PIPELINE_LIMIT"],
    "failures": ["DATABASE_URL", "PIPELINE_FORMAT", "PIPELINE_LIMIT"],
    "demo": ["PIPELINE_DEMO_PORT"],  # starts its own cluster: no database to name
    "check": ["DATABASE_URL", "PIPELINE_JOB_NAME", "PIPELINE_MAX_AGE", "PIPELINE_WARN_HELD_BACK"],
    "metrics": ["DATABASE_URL", "PIPELINE_JOB_NAME"],
}


@pytest.mark.parametrize("command", HELP_ENV_VARS)
def test_command_help_names_its_env_variables(command: str, tmp_path: Path) -> None:
    out = assert_ok(cli(command, "--help", cwd=tmp_path))
    assert out.startswith(f"usage: python -m pytools {command}")
    for name in HELP_ENV_VARS[command]:
        assert name in out, f"{command} --help does not mention {name}"
    if "DATABASE_URL" in HELP_ENV_VARS[command]:
        assert ".env" in out


# --- migrate -------------------------------------------------------------------------------


def test_migrate_applies_then_reports_none_pending(empty_db_url: str, tmp_path: Path) -> None:
    env = clean_env(empty_db_url)
    first = assert_ok(cli("migrate", env=env, cwd=tmp_path))
    assert "0001" in first and "0002" in first
    # no source tables in this database: change capture says what it cannot watch
    assert "warning: change capture does not watch public.patient_journey" in first
    second = assert_ok(cli("migrate", env=env, cwd=tmp_path))
    assert "none pending" in second and "0001" not in second
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        assert conn.execute(
            "SELECT to_regprocedure('pipeline.run_patient_journey_pipeline(text, boolean, bigint)')"
        ).fetchone() == ("pipeline.run_patient_journey_pipeline(text,boolean,bigint)",)


# --- run-now -------------------------------------------------------------------------------


def test_run_now_prints_the_run_as_a_table(
    db: psycopg.Connection[Any], env: dict[str, str], tmp_path: Path
) -> None:
    one_journey(db)
    out = assert_ok(cli("run-now", env=env, cwd=tmp_path))
    header, rule, row = out.strip().splitlines()
    assert header.split()[:3] == ["run_id", "trigger", "status"]
    assert "rows_inserted" in header.split()
    assert set(rule) <= {"-", " "}
    assert "succeeded" in row.split() and "manual" in row.split()


def test_run_now_as_json(db: psycopg.Connection[Any], env: dict[str, str], tmp_path: Path) -> None:
    one_journey(db)
    [run] = json.loads(assert_ok(cli("run-now", "--format", "json", env=env, cwd=tmp_path)))
    assert run["status"] == "succeeded"
    assert run["rows_inserted"] == 1
    assert run["trigger"] == "manual"


def test_run_now_as_csv(db: psycopg.Connection[Any], env: dict[str, str], tmp_path: Path) -> None:
    one_journey(db)
    out = assert_ok(cli("run-now", "--format", "csv", env=env, cwd=tmp_path))
    [run] = list(csv.DictReader(io.StringIO(out)))
    assert out.splitlines()[0].startswith("run_id,trigger,status,")
    assert run["status"] == "succeeded"
    assert run["rows_inserted"] == "1"


def test_format_from_pipeline_format_env(
    db: psycopg.Connection[Any], env: dict[str, str], tmp_path: Path
) -> None:
    one_journey(db)
    out = assert_ok(cli("run-now", env={**env, "PIPELINE_FORMAT": "json"}, cwd=tmp_path))
    assert json.loads(out)[0]["status"] == "succeeded"


def test_failed_run_exits_1_with_one_error_line(
    db: psycopg.Connection[Any], env: dict[str, str], tmp_path: Path
) -> None:
    one_journey(db)
    db.execute("ALTER TABLE public.activity RENAME TO activity_gone")
    result = cli("run-now", "--format", "json", env=env, cwd=tmp_path)
    line = assert_one_error_line(result, 1)
    assert "failed" in line and "failures" in line
    [run] = json.loads(result.stdout)
    assert run["status"] == "failed"


def test_a_runner_whose_run_failed_is_pointed_at_what_it_may_read(
    db: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    """Actor: pipeline_runner (pg_cron's role, or a service account): it may not read
    pipeline_failures, so a failed run-now does not send it to `failures`; it names the run's
    error_message, printed above, and the command a pipeline_reader member can run."""
    one_journey(db)
    db.execute("ALTER TABLE public.activity RENAME TO activity_gone")
    runner_env = clean_env(with_params(db_url, user="pipeline_runner"))
    result = cli("run-now", "--format", "json", env=runner_env, cwd=tmp_path)
    line = assert_one_error_line(result, 1)
    [run] = json.loads(result.stdout)
    assert run["status"] == "failed" and "activity" in run["error_message"]
    assert f"`python -m pytools failures --run-id {run['run_id']}` as a member of pipeline_reader" in line
    assert "error_message" in line
    # what it is pointed at works for a reader
    reader_env = clean_env(with_params(db_url, user="pipeline_reader"))
    failures = json.loads(assert_ok(cli("failures", "--run-id", str(run["run_id"]), "--format", "json",
                                        env=reader_env, cwd=tmp_path)))  # fmt: skip
    assert [f["stage"] for f in failures] == ["run"]


# --- where the database URL comes from -----------------------------------------------------


def test_database_url_flag_beats_env(db_url: str, tmp_path: Path) -> None:
    env = clean_env(closed_port_url())
    assert_ok(cli("failures", "--database-url", db_url, env=env, cwd=tmp_path))
    # ...and without the flag the (bad) environment is what gets used.
    assert_one_error_line(cli("failures", env=env, cwd=tmp_path), CONNECTION)


def test_env_beats_dotenv(db_url: str, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"DATABASE_URL={closed_port_url()}\n")
    assert_ok(cli("failures", env=clean_env(db_url), cwd=tmp_path))
    # ...and without the environment variable the (bad) .env is what gets used.
    assert_one_error_line(cli("failures", env=clean_env(), cwd=tmp_path), CONNECTION)


def test_dotenv_in_working_directory(db_url: str, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"# local settings\nexport DATABASE_URL='{db_url}'\n")
    assert json.loads(assert_ok(cli("failures", "--format", "json", cwd=tmp_path))) == []


# --- schedule, status, unschedule ----------------------------------------------------------


def test_schedule_then_reschedule_updates_one_job(
    db_url: str, server: str, job_name: str, tmp_path: Path
) -> None:
    env = clean_env(db_url)
    out = assert_ok(cli("schedule", "--job-name", job_name, env=env, cwd=tmp_path))
    assert job_name in out and "0 * * * *" in out
    [job] = cron_jobs(server, job_name)
    assert job["schedule"] == "0 * * * *"
    assert job["database"] == dbname(db_url)
    assert "pipeline.run_patient_journey_pipeline" in job["command"]

    out = assert_ok(cli("schedule", "--job-name", job_name, "--cron", "*/5 * * * *", env=env, cwd=tmp_path))
    assert "*/5 * * * *" in out
    [updated] = cron_jobs(server, job_name)
    assert updated["jobid"] == job["jobid"]
    assert updated["schedule"] == "*/5 * * * *"
    assert updated["database"] == dbname(db_url)


def test_schedule_default_job_name_names_the_database(db_url: str, server: str, tmp_path: Path) -> None:
    name = f"patient-journey-pipeline@{dbname(db_url)}"
    try:
        [job] = json.loads(
            assert_ok(cli("schedule", "--format", "json", env=clean_env(db_url), cwd=tmp_path))
        )
        assert job["jobname"] == name
        assert len(cron_jobs(server, name)) == 1
    finally:
        assert_ok(cli("unschedule", env=clean_env(db_url), cwd=tmp_path))
    assert cron_jobs(server, name) == []


def test_status_shows_job_and_runs(
    db: psycopg.Connection[Any], env: dict[str, str], job_name: str, tmp_path: Path
) -> None:
    one_journey(db)
    assert_ok(cli("run-now", env=env, cwd=tmp_path))
    assert_ok(cli("schedule", "--job-name", job_name, env=env, cwd=tmp_path))
    out = assert_ok(cli("status", "--job-name", job_name, env=env, cwd=tmp_path))
    assert "pg_cron job:" in out and job_name in out and "0 * * * *" in out
    assert "last executions" in out
    runs_part = out.split("last runs")[1]
    assert "succeeded" in runs_part and "manual" in runs_part


@pytest.mark.parametrize("role", ["pipeline_reader", "pipeline_runner"])
def test_status_shows_a_role_the_runs_it_may_read_and_says_in_one_line_what_it_may_not(
    db: psycopg.Connection[Any], db_url: str, env: dict[str, str], job_name: str, tmp_path: Path, role: str
) -> None:
    """The runner and an analyst may read pipeline_runs but not pg_cron's settings or jobs:
    `status` shows them the runs and says in one line why the job is not shown, exit 0."""
    one_journey(db)
    assert_ok(cli("run-now", env=env, cwd=tmp_path))
    assert_ok(cli("schedule", "--job-name", job_name, env=env, cwd=tmp_path))
    out = assert_ok(
        cli("status", "--job-name", job_name, env=clean_env(with_params(db_url, user=role)), cwd=tmp_path)
    )
    [note] = [line for line in out.splitlines() if line.startswith("pg_cron job: not shown")]
    assert role in note
    assert "succeeded" in out.split("last runs")[1]


def test_status_as_json(
    db: psycopg.Connection[Any], env: dict[str, str], job_name: str, tmp_path: Path
) -> None:
    one_journey(db)
    assert_ok(cli("run-now", env=env, cwd=tmp_path))
    assert_ok(cli("schedule", "--job-name", job_name, env=env, cwd=tmp_path))
    args = ("status", "--job-name", job_name, "--format", "json")
    data = json.loads(assert_ok(cli(*args, env=env, cwd=tmp_path)))
    status = data[0] if isinstance(data, list) else data
    assert {"job", "executions", "runs"} <= set(status)
    assert status["job"]["jobname"] == job_name
    assert isinstance(status["executions"], list)
    assert status["runs"][0]["status"] == "succeeded"


def test_status_as_csv_carries_the_job_its_executions_and_the_runs_as_json_does(
    db: psycopg.Connection[Any], db_url: str, env: dict[str, str], job_name: str, tmp_path: Path
) -> None:
    """One table, a `record` column saying which each row is: nothing that the table or JSON
    shows is dropped; a role that may not see the job gets a job_not_shown row saying why."""
    one_journey(db)
    assert_ok(cli("run-now", env=env, cwd=tmp_path))
    assert_ok(cli("schedule", "--job-name", job_name, env=env, cwd=tmp_path))
    args = ("status", "--job-name", job_name)
    rows = list(csv.DictReader(io.StringIO(assert_ok(cli(*args, "--format", "csv", env=env, cwd=tmp_path)))))
    data = json.loads(assert_ok(cli(*args, "--format", "json", env=env, cwd=tmp_path)))
    assert [r["record"] for r in rows] == ["job"] + ["execution"] * len(data["executions"]) + ["run"]
    assert (rows[0]["jobname"], rows[0]["schedule"]) == (job_name, data["job"]["schedule"])
    assert (rows[-1]["run_id"], rows[-1]["status"]) == (str(data["runs"][0]["run_id"]), "succeeded")
    reader_env = clean_env(with_params(db_url, user="pipeline_reader"))
    hidden = list(
        csv.DictReader(io.StringIO(assert_ok(cli(*args, "--format", "csv", env=reader_env, cwd=tmp_path))))
    )
    assert [r["record"] for r in hidden] == ["run", "job_not_shown"]
    assert "pipeline_reader" in hidden[-1]["reason"]


def test_status_without_a_job(env: dict[str, str], job_name: str, tmp_path: Path) -> None:
    out = assert_ok(cli("status", "--job-name", job_name, env=env, cwd=tmp_path))
    assert "not scheduled" in out
    data = json.loads(
        assert_ok(cli("status", "--job-name", job_name, "--format", "json", env=env, cwd=tmp_path))
    )
    status = data[0] if isinstance(data, list) else data
    assert status["job"] is None and status["runs"] == []


def test_unschedule_removes_the_job_then_has_nothing_to_remove(
    env: dict[str, str], server: str, job_name: str, tmp_path: Path
) -> None:
    assert_ok(cli("schedule", "--job-name", job_name, env=env, cwd=tmp_path))
    assert len(cron_jobs(server, job_name)) == 1
    out = assert_ok(cli("unschedule", "--job-name", job_name, env=env, cwd=tmp_path))
    assert "removed" in out and job_name in out
    assert cron_jobs(server, job_name) == []
    out = assert_ok(cli("unschedule", "--job-name", job_name, env=env, cwd=tmp_path))
    assert "nothing to remove" in out


def test_job_name_from_pipeline_job_name_env(
    env: dict[str, str], server: str, job_name: str, tmp_path: Path
) -> None:
    env = {**env, "PIPELINE_JOB_NAME": job_name, "PIPELINE_CRON": "*/10 * * * *"}
    assert_ok(cli("schedule", env=env, cwd=tmp_path))
    [job] = cron_jobs(server, job_name)
    assert job["schedule"] == "*/10 * * * *"


def test_bad_cron_expression_is_a_usage_error(
    env: dict[str, str], server: str, job_name: str, tmp_path: Path
) -> None:
    result = cli("schedule", "--job-name", job_name, "--cron", "every hour", env=env, cwd=tmp_path)
    line = assert_one_error_line(result, USAGE)
    assert "every hour" in line
    assert cron_jobs(server, job_name) == []


# --- failures ------------------------------------------------------------------------------


def test_failures_of_a_broken_slug(db: psycopg.Connection[Any], env: dict[str, str], tmp_path: Path) -> None:
    one_journey(db)
    insert(db, "schedule", ["id", "slug"], [(200, "7d-post-surgery")])
    insert(db, "activity", ["id", "content_slug", "schedule_id"], [(20, "wound-check", 200)])
    insert(db, "journey_activity", ["journey_id", "activity_id"], [(1, 20)])
    [run] = json.loads(assert_ok(cli("run-now", "--format", "json", env=env, cwd=tmp_path)))
    assert run["status"] == "succeeded" and run["failures"] >= 1

    out = assert_ok(cli("failures", env=env, cwd=tmp_path))
    assert out.splitlines()[0].split()[:2] == ["failure_id", "run_id"]
    assert "7d-post-surgery" in out and "parse" in out

    rows = json.loads(assert_ok(cli("failures", "--format", "json", env=env, cwd=tmp_path)))
    [failure] = [r for r in rows if r["schedule_slug"] == "7d-post-surgery"]
    assert failure["stage"] == "parse"
    assert failure["run_id"] == run["run_id"]
    assert failure["sqlstate"] == "22023"

    out = assert_ok(cli("failures", "--format", "csv", env=env, cwd=tmp_path))
    assert out.splitlines()[0].startswith("failure_id,run_id,failed_at,stage,")
    assert any(r["schedule_slug"] == "7d-post-surgery" for r in csv.DictReader(io.StringIO(out)))


def test_failures_all_and_run_id(db: psycopg.Connection[Any], env: dict[str, str], tmp_path: Path) -> None:
    one_journey(db, slug="7d-post-surgery")

    def failures(*args: str) -> list[dict[str, Any]]:
        out = assert_ok(cli("failures", "--format", "json", *args, env=env, cwd=tmp_path))
        return json.loads(out)  # type: ignore[no-any-return]

    [broken] = json.loads(assert_ok(cli("run-now", "--format", "json", env=env, cwd=tmp_path)))
    db.execute("UPDATE public.schedule SET slug = '4d-2d-pre-op' WHERE id = 100")
    [fixed] = json.loads(assert_ok(cli("run-now", "--format", "json", env=env, cwd=tmp_path)))
    assert fixed["failures"] == 0

    assert failures() == []  # the latest run has none
    assert [r["schedule_slug"] for r in failures("--all")] == ["7d-post-surgery"]
    assert [r["run_id"] for r in failures("--run-id", str(broken["run_id"]))] == [broken["run_id"]]
    assert failures("--run-id", str(fixed["run_id"])) == []
    assert len(failures("--all", "--limit", "1")) == 1


def test_failures_of_a_run_that_does_not_exist_is_a_usage_error_naming_the_retained_runs(
    db: psycopg.Connection[Any], env: dict[str, str], tmp_path: Path
) -> None:
    """An analyst mistypes a run id: one error line (exit 2) saying which runs are retained,
    not an empty "(none)" that reads like a run without failures."""
    one_journey(db)
    [ran] = json.loads(assert_ok(cli("run-now", "--format", "json", env=env, cwd=tmp_path)))
    line = assert_one_error_line(cli("failures", "--run-id", "999", env=env, cwd=tmp_path), USAGE)
    assert "no run 999" in line and f"the retained runs are {ran['run_id']} to {ran['run_id']}" in line


def test_a_table_says_when_it_cuts_a_value_or_stops_at_its_limit(
    db: psycopg.Connection[Any], env: dict[str, str], tmp_path: Path
) -> None:
    """A table that cuts a value (error messages past 80 characters) or a list that stops at its
    limit says so, and how to see the rest; JSON carries every value whole."""
    slugs = [(100 + i, f"{i}q-pre-op-" + "x" * 90) for i in range(3)]
    insert(db, "schedule", ["id", "slug"], slugs)
    assert_ok(cli("run-now", env=env, cwd=tmp_path))
    out = assert_ok(cli("failures", "--limit", "2", env=env, cwd=tmp_path))
    assert "values cut to 80 characters" in out and "--format json" in out
    assert "(the latest 2 of 3 failures: --limit 3 shows them all)" in out
    whole = json.loads(assert_ok(cli("failures", "--format", "json", env=env, cwd=tmp_path)))
    assert len(whole) == 3 and all(len(f["error_message"]) > 80 for f in whole)


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_failures_limit_must_be_positive(value: str, env: dict[str, str], tmp_path: Path) -> None:
    line = assert_one_error_line(cli("failures", "--limit", value, env=env, cwd=tmp_path), USAGE)
    assert line.startswith("python -m pytools failures: error:")
    assert "--limit" in line


@pytest.mark.parametrize("value", ["0", "many"])
def test_bad_pipeline_limit_env_is_a_usage_error(value: str, tmp_path: Path) -> None:
    env = clean_env(closed_port_url(), PIPELINE_LIMIT=value)
    line = assert_one_error_line(cli("failures", env=env, cwd=tmp_path), USAGE)
    assert "PIPELINE_LIMIT" in line


# --- user errors: one line, the documented exit code ---------------------------------------


def test_no_database_url_anywhere(tmp_path: Path) -> None:
    line = assert_one_error_line(cli("status", cwd=tmp_path), USAGE)
    assert line.startswith("error: no database given")
    assert "DATABASE_URL" in line and "--database-url" in line


def test_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    line = assert_one_error_line(cli("launch", cwd=tmp_path), USAGE)
    assert line.startswith("python -m pytools: error:")


def test_bad_format_is_a_usage_error(env: dict[str, str], tmp_path: Path) -> None:
    result = cli("failures", "--format", "xml", env=env, cwd=tmp_path)
    assert assert_one_error_line(result, USAGE).startswith("python -m pytools failures: error:")


@pytest.mark.parametrize(
    "url",
    [
        "mysql://x",
        "postgresql://a b@127.0.0.1/db",
        "postgresql://127.0.0.1/db?nosuchoption=1",
        "postgresql://host:notaport/db",
    ],
)
def test_malformed_url_is_a_usage_error(url: str, tmp_path: Path) -> None:
    line = assert_one_error_line(cli("status", "--database-url", url, cwd=tmp_path), USAGE)
    assert line.startswith("error: bad database URL")


def test_unreachable_server(tmp_path: Path) -> None:
    url = closed_port_url()
    line = assert_one_error_line(cli("run-now", "--database-url", url, cwd=tmp_path), CONNECTION)
    assert "cannot reach" in line and str(parse_url(url)["port"]) in line


def test_database_that_does_not_exist(server: str, tmp_path: Path) -> None:
    url = with_database(server, f"pjp_missing_{uuid.uuid4().hex[:8]}")
    line = assert_one_error_line(cli("status", "--database-url", url, cwd=tmp_path), CONNECTION)
    assert "does not exist" in line and "database" in line


def test_role_that_does_not_exist(db_url: str, tmp_path: Path) -> None:
    url = with_params(db_url, user="pjp_no_such_role")
    line = assert_one_error_line(cli("failures", "--database-url", url, cwd=tmp_path), CONNECTION)
    assert "user" in line and "does not exist" in line


def test_wrong_password(db_url: str, password_role: str, tmp_path: Path) -> None:
    url = with_params(db_url, user=password_role, password=SECRET, host="127.0.0.1")
    result = cli("failures", "--database-url", url, cwd=tmp_path)
    line = assert_one_error_line(result, CONNECTION)
    assert "authentication failed" in line
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("command", ["run-now", "status", "failures", "schedule"])
def test_not_migrated(command: str, empty_db_url: str, tmp_path: Path) -> None:
    result = cli(command, "--database-url", empty_db_url, cwd=tmp_path)
    line = assert_one_error_line(result, NOT_MIGRATED)
    assert "python -m pytools migrate" in line


@pytest.mark.slow  # a second cluster of its own
@pytest.mark.parametrize("command", ["schedule", "unschedule", "status"])
def test_pg_cron_not_preloaded(command: str, no_cron_db_url: str, tmp_path: Path) -> None:
    result = cli(command, "--database-url", no_cron_db_url, cwd=tmp_path)
    line = assert_one_error_line(result, NO_PG_CRON)
    assert "shared_preload_libraries" in line


@pytest.mark.slow  # a second cluster of its own
def test_pg_cron_not_preloaded_but_cron_setting_present(no_cron_db_url: str, tmp_path: Path) -> None:
    env = clean_env(PGOPTIONS="-c cron.database_name=postgres")
    result = cli("schedule", "--database-url", no_cron_db_url, env=env, cwd=tmp_path)
    assert "shared_preload_libraries" in assert_one_error_line(result, NO_PG_CRON)


@pytest.mark.slow  # a second cluster of its own
@pytest.mark.parametrize("command", ["schedule", "unschedule", "status"])
def test_pg_cron_extension_not_created(command: str, cron_not_created_db_url: str, tmp_path: Path) -> None:
    result = cli(command, "--database-url", cron_not_created_db_url, cwd=tmp_path)
    line = assert_one_error_line(result, NO_PG_CRON)
    assert "CREATE EXTENSION" in line and "postgres" in line


# --- passwords never show ------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("via", ["flag", "env", "dotenv"])
def test_password_never_printed(command: str, via: str, tmp_path: Path) -> None:
    url = f"postgresql://someone:{SECRET}@127.0.0.1:{free_port()}/db"
    args: list[str] = [command]
    env = clean_env()
    if via == "flag":
        args += ["--database-url", url]
    elif via == "env":
        env["DATABASE_URL"] = url
    else:
        (tmp_path / ".env").write_text(f"DATABASE_URL={url}\n")
    result = cli(*args, env=env, cwd=tmp_path)
    assert_one_error_line(result, CONNECTION)
    assert SECRET not in result.stdout + result.stderr
    assert "someone:***@" in result.stderr


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://someone:{SECRET}@127.0.0.1:{{port}}/db?password={SECRET}",
        f"postgresql://someone:{SECRET}@127.0.0.1:notaport/db",
        f"postgresql://someone:{SECRET}@127.0.0.1:{{port}}/db?sslmode",
        f"postgresql://someone:{SECRET}@[::1/db",
    ],
)
def test_password_never_printed_for_odd_urls(url: str, tmp_path: Path) -> None:
    result = cli("status", "--database-url", url.format(port=free_port()), cwd=tmp_path)
    assert result.returncode in (USAGE, CONNECTION)
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_bad_pipeline_format_env_is_a_usage_error(tmp_path: Path) -> None:
    env = clean_env(closed_port_url(), PIPELINE_FORMAT="xml")
    line = assert_one_error_line(cli("failures", env=env, cwd=tmp_path), USAGE)
    assert "PIPELINE_FORMAT" in line
