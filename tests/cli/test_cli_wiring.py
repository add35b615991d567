"""How the CLI is wired: each option's environment variable held to the option's own type and
choices, the run the procedure hands back, .env files as python-dotenv reads them, and no more
connections per command than the databases it needs."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from pytools import cron
from pytools.cli import ABOUT, build_parser
from tests.helpers.cli import USAGE, assert_ok, clean_env, cli, closed_port_url
from tests.helpers.databases import dbname, with_params
from tests.helpers.pipeline import one_journey

# (command, variable, a value the option refuses): every option with a type or choices.
BAD_ENV_VALUES = [
    *[(command, "PIPELINE_FORMAT", "xml") for command in ("run-now", "schedule", "status", "failures")],
    *[(command, "PIPELINE_LIMIT", value) for command in ("status", "failures") for value in ("0", "many")],
    *[("demo", "PIPELINE_DEMO_PORT", value) for value in ("abc", "70000")],
]


@pytest.mark.parametrize(("command", "variable", "value"), BAD_ENV_VALUES)
def test_a_bad_environment_value_is_a_usage_error_of_the_command_naming_the_variable(
    command: str, variable: str, value: str, tmp_path: Path
) -> None:
    """The variable's value goes through the option's own type and choices, and the command's
    parser says which variable holds it, before any connection is tried (the URL is unreachable)."""
    result = cli(command, env=clean_env(closed_port_url(), **{variable: value}), cwd=tmp_path)
    assert result.returncode == USAGE, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"python -m pytools {command}: error: environment variable {variable}: "), line
    assert repr(value) in line


@pytest.mark.parametrize(("variable", "value"), [("PIPELINE_FORMAT", "xml"), ("PIPELINE_LIMIT", "0")])
def test_a_bad_environment_value_of_an_option_the_command_lacks_is_not_an_error(
    variable: str, value: str, db_url: str, tmp_path: Path
) -> None:
    """unschedule has neither --format nor --limit: what the variables hold is none of its business."""
    env = clean_env(db_url, **{variable: value}, PIPELINE_JOB_NAME="pjp-wiring-none")
    assert "nothing to remove" in assert_ok(cli("unschedule", env=env, cwd=tmp_path))


def test_a_flag_beats_a_bad_environment_value(db_url: str, tmp_path: Path) -> None:
    env = clean_env(db_url, PIPELINE_FORMAT="xml", PIPELINE_LIMIT="many")
    assert (
        json.loads(assert_ok(cli("failures", "--format", "json", "--limit", "3", env=env, cwd=tmp_path)))
        == []
    )


@pytest.mark.parametrize("command", ["run-now", "schedule", "status", "failures"])
def test_each_option_help_names_its_variable_and_default(command: str, tmp_path: Path) -> None:
    out = " ".join(assert_ok(cli(command, "--help", cwd=tmp_path)).split())
    assert "(env PIPELINE_FORMAT; default table)" in out
    assert "(env DATABASE_URL; default DATABASE_URL in ./.env)" in out


COMMANDS = sorted(build_parser().commands)


def test_every_command_is_described_for_its_help() -> None:
    assert sorted(ABOUT) == COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_each_commands_help_says_what_it_does_as_which_role_with_an_example(
    command: str, tmp_path: Path
) -> None:
    """What a new user reads first: one paragraph on what the command does, the role README
    "Roles" meant it for, and a line to copy."""
    out = assert_ok(cli(command, "--help", cwd=tmp_path))
    description = out.split("\n\n")[1]
    assert len(description.split()) >= 8, out
    [role] = [line for line in out.splitlines() if line.startswith("Run as: ")]
    assert re.search(r"pipeline_(owner|runner|reader)|superuser|owner of|local account", role), role
    [example] = [line for line in out.splitlines() if line.startswith("Example: ")]
    assert f"pytools {command}" in example or example == "Example: make demo", example


# --- the run the procedure hands back --------------------------------------------------------


@pytest.fixture
def decoy_runs(db: psycopg.Connection[Any]) -> Iterator[None]:
    """Every run row recorded is followed, in the same session, by a second (skipped) one with a
    higher run_id: what an audit trigger or a pooler's shared backend would leave, so that "the
    latest run of this backend" is not the run that was made."""
    db.execute(
        """
        CREATE FUNCTION public.pjp_decoy_run() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.trigger <> 'decoy' THEN
                INSERT INTO pipeline.pipeline_runs (trigger, status, finished_at)
                VALUES ('decoy', 'skipped', clock_timestamp());
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER pjp_decoy AFTER INSERT ON pipeline.pipeline_runs
            FOR EACH ROW EXECUTE FUNCTION public.pjp_decoy_run();
        """
    )
    yield
    db.execute("DROP TRIGGER pjp_decoy ON pipeline.pipeline_runs; DROP FUNCTION public.pjp_decoy_run()")


