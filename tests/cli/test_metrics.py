"""`python -m pytools metrics` end to end: the pipeline's state in the Prometheus text
exposition format, read back with prometheus_client's own parser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.cli import NOT_MIGRATED, assert_ok, assert_one_error_line, clean_env, cli
from tests.helpers.databases import with_params
from tests.helpers.pipeline import one_journey, run, two_activity_journeys

Conn = psycopg.Connection[Any]
NEVER = "0 0 31 2 *"  # a job that exists but never fires during a test


def metrics(url: str, cwd: Path, *args: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Each sample by (name, labels), after parsing the whole output."""
    out = assert_ok(cli("metrics", *args, env=clean_env(url), cwd=cwd))
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(out)
        for sample in family.samples
    }


def test_metrics_carry_the_latest_runs_and_the_job(db: Conn, db_url: str, tmp_path: Path) -> None:
    one_journey(db)
    first = run(db)
    second = run(db)
    db.execute("UPDATE public.patient_journey SET operation_date = '2026-04-01'")
    third = run(db)
    assert_ok(cli("schedule", "--cron", NEVER, env=clean_env(db_url), cwd=tmp_path))
    samples = metrics(db_url, tmp_path)
    for status, count in [("succeeded", 3), ("failed", 0), ("skipped", 0), ("aborted", 0), ("running", 0)]:
        assert samples[("pipeline_runs", (("status", status),))] == count
    assert samples[("pipeline_up", ())] == 1
    assert samples[("pipeline_last_run_id", ())] == third["run_id"] > second["run_id"] > first["run_id"]
    assert samples[("pipeline_last_run_rows_updated", ())] == third["rows_updated"] == 1
    assert samples[("pipeline_last_run_rows_inserted", ())] == 0
    assert samples[("pipeline_last_success_timestamp_seconds", ())] == third["finished_at"].timestamp()
    seconds = (third["finished_at"] - third["started_at"]).total_seconds()
    assert abs(samples[("pipeline_last_run_duration_seconds", ())] - seconds) < 1e-3
    assert samples[("pipeline_cron_job_present", ())] == 1
    assert samples[("pipeline_cron_job_active", ())] == 1
    assert samples[("pipeline_window_rows", ())] == 1
    assert ("pipeline_cron_last_execution_succeeded", ()) not in samples  # the job has not run yet


def test_metrics_for_a_reader_carry_the_failures_and_leave_out_the_job_it_cannot_see(
    db: Conn, db_url: str, tmp_path: Path
) -> None:
    """pipeline_reader may not see the runner's pg_cron job: its metrics are absent, not 0
    (which would raise a false alarm); the runs' metrics are all there."""
    two_activity_journeys(db, 4)
    db.execute("UPDATE public.schedule SET slug = 'not-a-slug' WHERE id = 2")
    finished = run(db)
    samples = metrics(with_params(db_url, user="pipeline_reader"), tmp_path)
    assert samples[("pipeline_last_run_failures", ())] == finished["failures"] >= 1
    assert samples[("pipeline_last_run_held_back_pairs", ())] == 4
    assert samples[("pipeline_held_back_ratio", ())] == 0.5
    assert not any(name.startswith("pipeline_cron_job") for name, _ in samples)


def test_a_missing_job_is_present_0_for_a_role_that_may_see_it(db: Conn, db_url: str, tmp_path: Path) -> None:
    samples = metrics(db_url, tmp_path)
    assert samples[("pipeline_cron_job_present", ())] == 0
    assert samples[("pipeline_up", ())] == 0  # no run yet
    assert ("pipeline_last_success_timestamp_seconds", ()) not in samples
    assert not any(name.startswith("pipeline_cron_job") for name, _ in metrics(db_url, tmp_path, "--no-job"))


def test_metrics_of_a_failed_run_say_the_pipeline_is_down(db: Conn, db_url: str, tmp_path: Path) -> None:
    one_journey(db)
    run(db)
    blocked = db.execute("INSERT INTO pipeline.pipeline_runs DEFAULT VALUES RETURNING run_id").fetchone()
    assert blocked is not None
    db.execute(
        "SELECT pipeline._block_run(%s, 'blocked: pid 1 (role x) held this run''s lock')",
        (blocked["run_id"],),
    )
    samples = metrics(db_url, tmp_path, "--no-job")
    assert samples[("pipeline_up", ())] == 0
    assert samples[("pipeline_runs", (("status", "failed"),))] == 1
    assert samples[("pipeline_last_success_timestamp_seconds", ())] > 0


def test_metrics_of_a_database_not_migrated_is_one_error_line(empty_db_url: str, tmp_path: Path) -> None:
    """No partial file: nothing on stdout, so `metrics > f.tmp && mv f.tmp f` keeps the old one."""
    result = cli("metrics", env=clean_env(empty_db_url), cwd=tmp_path)
    assert_one_error_line(result, NOT_MIGRATED)
    assert result.stdout == ""
