"""`python -m pytools check` end to end: a Nagios / Icinga plugin, one status line with
performance data after `|`, exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; run as a
pipeline_reader member (the monitor's role) where the role matters."""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers.cli import assert_ok, clean_env, cli, closed_port_url
from tests.helpers.databases import connect, with_params
from tests.helpers.pipeline import (
    DISK_FULL,
    one_journey,
    run,
    slow_run,
    two_activity_journeys,
    wait_until_blocked,
)

Conn = psycopg.Connection[Any]
LINE = re.compile(r"PIPELINE (OK|WARNING|CRITICAL|UNKNOWN) - ([^|\n]+?)(?: \| (.*))?")
NEVER = "0 0 31 2 *"  # February 31st: a job that exists but never fires during a test


def check(url: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run check; (exit code, state, the whole line), after asserting the plugin's shape."""
    result = cli("check", *args, env=env if env is not None else clean_env(url), cwd=cwd)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    match = LINE.fullmatch(lines[0])
    assert match, lines[0]
    assert result.returncode == ("OK", "WARNING", "CRITICAL", "UNKNOWN").index(match.group(1))
    return result.returncode, match.group(1), lines[0]


def perfdata(line: str) -> dict[str, str]:
    data = line.split(" | ", 1)[1]
    return dict(item.split("=", 1) for item in data.split(" "))


def as_reader(url: str) -> str:
    return with_params(url, user="pipeline_reader")


@pytest.fixture
def healthy(db: Conn, db_url: str, tmp_path: Path) -> Conn:
    """A pipeline that just succeeded, with its pg_cron job scheduled (as pipeline_runner)."""
    one_journey(db)
    assert run(db)["status"] == "succeeded"
    assert_ok(cli("schedule", "--cron", NEVER, env=clean_env(db_url), cwd=tmp_path))
    return db


def test_a_healthy_pipeline_is_ok_for_a_reader_who_is_told_the_job_is_hidden_from_it(
    healthy: Conn, db_url: str, tmp_path: Path
) -> None:
    """pipeline_reader may not see pg_cron's settings nor the runner's job: the line says so,
    and that alone does not make the pipeline look broken."""
    code, state, line = check(as_reader(db_url), cwd=tmp_path)
    assert (code, state) == (0, "OK"), line
    assert "pg_cron job not checked" in line and "hidden" in line
    data = perfdata(line)
    assert data["failures"].startswith("0;") and data["runs_skipped"].startswith("0;")
    assert re.fullmatch(r"[0-9]+s;;7200;0", data["age"]), data
    assert data["held_back_pct"] == "0.0%;10;;0;100"
    assert data["window_rows"].startswith("1;")


def test_a_healthy_pipeline_with_its_active_job_is_ok(healthy: Conn, db_url: str, tmp_path: Path) -> None:
    code, _, line = check(db_url, cwd=tmp_path)
    assert code == 0 and "active" in line, line


def test_a_run_slower_than_the_sla_is_a_warning_in_check_and_a_metric(
    db: Conn, db_url: str, tmp_path: Path
) -> None:
    one_journey(db)
    db.execute("UPDATE pipeline.settings SET sla = interval '1 second'")
    row, _ = slow_run(db, db_url, 1.5)
    code, state, line = check(as_reader(db_url), "--no-job", cwd=tmp_path)
    assert (code, state) == (1, "WARNING"), line
    assert f"run {row['run_id']} took" in line and "longer than its SLA (settings.sla)" in line
    metrics = assert_ok(cli("metrics", "--no-job", env=clean_env(as_reader(db_url)), cwd=tmp_path))
    assert "pipeline_last_run_sla_breached 1.0" in metrics.splitlines()


def test_a_missing_job_is_critical_unless_no_job_is_expected(db: Conn, db_url: str, tmp_path: Path) -> None:
    one_journey(db)
    run(db)
    code, _, line = check(db_url, cwd=tmp_path)
    assert code == 2 and "pg_cron job 'patient-journey-pipeline@" in line and "missing" in line, line
    code, _, line = check(db_url, "--no-job", cwd=tmp_path)
    assert code == 0 and "pg_cron" not in line, line


def test_a_pipeline_that_never_succeeded_is_critical_with_an_undetermined_age(
    db_url: str, tmp_path: Path
) -> None:
    code, _, line = check(as_reader(db_url), "--no-job", cwd=tmp_path)
    assert code == 2 and "no run has succeeded yet" in line, line
    assert perfdata(line)["age"] == "U;;7200;0"


def test_an_inactive_job_is_critical(healthy: Conn, db_url: str, server: str, tmp_path: Path) -> None:
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(
            "SELECT cron.alter_job(jobid, active => false) FROM cron.job WHERE database = %s",
            (healthy.info.dbname,),
        )
    code, _, line = check(db_url, cwd=tmp_path)
    assert code == 2 and "inactive" in line, line


def test_a_failed_pg_cron_execution_is_critical_though_it_left_no_run(
    healthy: Conn, db_url: str, server: str, tmp_path: Path
) -> None:
    """pg_cron could not connect as the job's role (a pg_hba.conf that wants a password): it
    records the execution failed and no run starts. The row is written as pg_cron writes it."""
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(
            "INSERT INTO cron.job_run_details (jobid, runid, job_pid, database, username, command, "
            "status, return_message, start_time, end_time) "
            "SELECT jobid, nextval('cron.runid_seq'), 0, database, username, command, 'failed', "
            "'connection failed', now(), now() FROM cron.job WHERE database = %s",
            (healthy.info.dbname,),
        )
    code, _, line = check(db_url, cwd=tmp_path)
    assert code == 2 and "pg_cron's latest execution of 'patient-journey-pipeline@" in line, line
    assert "failed: connection failed" in line


def test_a_failed_latest_run_is_critical_and_names_its_error(
    healthy: Conn, db_url: str, tmp_path: Path
) -> None:
    """A real run that breaks while recording its outcome (a full disk, played by a trigger)."""
    healthy.execute(DISK_FULL)
    healthy.execute(
        "CREATE TRIGGER pjp_disk_full BEFORE UPDATE ON pipeline.pipeline_runs "
        "FOR EACH ROW WHEN (NEW.mode IS NOT NULL) EXECUTE FUNCTION public.pjp_disk_full()"
    )
    with pytest.raises(psycopg.Error):
        healthy.execute("CALL pipeline.run_patient_journey_pipeline()")
    code, _, line = check(as_reader(db_url), cwd=tmp_path)
    assert code == 2 and "latest run 2 failed: the run broke while recording its outcome" in line, line


def test_a_pipeline_whose_last_success_is_older_than_max_age_is_critical(
    healthy: Conn, db_url: str, tmp_path: Path
) -> None:
    healthy.execute(
        "UPDATE pipeline.pipeline_runs SET started_at = started_at - interval '3 hours', "
        "finished_at = finished_at - interval '3 hours'"
    )
    code, _, line = check(as_reader(db_url), cwd=tmp_path)
    assert code == 2 and "no run succeeded within 2.0 h (last success 3.0 h ago)" in line, line
    assert perfdata(line)["age"].startswith("108")  # 10800 s and a little
    code, _, line = check(as_reader(db_url), "--max-age", "4 hours", cwd=tmp_path)
    assert code == 0, line


def test_a_blocked_run_is_critical(healthy: Conn, db_url: str, tmp_path: Path) -> None:
    """A run recorded blocked by the routine the procedure uses for it (_block_run)."""
    run_id = healthy.execute("INSERT INTO pipeline.pipeline_runs (trigger) VALUES ('cron') RETURNING run_id")
    blocked = run_id.fetchone()["run_id"]  # type: ignore[index]
    healthy.execute(
        "SELECT pipeline._block_run(%s, 'blocked: pid 4242 (role mallory) held this run''s lock "
        "before it began')",
        (blocked,),
    )
    code, _, line = check(as_reader(db_url), cwd=tmp_path)
    assert code == 2 and f"pipeline blocked (run {blocked}): blocked: pid 4242 (role mallory)" in line, line


@pytest.fixture
def held_run(healthy: Conn, db_url: str) -> Iterator[Conn]:
    """A live run kept waiting mid-run (a session holds a lock on a source table), so the runs
    started meanwhile are skipped behind it; released afterwards."""
    blocker = psycopg.connect(db_url)
    blocker.execute("LOCK TABLE public.schedule IN ACCESS EXCLUSIVE MODE")
    runner = connect(db_url, "pipeline_runner")
    runner.execute("SET application_name = 'held-run'")
    thread = threading.Thread(
        target=lambda: runner.execute("CALL pipeline.run_patient_journey_pipeline()"), daemon=True
    )
    thread.start()
    try:
        wait_until_blocked(healthy, "held-run")
        yield healthy
    finally:
        blocker.rollback()
        blocker.close()
        thread.join(60)
        runner.close()


def test_runs_skipped_three_times_in_a_row_are_a_warning(held_run: Conn, db_url: str, tmp_path: Path) -> None:
    for _ in range(3):
        assert run(held_run)["status"] == "skipped"
    code, _, line = check(as_reader(db_url), cwd=tmp_path)
    assert code == 1 and "the last 3 runs were skipped: another run held the pipeline: run 2" in line, line
    assert perfdata(line)["runs_skipped"] == "3;2;;0"


def test_runs_skipped_behind_one_live_run_for_longer_than_max_age_are_critical(
    held_run: Conn, db_url: str, tmp_path: Path
) -> None:
    """Skips for three hours, all naming live run 2: the pipeline is blocked by that run."""
    for _ in range(2):
        assert run(held_run)["status"] == "skipped"
    held_run.execute(
        "UPDATE pipeline.pipeline_runs SET started_at = started_at - interval '3 hours', "
        "finished_at = finished_at - interval '3 hours' WHERE status IN ('skipped', 'succeeded')"
    )
    code, _, line = check(as_reader(db_url), "--no-job", cwd=tmp_path)
    assert code == 2 and "pipeline blocked: 2 runs skipped over 3.0 h behind live run 2" in line, line


def test_a_held_back_share_above_the_threshold_is_a_warning(db: Conn, db_url: str, tmp_path: Path) -> None:
    """One of two schedules has a slug that does not parse: half the pairs are held back."""
    two_activity_journeys(db, 4)
    db.execute("UPDATE public.schedule SET slug = 'not-a-slug' WHERE id = 2")
    finished = run(db)
    assert finished["status"] == "succeeded" and finished["rows_held_back"] == 4
    code, _, line = check(as_reader(db_url), "--no-job", cwd=tmp_path)
    assert code == 1 and "50.0% of pairs held back (over 10%)" in line, line
    assert perfdata(line)["held_back_pct"] == "50.0%;10;;0;100"
    code, _, line = check(as_reader(db_url), "--no-job", "--warn-held-back", "60", cwd=tmp_path)
    assert code == 0, line


def test_a_database_not_migrated_is_unknown(empty_db_url: str, tmp_path: Path) -> None:
    code, _, line = check(empty_db_url, cwd=tmp_path)
    assert code == 3 and "not up to date" in line and "migrate" in line, line


def test_an_unreachable_server_is_unknown(tmp_path: Path) -> None:
    code, _, line = check(closed_port_url(), cwd=tmp_path)
    assert code == 3 and line.startswith("PIPELINE UNKNOWN - cannot reach the database"), line


def test_no_database_given_is_unknown(tmp_path: Path) -> None:
    code, _, line = check("", cwd=tmp_path, env=clean_env())
    assert code == 3, line


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--max-age", "soon"], {}),
        (["--warn-held-back", "150"], {}),
        (["--bogus"], {}),
        ([], {"PIPELINE_MAX_AGE": "later"}),
    ],
)
def test_a_usage_error_is_unknown_exit_3_per_plugin_conventions(
    args: list[str], env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    """argparse would exit 2, which a Nagios reads as CRITICAL: check's own usage errors are
    UNKNOWN (exit 3), one line on stdout like every other outcome."""
    code, _, line = check(db_url, *args, cwd=tmp_path, env=clean_env(db_url, **env))
    assert code == 3 and line.startswith("PIPELINE UNKNOWN - usage: "), line


def test_other_commands_keep_exit_2_for_a_usage_error(tmp_path: Path) -> None:
    result = cli("status", "--bogus", cwd=tmp_path)
    assert result.returncode == 2 and "PIPELINE" not in result.stdout + result.stderr


def test_a_password_in_the_url_is_never_printed(tmp_path: Path) -> None:
    result: subprocess.CompletedProcess[str] = cli(
        "check", env=clean_env(closed_port_url(password="s3cret-pw")), cwd=tmp_path
    )
    assert result.returncode == 3 and "s3cret-pw" not in result.stdout + result.stderr