def test_run_now_as_json_prints_the_run_the_procedure_handed_back(
    db: psycopg.Connection[Any], decoy_runs: None, db_url: str, tmp_path: Path
) -> None:
    one_journey(db)
    [run] = json.loads(assert_ok(cli("run-now", "--format", "json", env=clean_env(db_url), cwd=tmp_path)))
    assert (run["trigger"], run["status"], run["rows_inserted"]) == ("manual", "succeeded", 1)
    recorded = db.execute(
        "SELECT run_id, trigger FROM pipeline.pipeline_runs WHERE run_id >= %s ORDER BY run_id",
        (run["run_id"],),
    ).fetchall()
    assert [r["trigger"] for r in recorded] == ["manual", "decoy"]  # the decoy came later, ignored


def test_a_failed_run_now_prints_the_run_named_in_the_error(
    db: psycopg.Connection[Any], decoy_runs: None, db_url: str, tmp_path: Path
) -> None:
    one_journey(db)
    db.execute("ALTER TABLE public.activity RENAME TO activity_gone")
    result = cli("run-now", "--format", "json", env=clean_env(db_url), cwd=tmp_path)
    assert result.returncode == 1, (result.stdout, result.stderr)
    [run] = json.loads(result.stdout)
    assert (run["trigger"], run["status"]) == ("manual", "failed")
    assert f"pipeline run {run['run_id']} failed" in result.stderr


def test_the_procedure_hands_back_the_run_it_recorded_on_every_way_out(
    db: psycopg.Connection[Any], db_url: str
) -> None:
    """Succeeded and skipped: in p_run_id; failed (a RAISE loses OUT values): in the DETAIL."""
    one_journey(db)
    handed = db.execute("CALL pipeline.run_patient_journey_pipeline()").fetchone()
    assert handed is not None
    latest = db.execute("SELECT max(run_id) AS run_id, min(status) AS status FROM pipeline.pipeline_runs")
    assert dict(latest.fetchone() or {}) == {"run_id": handed["p_run_id"], "status": "succeeded"}
    assert db.execute("CALL pipeline.run_patient_journey_pipeline('cron', true)").fetchone() == {
        "p_run_id": handed["p_run_id"] + 1
    }

    runner = with_params(db_url, user="pipeline_runner")
    with psycopg.connect(runner, autocommit=True, row_factory=dict_row) as squatter:
        squatter.execute("SELECT pipeline._begin_run('cron')")  # a run begun by hand...
        squatter.autocommit = False
        squatter.execute("SELECT 1")  # ...whose session idles inside a transaction: it looks live
        skipped = db.execute("CALL pipeline.run_patient_journey_pipeline()").fetchone()
        assert skipped is not None
        row = db.execute(
            "SELECT status FROM pipeline.pipeline_runs WHERE run_id = %s", (skipped["p_run_id"],)
        )
        assert (row.fetchone() or {}).get("status") == "skipped"
        squatter.rollback()

    db.execute("ALTER TABLE public.activity RENAME TO activity_gone")
    with pytest.raises(psycopg.errors.ExternalRoutineException) as raised:
        db.execute("CALL pipeline.run_patient_journey_pipeline()")
    failed = db.execute("SELECT max(run_id) AS run_id FROM pipeline.pipeline_runs").fetchone()
    assert failed is not None
    assert raised.value.diag.message_detail == f"run_id={failed['run_id']}"


def test_pg_crons_call_and_a_call_without_arguments_still_work(db: psycopg.Connection[Any]) -> None:
    """The jobs scheduled before the run id was added call it with the trigger alone."""
    for call in (
        "CALL pipeline.run_patient_journey_pipeline('cron')",
        "CALL pipeline.run_patient_journey_pipeline()",
    ):
        assert db.execute(call).fetchone() is not None
    assert db.execute(
        "SELECT to_regprocedure('pipeline.run_patient_journey_pipeline(text, boolean)') AS p"
    ).fetchone() == {"p": None}


# --- .env as python-dotenv reads it ----------------------------------------------------------


def test_dotenv_with_a_quoted_value_and_a_trailing_comment(db_url: str, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f'PIPELINE_OTHER=1\nDATABASE_URL="{db_url}"  # the test database\nEMPTY\n')
    assert json.loads(assert_ok(cli("failures", "--format", "json", cwd=tmp_path))) == []


# --- connections per command -----------------------------------------------------------------


def _sessions(admin: psycopg.Connection[Any], *databases: str) -> dict[str, int]:
    """Sessions ever established to each database, once every CLI backend has gone (a backend
    reports its session before it leaves pg_stat_activity)."""
    deadline = time.monotonic() + 20
    while (
        admin.execute(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'pytools'"
        ).fetchone()["n"]
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    admin.execute("SELECT pg_stat_clear_snapshot()")
    rows = admin.execute(
        "SELECT datname, sessions FROM pg_stat_database WHERE datname = ANY(%s)", (list(databases),)
    ).fetchall()
    return {row["datname"]: int(row["sessions"]) for row in rows}


@pytest.mark.parametrize(
    ("args", "pipeline_db", "cron_db"),
    [
        (("schedule", "--run-as", "pipeline_runner"), 1, 1),
        (("status",), 1, 1),
        (("unschedule",), 1, 1),
        (("run-now",), 1, 0),
        (("failures",), 1, 0),
        (("migrate",), 2, 0),  # ours, and yoyo's own for the migrations
    ],
    ids=["schedule", "status", "unschedule", "run-now", "failures", "migrate"],
)
def test_a_command_opens_one_connection_per_database_it_needs(
    args: tuple[str, ...], pipeline_db: int, cron_db: int, server: str, db_url: str, tmp_path: Path
) -> None:
    """pg_cron lives in another database (cron.database_name, here postgres) than the pipeline's,
    so the cron commands need one connection to each; every other command needs one (migrate:
    one of its own, beside the one yoyo opens for itself)."""
    env = clean_env(db_url, PIPELINE_JOB_NAME=f"pjp-wiring-{dbname(db_url)}")
    with psycopg.connect(server, autocommit=True, row_factory=dict_row) as admin:
        pipeline, cron = dbname(db_url), dbname(server)
        before = _sessions(admin, pipeline, cron)
        assert_ok(cli(*args, env=env, cwd=tmp_path))
        after = _sessions(admin, pipeline, cron)
        admin.execute("DELETE FROM cron.job WHERE jobname = %s", (env["PIPELINE_JOB_NAME"],))
    assert (after[pipeline] - before[pipeline], after[cron] - before[cron]) == (pipeline_db, cron_db)


def test_where_pg_cron_lives_in_the_pipelines_database_its_connection_is_the_one_given(server: str) -> None:
    """No second connection when cron.database_name is the database connected to (here the test
    server's postgres, where pg_cron lives)."""
    with psycopg.connect(server, autocommit=True) as conn, cron.cron_connection(server, conn) as cron_conn:
        assert cron_conn is conn
        assert cron_conn.execute("SELECT count(*) FROM cron.job").fetchone() is not None
